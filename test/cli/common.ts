// Shared fixtures of the command-line tests (test/cli/*.test.ts). Not a test file itself.
//
// The tests run the bundle (`node dist/cli.js`, built by `npm run build`) as a user would, against the
// real launcher and real interpreters; the pseudo-terminal driver and the temporary files come from
// the policy tests' fixtures.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { interpreters, launcherBuilt, pythonFor as pyenvPython, REPO_ROOT } from '../helpers/interpreters';
import { runProcess, RunOptions, RunResult } from '../helpers/run';
import { baseEnv, describeResult, runOnPty, tempDir, writeFile } from '../policies/common';

export { describeResult, REPO_ROOT, runOnPty, tempDir, writeFile };

export const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

/** Skip option when the bundle or the launcher is missing. */
export const NOT_BUILT: { skip?: string } = launcherBuilt() && fs.existsSync(CLI) ? {} : { skip: 'not built (npm run build)' };

/** The pyenv interpreter 3.`minor`'s path. */
export function pythonFor(minor: number): string | undefined {
  return pyenvPython(minor)?.path;
}

/** The interpreters the exit-status tests run on. */
export const TARGETS = [8, 12, 13].map((minor) => ({ label: `3.${minor}`, python: pythonFor(minor) }));

/** The interpreter of the other tests: 3.12, else the newest found. */
export const PYTHON: string | undefined = pythonFor(12) ?? interpreters().at(-1)?.path;

/** Skip option for a test that needs an interpreter. */
export function needs(python: string | undefined): { skip?: string } {
  if (NOT_BUILT.skip) return NOT_BUILT;
  return python ? {} : { skip: 'interpreter not installed' };
}

/** The environment of every run: the tests' private interpreter cache, no colour, no stray PYTHON*. */
export function cliEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return baseEnv({ NO_COLOR: undefined, FORCE_COLOR: undefined, ...extra });
}

/** Runs `node dist/cli.js ARGS` (stdin closed, stdout and stderr pipes). */
export function runCli(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runProcess(process.execPath, [CLI, ...args], {
    ...opts,
    env: cliEnv(opts.env),
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
}

/** A Python program in a fresh directory. */
export function program(source: string, name = 'prog.py'): { dir: string; file: string } {
  const dir = tempDir('spython-cli-');
  return { dir, file: writeFile(dir, name, source) };
}

/** The line of `file` holding `# marker`. */
export function lineOf(file: string, marker: string): number {
  const i = fs.readFileSync(file, 'utf8').split('\n').findIndex((line) => line.includes(`# ${marker}`));
  if (i < 0) throw new Error(`no line marked ${marker} in ${file}`);
  return i + 1;
}

export { describeResult as show };
