// Shared fixtures of the launcher policy tests (test/policies/*.test.ts). Not a test file itself.
//
// Everything here drives the real launcher (dist/bin/spython) against real interpreters; the small
// Python programs it needs (a pseudo-terminal driver, a datagram listener, a file stamper) are
// written to a temporary directory and run with a plain interpreter, never through the launcher.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { ChannelConnection, ChannelServer, ConfigSource, ControlMessage } from '../../adapter/channel';
import { atExit, CACHE_DIR, isolatedEnv, tempDir, writeFile } from '../helpers/fixtures';
import { Interpreter, interpreters, LAUNCHER, launcherBuilt, pythonFor } from '../helpers/interpreters';
import { CollectedConnection, collect, describeResult, parseRecords, Rec, runLauncher, runProcess, RunOptions, RunResult } from '../helpers/run';

export { describeResult, parseRecords, Rec } from '../helpers/run';

export { LAUNCHER };

/** Skip option for a whole file when the launcher has not been built. */
export const NOT_BUILT: { skip?: string } = launcherBuilt() ? {} : { skip: 'launcher not built (make -C native)' };

// ---------------------------------------------------------------------------------------------
// Temporary files

export { atExit, tempDir, writeFile } from '../helpers/fixtures';

/** A Python string literal for `text` (JSON string syntax is valid Python for plain paths). */
export function pyStr(text: string): string {
  return JSON.stringify(text);
}

// ---------------------------------------------------------------------------------------------
// Interpreters

export { CACHE_DIR };

/** The environment every run gets (isolatedEnv), with Python's output unbuffered. */
export function baseEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return isolatedEnv({ PYTHONUNBUFFERED: '1', ...extra });
}

/** Python flags of the code-file policy tests: no environment, no site, no .pyc written. */
export const PY_FLAGS = ['-E', '-S', '-B'];

/** Trusts the target's own standard library and extension modules (they are not stamped). */
export function exemptInterpreter(t: Target): string[] {
  return ['--verify-exempt', t.stdlib, '--verify-exempt', t.dynload];
}

export interface Target {
  /** Used in test names: '3.8', '3.12', '3.11 (Debian, preload)'. */
  label: string;
  /** 3.minor */
  minor: number;
  interp: Interpreter | undefined;
  /** Launcher options choosing the interpreter and mode. */
  args: string[];
  /** The interpreter's standard library (sysconfig 'stdlib'), for --verify-exempt. */
  stdlib: string;
  /** Its lib-dynload directory (extension modules), for --verify-exempt. */
  dynload: string;
}


const pathsCache = new Map<string, { stdlib: string; dynload: string }>();

function stdlibPaths(python: string): { stdlib: string; dynload: string } {
  let found = pathsCache.get(python);
  if (!found) {
    const out = execFileSync(
      python,
      [
        '-E',
        '-S',
        '-c',
        'import sysconfig, os, sys\n' +
          'p = sysconfig.get_paths()\n' +
          'd = [x for x in sys.path if x.endswith("lib-dynload")]\n' +
          'print(os.path.realpath(p["stdlib"]))\n' +
          'print(os.path.realpath(d[0] if d else os.path.join(p["stdlib"], "lib-dynload")))',
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
    )
      .trim()
      .split('\n');
    found = { stdlib: out[0], dynload: out[1] };
    pathsCache.set(python, found);
  }
  return found;
}

function target(label: string, minor: number, interp: Interpreter | undefined, modeArgs: string[]): Target {
  const paths = interp ? stdlibPaths(interp.path) : { stdlib: '', dynload: '' };
  return {
    label,
    minor,
    interp,
    args: interp ? ['--python', interp.path, ...modeArgs] : [],
    ...paths,
  };
}

/** The pyenv 3.8, 3.12 and 3.13 (dlopen mode). */
export function mainTargets(): Target[] {
  return [8, 12, 13].map((minor) => target(`3.${minor}`, minor, pythonFor(minor), []));
}

/** The Debian /usr/bin/python3.11, which has no shared libpython: preload mode. */
export function debianTarget(): Target {
  return target('3.11 (Debian, preload)', 11, pythonFor(11, true), ['--mode', 'preload']);
}

/** mainTargets() plus the Debian preload one. */
export function allTargets(): Target[] {
  return [...mainTargets(), debianTarget()];
}

/** Skip option for a test that needs `t`'s interpreter. */
export function needs(t: Target): { skip?: string } {
  if (NOT_BUILT.skip) return NOT_BUILT;
  return t.interp ? {} : { skip: `Python ${t.label} is not installed` };
}

/** A plain interpreter for the helper programs (never run through the launcher). */
export function helperPython(): string {
  const all = interpreters();
  const found = all.find((i) => !i.path.startsWith('/usr/')) ?? all[all.length - 1];
  if (!found) throw new Error('no Python interpreter found for the test helpers');
  return found.path;
}

// ---------------------------------------------------------------------------------------------
// Running

/** Runs the launcher for `t` with `args` (launcher options, then Python's) under baseEnv. */
export function run(t: Target, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runLauncher([...t.args, ...args], { ...opts, env: baseEnv(opts.env), timeoutMs: opts.timeoutMs ?? 60_000 });
}

export interface ChannelRun {
  result: RunResult;
  /** Every connection, in order of arrival (the first is the launched process). */
  connections: CollectedConnection[];
  /** The first connection's records, parsed. */
  records: Rec[];
  /** The first connection's control messages. */
  controls: ControlMessage[];
}

export interface ChannelRunOptions extends RunOptions {
  config?: ConfigSource;
  /** Called for every control message of every connection (e.g. to answer prompts). */
  onControl?: (msg: ControlMessage, connection: ChannelConnection) => void;
}

/** Runs the launcher for `t` with a fresh ChannelServer; waits until every connection has ended. */
export async function runWithChannel(t: Target, args: string[], opts: ChannelRunOptions = {}): Promise<ChannelRun> {
  const server = await ChannelServer.create({ config: opts.config });
  const collector = collect(server);
  if (opts.onControl) {
    const onControl = opts.onControl;
    server.on('connection', (connection: ChannelConnection) => {
      connection.on('control', (msg) => onControl(msg, connection));
    });
  }
  try {
    const result = await runLauncher([...t.args, ...args], {
      ...opts,
      env: baseEnv(opts.env),
      channel: server,
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
    const connections = await collector.all(0, 30_000);
    const first = connections[0];
    return {
      result,
      connections,
      records: first ? parseRecords(first) : [],
      controls: first ? first.controls : [],
    };
  } finally {
    collector.stop();
    await server.close();
  }
}

/** Number of non-overlapping occurrences of `needle` in `haystack`. */
export function count(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Helper programs

let helperDirCache: string | undefined;

function helperDir(): string {
  if (!helperDirCache) {
    helperDirCache = tempDir('spython-policy-helpers-');
    writeFile(helperDirCache, 'pty_driver.py', PTY_DRIVER);
    writeFile(helperDirCache, 'dgram_listener.py', DGRAM_LISTENER);
    writeFile(helperDirCache, 'stamp.py', STAMP);
  }
  return helperDirCache;
}

/**
 * Stamps files for --verify xattr the way linux_xattr's mkxattr.py does: the SHA-256 of the
 * contents, 64 lowercase hex digits, in the xattr `name`. Run with a plain python3.
 */
export function stamp(files: string[], name = 'user.org.python.x-spython-hash'): void {
  execFileSync(helperPython(), ['-E', '-S', path.join(helperDir(), 'stamp.py'), name, ...files], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** Sets an xattr to an arbitrary value with a plain python3. */
export function setXattr(file: string, value: string, name = 'user.org.python.x-spython-hash'): void {
  execFileSync(
    helperPython(),
    ['-E', '-S', '-c', 'import os, sys\nos.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())', file, name, value],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

/** The value of an xattr (or undefined when absent), read with a plain python3. */
export function readXattr(file: string, name = 'user.org.python.x-spython-hash'): string | undefined {
  const out = execFileSync(
    helperPython(),
    [
      '-E',
      '-S',
      '-c',
      'import os, sys\ntry:\n    print(os.getxattr(sys.argv[1], sys.argv[2]).decode())\nexcept OSError:\n    print("<none>")',
      file,
      name,
    ],
    { encoding: 'utf8' },
  ).trim();
  return out === '<none>' ? undefined : out;
}

const STAMP = `
import hashlib, os, sys
name = sys.argv[1]
for p in sys.argv[2:]:
    with open(p, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    os.setxattr(p, name, digest.encode("ascii"))
`;

export interface PtyStep {
  /** Wait until this text has appeared in the output (after the previous step's match). */
  expect: string;
  /** Then write this to the terminal. */
  send: string;
}

export interface PtyResult {
  /** Everything the program wrote to its terminal (echoed input included; '\\r\\n' line ends). */
  output: string;
  /** Exit status (negative: killed by that signal). */
  status: number;
  /** Steps whose text never appeared. */
  unmatched: string[];
  timedOut: boolean;
}

/**
 * Runs `argv` on a fresh pseudo-terminal that is its controlling terminal (Python's pty.fork in a
 * small driver), answering `steps` in order. After the last step, the program gets until it exits
 * (at most `timeoutMs`); then it is killed.
 */
export async function runOnPty(
  argv: string[],
  opts: { env?: Record<string, string | undefined>; steps?: PtyStep[]; cwd?: string; timeoutMs?: number } = {},
): Promise<PtyResult> {
  const env: Record<string, string> = {};
  const merged = baseEnv({ TERM: 'dumb', ...opts.env });
  for (const [k, v] of Object.entries(merged)) if (v !== undefined) env[k] = v;
  const unset = Object.entries(merged)
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  const spec = {
    argv,
    env,
    unset,
    cwd: opts.cwd ?? null,
    steps: opts.steps ?? [],
    timeout: (opts.timeoutMs ?? 30_000) / 1000,
  };
  const r = await runProcess(helperPython(), ['-E', '-S', path.join(helperDir(), 'pty_driver.py'), JSON.stringify(spec)], {
    timeoutMs: (opts.timeoutMs ?? 30_000) + 15_000,
  });
  if (r.status !== 0) throw new Error(`the pty driver failed:\n${describeResult(r)}`);
  const result = JSON.parse(r.stdoutText) as PtyResult;
  // 3.13 colours tracebacks on a terminal; the tests look at the text.
  result.output = result.output.replace(/\x1b\[[0-9;]*m/g, '');
  return result;
}

const PTY_DRIVER = `
import errno, json, os, pty, select, signal, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    try:
        env = dict(os.environ)
        for k in spec["unset"]:
            env.pop(k, None)
        env.update(spec["env"])
        if spec["cwd"]:
            os.chdir(spec["cwd"])
        os.execve(spec["argv"][0], spec["argv"], env)
    finally:
        os._exit(127)

def read_some():
    """Bytes from the terminal; b"" when nothing is there; None when no one has it open (EIO)."""
    try:
        return os.read(fd, 65536)
    except OSError as e:
        if e.errno == errno.EIO:
            return None
        raise

out = b""
pos = 0
steps = list(spec["steps"])
deadline = time.monotonic() + spec["timeout"]
timed_out = False
status = None
while True:
    while steps:
        i = out.find(steps[0]["expect"].encode(), pos)
        if i < 0:
            break
        pos = i + len(steps[0]["expect"].encode())
        os.write(fd, steps.pop(0)["send"].encode())
    if time.monotonic() > deadline:
        timed_out = True
        os.kill(pid, signal.SIGKILL)
        break
    r, _, _ = select.select([fd], [], [], 0.2)
    data = read_some() if r else b""
    if data:
        out += data
        continue
    # Nothing to read: the program may have ended. (A program whose own descriptors are all
    # elsewhere may still open /dev/tty later, so EIO alone does not mean the end.)
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if data is None:
        time.sleep(0.05)
if status is None or timed_out:
    _, status = os.waitpid(pid, 0)
while True:
    r, _, _ = select.select([fd], [], [], 0)
    data = read_some() if r else None
    if not data:
        break
    out += data
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
print(json.dumps({"output": out.decode("utf-8", "replace"), "status": code,
                  "unmatched": [s["expect"] for s in steps], "timedOut": timed_out}))
`;

export interface DgramListener {
  path: string;
  /** Stops the listener and returns every datagram it received, in order. */
  stop(): Promise<Buffer[]>;
}

/**
 * Listens on a Unix datagram socket at `socketPath` (Node's dgram has no AF_UNIX), in a plain
 * python3 process; `stop` drains the socket and returns the datagrams.
 */
export async function listenDgram(socketPath: string): Promise<DgramListener> {
  const child: ChildProcess = spawn(helperPython(), ['-E', '-S', path.join(helperDir(), 'dgram_listener.py'), socketPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the datagram listener did not start: ${Buffer.concat(err)}`)), 20_000);
    const check = () => {
      if (Buffer.concat(out).toString().includes('ready\n')) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`the datagram listener exited: ${Buffer.concat(err)}`));
    });
  });
  return {
    path: socketPath,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      const text = Buffer.concat(out).toString();
      const line = text.split('\n').find((l) => l.startsWith('['));
      if (!line) throw new Error(`the datagram listener gave no result: ${text} ${Buffer.concat(err)}`);
      return (JSON.parse(line) as string[]).map((b) => Buffer.from(b, 'base64'));
    },
  };
}

const DGRAM_LISTENER = `
import base64, json, os, signal, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
got = []
# The handler only says stop: run between recv() returning a datagram and its append, one that
# drained and exited itself lost that datagram (seen under load).
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
s.settimeout(0.05)
sys.stdout.write("ready\\n")
sys.stdout.flush()
while not stopping:
    try:
        got.append(s.recv(1 << 20))
    except socket.timeout:
        pass
s.setblocking(False)
while True:
    try:
        got.append(s.recv(1 << 20))
    except BlockingIOError:
        break
try:
    os.unlink(path)
except OSError:
    pass
sys.stdout.write(json.dumps([base64.b64encode(g).decode() for g in got]) + "\\n")
sys.stdout.flush()
os._exit(0)
`;

/** Whether a mount command works here (root in a namespace that allows it). */
export function tryMountNoexecTmpfs(dir: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'noexec,size=4m', 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    return `cannot mount a noexec tmpfs: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  atExit(() => umount(dir));
  return undefined;
}

export function umount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    // not mounted any more
  }
}
