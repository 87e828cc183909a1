// The CPython interpreters the tests run against, and where the launcher is.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Interpreter {
  /** 'major.minor.micro', e.g. '3.12.1'. */
  version: string;
  /** Real (symlink-free) path of the interpreter. */
  path: string;
}

/** The repository root: the nearest directory above this file that holds a package.json. */
export const REPO_ROOT: string = findRepoRoot(__dirname);

/** The hooked launcher built by `make -C native` (override with SPYTHON_LAUNCHER). */
export const LAUNCHER: string = process.env.SPYTHON_LAUNCHER
  ? path.resolve(process.env.SPYTHON_LAUNCHER)
  : path.join(REPO_ROOT, 'dist', 'bin', 'spython');

/** True when the launcher has been built. */
export function launcherBuilt(): boolean {
  try {
    fs.accessSync(LAUNCHER, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const PYENV_VERSIONS = '/root/.pyenv/versions';
const SYSTEM_PYTHONS = ['/usr/bin/python3.11'];
/** Supported minor versions of Python 3. */
const MIN_MINOR = 8;
const MAX_MINOR = 13;

let cached: Interpreter[] | undefined;

/**
 * Every CPython 3.8–3.13 found: /root/.pyenv/versions/3.N.* (with bin/python3), plus
 * /usr/bin/python3.11 if present; deduplicated by real path and sorted by version.
 * SPYTHON_TEST_PYTHONS (paths separated by ':') replaces the search.
 */
export function interpreters(): Interpreter[] {
  if (cached) return cached.map((i) => ({ ...i }));
  const found = new Map<string, Interpreter>();
  const add = (file: string, versionHint?: string) => {
    let real: string;
    try {
      real = fs.realpathSync(file);
      fs.accessSync(real, fs.constants.X_OK);
    } catch {
      return;
    }
    if (found.has(real)) return;
    const version = versionHint ?? queryVersion(real);
    if (!version) return;
    const m = /^3\.(\d+)\.\d+/.exec(version);
    if (!m || Number(m[1]) < MIN_MINOR || Number(m[1]) > MAX_MINOR) return;
    found.set(real, { version, path: real });
  };

  const override = process.env.SPYTHON_TEST_PYTHONS;
  if (override) {
    for (const file of override.split(':').filter(Boolean)) add(file);
  } else {
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(PYENV_VERSIONS);
    } catch {
      // no pyenv
    }
    for (const name of entries) {
      const m = /^3\.(\d+)\./.exec(name);
      if (!m || Number(m[1]) < MIN_MINOR || Number(m[1]) > MAX_MINOR) continue;
      // A plain 'X.Y.Z' directory name is the version; anything else (3.13.0t, 3.12-dev…) is asked.
      const hint = /^\d+\.\d+\.\d+$/.test(name) ? name : undefined;
      add(path.join(PYENV_VERSIONS, name, 'bin', 'python3'), hint);
    }
    for (const file of SYSTEM_PYTHONS) add(file);
  }

  cached = [...found.values()].sort((a, b) => compareVersions(a.version, b.version) || a.path.localeCompare(b.path));
  return cached.map((i) => ({ ...i }));
}

/** The interpreter of version 3.`minor` (a pyenv one unless `debian`), or undefined when not installed. */
export function pythonFor(minor: number, debian = false): Interpreter | undefined {
  return interpreters().find(
    (i) => i.version.startsWith(`3.${minor}.`) && (debian ? i.path.startsWith('/usr/') : !i.path.startsWith('/usr/')),
  );
}

/** The newest interpreter found (or undefined when there is none). */
export function newestInterpreter(): Interpreter | undefined {
  const all = interpreters();
  return all[all.length - 1];
}

function queryVersion(python: string): string | undefined {
  try {
    const out = execFileSync(python, ['-c', 'import platform;print(platform.python_version())'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
      env: withoutPythonVars(process.env),
    }).trim();
    // 'X.Y.Z' plus possibly a pre-release suffix ('3.13.0rc1'): keep the numeric part.
    const m = /^(\d+\.\d+\.\d+)/.exec(out);
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

function withoutPythonVars(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.PYTHONPATH;
  delete copy.PYTHONHOME;
  return copy;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // Not found (should not happen): tests compile to out/test/helpers/, three levels below the root.
  return path.resolve(start, '../../..');
}
