// The adapter, run inline, and what the extension follows of each session: the session's run log (the
// JSONL copy of every record) read into an AuditModel as it grows, whether a thread is stopped on an
// audit event (for the Deny action), the launcher's verifyImports warnings (for the Problems panel).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DebugProtocol } from '@vscode/debugprotocol';
import { SPythonDebugSession } from '../adapter/session';
import { AuditModel, RunLogReader } from './auditModel';
import { DEBUG_TYPE } from './configuration';
import { parseVerifyWarning } from './present';

/** How often a running session's run log is read. */
const READ_INTERVAL_MS = 250;

/**
 * The adapter as VS Code talks to it (DebugAdapterInlineImplementation), with one addition: when the
 * custom `deny` request succeeds, VS Code is told the thread continued, as it is told for its own
 * continue request (a custom request alone leaves the UI showing a stopped thread).
 */
export class InlineAdapter implements vscode.DebugAdapter {
  private readonly emitter = new vscode.EventEmitter<vscode.DebugProtocolMessage>();
  readonly onDidSendMessage = this.emitter.event;
  private readonly denyRequests = new Map<number, number>();
  private readonly subscription: { dispose(): unknown };

  constructor(readonly session: SPythonDebugSession) {
    this.subscription = session.onDidSendMessage((message) => this.fromAdapter(message as DebugProtocol.ProtocolMessage));
  }

  handleMessage(message: vscode.DebugProtocolMessage): void {
    const m = message as DebugProtocol.Request;
    if (m.type === 'request' && m.command === 'deny') this.denyRequests.set(m.seq, Number(m.arguments?.threadId));
    this.session.handleMessage(m);
  }

  private fromAdapter(message: DebugProtocol.ProtocolMessage): void {
    this.emitter.fire(message);
    const response = message as DebugProtocol.Response;
    if (response.type !== 'response' || !this.denyRequests.has(response.request_seq)) return;
    const threadId = this.denyRequests.get(response.request_seq)!;
    this.denyRequests.delete(response.request_seq);
    if (!response.success) return;
    const continued: DebugProtocol.ContinuedEvent = {
      seq: 0,
      type: 'event',
      event: 'continued',
      body: { threadId, allThreadsContinued: true },
    };
    this.emitter.fire(continued);
  }

  /** The run log the adapter writes for this session, once the launch has succeeded. */
  get runLog(): string | undefined {
    // The engine is the session's own business; this reads what it exposes (Engine.runLog) without
    // needing the adapter to export more.
    const engine = (this.session as unknown as { engine?: { runLog?: string } }).engine;
    return typeof engine?.runLog === 'string' ? engine.runLog : undefined;
  }

  dispose(): void {
    this.subscription.dispose();
    this.session.dispose();
    this.emitter.dispose();
  }
}

/** What the extension follows of one spython session. */
export class TrackedSession {
  readonly model: AuditModel;
  /** The thread stopped on an audit event, if one is (entry and pause stops are not events). */
  stoppedOnEvent: number | undefined;
  /** Any stopped thread: where the toolbar's Deny applies when nothing more specific is known. */
  lastStoppedThread: number | undefined;
  verifyWarnings = 0;
  ended = false;
  runLog: string | undefined;
  private reader: RunLogReader | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stderrTail = '';
  /** runsDir's files before the launch: the new one is the session's (when the adapter cannot say). */
  private readonly filesBefore: Set<string>;

  constructor(
    readonly session: vscode.DebugSession,
    private readonly manager: SessionManager,
  ) {
    const config = session.configuration;
    this.model = new AuditModel({
      showEvents: Array.isArray(config.showEvents) ? config.showEvents : [],
      hideEvents: Array.isArray(config.hideEvents) ? config.hideEvents : [],
    });
    this.filesBefore = new Set(listJsonl(config.runsDir));
  }

  get verificationFailures(): number {
    return this.model.codeRefused + this.verifyWarnings;
  }

  /** The launch succeeded: find the run log and start reading it. */
  launched(): void {
    const log = this.manager.adapterFor(this.session.id)?.runLog ?? this.guessRunLog();
    if (!log) return;
    this.runLog = log;
    this.reader = new RunLogReader(log, (line) => this.model.addLine(line));
    this.timer = setInterval(() => void this.reader?.read(), READ_INTERVAL_MS);
    void this.reader.read();
  }

  /** The adapter's closing summary names the run log: a fallback when launched() could not tell. */
  noteOutput(category: string | undefined, text: string): void {
    if (!this.runLog && category === 'console') {
      const m = /; every record: (.+\.jsonl)\s*$/.exec(text);
      if (m && fs.existsSync(m[1])) {
        this.runLog = m[1];
        this.reader = new RunLogReader(m[1], (line) => this.model.addLine(line));
        void this.reader.read().then(() => this.manager.changed());
      }
    }
    if (category !== 'stderr') return;
    const lines = (this.stderrTail + text).split('\n');
    this.stderrTail = lines.pop() ?? '';
    if (this.stderrTail.length > 65536) this.stderrTail = '';
    for (const line of lines) {
      const warning = parseVerifyWarning(line);
      if (!warning) continue;
      this.verifyWarnings++;
      this.manager.verifyWarning(warning.file, `verifyImports (warn) would refuse this file: ${warning.reason}${warning.detail ? `: ${warning.detail}` : ''}`);
    }
  }

  /** The session is over: read what is left, then stop. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.stoppedOnEvent = undefined;
    this.lastStoppedThread = undefined;
    clearInterval(this.timer);
    if (!this.reader && !this.runLog) {
      const log = this.guessRunLog();
      if (log) {
        this.runLog = log;
        this.reader = new RunLogReader(log, (line) => this.model.addLine(line));
      }
    }
    await this.reader?.read();
    await this.reader?.close();
  }

  private guessRunLog(): string | undefined {
    const dir = this.session.configuration.runsDir;
    if (typeof dir !== 'string') return undefined;
    const program = typeof this.session.configuration.program === 'string' ? path.basename(this.session.configuration.program) : '';
    const stem = program.replace(/[^\w.-]+/g, '_');
    const fresh = listJsonl(dir)
      .filter((f) => !this.filesBefore.has(f) && (stem === '' || path.basename(f).includes(stem)))
      .map((f) => ({ f, t: fs.statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
      .sort((a, b) => b.t - a.t);
    return fresh[0]?.f;
  }
}

function listJsonl(dir: unknown): string[] {
  if (typeof dir !== 'string') return [];
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.jsonl'))
      .map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

/** Every spython session, the adapter factory and tracker behind them, and the "current" one the views show. */
export class SessionManager implements vscode.DebugAdapterDescriptorFactory, vscode.DebugAdapterTrackerFactory {
  private readonly sessions = new Map<string, TrackedSession>();
  private readonly adapters = new Map<string, InlineAdapter>();
  private currentId: string | undefined;
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  /** A session started, stopped, ended, or the current one changed (model changes are polled). */
  readonly onDidChange = this.changeEmitter.event;
  readonly verifyDiagnostics = vscode.languages.createDiagnosticCollection('spython-run');

  constructor(context: vscode.ExtensionContext) {
    context.subscriptions.push(
      this.changeEmitter,
      this.verifyDiagnostics,
      vscode.debug.onDidStartDebugSession((s) => {
        if (s.type !== DEBUG_TYPE) return;
        this.track(s);
        this.currentId = s.id;
        this.verifyDiagnostics.clear();
        this.changed();
      }),
      vscode.debug.onDidTerminateDebugSession((s) => {
        const tracked = this.sessions.get(s.id);
        if (!tracked) return;
        this.adapters.delete(s.id);
        void tracked.end().then(() => this.changed());
        this.changed();
      }),
      vscode.debug.onDidChangeActiveDebugSession((s) => {
        if (s && this.sessions.has(s.id)) this.currentId = s.id;
        this.changed();
      }),
    );
  }

  createDebugAdapterDescriptor(session: vscode.DebugSession): vscode.DebugAdapterDescriptor {
    const adapter = new InlineAdapter(new SPythonDebugSession());
    this.adapters.set(session.id, adapter);
    return new vscode.DebugAdapterInlineImplementation(adapter);
  }

  createDebugAdapterTracker(session: vscode.DebugSession): vscode.DebugAdapterTracker {
    // Before the adapter writes anything: the runs directory's files now are not this session's.
    this.track(session);
    const tracked = () => this.track(session);
    return {
      onWillReceiveMessage: (message: DebugProtocol.Request) => {
        if (message.type !== 'request') return;
        switch (message.command) {
          case 'continue':
          case 'next':
          case 'stepIn':
          case 'stepOut':
          case 'deny': {
            const t = tracked();
            t.stoppedOnEvent = undefined;
            t.lastStoppedThread = undefined;
            this.changed();
            break;
          }
        }
      },
      onDidSendMessage: (message: DebugProtocol.ProtocolMessage) => {
        if (message.type === 'response') {
          const r = message as DebugProtocol.Response;
          if (r.command === 'launch' && r.success) {
            tracked().launched();
            this.changed();
          }
          return;
        }
        if (message.type !== 'event') return;
        const e = message as DebugProtocol.Event;
        switch (e.event) {
          case 'stopped': {
            const body = (e as DebugProtocol.StoppedEvent).body;
            const t = tracked();
            t.lastStoppedThread = body.threadId;
            t.stoppedOnEvent = body.reason === 'entry' || body.reason === 'pause' ? undefined : body.threadId;
            this.changed();
            break;
          }
          case 'continued': {
            const t = tracked();
            t.stoppedOnEvent = undefined;
            t.lastStoppedThread = undefined;
            this.changed();
            break;
          }
          case 'output': {
            const body = (e as DebugProtocol.OutputEvent).body;
            tracked().noteOutput(body.category, body.output);
            break;
          }
        }
      },
    };
  }

  private track(session: vscode.DebugSession): TrackedSession {
    let tracked = this.sessions.get(session.id);
    if (!tracked) {
      tracked = new TrackedSession(session, this);
      this.sessions.set(session.id, tracked);
      // Keep the last few ended sessions' models around, not all of them.
      const ended = [...this.sessions.values()].filter((s) => s.ended);
      for (const old of ended.slice(0, Math.max(0, ended.length - 4))) this.sessions.delete(old.session.id);
    }
    return tracked;
  }

  adapterFor(id: string): InlineAdapter | undefined {
    return this.adapters.get(id);
  }

  /** The running session with this thread stopped, if any. */
  withStoppedThread(threadId: number): vscode.DebugSession | undefined {
    for (const s of this.sessions.values()) {
      if (!s.ended && (s.stoppedOnEvent === threadId || s.lastStoppedThread === threadId)) return s.session;
    }
    return undefined;
  }

  get(id: string): TrackedSession | undefined {
    return this.sessions.get(id);
  }

  /** The session the views show: the focused spython session, else the latest one. */
  get current(): TrackedSession | undefined {
    return this.currentId !== undefined ? this.sessions.get(this.currentId) : undefined;
  }

  get anyRunning(): boolean {
    return [...this.sessions.values()].some((s) => !s.ended);
  }

  changed(): void {
    this.changeEmitter.fire();
  }

  verifyWarning(file: string, message: string): void {
    const uri = vscode.Uri.file(file);
    const existing = this.verifyDiagnostics.get(uri) ?? [];
    if (existing.some((d) => d.message === message)) return;
    const diagnostic = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), message, vscode.DiagnosticSeverity.Warning);
    diagnostic.source = 'SPython Debug';
    this.verifyDiagnostics.set(uri, [...existing, diagnostic]);
  }
}
