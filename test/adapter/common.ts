// Shared fixtures of the debug adapter tests (test/adapter/*.test.ts). Not a test file itself.
//
// The DAP tests drive the bundled adapter (`node dist/adapter.js`, built by `npm run build`) with
// @vscode/debugadapter-testsupport's DebugClient, and the adapter drives the real launcher on real
// interpreters.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { DebugProtocol } from '@vscode/debugprotocol';
import { CACHE_DIR, tempDir } from '../helpers/fixtures';
import { Interpreter, interpreters, LAUNCHER, launcherBuilt, pythonFor, REPO_ROOT } from '../helpers/interpreters';

export const ADAPTER = path.join(REPO_ROOT, 'dist', 'adapter.js');

/** Skip option for DAP tests when the bundle or the launcher is missing. */
export const NOT_BUILT: { skip?: string } =
  launcherBuilt() && fs.existsSync(ADAPTER) ? {} : { skip: 'not built (npm run build)' };

export { tempDir };

export { pythonFor };

/** The interpreters every DAP scenario runs on. */
export const TARGETS = [8, 12, 13].map((minor) => ({ label: `3.${minor}`, python: pythonFor(minor)?.path }));

/** Skip option for a test that needs an interpreter. */
export function needs(python: string | undefined): { skip?: string } {
  return python ? NOT_BUILT : { skip: 'interpreter not installed' };
}

/** A Python program in a fresh directory; `lineOf(marker)` finds the line holding `# marker`. */
export class Program {
  readonly dir: string;
  readonly file: string;
  private readonly lines: string[];

  constructor(source: string, name = 'prog.py') {
    this.dir = tempDir();
    this.file = path.join(this.dir, name);
    const text = `import os, sys\nHERE = ${JSON.stringify(this.dir)}\n` + source;
    fs.writeFileSync(this.file, text);
    this.lines = text.split('\n');
  }

  lineOf(marker: string): number {
    const i = this.lines.findIndex((line) => line.includes(`# ${marker}`));
    if (i < 0) throw new Error(`no line marked ${marker}`);
    return i + 1;
  }

  /** Launch attributes running this program on `python`, with the session's JSONL copy in `runsDir`. */
  launchArgs(python: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      type: 'spython',
      request: 'launch',
      name: 'test',
      program: this.file,
      python,
      cwd: this.dir,
      runsDir: path.join(this.dir, 'runs'),
      ...extra,
    };
  }

  /** The records of the session's JSONL copy (the only file in runsDir). */
  runRecords(): Array<Record<string, any>> {
    return this.runLog()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  }

  runLog(): string {
    const runs = path.join(this.dir, 'runs');
    const files = fs.readdirSync(runs);
    if (files.length !== 1) throw new Error(`expected one file in ${runs}, found ${files.join(', ')}`);
    return fs.readFileSync(path.join(runs, files[0]), 'utf8');
  }
}

export interface Setup {
  /** DAP's FunctionBreakpoint has no logMessage; the adapter takes one all the same. */
  functionBreakpoints?: Array<DebugProtocol.FunctionBreakpoint & { logMessage?: string }>;
  filterOptions?: DebugProtocol.ExceptionFilterOptions[];
}

/** How long any one awaited event may take before the test fails with what arrived so far. */
const WAIT_MS = 30_000;

/** The time limit of one DAP test (its requests have none of their own). */
export const TEST_TIMEOUT_MS = 90_000;

/**
 * A DebugClient against `node dist/adapter.js` that records everything it receives, so that no event
 * is missed between two awaits.
 */
export class Session {
  readonly dc: DebugClient;
  readonly outputs: Array<DebugProtocol.OutputEvent['body']> = [];
  readonly stops: Array<DebugProtocol.StoppedEvent['body']> = [];
  readonly events: DebugProtocol.Event[] = [];
  exitCode: number | undefined;
  terminated = false;
  private stopsTaken = 0;
  private readonly waiters: Array<() => void> = [];

  private constructor(dc: DebugClient) {
    this.dc = dc;
    for (const name of ['output', 'stopped', 'continued', 'exited', 'terminated', 'thread', 'breakpoint', 'spythonPrompt', 'spythonRunLog']) {
      dc.on(name, (event: DebugProtocol.Event) => {
        this.events.push(event);
        if (name === 'output') this.outputs.push(event.body);
        if (name === 'stopped') this.stops.push(event.body);
        if (name === 'exited') this.exitCode = event.body.exitCode;
        if (name === 'terminated') this.terminated = true;
        for (const wake of this.waiters.splice(0)) wake();
      });
    }
  }

  /** A session with a new adapter process on stdio, or a new connection to an adapter `server`. */
  static async start(server?: AdapterServer): Promise<Session> {
    const dc = new DebugClient('node', ADAPTER, 'spython', { env: ADAPTER_ENV });
    dc.defaultTimeout = WAIT_MS;
    await dc.start(server?.port);
    const session = new Session(dc);
    Session.open.add(session);
    return session;
  }

  private static readonly open = new Set<Session>();

  /**
   * Closes what a timed-out test left open (a DAP request has no time limit), so that the test file
   * can end: use as the file's `after` hook.
   */
  static async closeAll(): Promise<void> {
    await Promise.all(
      [...Session.open].map((session) =>
        Promise.race([session.close(), new Promise((resolve) => setTimeout(resolve, 5000))]).then(() =>
          (session.dc as unknown as { stopAdapter(): void }).stopAdapter(),
        ),
      ),
    );
  }

  /** Starts a session, runs `fn`, and always closes the session. */
  static async with<T>(fn: (session: Session) => Promise<T>): Promise<T> {
    const session = await Session.start();
    try {
      return await fn(session);
    } finally {
      await session.close();
    }
  }

  /**
   * initialize, then breakpoints and configurationDone once `initialized` arrives, and launch.
   * Resolves with the launch response; rejects with the launch error.
   */
  async launch(args: Record<string, unknown>, setup: Setup = {}, initialize: Partial<DebugProtocol.InitializeRequestArguments> = {}) {
    return this.begin('launch', args, setup, initialize);
  }

  /** As launch, with an `attach` request (a child session's). */
  async attach(args: Record<string, unknown>, setup: Setup = {}, initialize: Partial<DebugProtocol.InitializeRequestArguments> = {}) {
    return this.begin('attach', args, setup, initialize);
  }

  private async begin(
    command: 'launch' | 'attach',
    args: Record<string, unknown>,
    setup: Setup,
    initialize: Partial<DebugProtocol.InitializeRequestArguments>,
  ): Promise<DebugProtocol.Response> {
    const configured = this.dc.waitForEvent('initialized').then(async () => {
      if (setup.functionBreakpoints) {
        await this.dc.setFunctionBreakpointsRequest({ breakpoints: setup.functionBreakpoints });
      }
      if (setup.filterOptions) {
        await this.dc.setExceptionBreakpointsRequest({ filters: [], filterOptions: setup.filterOptions });
      }
      await this.dc.configurationDoneRequest();
    });
    await this.dc.initializeRequest({
      adapterID: 'spython',
      linesStartAt1: true,
      columnsStartAt1: true,
      pathFormat: 'path',
      ...initialize,
    });
    const [, response] = await Promise.all([configured, this.dc.send(command, args)]);
    return response;
  }

  /** The next stop not yet taken. */
  async nextStop(): Promise<DebugProtocol.StoppedEvent['body']> {
    await this.waitFor(() => this.stops.length > this.stopsTaken || this.terminated, 'a stopped event');
    if (this.stops.length === this.stopsTaken) throw new Error(`ended without stopping; got:\n${this.transcript()}`);
    return this.stops[this.stopsTaken++];
  }

  /** Waits for the terminated event. */
  async ended(): Promise<void> {
    await this.waitFor(() => this.terminated, 'the terminated event');
  }

  /** Waits until `ready` holds (checked after every event); fails after WAIT_MS with what came so far. */
  waitFor(ready: () => boolean, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(check);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no ${what} within ${WAIT_MS} ms; got:\n${this.transcript()}`));
      }, WAIT_MS);
      const check = () => {
        if (ready()) {
          clearTimeout(timer);
          resolve();
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  /** Console lines (category console), without their newline. */
  consoleLines(): string[] {
    return this.outputs.filter((o) => o.category === 'console').map((o) => o.output.replace(/\n$/, ''));
  }

  /** The program's stdout or stderr as received. */
  text(category: 'stdout' | 'stderr'): string {
    return this.outputs
      .filter((o) => o.category === category)
      .map((o) => o.output)
      .join('');
  }

  /** Output events that carry an event record (body.data). */
  records(): Array<{ output: DebugProtocol.OutputEvent['body']; data: Record<string, any> }> {
    return this.outputs.filter((o) => o.data).map((o) => ({ output: o, data: o.data }));
  }

  /** Answers runInTerminal by running the command here, as a terminal would. */
  serveRunInTerminal(): void {
    this.serveReverseRequest('runInTerminal', async (request) => {
      const args = request as DebugProtocol.RunInTerminalRequestArguments;
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const [key, value] of Object.entries(args.env ?? {})) {
        if (value === null) delete env[key];
        else env[key] = value;
      }
      const child = spawn(args.args[0], args.args.slice(1), { cwd: args.cwd, env, stdio: 'ignore' });
      return { success: true, body: { processId: child.pid } };
    });
  }

  /**
   * Answers the adapter's reverse requests `command` (which DebugClient does not know) with what
   * `answer` resolves to.
   */
  serveReverseRequest(command: string, answer: (args: any) => Promise<{ success: boolean; body?: object; message?: string }>): void {
    const client = this.dc as unknown as {
      dispatch(body: string): void;
      outputStream: NodeJS.WritableStream;
    };
    const dispatch = client.dispatch.bind(client);
    client.dispatch = (body: string) => {
      const message = JSON.parse(body);
      if (message.type !== 'request' || message.command !== command) {
        dispatch(body);
        return;
      }
      void answer(message.arguments).then((result) => {
        const json = JSON.stringify({ type: 'response', seq: 0, request_seq: message.seq, command, ...result });
        client.outputStream.write(`Content-Length: ${Buffer.byteLength(json, 'utf8')}\r\n\r\n${json}`, 'utf8');
      });
    };
  }

  /** Disconnects (ending the program) and stops the adapter. */
  async close(): Promise<void> {
    Session.open.delete(this);
    await this.dc.stop();
  }

  private transcript(): string {
    return this.events
      .slice(-20)
      .map((e) => `${e.event} ${JSON.stringify(e.body ?? null).slice(0, 160)}`)
      .join('\n');
  }
}

const ADAPTER_ENV = { ...process.env, SPYTHON_CACHE_DIR: CACHE_DIR, SPYTHON_LAUNCHER: LAUNCHER };

/**
 * `node dist/adapter.js --server=PORT`: one adapter process serving a session per connection, as the
 * adapter runs inline in VS Code (one Node process, several session objects).
 */
export class AdapterServer {
  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {}

  static async start(): Promise<AdapterServer> {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const child = spawn(process.execPath, [ADAPTER, `--server=${port}`], { env: ADAPTER_ENV, stdio: 'ignore' });
    // Should a test time out (DebugClient waits without limit in server mode), nothing stays behind.
    child.unref();
    process.once('exit', () => child.kill());
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const listening = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (listening) return new AdapterServer(port, child);
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the adapter did not listen on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  stop(): void {
    this.child.kill();
  }
}

/** The first scope of a frame's scopes with that name, and its variables. */
export async function scopeVariables(dc: DebugClient, frameId: number, name: string): Promise<DebugProtocol.Variable[]> {
  const scopes = await dc.scopesRequest({ frameId });
  const scope = scopes.body.scopes.find((s) => s.name === name);
  if (!scope) throw new Error(`no scope ${name} in ${scopes.body.scopes.map((s) => s.name).join(', ')}`);
  return (await dc.variablesRequest({ variablesReference: scope.variablesReference })).body.variables;
}

/** Resolves true when the process is gone (or a zombie), polling every 50 ms, false after `ms`. */
export async function processGone(pid: number, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    let state: string | undefined;
    try {
      state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    } catch {
      return true;
    }
    if (state === 'Z') return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
