// Running the launcher (or any program) in tests, and collecting what arrives on a channel.

import { spawn } from 'node:child_process';
import {
  ChannelConnection,
  ChannelServer,
  ControlMessage,
  HelloMessage,
  PROTOCOL_VERSION,
} from '../../adapter/channel';
import { AuditRecord } from '../../adapter/records';
import { LAUNCHER } from './interpreters';

/** A hello as a launcher of pid 4242 (3.12, dlopen mode) would say it, for fake launchers. */
export function fakeHello(token: string, extra: Record<string, unknown> = {}): HelloMessage {
  return {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    token,
    pid: 4242,
    ppid: 4200,
    python: '3.12.1',
    mode: 'dlopen',
    executable: '/usr/bin/python3',
    freeThreaded: false,
    ...extra,
  };
}

export interface RunOptions {
  /** Merged over the inherited environment; an `undefined` value removes the variable. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (stdin is always closed, so reads see EOF). */
  input?: string | Buffer;
  cwd?: string;
  /** Its `env` (SPYTHON_CHANNEL, SPYTHON_TOKEN) is merged before `env`. */
  channel?: ChannelServer;
  /** The process is killed (SIGKILL) and the promise rejected after this long; default 30 s. */
  timeoutMs?: number;
}

export interface RunResult {
  /** Exit status, or null when killed by a signal. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  /** stdout decoded as UTF-8. */
  stdoutText: string;
  /** stderr decoded as UTF-8. */
  stderrText: string;
}

/** Runs `dist/bin/spython` with `args`. */
export function runLauncher(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runProcess(LAUNCHER, args, opts);
}

/**
 * Runs any program the same way (e.g. the interpreter itself, to compare with the launcher). The
 * inherited SPYTHON_CHANNEL and SPYTHON_TOKEN are always dropped unless given by `channel`/`env`.
 */
export function runProcess(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.SPYTHON_CHANNEL;
  delete env.SPYTHON_TOKEN;
  if (opts.channel) Object.assign(env, opts.channel.env);
  for (const [key, value] of Object.entries(opts.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const timeoutMs = opts.timeoutMs ?? 30_000;

  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(file, args, { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      const err = Buffer.concat(stderr).toString('utf8');
      reject(
        new Error(
          `timed out after ${timeoutMs} ms: ${file} ${args.map((a) => JSON.stringify(a)).join(' ')}` +
            (err ? `\n--- stderr so far ---\n${err}` : ''),
        ),
      );
    }, timeoutMs);

    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => {
      // The program may exit without reading its input (EPIPE): not a test failure by itself.
    });
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`));
    });
    child.on('close', (status, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const out = Buffer.concat(stdout);
      const err = Buffer.concat(stderr);
      resolve({
        status,
        signal,
        stdout: out,
        stderr: err,
        stdoutText: out.toString('utf8'),
        stderrText: err.toString('utf8'),
      });
    });

    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

// ---------------------------------------------------------------------------------------------

/** Everything one channel connection delivered. */
export interface CollectedConnection {
  connection: ChannelConnection;
  /** The verified hello (absent when the handshake was refused). */
  hello: HelloMessage | undefined;
  /** Event names, one per record, in order. */
  names: string[];
  /** Record lines (exact bytes, without the newline), in order. */
  records: Buffer[];
  /** Control messages after the hello, in order. */
  controls: ControlMessage[];
  protocolErrors: string[];
  /** Why the handshake was refused, if it was. */
  rejected: string | undefined;
  /** Status from the `exit` control message, if one came. */
  exitStatus: number | undefined;
  /** True once the connection has ended. */
  ended: boolean;
  /** Resolves when the connection has ended. */
  done: Promise<CollectedConnection>;
  /** The records, parsed. */
  parsed(): Array<Record<string, unknown>>;
}

export interface Collector {
  /** Every connection accepted since `collect` was called, in order. */
  readonly connections: CollectedConnection[];
  /** Waits for the `index`-th connection (default the first) to arrive and end. */
  connection(index?: number, timeoutMs?: number): Promise<CollectedConnection>;
  /** Waits until every connection accepted so far (at least `min`, default 0) has ended. */
  all(min?: number, timeoutMs?: number): Promise<CollectedConnection[]>;
  /** Stops collecting new connections. */
  stop(): void;
}

/** Records whatever arrives on `server` from now on. */
export function collect(server: ChannelServer): Collector {
  const connections: CollectedConnection[] = [];
  const waiters: Array<() => void> = [];
  const changed = () => {
    for (const w of waiters.splice(0)) w();
  };

  const onConnection = (connection: ChannelConnection) => {
    let resolveDone!: (c: CollectedConnection) => void;
    const c: CollectedConnection = {
      connection,
      hello: undefined,
      names: [],
      records: [],
      controls: [],
      protocolErrors: [],
      rejected: undefined,
      exitStatus: undefined,
      ended: false,
      done: new Promise<CollectedConnection>((resolve) => (resolveDone = resolve)),
      parsed() {
        return this.records.map((line) => JSON.parse(line.toString('utf8')) as Record<string, unknown>);
      },
    };
    connection.on('hello', (hello) => (c.hello = hello));
    connection.on('record', (name, line) => {
      c.names.push(name);
      c.records.push(line);
    });
    connection.on('control', (msg) => c.controls.push(msg));
    connection.on('protocolError', (description) => c.protocolErrors.push(description));
    connection.on('rejected', (reason) => (c.rejected = reason));
    connection.on('end', () => {
      c.exitStatus = connection.exitStatus;
      c.ended = true;
      resolveDone(c);
      changed();
    });
    connections.push(c);
    changed();
  };
  server.on('connection', onConnection);

  const waitUntil = <T>(ready: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = waiters.indexOf(check);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      function check() {
        const value = ready();
        if (value !== undefined) {
          clearTimeout(timer);
          resolve(value);
        } else {
          waiters.push(check);
        }
      }
      check();
    });

  return {
    connections,
    connection(index = 0, timeoutMs = 10_000) {
      return waitUntil(
        () => (connections[index]?.ended ? connections[index] : undefined),
        timeoutMs,
        `channel connection #${index} to end`,
      );
    },
    all(min = 0, timeoutMs = 10_000) {
      return waitUntil(
        () => (connections.length >= min && connections.every((c) => c.ended) ? connections.slice() : undefined),
        timeoutMs,
        `${Math.max(min, connections.length)} channel connection(s) to end`,
      );
    },
    stop() {
      server.off('connection', onConnection);
    },
  };
}

/** Describes a result for assertion messages. */
export function describeResult(r: RunResult): string {
  const cut = (s: string) => (s.length > 3000 ? s.slice(0, 3000) + `… (${s.length} chars)` : s);
  return `status=${r.status} signal=${r.signal}\n--- stdout ---\n${cut(r.stdoutText)}\n--- stderr ---\n${cut(r.stderrText)}`;
}

/** A parsed event record (docs/protocol.md, "Event records"), with room for keys a test looks for. */
export type Rec = AuditRecord & { [key: string]: unknown };

/** Parses every record line of a connection, failing with the offending line if one is not valid JSON. */
export function parseRecords(c: CollectedConnection): Rec[] {
  return c.records.map((line, i) => {
    const text = line.toString('utf8');
    try {
      return JSON.parse(text) as Rec;
    } catch (err) {
      throw new Error(`record #${i + 1} is not valid JSON (${(err as Error).message}): ${text.slice(0, 300)}`);
    }
  });
}
