// Shared fixtures of the reliability tests (test/reliability/*.test.ts). Not a test file itself.
//
// These tests judge the tool from the outside, as a user would: `node dist/cli.js run --jsonl FILE`
// (and the DAP adapter) against the real launcher and real interpreters, with the JSONL report as the
// evidence of what arrived.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import assert from 'node:assert/strict';
import { CLI, cliEnv, program, PYTHON, pythonFor, show } from '../cli/common';
import { Rec, RunResult } from '../helpers/run';

export { CLI, cliEnv, program, PYTHON, pythonFor, show };

export type { Rec };

/**
 * Every line of a JSONL report, parsed; fails on a line that is not one JSON object or that lacks
 * the record fields.
 */
export function readReport(file: string): Rec[] {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), `${file} ends in the middle of a line`);
  const lines = text.split('\n');
  lines.pop();
  return lines.map((line, i) => {
    let rec: Rec;
    try {
      rec = JSON.parse(line) as Rec;
    } catch (err) {
      assert.fail(`${file} line ${i + 1} is not JSON (${(err as Error).message}): ${line.slice(0, 200)}`);
    }
    assert.ok(
      typeof rec === 'object' && rec !== null && typeof rec.event === 'string' && Number.isInteger(rec.seq) && Array.isArray(rec.args),
      `${file} line ${i + 1} is not an event record: ${line.slice(0, 200)}`,
    );
    return rec;
  });
}

/** Each process's records run seq 1, 2, … with no gap and no repeat. */
export function assertSeqPerProcess(records: Rec[]): void {
  const next = new Map<number, number>();
  for (const r of records) {
    const due = next.get(r.pid) ?? 1;
    if (r.seq !== due) assert.fail(`process ${r.pid}: seq ${r.seq} arrived when ${due} was due (a gap or a repeat)`);
    next.set(r.pid, due + 1);
  }
}

/** The args[0] of the `name` records are exactly 0, 1, … count-1, in order. */
export function assertCounter(records: Rec[], name: string, count: number): void {
  const values = records.filter((r) => r.event === name).map((r) => r.args[0]);
  const misplaced = values.findIndex((v, i) => v !== i);
  if (values.length !== count || misplaced >= 0) {
    assert.fail(
      `${values.length} '${name}' records, expected ${count}` +
        (misplaced >= 0 ? `; #${misplaced} carries ${JSON.stringify(values[misplaced])}` : ''),
    );
  }
}

/** A `spython-audit` process being watched: its output so far, and its end. */
export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  /** Bytes the program wrote to stdout (all of them, even when not kept). */
  stdoutBytes(): number;
  /** Resolves once a complete stdout line matches `pattern`, with the match. */
  line(pattern: RegExp): Promise<RegExpMatchArray>;
  done: Promise<RunResult>;
}

/**
 * Starts `node dist/cli.js ARGS` (stdin closed); killed with SIGKILL after `timeoutMs`. With
 * `keepStdout` false, stdout is only counted (a flood of hundreds of MB).
 */
export function startCli(args: string[], timeoutMs = 120_000, keepStdout = true): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env: mergedEnv(cliEnv()), stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const watchers: Array<() => void> = [];
  let outBytes = 0;
  child.stdout!.on('data', (chunk: Buffer) => {
    outBytes += chunk.length;
    if (keepStdout) out.push(chunk);
    for (const w of watchers.splice(0)) w();
  });
  child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
  const stdout = () => Buffer.concat(out).toString('utf8');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<RunResult>((resolve) => {
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      for (const w of watchers.splice(0)) w();
      const o = Buffer.concat(out);
      const e = Buffer.concat(err);
      resolve({ status, signal, stdout: o, stderr: e, stdoutText: o.toString('utf8'), stderrText: e.toString('utf8') });
    });
  });
  let closed = false;
  void done.then(() => (closed = true));
  const line = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        // Complete lines only: a chunk may end inside the line the pattern is after.
        const text = stdout();
        const m = pattern.exec(text.slice(0, text.lastIndexOf('\n') + 1));
        if (m) resolve(m);
        else if (closed) reject(new Error(`spython-audit ended before printing ${pattern}; stdout: ${stdout()}`));
        else watchers.push(check);
      };
      check();
    });
  return { child, stdout, stdoutBytes: () => outBytes, line, done };
}

function mergedEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.SPYTHON_CHANNEL;
  delete env.SPYTHON_TOKEN;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** The interpreters the end-to-end tests run on: pyenv 3.8, 3.12, 3.13 and Debian's 3.11 (preload). */
export const TARGETS = [
  ...[8, 12, 13].map((minor) => ({ label: `3.${minor}`, python: pythonFor(minor) })),
  { label: '3.11 (Debian)', python: fs.existsSync('/usr/bin/python3.11') ? '/usr/bin/python3.11' : undefined },
];
