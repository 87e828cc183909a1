// What the extension needs to know about a Python interpreter before it launches the program or stamps
// its library: that it exists, that it is a CPython the launcher supports, and where its standard
// library and site-packages are. No `vscode` here: plain Node tests cover it.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The oldest and newest CPython the launcher runs (README: "any CPython 3.8–3.13"). */
export const MIN_PYTHON: readonly [number, number] = [3, 8];
export const MAX_TESTED_PYTHON: readonly [number, number] = [3, 13];

/** How long an interpreter may take to say what it is (a cold venv on a slow disk). */
const PROBE_TIMEOUT_MS = 20_000;

export interface InterpreterFacts {
  /** What was asked for: a path, or a name looked up on PATH. */
  requested: string;
  /** sys.executable */
  executable: string;
  version: [number, number, number];
  implementation: string;
  /** sysconfig paths: the standard library, and site-packages (pure and platform-specific). */
  stdlib: string;
  purelib: string;
  platlib: string;
}

/** An interpreter that cannot be used; `kind` chooses the actions offered with the message. */
export class InterpreterError extends Error {
  constructor(
    message: string,
    readonly kind: 'missing' | 'tooOld' | 'notCPython' | 'broken',
  ) {
    super(message);
    this.name = 'InterpreterError';
  }
}

const PROBE = [
  'import json, platform, sys, sysconfig',
  'p = sysconfig.get_paths()',
  'print(json.dumps({"executable": sys.executable, "version": list(sys.version_info[:3]),',
  '  "implementation": platform.python_implementation(),',
  '  "stdlib": p.get("stdlib", ""), "purelib": p.get("purelib", ""), "platlib": p.get("platlib", "")}))',
].join('\n');

/** A name without a slash is looked up on PATH, as a shell would; undefined when it is not there. */
export function findOnPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  if (name.includes('/')) return fs.existsSync(name) ? path.resolve(name) : undefined;
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Asks an interpreter what it is. Throws InterpreterError saying what to do about it. */
export async function probeInterpreter(requested: string, how: string): Promise<InterpreterFacts> {
  const found = findOnPath(requested);
  if (!found) {
    throw new InterpreterError(
      requested.includes('/')
        ? `The Python interpreter ${requested} (${how}) does not exist.`
        : `No Python interpreter: "${requested}" is not on PATH (${how}).`,
      'missing',
    );
  }
  let stdout: string;
  try {
    stdout = await new Promise<string>((resolve, reject) => {
      execFile(found, ['-I', '-c', PROBE], { timeout: PROBE_TIMEOUT_MS, encoding: 'utf8' }, (err, out, errText) => {
        if (err) reject(new Error((errText || err.message).trim().split('\n').slice(-3).join(' ')));
        else resolve(out);
      });
    });
  } catch (err) {
    // Python 2 stops at -I (isolated mode came in 3.4): also too old, and said so.
    throw new InterpreterError(
      `The Python interpreter ${found} (${how}) could not be run: ${(err as Error).message}. ` +
        `SPython Debug needs CPython ${MIN_PYTHON.join('.')} or later.`,
      'broken',
    );
  }
  let facts: Omit<InterpreterFacts, 'requested'>;
  try {
    facts = JSON.parse(stdout.trim().split('\n').pop() ?? '');
  } catch {
    throw new InterpreterError(`The Python interpreter ${found} (${how}) did not say what it is.`, 'broken');
  }
  const result: InterpreterFacts = { requested, ...facts };
  const problem = interpreterProblem(result, how);
  if (problem) throw problem;
  return result;
}

/** Why the launcher cannot run this interpreter, or undefined. */
export function interpreterProblem(facts: InterpreterFacts, how: string): InterpreterError | undefined {
  const [major, minor] = facts.version;
  const version = facts.version.join('.');
  if (facts.implementation !== 'CPython') {
    return new InterpreterError(
      `${facts.executable} (${how}) is ${facts.implementation} ${version}: audit hooks are CPython's, so SPython ` +
        `Debug needs CPython ${MIN_PYTHON.join('.')} or later.`,
      'notCPython',
    );
  }
  if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
    return new InterpreterError(
      `${facts.executable} (${how}) is Python ${version}; SPython Debug needs Python ${MIN_PYTHON.join('.')} or ` +
        'later (audit hooks arrived in 3.8).',
      'tooOld',
    );
  }
  return undefined;
}

/** True when the launcher has not been tested with this version (newer than MAX_TESTED_PYTHON). */
export function isUntestedVersion(facts: InterpreterFacts): boolean {
  const [major, minor] = facts.version;
  return major > MAX_TESTED_PYTHON[0] || (major === MAX_TESTED_PYTHON[0] && minor > MAX_TESTED_PYTHON[1]);
}

/** The interpreter's library folders worth stamping: the standard library and site-packages. */
export function libraryFolders(facts: InterpreterFacts): Array<{ label: string; path: string }> {
  const out: Array<{ label: string; path: string }> = [];
  const add = (label: string, p: string) => {
    if (p && fs.existsSync(p) && !out.some((o) => o.path === p)) out.push({ label, path: p });
  };
  add('Standard library', facts.stdlib);
  add('site-packages', facts.purelib);
  add('site-packages (platform)', facts.platlib);
  return out;
}
