// The debug session: translates DAP to the engine and the engine's events to DAP (as
// MockDebugSession does for MockRuntime). It never imports `vscode`: it runs inline in the extension,
// standalone (`node dist/adapter.js`, on stdio or --server=PORT) and under the CLI.
//
// Beyond standard DAP: the custom request `deny` ({threadId}) resumes a stopped thread and makes the
// audited operation raise PermissionError (a `continued` event follows, as clients only assume it for
// their own continue requests); the custom event `spythonRunLog` ({path}) names the JSONL file that
// receives every record of the session, once the launch has succeeded; the custom event `spythonPrompt` ({id, event, target, pid,
// tid}) asks whether an operation matching promptEvents may proceed, answered by the custom request
// `spythonPromptReply` ({id, answer: "allow" | "allowAlways" | "deny"}).

import * as path from 'node:path';
import {
  BreakpointEvent,
  ContinuedEvent,
  DebugSession,
  ExitedEvent,
  InitializedEvent,
  OutputEvent,
  Source,
  StoppedEvent,
  TerminatedEvent,
  ThreadEvent,
} from '@vscode/debugadapter';
import { DebugProtocol } from '@vscode/debugprotocol';
import { BreakpointRegistry, FilterRequest } from './breakpoints';
import { DENIED_CATEGORY, EVENT_CATEGORIES } from './catalog';
import { AttachPlan, LaunchPlan, planAttach, planLaunch } from './config';
import { ChildSessionStarter, Engine, HeldBack, InspectionCommand, PromptAnswer, StopInfo, TerminalStarter } from './engine';
import { AuditRecord, eventLine, eventSite, eventSummary } from './records';
import { thousands } from './thousands';

/** The launcher: dist/bin/spython beside the bundle (dist/adapter.js), unless SPYTHON_LAUNCHER says otherwise. */
const LAUNCHER = process.env.SPYTHON_LAUNCHER ?? path.join(__dirname, 'bin', 'spython');
/** How long the editor may take to open a terminal for the program. */
const RUN_IN_TERMINAL_TIMEOUT_MS = 15_000;
/** How long the editor may take to answer startDebugging (the engine also bounds the attach itself). */
const START_DEBUGGING_TIMEOUT_MS = 15_000;
/** Event names listed in the closing summary. */
const SUMMARY_TOP_EVENTS = 8;
const PROMPT_ANSWERS: readonly PromptAnswer[] = ['allow', 'allowAlways', 'deny'];
const LINE_BREAKPOINT_MESSAGE =
  'SPython Debug stops on audit events, not on lines: add a function breakpoint named after an event ' +
  '(e.g. socket.connect, or SPython: Add Audit Event Breakpoint…); for line breakpoints use the Python debugger.'

/** Error ids of failed responses. */
const enum ErrorId {
  Launch = 1001,
  Request = 1002,
}

export class SPythonDebugSession extends DebugSession {
  private engine: Engine | undefined;
  private readonly breakpoints = new BreakpointRegistry();
  private configurationIsDone = false;
  private clientRunsInTerminal = false;
  private clientStartsDebugging = false;

  constructor() {
    super();
    this.setDebuggerLinesStartAt1(true);
    this.setDebuggerColumnsStartAt1(true);
  }

  protected initializeRequest(
    response: DebugProtocol.InitializeResponse,
    args: DebugProtocol.InitializeRequestArguments,
  ): void {
    this.clientRunsInTerminal = args.supportsRunInTerminalRequest === true;
    this.clientStartsDebugging = args.supportsStartDebuggingRequest === true;
    response.body = {
      supportsConfigurationDoneRequest: true,
      supportsFunctionBreakpoints: true,
      supportsConditionalBreakpoints: true,
      supportsHitConditionalBreakpoints: true,
      supportsLogPoints: true,
      supportsExceptionFilterOptions: true,
      supportsTerminateRequest: true,
      supportsEvaluateForHovers: true,
      exceptionBreakpointFilters: EVENT_CATEGORIES.map((category) => ({
        filter: category.id,
        label: category.label,
        description: category.description,
        default: false,
        supportsCondition: category.id !== DENIED_CATEGORY,
        conditionDescription: 'A Python expression over `event` and `args`, e.g. args[0].startswith("/etc")',
      })),
    };
    this.sendResponse(response);
    this.sendEvent(new InitializedEvent());
  }

  protected async launchRequest(response: DebugProtocol.LaunchResponse, args: DebugProtocol.LaunchRequestArguments) {
    let plan: LaunchPlan;
    try {
      plan = planLaunch(args);
    } catch (err) {
      this.fail(response, ErrorId.Launch, err, true);
      return;
    }
    const engine = this.newEngine(plan, {
      startInTerminal: this.clientRunsInTerminal ? this.startInTerminal : undefined,
      startChildSession:
        plan.launcherConfig.subProcess && this.clientStartsDebugging ? this.childSessionStarter(args, plan) : undefined,
    });
    try {
      await engine.start(plan);
      this.announceRunLog(engine);
      this.sendResponse(response);
    } catch (err) {
      this.fail(response, ErrorId.Launch, err, true);
    }
  }

  /** Only child sessions attach: to a process another session's program started (subProcess). */
  protected async attachRequest(response: DebugProtocol.AttachResponse, args: DebugProtocol.AttachRequestArguments) {
    let plan: AttachPlan;
    try {
      plan = planAttach(args);
    } catch (err) {
      this.fail(response, ErrorId.Launch, err, true);
      return;
    }
    const engine = this.newEngine(plan, {});
    try {
      await engine.attach(plan.target, plan.view);
      this.announceRunLog(engine);
      this.sendResponse(response);
    } catch (err) {
      this.fail(response, ErrorId.Launch, err, true);
    }
  }

  private announceRunLog(engine: Engine): void {
    if (engine.runLog) this.sendEvent(new CustomEvent('spythonRunLog', { path: engine.runLog }));
  }

  private newEngine(plan: LaunchPlan | AttachPlan, options: Omit<ConstructorParameters<typeof Engine>[0], 'launcher'>): Engine {
    for (const problem of this.breakpoints.setLaunchBreakpoints(plan.breakOnEvents)) this.console(problem);
    const engine = new Engine({ launcher: LAUNCHER, ...options });
    this.engine = engine;
    this.listenTo(engine);
    engine.setBreakpoints(this.breakpoints.entries(), this.breakpoints.breakOnDenied);
    if (this.configurationIsDone) engine.configurationDone();
    return engine;
  }

  /**
   * Each process the program starts gets a child session (DAP startDebugging): an `attach` to the
   * process's relay, with this launch's display attributes and event breakpoints.
   */
  private childSessionStarter(args: DebugProtocol.LaunchRequestArguments, plan: LaunchPlan): ChildSessionStarter {
    const launch = args as Record<string, unknown>;
    return (target) =>
      new Promise<void>((resolve, reject) => {
        const configuration = {
          type: 'spython',
          request: 'attach',
          name: `python-${target.pid} (child of ${target.ppid})`,
          lifecycleManagedByParent: true,
          __spythonChild: target,
          breakOnEvents: launch.breakOnEvents,
          showEvents: plan.showEvents,
          hideEvents: plan.hideEvents,
          runsDir: plan.runsDir,
        };
        this.sendRequest('startDebugging', { request: 'attach', configuration }, START_DEBUGGING_TIMEOUT_MS, (answer) =>
          answer.success ? resolve() : reject(new Error(`the editor did not open a child session (${answer.message})`)),
        );
      });
  }

  protected configurationDoneRequest(response: DebugProtocol.ConfigurationDoneResponse): void {
    this.configurationIsDone = true;
    this.engine?.configurationDone();
    this.sendResponse(response);
  }

  protected setFunctionBreakPointsRequest(
    response: DebugProtocol.SetFunctionBreakpointsResponse,
    args: DebugProtocol.SetFunctionBreakpointsArguments,
  ): void {
    const states = this.breakpoints.setFunctionBreakpoints(args.breakpoints);
    response.body = { breakpoints: states };
    this.pushBreakpoints();
    this.sendResponse(response);
  }

  /** Lines are not where this debugger stops: each line breakpoint is answered unverified, saying why. */
  protected setBreakPointsRequest(
    response: DebugProtocol.SetBreakpointsResponse,
    args: DebugProtocol.SetBreakpointsArguments,
  ): void {
    response.body = {
      breakpoints: (args.breakpoints ?? []).map((bp) => ({ verified: false, line: bp.line, message: LINE_BREAKPOINT_MESSAGE })),
    };
    this.sendResponse(response);
  }

  protected setExceptionBreakPointsRequest(
    response: DebugProtocol.SetExceptionBreakpointsResponse,
    args: DebugProtocol.SetExceptionBreakpointsArguments,
  ): void {
    const filters: FilterRequest[] = (args.filterOptions ?? []).map((o) => ({ filterId: o.filterId, condition: o.condition }));
    for (const id of args.filters) if (!filters.some((f) => f.filterId === id)) filters.push({ filterId: id });
    this.answer(response, () => {
      this.breakpoints.setFilters(filters);
      response.body = { breakpoints: filters.map(() => ({ verified: true })) };
      this.pushBreakpoints();
    });
  }

  protected threadsRequest(response: DebugProtocol.ThreadsResponse): void {
    this.answer(response, async () => {
      response.body = { threads: this.engine ? await this.engine.listThreads() : [] };
    });
  }

  protected stackTraceRequest(response: DebugProtocol.StackTraceResponse, args: DebugProtocol.StackTraceArguments): void {
    this.answer(response, async () => {
      const body = (await this.running().inspect('stackTrace', { ...args })) as DebugProtocol.StackTraceResponse['body'];
      for (const frame of body.stackFrames ?? []) {
        frame.line = this.convertDebuggerLineToClient(frame.line);
        frame.column = this.convertDebuggerColumnToClient(frame.column);
        // `<frozen importlib._bootstrap>`, `<string>`: nothing the editor could open.
        if (frame.source?.path !== undefined && !path.isAbsolute(frame.source.path)) {
          frame.source = { name: frame.source.path, presentationHint: 'deemphasize' };
        }
      }
      response.body = body;
    });
  }

  protected scopesRequest(response: DebugProtocol.ScopesResponse, args: DebugProtocol.ScopesArguments): void {
    this.inspect(response, 'scopes', args);
  }

  protected variablesRequest(response: DebugProtocol.VariablesResponse, args: DebugProtocol.VariablesArguments): void {
    this.inspect(response, 'variables', args);
  }

  protected evaluateRequest(response: DebugProtocol.EvaluateResponse, args: DebugProtocol.EvaluateArguments): void {
    this.inspect(response, 'evaluate', args);
  }

  protected continueRequest(response: DebugProtocol.ContinueResponse, args: DebugProtocol.ContinueArguments): void {
    this.answer(response, () => {
      this.running().resume(args.threadId, 'allow');
      response.body = { allThreadsContinued: true };
    });
  }

  /** next, stepIn and stepOut all run to the thread's next audit event. */
  protected nextRequest(response: DebugProtocol.NextResponse, args: DebugProtocol.NextArguments): void {
    this.answer(response, () => this.running().resume(args.threadId, 'step'));
  }

  protected stepInRequest(response: DebugProtocol.StepInResponse, args: DebugProtocol.StepInArguments): void {
    this.answer(response, () => this.running().resume(args.threadId, 'step'));
  }

  protected stepOutRequest(response: DebugProtocol.StepOutResponse, args: DebugProtocol.StepOutArguments): void {
    this.answer(response, () => this.running().resume(args.threadId, 'step'));
  }

  protected pauseRequest(response: DebugProtocol.PauseResponse, args: DebugProtocol.PauseArguments): void {
    this.answer(response, () => this.running().pause(args.threadId));
  }

  protected customRequest(command: string, response: DebugProtocol.Response, args: any): void {
    switch (command) {
      case 'deny': {
        const threadId = Number(args?.threadId);
        this.answer(response, () => this.running().resume(threadId, 'deny'), () => this.sendEvent(new ContinuedEvent(threadId, true)));
        return;
      }
      case 'spythonPromptReply':
        this.answer(response, () => {
          if (!PROMPT_ANSWERS.includes(args?.answer)) {
            throw new Error(`answer must be one of ${PROMPT_ANSWERS.join(', ')}`);
          }
          this.running().answerPrompt(Number(args.id), args.answer);
        });
        return;
      default:
        super.customRequest(command, response, args);
    }
  }

  protected terminateRequest(response: DebugProtocol.TerminateResponse): void {
    this.sendResponse(response);
    void this.engine?.terminate();
  }

  protected async disconnectRequest(
    response: DebugProtocol.DisconnectResponse,
    args: DebugProtocol.DisconnectArguments,
    request?: DebugProtocol.Request,
  ) {
    // Launched, never attached: the program goes with the session.
    await this.engine?.terminate();
    super.disconnectRequest(response, args, request);
  }

  /** The client went away, or the adapter got SIGTERM: the program goes too. */
  shutdown(): void {
    if (this.engine) void this.engine.terminate().then(() => super.shutdown());
    else super.shutdown();
  }

  // --- engine events ------------------------------------------------------------------------------

  private listenTo(engine: Engine): void {
    engine.on('programOutput', (category, text) => this.sendEvent(new OutputEvent(text, category)));
    engine.on('auditEvent', (record) => {
      // A process the program started, shown here (no child session): its lines say which it is.
      const origin = engine.mainPid !== undefined && record.pid !== engine.mainPid ? `[pid ${record.pid}] ` : '';
      const site = eventSite(record);
      this.sendEvent(this.located(origin + eventLine(record), site.file, site.line, record));
    });
    engine.on('childSession', (target) =>
      this.console(`Process ${target.pid} (child of ${target.ppid}) runs in its own debug session, python-${target.pid}.`),
    );
    engine.on('heldBack', (heldBack) => this.console(heldBackLine(heldBack, this.breakpoints)));
    engine.on('logpoint', (message) => this.sendEvent(this.located(message.message, message.file, message.line)));
    engine.on('stopped', (stop) => this.sendEvent(this.stoppedEvent(stop)));
    engine.on('threadStarted', (thread) => this.sendEvent(new ThreadEvent('started', thread.id)));
    engine.on('threadExited', (threadId) => this.sendEvent(new ThreadEvent('exited', threadId)));
    engine.on('prompt', (prompt) => {
      this.console(`${prompt.event} ${prompt.target} is waiting: may it proceed? (allow, allow always or deny)`);
      this.sendEvent(new CustomEvent('spythonPrompt', prompt));
    });
    engine.on('breakpointError', (id, message) => {
      const origin = this.breakpoints.origin(id);
      if (origin?.kind === 'function') {
        this.sendEvent(new BreakpointEvent('changed', { id, verified: false, message }));
      }
      if (origin === undefined) {
        this.console(`The launcher refused the breakpoints: ${message}`);
        return;
      }
      this.console(`${origin.kind === 'filter' ? origin.category.label : origin.event}: ${message} (ignored from now on)`);
    });
    engine.on('notice', (text) => this.console(text));
    engine.on('exited', (exitCode) => {
      this.console(closingSummary(engine));
      if (exitCode !== undefined) this.sendEvent(new ExitedEvent(exitCode));
    });
    engine.on('ended', () => this.sendEvent(new TerminatedEvent()));
  }

  private stoppedEvent(stop: StopInfo): DebugProtocol.StoppedEvent {
    const origin = stop.breakpointId !== undefined ? this.breakpoints.origin(stop.breakpointId) : undefined;
    const reason = stop.reason === 'breakpoint' ? 'function breakpoint' : stop.reason;
    const event = new StoppedEvent(reason, stop.threadId) as DebugProtocol.StoppedEvent;
    event.body.description = stopDescription(stop);
    event.body.allThreadsStopped = true;
    if (origin?.kind === 'function') event.body.hitBreakpointIds = [stop.breakpointId!];
    if (stop.reason === 'exception') {
      event.body.text =
        origin?.kind === 'filter'
          ? origin.category.label
          : stop.record?.denied
            ? `Denied by ${stop.record.denied}`
            : 'Denied';
    }
    return event;
  }

  /** A console line that points at the Python line it is about, when that is a file. */
  private located(
    text: string,
    file: string | undefined,
    line: number | undefined,
    data?: AuditRecord,
  ): DebugProtocol.OutputEvent {
    const event = new OutputEvent(text + '\n', 'console', data) as DebugProtocol.OutputEvent;
    if (file !== undefined && path.isAbsolute(file)) {
      event.body.source = new Source(path.basename(file), file);
      event.body.line = this.convertDebuggerLineToClient(line ?? 1);
    }
    return event;
  }

  private console(text: string): void {
    this.sendEvent(new OutputEvent(text + '\n', 'console'));
  }

  private pushBreakpoints(): void {
    this.engine?.setBreakpoints(this.breakpoints.entries(), this.breakpoints.breakOnDenied);
  }

  private running(): Engine {
    if (!this.engine) throw new Error('No program is running.');
    return this.engine;
  }

  private inspect(response: DebugProtocol.Response, command: InspectionCommand, args: object): void {
    this.answer(response, async () => {
      response.body = await this.running().inspect(command, { ...args });
    });
  }

  /** Runs a request's work and answers it: success, or an error response with the error's message. */
  /** Sends `response` once `work` is done (or fails with its error), then runs `after` on success. */
  private answer(response: DebugProtocol.Response, work: () => void | Promise<void>, after?: () => void): void {
    Promise.resolve()
      .then(work)
      .then(
        () => {
          this.sendResponse(response);
          after?.();
        },
        (err) => this.fail(response, ErrorId.Request, err, false),
      );
  }

  private fail(response: DebugProtocol.Response, id: ErrorId, err: unknown, showUser: boolean): void {
    const format = err instanceof Error ? err.message : String(err);
    this.sendErrorResponse(response, { id, format, showUser });
  }

  /**
   * Runs the launcher in the editor's terminal; resolves with the pid the editor reports (the launcher,
   * or the shell it runs under), which roots the channel's peer check.
   */
  private readonly startInTerminal: TerminalStarter = (request) =>
    new Promise<number | undefined>((resolve, reject) => {
      this.runInTerminalRequest(
        { kind: request.kind, title: 'SPython Debug', cwd: request.cwd, args: request.args, env: request.env },
        RUN_IN_TERMINAL_TIMEOUT_MS,
        (answer: DebugProtocol.RunInTerminalResponse) =>
          answer.success
            ? resolve(answer.body?.processId ?? answer.body?.shellProcessId)
            : reject(new Error(`The editor could not run the program in a terminal: ${answer.message}`)),
      );
    });
}

/** The custom events: `spythonPrompt` and `spythonRunLog` (see the top of this file). */
class CustomEvent implements DebugProtocol.Event {
  readonly seq = 0;
  readonly type = 'event';
  constructor(
    readonly event: 'spythonPrompt' | 'spythonRunLog',
    readonly body: object,
  ) {}
}

/** 'Paused on socket.connect ('127.0.0.1', 8080)'. */
function stopDescription(stop: StopInfo): string {
  if (stop.record) {
    const denied = stop.record.denied ? ` (denied by ${stop.record.denied})` : '';
    return `Paused on ${eventSummary(stop.record)}${denied}`;
  }
  if (stop.description) return stop.description;
  return stop.reason === 'entry' ? 'Paused on entry' : 'Paused';
}

function heldBackLine(heldBack: HeldBack, breakpoints: BreakpointRegistry): string {
  const count = thousands(heldBack.count);
  if (heldBack.kind === 'event') return `… ${count} more \`${heldBack.name}\` events (all in the audit log)`;
  const origin = breakpoints.origin(heldBack.breakpointId);
  const on = origin && origin.kind !== 'filter' ? ` on \`${origin.event}\`` : '';
  return `… ${count} more messages from the logpoint${on}`;
}

/**
 * 'Audit events: 1,234 (120 shown here); most frequent: open 500, import 300…; 2 processes in child
 * sessions; every record: FILE'.
 */
function closingSummary(engine: Engine): string {
  const n = thousands;
  const top = [...engine.eventCounts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, SUMMARY_TOP_EVENTS)
    .map(([name, count]) => `${name} ${n(count)}`);
  const frequent = top.length > 0 ? `; most frequent: ${top.join(', ')}` : '';
  const log = engine.runLog ? `; every record: ${engine.runLog}` : '';
  const children = engine.childSessionCount;
  const elsewhere = children > 0 ? `; ${n(children)} process${children === 1 ? '' : 'es'} in child sessions` : '';
  return `Audit events: ${n(engine.recordCount)} (${n(engine.shownCount)} shown here)${frequent}${elsewhere}${log}`;
}
