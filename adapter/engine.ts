// The engine of a debug session (the runtime beside the DAP session, as MockRuntime is beside
// MockDebugSession): it runs the program through the hooked launcher with a channel
// (docs/protocol.md), copies every record into the session's JSONL file, counts events per name,
// decides what the Debug Console shows (display filter and flood control), tracks threads, stops and
// prompts, and speaks the launcher's side of "Debugging". It knows nothing of DAP: the session
// translates its typed events and answers.

import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { BreakpointEntry } from './breakpoints';
import { DefaultVisibility, EventDisplay, eventMatcher } from './catalog';
import { ChannelConnection, ChannelServer, ControlMessage, HelloMessage, JsonlWriter } from './channel';
import { LauncherConfig, LaunchPlan } from './config';
import { FloodControl, monotonicMs, OutputBudget } from './flood';
import { ProcessTree } from './peers';
import { localizeBody, RemoteReferences } from './inspection';
import { AuditRecord, endsRefused, eventSummary, ReceivedRecord, RecordReader } from './records';
import { ChildRelay, ChildTarget, connectToRelay } from './relay';

export type ResumeAction = 'allow' | 'deny' | 'step';
export type StopReason = 'breakpoint' | 'exception' | 'entry' | 'pause' | 'step';
export type PromptAnswer = 'allow' | 'allowAlways' | 'deny';
export type InspectionCommand = 'stackTrace' | 'scopes' | 'variables' | 'evaluate';

export interface StopInfo {
  reason: StopReason;
  threadId: number;
  pid: number;
  /** The entry it stopped on (reasons `breakpoint` and `exception`; absent for `breakOnDenied`). */
  breakpointId?: number;
  /** The record of the event it stopped on (absent for `entry` and `pause`). */
  record?: AuditRecord;
  /** The launcher's own description of the stop. */
  description?: string;
}

export interface ThreadInfo {
  id: number;
  name: string;
}

/** A promptEvents rule matched: the thread waits for `answerPrompt`. */
export interface PromptInfo {
  id: number;
  event: string;
  target: string;
  pid: number;
  tid: number;
}

export interface LogpointMessage {
  breakpointId: number;
  message: string;
  file?: string;
  line?: number;
}

/** Lines flood control held back since the last summary. */
export type HeldBack = { kind: 'event'; name: string; count: number } | { kind: 'logpoint'; breakpointId: number; count: number };

/**
 * How the program starts in one of the editor's terminals; resolves once it has been started, with the
 * launcher's pid when it is known (the channel then admits only that process tree from the start).
 */
export type TerminalStarter = (request: {
  kind: 'integrated' | 'external';
  cwd: string;
  args: string[];
  env: Record<string, string>;
}) => Promise<number | void>;

/** Records of one event name that were counted, not read one by one (see EngineOptions.readEach). */
export interface CountedRecords {
  pid: number;
  ppid: number;
  name: string;
  count: number;
}

/** A connected process is over: its exit status when it said (`exit`), else undefined. */
export interface ProcessEnd {
  pid: number;
  ppid: number;
  exitStatus: number | undefined;
}

/**
 * Opens a child debug session (DAP `startDebugging`) for a process the program started; resolves once
 * the editor agreed. The session then attaches to `target` (Engine.attach).
 */
export type ChildSessionStarter = (target: ChildTarget) => Promise<void>;

/** What a session shows and keeps, for a process it attaches to rather than launches. */
export type ViewPlan = Pick<LaunchPlan, 'showEvents' | 'hideEvents' | 'runsDir' | 'title'>;

export interface EngineOptions {
  /** The hooked launcher, dist/bin/spython. */
  launcher: string;
  /** Present when the client can run a command in a terminal (DAP runInTerminal). */
  startInTerminal?: TerminalStarter;
  /** The file for the JSONL copy of every record (default: a fresh file in the plan's runsDir). */
  runLog?: string;
  /**
   * Present when each process the program starts (subProcess) should get a debug session of its own;
   * without it, or when the editor does not attach in time, this session shows them, tagged by pid.
   */
  startChildSession?: ChildSessionStarter;
  /**
   * Event names whose every record the caller needs as a 'record' event. Records of other names are
   * counted, not read, unless the engine needs them itself (shown, refused, what a thread may stop
   * on...): 'recordsCounted' reports them. Default: none.
   */
  readEach?: (name: string) => boolean;
  /**
   * Whether anyone shows events as they come ('auditEvent', 'heldBack'). False (`spython-audit run
   * --quiet`) spares reading records only to decide whether to show them. Default: true.
   */
  liveEvents?: boolean;
}

export interface Engine {
  /** The program's own output (console internalConsole). */
  on(event: 'programOutput', listener: (category: 'stdout' | 'stderr', text: string) => void): this;
  /** An event record for the Debug Console (shown by the display filter, admitted by flood control). */
  on(event: 'auditEvent', listener: (record: AuditRecord) => void): this;
  /**
   * Each record read one by one (parsed in full only on demand): those EngineOptions.readEach names,
   * and those the engine reads for itself. With 'recordsCounted', every record, once.
   */
  on(event: 'record', listener: (record: ReceivedRecord) => void): this;
  /** Records counted without being read: the rest of every record (hidden and held-back ones...). */
  on(event: 'recordsCounted', listener: (counted: CountedRecords) => void): this;
  on(event: 'heldBack', listener: (heldBack: HeldBack) => void): this;
  on(event: 'logpoint', listener: (message: LogpointMessage) => void): this;
  on(event: 'stopped', listener: (stop: StopInfo) => void): this;
  on(event: 'threadStarted', listener: (thread: ThreadInfo) => void): this;
  on(event: 'threadExited', listener: (threadId: number) => void): this;
  on(event: 'prompt', listener: (prompt: PromptInfo) => void): this;
  on(event: 'breakpointError', listener: (breakpointId: number, message: string) => void): this;
  /** Something the user should know that is not the program's output (launcher and channel trouble). */
  on(event: 'notice', listener: (text: string) => void): this;
  /** A process the program started has its own debug session from now on. */
  on(event: 'childSession', listener: (target: ChildTarget) => void): this;
  /** A connected process is over (its child session's end, for one that had its own). */
  on(event: 'processEnded', listener: (end: ProcessEnd) => void): this;
  /** The program is over; its exit status (128 + N after signal N), undefined when unknown. */
  on(event: 'exited', listener: (exitCode: number | undefined) => void): this;
  /** Everything is over: the last event. */
  on(event: 'ended', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Threads tracked for the Threads view; past this many, new ones are not announced. */
const MAX_THREADS = 256;
/** How often held-back lines are summarised. */
const SUMMARY_INTERVAL_MS = 2000;
/** After SIGTERM, how long the program gets before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After the launcher exits, how long its output pipes may stay open (a child may hold them). */
const OUTPUT_GRACE_MS = 1000;
/** In a terminal, how long the launcher may take to connect before the launch is given up. */
const TERMINAL_CONNECT_MS = 30_000;
/** How much of the launcher's stderr is kept for the message of a failed launch. */
const MAX_STARTUP_STDERR = 16 * 1024;
/** The status with which the launcher reports its own errors (docs/protocol.md). */
const LAUNCHER_ERROR_STATUS = 125;
/**
 * How long the editor may take to open a child session and attach it; then the process is shown in
 * this session instead. With CHILD_CONFIGURATION_MS, well under the launcher's 60 s handshake limit.
 */
const CHILD_ATTACH_MS = 15_000;
/** How long an attached child session may take to send its breakpoints before the child runs anyway. */
const CHILD_CONFIGURATION_MS = 10_000;

export class Engine extends EventEmitter {
  /** Records received per event name, hidden ones included. */
  readonly eventCounts = new Map<string, number>();
  /** Records received in all. */
  recordCount = 0;
  /** Records shown in the Debug Console. */
  shownCount = 0;
  /** Processes handed to child sessions (their records are counted there). */
  childSessionCount = 0;
  /** The session's JSONL copy of every record. */
  runLog: string | undefined;
  /** The directory of the session's own run log, pruned as it ends (pruneRunLogs); not for --jsonl. */
  private runsDir: string | undefined;

  private plan!: LaunchPlan;
  /** The policies and settings of the program's own welcome (none for a process attached to). */
  private launcherConfig: LauncherConfig = {};
  /** Set when this session attached to a process another session's program started. */
  private attachedTo: ChildTarget | undefined;
  private display!: EventDisplay;
  /** The time the latest chunk of the channel arrived: flood control's clock, read once per chunk
   * rather than once per record (the clock costs as much as the rest of a record). */
  private chunkArrived = monotonicMs();
  private readonly flood = new FloodControl<string | number>(undefined, () => this.chunkArrived);
  /**
   * Advances with every received chunk and every change of what a thread may stop on: whether a
   * name's records are read one by one is decided anew then (see onRecord).
   */
  private readEpoch = 0;
  /** Event names a breakpoint or category may stop on (logpoints never stop). */
  private stopsOn: (name: string) => boolean = () => false;
  /** The program's own output in the Debug Console (both streams together). */
  private readonly outputBudget = new OutputBudget();
  private server: ChannelServer | undefined;
  /** Who may connect: the launched process and its descendants. */
  private tree: ProcessTree | undefined;
  private writer: JsonlWriter | undefined;
  private child: ChildProcess | undefined;
  /** The process the session launched (the first to connect); the others were forked by it. */
  private main: LauncherProcess | undefined;
  private readonly processes = new Set<LauncherProcess>();
  /** Processes shown in child sessions (their channels relayed), or being offered one. */
  private readonly relays = new Set<ChildRelay>();
  /** Processes being offered a child session. */
  private offers = 0;
  private readonly threads = new Map<number, ThreadInfo & { process: LauncherProcess }>();
  private readonly references = new RemoteReferences<LauncherProcess>();
  private readonly prompts = new Map<number, { process: LauncherProcess; remoteId: number }>();
  private nextPromptId = 1;
  private breakpoints: BreakpointEntry[] = [];
  private breakOnDenied = false;
  private readonly configured = new Deferred<void>();
  private readonly started = new Deferred<void>();
  private readonly ended = new Deferred<void>();
  private launched = false;
  private terminating = false;
  private finishing = false;
  private exitCode: number | undefined;
  private mainExited = false;
  private startupStderr = '';
  private readingPaused = false;
  private summaryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: EngineOptions) {
    super();
    // A launch that fails is reported by start(); nobody else needs to hear of it.
    this.started.promise.catch(() => undefined);
  }

  /**
   * Starts the program. Resolves once it runs (its `cpython.run_*` event arrived and no policy refused
   * it, or it stopped before that); rejects with a message saying what went wrong otherwise. The
   * launcher waits for `configurationDone` before Python starts.
   */
  async start(plan: LaunchPlan): Promise<void> {
    this.plan = plan;
    this.launcherConfig = plan.launcherConfig;
    const tree = (this.tree = new ProcessTree(undefined, (why) => this.emit('notice', why)));
    // The channel's directory and socket are made while the run log's file is (the launcher waits for both).
    const serverReady = ChannelServer.create({
      config: (hello, connection) => this.welcome(hello, connection),
      checkPeer: (socket, hello) => tree.check(socket, hello),
    });
    serverReady.catch(() => undefined); // awaited below, once the run log is ready
    try {
      await this.prepare(plan);
    } catch (err) {
      void serverReady.then((server) => server.close(), () => undefined);
      throw err;
    }
    this.server = await serverReady;
    const env = { ...plan.env, ...this.server.env };
    this.launched = true;
    try {
      if (plan.console === 'internalConsole') this.spawnLauncher(env);
      else await this.startInTerminal(env);
    } catch (err) {
      void this.finish();
      throw err;
    }
    // While the launcher starts up, not once it has connected and waits for its welcome.
    tree.prepare();
    return this.started.promise;
  }

  /**
   * Attaches to a process another session's program started (a child session): its channel arrives
   * through that session's relay. Resolves once the process is there; it runs from configurationDone
   * on (or after CHILD_CONFIGURATION_MS without one).
   */
  async attach(target: ChildTarget, view: ViewPlan): Promise<void> {
    this.attachedTo = target;
    await this.prepare(view);
    let socket;
    try {
      socket = await connectToRelay(target);
    } catch (err) {
      void this.finish();
      throw err;
    }
    this.launched = true;
    const connection = new ChannelConnection(socket, target.token, () => (hello, c) => this.welcome(hello, c));
    connection.on('end', () => {
      if (!this.main) {
        this.startFailed(connection.rejectReason ?? `Process ${target.pid} ended before this session attached to it.`);
        void this.finish();
      }
    });
    return this.started.promise;
  }

  /** The pid of the program (the process launched or attached to), once it connected. */
  get mainPid(): number | undefined {
    return this.main?.pid;
  }

  /** The editor has sent its breakpoints: Python may start. */
  configurationDone(): void {
    this.configured.resolve();
  }

  /** Replaces the breakpoints in every process (and in those yet to connect). */
  setBreakpoints(entries: BreakpointEntry[], breakOnDenied: boolean): void {
    this.breakpoints = entries;
    this.breakOnDenied = breakOnDenied;
    this.stopsOn = eventMatcher(entries.filter((entry) => entry.logMessage === undefined).map((entry) => entry.event));
    this.readEpoch++;
    for (const process of this.processes) {
      // One still waiting for its welcome gets them in it: nothing may come before the welcome.
      if (process.connection.hello) process.send({ type: 'setBreakpoints', breakpoints: entries, breakOnDenied });
    }
  }

  /**
   * Resumes a stopped thread: the operation proceeds (`allow`), raises PermissionError (`deny`), or
   * proceeds and the thread stops at its next event (`step`). `allow` on a thread that is not stopped
   * resumes every stopped thread (the editor continues the thread it shows, not always the one stopped).
   */
  resume(threadId: number, action: ResumeAction): void {
    const owner = [...this.processes].find((p) => p.stoppedThreads.has(threadId));
    if (owner) {
      this.resumeThread(owner, threadId, action);
      return;
    }
    if (action !== 'allow') throw new Error(`Thread ${threadId} is not paused.`);
    for (const process of this.processes) {
      for (const tid of [...process.stoppedThreads]) this.resumeThread(process, tid, action);
    }
  }

  /** Stops the process running `threadId` (default: the program) at its next bytecode boundary. */
  pause(threadId?: number): void {
    const process = (threadId !== undefined ? this.threads.get(threadId)?.process : undefined) ?? this.main;
    if (!process) throw new Error('The program has not started yet.');
    if (process.stoppedThreads.size === 0) process.send({ type: 'pause' });
  }

  /** Every known thread; those of a stopped process as its launcher lists them. */
  async listThreads(): Promise<ThreadInfo[]> {
    const result: ThreadInfo[] = [];
    for (const process of this.processes) {
      if (process.stoppedThreads.size > 0) {
        const body = await process.request('threads', {}).catch(() => undefined);
        if (Array.isArray(body?.threads)) {
          for (const thread of body.threads as ThreadInfo[]) {
            // Threads that raised no event yet are news here.
            this.noteThread(process, thread.id, thread.name);
            result.push({ id: thread.id, name: threadLabel(process, thread.id, thread.name) });
          }
          continue;
        }
      }
      for (const thread of this.threads.values()) {
        if (thread.process === process) result.push({ id: thread.id, name: thread.name });
      }
    }
    return result;
  }

  /**
   * Inspection while a thread is stopped (docs/protocol.md, "Debugging"): DAP-shaped arguments and
   * body, with frame ids and variable references renumbered for the session.
   */
  async inspect(command: InspectionCommand, args: Record<string, any>): Promise<Record<string, unknown>> {
    let process: LauncherProcess | undefined;
    const remoteArgs = { ...args };
    const via = (local: unknown, kind: 'frame' | 'variables', key: string) => {
      const found = typeof local === 'number' ? this.references.resolve(local, kind) : undefined;
      if (!found) throw new Error('That frame or variable belongs to a thread that has resumed since.');
      remoteArgs[key] = found.remote;
      return found.owner;
    };
    switch (command) {
      case 'stackTrace':
        // A thread past MAX_THREADS is not tracked: it can only belong to a stopped process.
        process = this.threads.get(args.threadId)?.process ?? [...this.processes].find((p) => p.stoppedThreads.size > 0);
        break;
      case 'scopes':
        process = via(args.frameId, 'frame', 'frameId');
        break;
      case 'variables':
        process = via(args.variablesReference, 'variables', 'variablesReference');
        break;
      case 'evaluate':
        process =
          args.frameId !== undefined
            ? via(args.frameId, 'frame', 'frameId')
            : [...this.processes].find((p) => p.stoppedThreads.size > 0);
        break;
    }
    if (!process || process.stoppedThreads.size === 0) {
      throw new Error('The program is running: pause it, or stop on an event, to inspect it.');
    }
    const owner = process;
    const body = await owner.request(command, remoteArgs);
    return localizeBody(command, body, (kind, remote) => this.references.toLocal(owner, kind, remote));
  }

  /** Answers a prompt (`allowAlways`: the same event and target pass for the rest of that process). */
  answerPrompt(id: number, answer: PromptAnswer): void {
    const prompt = this.prompts.get(id);
    if (!prompt) throw new Error(`No prompt ${id} is waiting.`);
    this.prompts.delete(id);
    prompt.process.send({ type: 'promptReply', id: prompt.remoteId, answer });
  }

  /**
   * When the program, once running, ended with the launcher's own status and without the `exit` message
   * (which dlopen mode always sends): the launcher stopped it because auditing could not go on (its
   * reason is on stderr). Says so, and what that means for the records; else undefined.
   */
  launcherStopped(status: number | undefined): string | undefined {
    const connection = this.main?.connection;
    if (!this.started.settled || status !== LAUNCHER_ERROR_STATUS || connection?.hello?.mode !== 'dlopen') return undefined;
    if (connection.exitStatus !== undefined) return undefined;
    return (
      `The launcher stopped process ${connection.hello.pid} (status ${status}): auditing could not go on (its reason is ` +
      `on stderr). Records it had not sent by then are missing; ${connection.records} arrived.`
    );
  }

  /** Ends the program and everything it started (SIGTERM, then SIGKILL); resolves when all is over. */
  async terminate(): Promise<void> {
    if (!this.launched) return;
    this.terminating = true;
    this.signal('SIGTERM');
    // Children still waiting for a child session wait no more.
    for (const relay of this.relays) if (!relay.relaying) void relay.close();
    const timer = setTimeout(() => this.signal('SIGKILL'), KILL_GRACE_MS);
    await this.ended.promise;
    clearTimeout(timer);
  }

  // --- starting ---------------------------------------------------------------------------------

  private async prepare(view: ViewPlan): Promise<void> {
    this.display = new EventDisplay(view.showEvents, view.hideEvents);
    this.writer = await openRunLog(view, this.options.runLog);
    this.runLog = this.writer.path;
    if (this.options.runLog === undefined) this.runsDir = view.runsDir;
    this.writer.on('error', (err) => this.emit('notice', `Cannot write ${this.runLog}: ${err.message}`));
    this.summaryTimer = setInterval(() => this.reportHeldBack(), SUMMARY_INTERVAL_MS);
  }

  private spawnLauncher(env: Record<string, string>): void {
    // Its own process group (detached), so that terminate() reaches everything it started.
    const child = spawn(this.options.launcher, this.plan.launcherArgs, {
      cwd: this.plan.cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    if (child.pid !== undefined) this.tree?.setRoot(child.pid);
    this.forwardOutput(child, 'stdout');
    this.forwardOutput(child, 'stderr');
    const outputClosed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.once('error', (err) => {
      this.startFailed(`Cannot run the launcher ${this.options.launcher}: ${err.message}`);
      this.onMainExit(undefined, Promise.resolve());
    });
    child.once('exit', (code, signal) => {
      const status = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : undefined);
      this.onMainExit(status, outputClosed);
    });
  }

  private forwardOutput(child: ChildProcess, category: 'stdout' | 'stderr'): void {
    const decoder = new StringDecoder('utf8');
    const stream = child[category]!;
    stream.on('data', (chunk: Buffer) => {
      const text = decoder.write(chunk);
      if (category === 'stderr' && !this.started.settled && this.startupStderr.length < MAX_STARTUP_STDERR) {
        this.startupStderr += text;
      }
      const shown = text && this.outputBudget.admit(text);
      if (shown) this.emit('programOutput', category, shown);
    });
    stream.on('end', () => {
      const rest = this.outputBudget.admit(decoder.end());
      if (rest) this.emit('programOutput', category, rest);
    });
  }

  private async startInTerminal(env: Record<string, string>): Promise<void> {
    if (!this.options.startInTerminal) {
      throw new Error(
        `"console": "${this.plan.console}" needs a client that can run a command in a terminal (runInTerminal); ` +
          'use "internalConsole".',
      );
    }
    const pid = await this.options.startInTerminal({
      kind: this.plan.console === 'externalTerminal' ? 'external' : 'integrated',
      cwd: this.plan.cwd,
      args: [this.options.launcher, ...this.plan.launcherArgs],
      env,
    });
    if (typeof pid === 'number') this.tree?.setRoot(pid);
    // No process handle here: the launcher's own message is in the terminal if it never connects.
    const timer = setTimeout(() => {
      if (this.main) return;
      this.startFailed('The launcher did not connect: see its message in the terminal.');
      void this.finish();
    }, TERMINAL_CONNECT_MS);
    timer.unref();
  }

  private startFailed(message: string): void {
    this.started.reject(new Error(message));
  }

  private onMainExit(status: number | undefined, outputClosed: Promise<void>): void {
    this.exitCode = status;
    const stopped = this.launcherStopped(status);
    if (stopped) this.emit('notice', stopped);
    if (!this.started.settled) {
      const said = this.startupStderr.trim();
      if (said) this.startFailed(said);
      else if (status === LAUNCHER_ERROR_STATUS) this.startFailed(`The launcher failed (status ${status}).`);
      else this.startFailed(`The program ended (status ${status}) before it started running.`);
    }
    // Let the output drain, unless something the program started keeps the pipes open.
    const grace = new Promise<void>((resolve) => setTimeout(resolve, OUTPUT_GRACE_MS).unref());
    void Promise.race([outputClosed, grace]).then(() => {
      this.mainExited = true;
      this.finishIfOver();
    });
  }

  /** Everything is over once every connected process is, children included, and the program exited. */
  private finishIfOver(): void {
    const channelOver = this.processes.size === 0 && this.relays.size === 0 && this.offers === 0;
    // In a terminal the channel is all there is to watch.
    if (channelOver && (this.mainExited || !this.child)) void this.finish();
  }

  private async finish(): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    clearInterval(this.summaryTimer);
    this.reportHeldBack();
    if (this.exitCode === undefined && !this.child) this.exitCode = this.main?.connection.exitStatus;
    // Closing the server ends its connections at once, so no record comes after: the log closes meanwhile.
    await Promise.all([
      this.server?.close(),
      ...[...this.relays].map((relay) => relay.close()),
      // A write error was reported by the writer's 'error' event already.
      this.writer?.close().catch(() => undefined),
      // At the end, off the start's path.
      this.runsDir !== undefined ? pruneRunLogs(this.runsDir).catch(() => 0) : undefined,
    ]);
    this.emit('exited', this.exitCode);
    this.emit('ended');
    this.ended.resolve();
  }

  /** Signals the launcher's process group (its own, as spawned here or as a terminal's job), and any
   * connected process that left it. */
  private signal(signal: NodeJS.Signals): void {
    const leader = this.child?.pid ?? this.main?.pid;
    if (leader === undefined) {
      void this.finish();
      return;
    }
    if (!kill(-leader, signal)) kill(leader, signal);
    for (const launcherProcess of this.processes) {
      if (launcherProcess.pid !== leader) kill(launcherProcess.pid, signal);
    }
    for (const relay of this.relays) kill(relay.pid, signal);
  }

  // --- the channel ------------------------------------------------------------------------------

  /**
   * The `welcome` configuration of a new connection. The program's own waits for configurationDone;
   * another process (one the program started) is offered a child session when the editor can open one.
   */
  private welcome(hello: HelloMessage, connection: ChannelConnection): object | Promise<object> {
    if (this.main === undefined) {
      this.adopt(hello, connection, true);
      if (!this.attachedTo) return this.configured.promise.then(() => this.welcomeConfig(true));
      // Attached: the process is there; it runs once the editor has sent its breakpoints.
      this.started.resolve();
      return this.configurationOrTimeout().then(() => this.welcomeConfig(true));
    }
    if (this.options.startChildSession) return this.offerChildSession(hello, connection);
    this.adopt(hello, connection, false);
    return this.welcomeConfig(false);
  }

  /** Policies (which a child has from its parent already and ignores), stopOnEntry, breakpoints. */
  private welcomeConfig(isMain: boolean): object {
    return {
      ...this.launcherConfig,
      stopOnEntry: isMain ? this.launcherConfig.stopOnEntry : undefined,
      breakpoints: this.breakpoints,
      breakOnDenied: this.breakOnDenied,
    };
  }

  private configurationOrTimeout(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.emit('notice', `No breakpoints arrived within ${CHILD_CONFIGURATION_MS / 1000} s: process ${this.attachedTo?.pid} runs without them.`);
        resolve();
      }, CHILD_CONFIGURATION_MS);
    });
    return Promise.race([this.configured.promise, late]).finally(() => clearTimeout(timer));
  }

  /**
   * Asks the editor for a child session and hands the connection to a relay once it attached; when
   * the editor refuses or does not attach in time, the process stays in this session.
   */
  private async offerChildSession(hello: HelloMessage, connection: ChannelConnection): Promise<object> {
    this.offers++;
    let relay: ChildRelay | undefined;
    try {
      relay = await ChildRelay.create(hello);
      // Counted from now on: terminate() signals its process and closes it, which ends the wait.
      this.relays.add(relay);
      const attached = relay.attached(CHILD_ATTACH_MS);
      const answered = this.options.startChildSession!(relay.target);
      await Promise.race([attached, answered.then(() => attached)]);
      const handedOver = relay;
      handedOver.once('end', () => {
        this.relays.delete(handedOver);
        void handedOver.close();
        this.emit('processEnded', { pid: hello.pid, ppid: hello.ppid, exitStatus: undefined } satisfies ProcessEnd);
        this.finishIfOver();
      });
      handedOver.start(hello, connection.handOff());
      this.childSessionCount++;
      this.emit('childSession', handedOver.target);
      // The connection is the child session's now: this welcome is never sent.
      return {};
    } catch (err) {
      if (relay) {
        this.relays.delete(relay);
        void relay.close();
      }
      if (this.finishing) throw new Error('the session is over');
      if (!this.terminating) {
        this.emit('notice', `Process ${hello.pid} (child of ${hello.ppid}) is shown in this session: ${(err as Error).message}.`);
      }
      this.adopt(hello, connection, false);
      return this.welcomeConfig(false);
    } finally {
      this.offers--;
    }
  }

  /** Reads a connection in this session. */
  private adopt(hello: HelloMessage, connection: ChannelConnection, isMain: boolean): void {
    const launcherProcess = new LauncherProcess(connection, hello.pid, hello.ppid, isMain);
    if (isMain) this.main = launcherProcess;
    this.processes.add(launcherProcess);
    connection.setRecordSink({
      chunk: () => {
        this.chunkArrived = monotonicMs();
        this.readEpoch++;
      },
      record: (name, chunk, start, end) => this.onRecord(launcherProcess, name, chunk, start, end),
      lines: (chunk, start, end, count) => this.onLines(launcherProcess, chunk, start, end, count),
    });
    connection.on('control', (msg) => this.onControl(launcherProcess, msg));
    connection.on('protocolError', (description) =>
      this.emit('notice', `Channel trouble with process ${hello.pid}: ${description}`),
    );
    connection.on('end', () => this.onEnd(launcherProcess));
    if (this.readingPaused) connection.pause();
  }

  /**
   * One event record: bytes `start` to `end` of a received chunk. Most records are counted by name,
   * logged (onLines) and held back by flood control or hidden: those are not read. One is read when
   * its name says so (readEach, a `cpython.run_*` record, one a thread may stop on, one flood control
   * would show now — of a name shown only when raised by program code, one raised there), when it was
   * refused, or when its thread differs from the previous record's (a thread to announce).
   */
  private onRecord(launcherProcess: LauncherProcess, name: string, chunk: Buffer, start: number, end: number): void {
    let tally = launcherProcess.lastTally;
    if (tally === undefined || tally.name !== name) {
      tally = launcherProcess.tallies.get(name) ?? launcherProcess.addTally(name, this.visibility(name));
      launcherProcess.lastTally = tally;
    }
    if (tally.epoch !== this.readEpoch) {
      tally.epoch = this.readEpoch;
      tally.readEach = this.readsEach(launcherProcess, name);
      tally.readNow = tally.readEach || (tally.shown && this.flood.wouldAdmit(name));
    }
    if (!tally.readEach && !endsRefused(chunk, end) && launcherProcess.reader.sameAsLatest(name, chunk, start, end)) {
      let counted = tally.readNow ? undefined : tally;
      // Of a name shown only when raised by program code, one raised elsewhere (its bytes say) is hidden.
      if (tally.elsewhere && !launcherProcess.reader.raisedByProgramCode(name, chunk, start, end)) counted = tally.elsewhere;
      if (counted) {
        if (counted.count++ === 0) launcherProcess.counted.push(counted);
        return;
      }
    }
    this.readRecord(launcherProcess, tally, chunk, start, end);
  }

  /** Whether every record named `name` of this process is read one by one (see onRecord). */
  private readsEach(launcherProcess: LauncherProcess, name: string): boolean {
    return (
      launcherProcess.stepping.size > 0 ||
      name.startsWith('cpython.run_') ||
      this.stopsOn(name) ||
      (this.options.readEach?.(name) ?? false)
    );
  }

  /** Whether records named `name` are shown live (see EngineOptions.liveEvents). */
  private visibility(name: string): DefaultVisibility {
    return this.options.liveEvents === false ? 'hidden' : this.display.visibility(name);
  }

  private readRecord(launcherProcess: LauncherProcess, tally: NameTally, chunk: Buffer, start: number, end: number): void {
    // Counted records first: the counts stay in the order the records came in.
    if (launcherProcess.counted.length > 0) this.reportCounted(launcherProcess);
    const name = tally.name;
    this.countRecords(name, 1);
    let record: ReceivedRecord;
    try {
      record = launcherProcess.reader.read(name, chunk, start, end);
    } catch (err) {
      this.emit('notice', `Process ${launcherProcess.pid} sent a malformed ${name} record: ${(err as Error).message}`);
      return;
    }
    launcherProcess.latest.set(record.tid, record);
    this.emit('record', record);
    this.noteThread(launcherProcess, record.tid, record.thread);
    const denied = record.denied;
    if (launcherProcess.main && !this.started.settled && name.startsWith('cpython.run_')) {
      if (denied) this.startFailed(`${denied} refused to start the program: ${eventSummary(record.record)}`);
      else this.started.resolve();
    }
    const shown = this.options.liveEvents !== false && (denied !== undefined || this.display.showsRecord(name, record));
    if (!shown) return;
    if (this.flood.admit(name)) {
      this.shownCount++;
      this.emit('auditEvent', record.record);
    } else {
      // Flood control shows none of them until the next chunk: they are counted.
      tally.readNow = tally.readEach;
    }
  }

  /** A run of records: the log gets their bytes as they came; the counted ones are reported. */
  private onLines(launcherProcess: LauncherProcess, chunk: Buffer, start: number, end: number, count: number): void {
    if (this.writer && !this.writer.writeLines(chunk, start, end, count) && !this.readingPaused) this.pauseReading(this.writer);
    if (launcherProcess.counted.length > 0) this.reportCounted(launcherProcess);
  }

  private countRecords(name: string, count: number): void {
    this.recordCount += count;
    this.eventCounts.set(name, (this.eventCounts.get(name) ?? 0) + count);
  }

  /** The records counted since the last report, by name in the order of each name's first one. */
  private reportCounted(launcherProcess: LauncherProcess): void {
    const { pid, ppid } = launcherProcess;
    for (const tally of launcherProcess.counted) {
      const count = tally.count;
      tally.count = 0;
      this.countRecords(tally.name, count);
      // Not read, though shown by name: flood control would have held them back.
      if (tally.shown) this.flood.holdBack(tally.name, count);
      this.emit('recordsCounted', { pid, ppid, name: tally.name, count } satisfies CountedRecords);
    }
    launcherProcess.counted = [];
  }

  private onControl(launcherProcess: LauncherProcess, msg: ControlMessage): void {
    const m = msg as Record<string, any>;
    switch (msg.type) {
      case 'stopped': {
        // Stopped during start-up (a .pth file's code, say): Python runs, so the launch has succeeded.
        if (launcherProcess.main) this.started.resolve();
        const threadId = m.threadId as number;
        launcherProcess.stoppedThreads.add(threadId);
        if (launcherProcess.stepping.delete(threadId)) this.readEpoch++;
        this.noteThread(launcherProcess, threadId, null);
        const latest = launcherProcess.latest.get(threadId);
        this.emit('stopped', {
          reason: m.reason,
          threadId,
          pid: launcherProcess.pid,
          breakpointId: m.breakpointId,
          record: latest !== undefined && latest.record.seq === m.seq ? latest.record : undefined,
          description: m.description,
        } satisfies StopInfo);
        break;
      }
      case 'log':
        if (this.flood.admit(m.breakpointId)) {
          this.emit('logpoint', { breakpointId: m.breakpointId, message: m.message, file: m.file, line: m.line });
        }
        break;
      case 'prompt': {
        const id = this.nextPromptId++;
        this.prompts.set(id, { process: launcherProcess, remoteId: m.id });
        this.emit('prompt', { id, event: m.event, target: m.target, pid: m.pid, tid: m.tid } satisfies PromptInfo);
        break;
      }
      case 'breakpointError':
        this.emit('breakpointError', m.id, m.message);
        break;
      case 'response':
        launcherProcess.settle(m);
        break;
      case 'error':
        this.emit('notice', `The launcher (process ${launcherProcess.pid}) refused a message: ${m.message}`);
        break;
    }
  }

  private onEnd(launcherProcess: LauncherProcess): void {
    launcherProcess.ended = true;
    launcherProcess.failRequests();
    this.processes.delete(launcherProcess);
    this.references.forget(launcherProcess);
    for (const [id, prompt] of this.prompts) if (prompt.process === launcherProcess) this.prompts.delete(id);
    for (const thread of [...this.threads.values()]) {
      if (thread.process !== launcherProcess) continue;
      this.threads.delete(thread.id);
      this.emit('threadExited', thread.id);
    }
    const { pid, ppid } = launcherProcess;
    this.emit('processEnded', { pid, ppid, exitStatus: launcherProcess.connection.exitStatus } satisfies ProcessEnd);
    // With a process handle, its exit tells why (stderr, status); in a terminal the channel is all there is.
    if (launcherProcess.main && !this.child) {
      this.startFailed(
        launcherProcess.connection.rejectReason ?? 'The program ended before it started running: see the terminal.',
      );
    }
    this.finishIfOver();
  }

  private noteThread(launcherProcess: LauncherProcess, tid: number, name: string | null): void {
    const known = this.threads.get(tid);
    if (known) {
      if (name !== null && known.name !== name) known.name = threadLabel(launcherProcess, tid, name);
      return;
    }
    if (this.threads.size >= MAX_THREADS) return;
    const thread = { id: tid, name: threadLabel(launcherProcess, tid, name), process: launcherProcess };
    this.threads.set(tid, thread);
    this.emit('threadStarted', { id: thread.id, name: thread.name });
  }

  private resumeThread(launcherProcess: LauncherProcess, threadId: number, action: ResumeAction): void {
    launcherProcess.stoppedThreads.delete(threadId);
    if (launcherProcess.stoppedThreads.size === 0) this.references.forget(launcherProcess);
    if (action === 'step') {
      // It stops on its next record, whichever: every record of the process is read until then.
      launcherProcess.stepping.add(threadId);
      this.readEpoch++;
    }
    launcherProcess.send({ type: 'continue', threadId, action });
  }

  private reportHeldBack(): void {
    const bytes = this.outputBudget.takeHeldBack();
    if (bytes > 0) {
      this.emit(
        'notice',
        `… ${(bytes / 1e6).toFixed(1)} MB of the program's output not shown (the Debug Console shows 1 MB, then 256 KB a second)`,
      );
    }
    for (const { source, count } of this.flood.takeHeldBack()) {
      this.emit(
        'heldBack',
        typeof source === 'number'
          ? { kind: 'logpoint', breakpointId: source, count }
          : { kind: 'event', name: source, count },
      );
    }
  }

  /** The JSONL file is behind: stop reading until what it holds is written (the launcher waits meanwhile). */
  private pauseReading(writer: JsonlWriter): void {
    this.readingPaused = true;
    for (const launcherProcess of this.processes) launcherProcess.connection.pause();
    // Not the writer's 'drain', which never comes when the file stream took the batch that crossed the
    // high-water mark without complaint; flush() always settles.
    const resume = () => this.resumeReading();
    writer.flush().then(resume, resume);
  }

  private resumeReading(): void {
    this.readingPaused = false;
    for (const launcherProcess of this.processes) launcherProcess.connection.resume();
  }
}

/** How one process's records of one event name are read (see Engine.onRecord). */
interface NameTally {
  readonly name: string;
  /**
   * Shown by the display filter by name (with `elsewhere`: when raised by program code): what flood
   * control does not show is held back.
   */
  readonly shown: boolean;
  /** The Engine.readEpoch of the decisions below. */
  epoch: number;
  /** Every record is read. */
  readEach: boolean;
  /** Records are read for now (readEach, or flood control would show one). */
  readNow: boolean;
  /** Records counted, not read, since the last report. */
  count: number;
  /**
   * For a name shown only when raised by program code: the tally of its records raised elsewhere
   * (hidden); this one's are those raised by program code.
   */
  elsewhere?: NameTally;
}

function newTally(name: string, shown: boolean): NameTally {
  return { name, shown, epoch: -1, readEach: false, readNow: false, count: 0 };
}

/** One connected process: its channel, the requests it has yet to answer, its stopped threads. */
class LauncherProcess {
  /** The latest record read of each thread: what a stop is about. */
  readonly latest = new Map<number, ReceivedRecord>();
  readonly reader = new RecordReader();
  readonly stoppedThreads = new Set<number>();
  /** Threads resumed to stop at their next event. */
  readonly stepping = new Set<number>();
  /** Per event name, how its records are read; the latest name's. */
  readonly tallies = new Map<string, NameTally>();
  lastTally: NameTally | undefined;
  /** The tallies with records counted since the last report, in the order of their first one. */
  counted: NameTally[] = [];
  ended = false;
  private nextRequestId = 1;
  private readonly pending = new Map<number, Deferred<Record<string, unknown>>>();

  constructor(
    readonly connection: ChannelConnection,
    readonly pid: number,
    readonly ppid: number,
    /** The program the session launched (or attached to), not a process it started. */
    readonly main: boolean,
  ) {}

  send(msg: object): void {
    this.connection.send(msg);
  }

  addTally(name: string, visibility: DefaultVisibility): NameTally {
    const tally = newTally(name, visibility !== 'hidden');
    if (visibility === 'shownWhenRaisedByProgramCode') tally.elsewhere = newTally(name, false);
    this.tallies.set(name, tally);
    return tally;
  }

  request(command: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.ended) return Promise.reject(new Error(`Process ${this.pid} has ended.`));
    const id = this.nextRequestId++;
    const answer = new Deferred<Record<string, unknown>>();
    this.pending.set(id, answer);
    this.send({ type: 'request', id, command, arguments: args });
    return answer.promise;
  }

  settle(msg: Record<string, any>): void {
    const answer = this.pending.get(msg.id);
    if (!answer) return;
    this.pending.delete(msg.id);
    if (msg.success) answer.resolve((msg.body ?? {}) as Record<string, unknown>);
    else answer.reject(new Error(String(msg.message ?? 'the launcher could not answer')));
  }

  failRequests(): void {
    for (const answer of this.pending.values()) answer.reject(new Error(`Process ${this.pid} has ended.`));
    this.pending.clear();
  }
}

class Deferred<T> {
  readonly promise: Promise<T>;
  settled = false;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (err: Error) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveFn(value);
  }

  reject(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectFn(err);
  }
}

/** Sends a signal; false when there is no such process (group). */
function kill(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

function threadLabel(launcherProcess: LauncherProcess, tid: number, name: string | null): string {
  const label = name ?? (tid === launcherProcess.pid ? 'MainThread' : `Thread ${tid}`);
  return launcherProcess.main ? label : `${label} (pid ${launcherProcess.pid})`;
}

/** How many run logs a runsDir keeps at most, the newest: as many as the audit lens reads (server/runs.ts). */
export const RUN_LOGS_KEPT = 100;
/** How many bytes of run logs a runsDir keeps at most; the newest log stays whatever its size. */
export const RUN_LOGS_MAX_BYTES = 1024 ** 3;
/** A run log written this recently may be a running session's: never removed. */
export const RUN_LOG_ACTIVE_MS = 60 * 60 * 1000;
/** A run log's name as openRunLog makes it (its time first): nothing else in a runsDir is removed. */
const RUN_LOG_NAME = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z-[\w.-]*-[0-9a-f]{6}\.jsonl$/;

/**
 * Removes the run logs of `dir` past the newest `keep` or past `maxBytes` in all (oldest first, by the
 * time in their names), except those written in the last `activeMs`. Each session copies every record
 * there and calls this as it ends: without it, a day of large runs fills the disk. Resolves with how
 * many it removed.
 */
export async function pruneRunLogs(
  dir: string,
  { keep = RUN_LOGS_KEPT, maxBytes = RUN_LOGS_MAX_BYTES, activeMs = RUN_LOG_ACTIVE_MS, now = Date.now() } = {},
): Promise<number> {
  // Read synchronously: a few microseconds a file, where a promise a file through libuv's thread pool
  // took ~40 each, which every CLI run waited for at its end (~12 ms with 300 logs kept).
  const names = fs.readdirSync(dir).filter((name) => RUN_LOG_NAME.test(name)).sort().reverse();
  const stats = names.map((name) => {
    try {
      return fs.lstatSync(path.join(dir, name));
    } catch {
      return undefined; // gone meanwhile, or not ours to read
    }
  });
  const old: string[] = [];
  let kept = 0;
  let bytes = 0;
  let full = false;
  names.forEach((name, i) => {
    const stat = stats[i];
    if (stat === undefined || !stat.isFile()) return;
    const recent = now - stat.mtimeMs < activeMs;
    // From the first log past the budget on, every older one goes.
    full ||= !recent && (kept >= keep || (kept > 0 && bytes + stat.size > maxBytes));
    if (recent || !full) {
      kept++;
      bytes += stat.size;
    } else {
      old.push(path.join(dir, name));
    }
  });
  const removed = await Promise.all(old.map((file) => fsp.rm(file, { force: true }).then(() => 1, () => 0)));
  return removed.reduce<number>((n, r) => n + r, 0);
}

/** `chosen`, or `<runsDir>/<time>-<program>-<random>.jsonl`, readable by the user only. */
async function openRunLog(plan: ViewPlan, chosen?: string): Promise<JsonlWriter> {
  if (chosen !== undefined) {
    await fsp.mkdir(path.dirname(path.resolve(chosen)), { recursive: true });
    return new JsonlWriter(path.resolve(chosen), { flags: 'w' });
  }
  await fsp.mkdir(plan.runsDir, { recursive: true, mode: 0o700 });
  const time = new Date().toISOString().replace(/[:.]/g, '-');
  const program = path.basename(plan.title).replace(/[^\w.-]+/g, '_');
  const file = path.join(plan.runsDir, `${time}-${program}-${crypto.randomBytes(3).toString('hex')}.jsonl`);
  return new JsonlWriter(file, { flags: 'w' });
}
