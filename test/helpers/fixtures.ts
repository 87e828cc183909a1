// What every test process needs around the launcher: temporary directories removed at exit, its own
// interpreter-facts cache, and an environment that does not depend on the caller's shell.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const tempDirs: string[] = [];
const cleanups: Array<() => void> = [];
process.on('exit', () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort (a still-mounted directory, say)
    }
  }
});

/** Runs `fn` when the test process exits (after the tests' own `after` hooks), before the temporary directories go. */
export function atExit(fn: () => void): void {
  cleanups.push(fn);
}

/** A fresh temporary directory (real path), removed when the test process exits. */
export function tempDir(prefix = 'spython-test-'): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  tempDirs.push(dir);
  return dir;
}

/** Writes `text` to `dir/name` (creating folders) and returns the path. */
export function writeFile(dir: string, name: string, text: string | Buffer, mode?: number): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  if (mode !== undefined) fs.chmodSync(file, mode);
  return file;
}

/** This test process's own interpreter-facts cache (SPYTHON_CACHE_DIR), so that runs do not depend on ~/.cache. */
export const CACHE_DIR = tempDir('spython-cache-');

/**
 * The environment a run gets (launcher and direct interpreter alike): the private cache, and none of
 * the variables that would make the result depend on the caller's shell (this machine exports
 * PYTHONDONTWRITEBYTECODE, for one). `extra` comes last; an `undefined` value removes a variable.
 */
export function isolatedEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    SPYTHON_CACHE_DIR: CACHE_DIR,
    SPYTHON_PYTHON: undefined,
    SPYTHON_SYSLOG_SOCKET: undefined,
    SPYTHON_JOURNAL_SOCKET: undefined,
    PYTHONPATH: undefined,
    PYTHONHOME: undefined,
    PYTHONSTARTUP: undefined,
    PYTHONINSPECT: undefined,
    PYTHONWARNINGS: undefined,
    PYTHONSAFEPATH: undefined,
    PYTHONUNBUFFERED: undefined,
    PYTHONDONTWRITEBYTECODE: undefined,
    PYTHONFAULTHANDLER: undefined,
    PYTHON_BASIC_REPL: undefined,
    LD_PRELOAD: undefined,
    ...extra,
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails with `what`. */
export async function waitUntil<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** waitUntil for a quick condition on local I/O: checked every 2 ms, for 5 s unless told. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  await waitUntil(what, cond, timeoutMs, 2);
}
