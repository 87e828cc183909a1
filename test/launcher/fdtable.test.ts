// The launcher's helper threads (the stream's flusher, the channel's reader) each keep a descriptor
// table of their own (native/core/fdtable.c): while a thread shares the program's table, the kernel
// takes a file reference in every read/write/stat/close the program makes. Checked from inside the
// audited program: no other thread of the process shares its table (kcmp(2)), a helper's table holds
// nothing of the program's, and a pipe the program closes is closed (its reader sees the end while
// the program still runs). Auditing itself is unchanged: every record arrives, in both log modes.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAUNCHER, launcherBuilt } from '../helpers/interpreters';
import { runLauncher } from '../helpers/run';
import { baseEnv, channelTargets, describeResult, needs, parseRecords, runWithChannel, tempDir, writeFile } from './common';

const NOT_BUILT = launcherBuilt() ? {} : { skip: 'launcher not built (npm run build)' };

/**
 * Prints one JSON line: for each thread but the main one, whether it shares the main thread's
 * descriptor table (kcmp KCMP_FILES, x86-64 syscall 312) and what its table holds; then raises
 * `spy.n` 1000 times.
 */
const TABLES_PROGRAM = [
  'import ctypes, json, os, sys, time',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'time.sleep(0.1)  # the helper threads are up and settled',
  'pid = os.getpid()',
  'threads = []',
  'for tid in sorted(int(t) for t in os.listdir("/proc/self/task")):',
  '    if tid == pid:',
  '        continue',
  '    fds = "/proc/self/task/%d/fd" % tid',
  '    held = sorted(os.readlink(os.path.join(fds, fd)) for fd in os.listdir(fds))',
  '    threads.append({"shares": libc.syscall(312, pid, tid, 2, 0, 0) == 0, "held": held})',
  'print(json.dumps(threads), flush=True)',
  'for i in range(1000):',
  '    sys.audit("spy.n", i)',
  '',
].join('\n');

interface HelperThread {
  shares: boolean;
  held: string[];
}

function helperThreads(stdout: string): HelperThread[] {
  return JSON.parse(stdout.trim().split('\n')[0]) as HelperThread[];
}

/** A helper's table: the pidfd it reaches the process's descriptors through, and at most a socket. */
function assertHoldsNothingOfTheProgram(t: HelperThread, context: string): void {
  const program = t.held.filter((link) => link !== 'anon_inode:[pidfd]' && !link.startsWith('socket:['));
  assert.deepEqual(program, [], `${context}: a helper thread holds ${JSON.stringify(t.held)}`);
  assert.ok(t.held.length <= 2, `${context}: ${JSON.stringify(t.held)}`);
}

describe('helper threads keep descriptor tables of their own', NOT_BUILT, () => {
  for (const target of channelTargets()) {
    describe(target.label, needs(target.interp), () => {
      test('the JSONL log alone: the flusher shares nothing with the program', async () => {
        const dir = tempDir('spython-fdtable-');
        const script = writeFile(dir, 'tables.py', TABLES_PROGRAM);
        const log = path.join(dir, 'audit.jsonl');
        const r = await runLauncher([...target.modeArgs, '--log-file', log, '--python', target.interp!.path, '--', script], {
          env: baseEnv(),
          cwd: dir,
        });
        assert.equal(r.status, 0, describeResult(r));
        const threads = helperThreads(r.stdoutText);
        assert.equal(threads.length, 1, r.stdoutText);
        assert.equal(threads[0].shares, false, r.stdoutText);
        assertHoldsNothingOfTheProgram(threads[0], 'log file');
        const records = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{"event":"spy.n"'));
        assert.equal(records.length, 1000);
      });

      test('the channel and the log: flusher and reader share nothing with the program', async () => {
        const dir = tempDir('spython-fdtable-');
        const script = writeFile(dir, 'tables.py', TABLES_PROGRAM);
        const log = path.join(dir, 'audit.jsonl');
        const run = await runWithChannel([...target.modeArgs, '--log-file', log, '--python', target.interp!.path, '--', script], {
          cwd: dir,
        });
        assert.equal(run.result.status, 0, describeResult(run.result));
        const threads = helperThreads(run.result.stdoutText);
        assert.equal(threads.length, 2, run.result.stdoutText);
        for (const t of threads) {
          assert.equal(t.shares, false, run.result.stdoutText);
          assertHoldsNothingOfTheProgram(t, 'channel');
        }
        // The reader keeps its own reference to the socket; the flusher reaches it when it writes.
        assert.equal(threads.filter((t) => t.held.some((l) => l.startsWith('socket:['))).length, 1, run.result.stdoutText);
        const records = parseRecords(run.connections[0]).filter((rec) => rec.event === 'spy.n');
        assert.deepEqual(
          records.map((rec) => rec.args[0]),
          Array.from({ length: 1000 }, (_, i) => i),
        );
        assert.equal(fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{"event":"spy.n"')).length, 1000);
      });
    });
  }

  test('a pipe the program closes reaches its end while the program runs on', NOT_BUILT, async () => {
    const target = channelTargets().find((t) => t.label === '3.12');
    if (!target?.interp) return;
    const dir = tempDir('spython-fdtable-');
    // stdout and stderr are this test's pipes. The program closes both, then waits (at most 10 s) for
    // the test to say on stdin that it saw them end: a copy held elsewhere in the process would keep
    // them open until it exits.
    const script = writeFile(
      dir,
      'closes.py',
      [
        'import os, select, sys',
        'sys.stdout.write("closing\\n")',
        'sys.stdout.flush()',
        'sys.stdout = sys.stderr = None',
        'os.close(1)',
        'os.close(2)',
        'if not select.select([0], [], [], 10)[0] or os.read(0, 3) != b"go\\n":',
        '    sys.exit(3)',
        'sys.audit("spy.after", 0)',
        '',
      ].join('\n'),
    );
    const log = path.join(dir, 'audit.jsonl');
    const child = spawn(LAUNCHER, ['--log-file', log, '--python', target.interp.path, '--', script], {
      env: { ...process.env, ...baseEnv() },
      cwd: dir,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.resume();
    child.stdin.on('error', () => {}); // EPIPE when it has given up and exited: the status says so
    const ended = (stream: NodeJS.ReadableStream) => new Promise<void>((resolve) => stream.on('end', resolve));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await Promise.all([ended(child.stdout), ended(child.stderr)]);
    child.stdin.end('go\n');
    assert.equal(await exited, 0, 'the program did not hear that its pipes ended');
    assert.equal(stdout, 'closing\n');
    assert.ok(fs.readFileSync(log, 'utf8').includes('{"event":"spy.after"'));
  });
});
