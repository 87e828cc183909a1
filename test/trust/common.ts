// Shared fixtures of the trust tests (test/trust/*.test.ts): temporary trees, reading and changing
// xattrs through Python (Node has no xattr API), and running the launcher with verified imports.
// Not a test file itself.

import { spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CACHE_DIR, tempDir } from '../helpers/fixtures';
import { interpreters, LAUNCHER } from '../helpers/interpreters';

export { LAUNCHER };

export const XATTR = 'user.org.python.x-spython-hash';

export { CACHE_DIR, tempDir };

export interface Python {
  path: string;
  version: string;
  /** sys.prefix and sys.base_prefix, resolved: the stdlib the launcher runs exempt. */
  prefixes: string[];
}

const PREFERRED = '/root/.pyenv/versions/3.12.1/bin/python3';

function describe(file: string, version: string): Python {
  const r = spawnSync(file, ['-c', 'import os, sys; print(os.path.realpath(sys.prefix)); print(os.path.realpath(sys.base_prefix))'], {
    encoding: 'utf8',
    env: cleanEnv(),
  });
  if (r.status !== 0) throw new Error(`${file} does not run: ${r.stderr}`);
  return { path: file, version, prefixes: [...new Set(r.stdout.trim().split('\n'))] };
}

/** The interpreter most tests use: 3.12.1 from pyenv when present, else the newest one found. */
export function mainPython(): Python | undefined {
  if (fs.existsSync(PREFERRED)) return describe(PREFERRED, '3.12.1');
  const all = interpreters();
  const last = all[all.length - 1];
  return last ? describe(last.path, last.version) : undefined;
}

/** Every supported interpreter found (3.8–3.13). */
export function allPythons(): Python[] {
  return interpreters().map((i) => describe(i.path, i.version));
}

/** The inherited environment without what would make a run depend on the caller's shell. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SPYTHON_CACHE_DIR: CACHE_DIR };
  for (const k of Object.keys(env)) {
    if (k.startsWith('PYTHON') || k === 'LD_PRELOAD' || k === 'SPYTHON_PYTHON') delete env[k];
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function show(r: SpawnSyncReturns<string>): string {
  return `status ${r.status} signal ${r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Runs a Python snippet with JSON in and out (for xattrs: os.getxattr and friends). */
function pyJson<T>(code: string, input: unknown): T {
  const python = mainPython()?.path ?? 'python3';
  const r = spawnSync(python, ['-c', code], { input: JSON.stringify(input), encoding: 'utf8', env: cleanEnv() });
  if (r.status !== 0) throw new Error(`python helper failed:\n${show(r)}`);
  return JSON.parse(r.stdout) as T;
}

/** Each file's xattr value (null when it has none). */
export function readXattrs(files: string[], name = XATTR): Array<string | null> {
  return pyJson<Array<string | null>>(
    [
      'import json, os, sys',
      'files, name = json.load(sys.stdin)',
      'out = []',
      'for f in files:',
      '    try:',
      '        out.append(os.getxattr(f, name).decode("latin-1"))',
      '    except OSError:',
      '        out.append(None)',
      'print(json.dumps(out))',
    ].join('\n'),
    [files, name],
  );
}

/** Sets (value a string) or removes (null) a file's xattr, leaving its contents and mtime alone. */
export function setXattr(file: string, value: string | null, name = XATTR): void {
  pyJson<null>(
    [
      'import json, os, sys',
      'f, name, value = json.load(sys.stdin)',
      'if value is None:',
      '    os.removexattr(f, name)',
      'else:',
      '    os.setxattr(f, name, value.encode())',
      'print("null")',
    ].join('\n'),
    [file, name, value],
  );
}

/** Writes files relative to a root: { 'pkg/mod.py': 'X = 1\n' }. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
}

/** A main script that imports the modules named in argv, reporting each: "OK name" or "REFUSED name <msg>". */
export const IMPORTER = [
  'import importlib, sys',
  'for name in sys.argv[1:]:',
  '    try:',
  '        mod = importlib.import_module(name)',
  '        print("OK", name, getattr(mod, "VALUE", None), flush=True)',
  '    except PermissionError as e:',
  '        print("REFUSED", name, e, flush=True)',
  '',
].join('\n');

export interface LaunchOptions {
  python: Python;
  /** Launcher options before the script (e.g. ['--verify', 'xattr']). */
  launcherArgs: string[];
  script: string;
  args?: string[];
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** Runs the launcher with the interpreter's own prefix exempt (the stdlib is not what is being verified). */
export function launch(o: LaunchOptions): SpawnSyncReturns<string> {
  const exempt = o.python.prefixes.flatMap((p) => ['--verify-exempt', p]);
  return spawnSync(
    LAUNCHER,
    [...o.launcherArgs, ...exempt, '--python', o.python.path, '--', o.script, ...(o.args ?? [])],
    {
      cwd: o.cwd,
      encoding: 'utf8',
      env: cleanEnv(o.env),
      timeout: o.timeoutMs ?? 60_000,
    },
  );
}

/** What the launcher refused: path, the launcher's reason phrase, and the detail, from its PermissionError. */
export interface Refusal {
  path: string;
  reason: string;
  detail: string;
}

const REASONS = [
  'no xattr',
  'hash mismatch',
  'too large',
  'not a regular file',
  'on a noexec mount',
  'not in manifest',
  'bad signature',
  'I/O error',
  'malformed manifest',
];

/** Parses "[spython] verifyImports refused [cpython.run_file ]PATH: REASON: DETAIL". */
export function parseRefusal(text: string): Refusal | undefined {
  const m = /\[spython\] verifyImports refused (?:cpython\.run_file )?(.*)$/m.exec(text);
  return m ? parseWhy(m[1]) : undefined;
}

/**
 * Every refusal in a launcher log file (--log-file): its spython.code_refused events, including those
 * Python swallowed (a refused .pyc makes the import fall back to the source).
 */
export function loggedRefusals(logFile: string): Refusal[] {
  if (!fs.existsSync(logFile)) return [];
  const out: Refusal[] = [];
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('spython.code_refused')) continue;
    const record = JSON.parse(line) as { event: string; args: unknown[] };
    if (record.event !== 'spython.code_refused') continue;
    const why = String(record.args[2]).replace(/^cpython\.run_file /, '');
    const refusal = parseWhy(why);
    if (!refusal) throw new Error(`cannot parse the refusal ${JSON.stringify(record.args)}`);
    out.push(refusal);
  }
  return out;
}

/** "PATH: REASON[: DETAIL]" as verifyImports words it. */
export function parseWhy(rest: string): Refusal | undefined {
  for (const reason of REASONS) {
    const i = rest.indexOf(`: ${reason}`);
    if (i < 0) continue;
    const after = rest.slice(i + 2 + reason.length);
    if (after !== '' && !after.startsWith(': ')) continue;
    return { path: rest.slice(0, i), reason, detail: after.slice(2) };
  }
  return undefined;
}

/** A background writer for a FIFO (so that a blocking open of its read end returns). */
export function fifoWriter(fifo: string, text: string): () => void {
  const child = spawn('sh', ['-c', 'printf "%s" "$1" > "$2"', 'sh', text, fifo], { stdio: 'ignore' });
  return () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
}

/** Whether `unshare -m` and a noexec tmpfs mount work here (root in a VM or container with CAP_SYS_ADMIN). */
export function canMountNoexec(): boolean {
  const dir = tempDir('spython-noexec-probe-');
  const r = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o noexec none "${dir}" && grep -q " ${dir} .*noexec" /proc/self/mounts`], {
    encoding: 'utf8',
  });
  return r.status === 0;
}
