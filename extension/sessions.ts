// The adapter, run inline, and what the extension follows of each session: the session's run log (the
// JSONL copy of every record) read into an AuditModel as it grows, whether a thread is stopped on an
// audit event (for the Deny action), the launcher's verifyImports warnings (for the Problems panel).

import * as vscode from 'vscode';
import { DebugProtocol } from '@vscode/debugprotocol';
import { SPythonDebugSession } from '../adapter/session';
import { AuditModel, RunLogReader } from './auditModel';
import { DEBUG_TYPE } from './configuration';
import { parseCodeRefusal, parseVerifyWarning } from './present';

/** How often a running session's run log is read. */
const READ_INTERVAL_MS = 250;

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

  constructor(
    readonly session: vscode.DebugSession,
    private readonly manager: SessionManager,
  ) {
    const config = session.configuration;
    this.model = new AuditModel({
      showEvents: Array.isArray(config.showEvents) ? config.showEvents : [],
      hideEvents: Array.isArray(config.hideEvents) ? config.hideEvents : [],
    });
  }

  get verificationFailures(): number {
    return this.model.codeRefused + this.verifyWarnings;
  }

  /** The adapter named the session's run log (its `spythonRunLog` event): read it as it grows. */
  readRunLog(log: string): void {
    if (this.reader) return;
    this.runLog = log;
    this.reader = new RunLogReader(log, (line) => {
      this.model.addLine(line);
      const refusal = parseCodeRefusal(line);
      if (refusal) this.manager.runProblem(refusal.file, refusal.message, vscode.DiagnosticSeverity.Error);
    });
    this.timer = setInterval(() => void this.reader?.read(), READ_INTERVAL_MS);
    void this.reader.read();
  }

  /** Program output: the launcher's verifyImports warnings go to the Problems panel. */
  noteOutput(category: string | undefined, text: string): void {
    if (category !== 'stderr') return;
    const lines = (this.stderrTail + text).split('\n');
    this.stderrTail = lines.pop() ?? '';
    if (this.stderrTail.length > 65536) this.stderrTail = '';
    for (const line of lines) {
      const warning = parseVerifyWarning(line);
      if (!warning) continue;
      this.verifyWarnings++;
      this.manager.runProblem(
        warning.file,
        `verifyImports (warn) would refuse this file: ${warning.reason}${warning.detail ? `: ${warning.detail}` : ''}`,
        vscode.DiagnosticSeverity.Warning,
      );
    }
  }

  /** The session is over: read what is left, then stop. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.stoppedOnEvent = undefined;
    this.lastStoppedThread = undefined;
    clearInterval(this.timer);
    await this.reader?.read();
    await this.reader?.close();
  }
}

/** Every spython session, the adapter factory and tracker behind them, and the "current" one the views show. */
export class SessionManager implements vscode.DebugAdapterDescriptorFactory, vscode.DebugAdapterTrackerFactory {
  private readonly sessions = new Map<string, TrackedSession>();
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
        // A child session (subProcess) joins its program's run: the views stay on the program's
        // session until the user focuses the child.
        if (s.parentSession?.type === DEBUG_TYPE) return;
        this.currentId = s.id;
        this.verifyDiagnostics.clear();
        this.changed();
      }),
      vscode.debug.onDidTerminateDebugSession((s) => {
        const tracked = this.sessions.get(s.id);
        if (!tracked) return;
        void tracked.end().then(() => this.changed());
        this.changed();
      }),
      vscode.debug.onDidChangeActiveDebugSession((s) => {
        if (s && this.sessions.has(s.id)) this.currentId = s.id;
        this.changed();
      }),
    );
  }

  createDebugAdapterDescriptor(): vscode.DebugAdapterDescriptor {
    return new vscode.DebugAdapterInlineImplementation(new SPythonDebugSession());
  }

  createDebugAdapterTracker(session: vscode.DebugSession): vscode.DebugAdapterTracker {
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
          case 'spythonRunLog': {
            tracked().readRunLog(String(e.body?.path));
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

  /** A code file the run's verifyImports refused (or would refuse, in warn mode): a problem on the file itself. */
  runProblem(file: string, message: string, severity: vscode.DiagnosticSeverity): void {
    const uri = vscode.Uri.file(file);
    const existing = this.verifyDiagnostics.get(uri) ?? [];
    if (existing.some((d) => d.message === message)) return;
    const diagnostic = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), message, severity);
    diagnostic.source = 'SPython Debug';
    this.verifyDiagnostics.set(uri, [...existing, diagnostic]);
  }
}
