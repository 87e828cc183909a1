// No loss, end to end: whatever way the program ends, `spython-audit run --jsonl FILE` holds every
// record it raised — each line valid JSON, each process's seq without a gap, each thread's events in
// the order it raised them, and a forked child's events under the child's pid.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertCounter, assertSeqPerProcess, program, readReport, show, startCli, TARGETS } from './common';
import { needs, runCli } from '../cli/common';
import { assertThreadRecords, FORK_PROGRAM, THREADS_PROGRAM } from '../helpers/workloads';

const N_EVENTS = 10_000;
const RAISE = ['import ctypes, os, signal, sys, time', `for i in range(${N_EVENTS}):`, '    sys.audit("spy.n", i)'];

interface Ending {
  name: string;
  /** Python lines run after the 10,000th event. */
  code: string[];
  /** spython-audit's exit status (the program's, 128+N after signal N). */
  status: number;
  /** Someone else ends it: the test sends this signal (to spython-audit or the program), after `afterMs`. */
  external?: { to: 'cli' | 'program'; signal: NodeJS.Signals; afterMs: number };
}

const signalled = (signal: NodeJS.Signals) => 128 + os.constants.signals[signal];

const ENDINGS: Ending[] = [
  { name: 'os._exit(5)', code: ['os._exit(5)'], status: 5 },
  { name: 'SIGTERM to itself', code: ['os.kill(os.getpid(), signal.SIGTERM)', 'time.sleep(5)'], status: signalled('SIGTERM') },
  {
    // Ctrl-C's cousin: `kill` on spython-audit, which passes the signal on to the program.
    name: 'SIGTERM to spython-audit',
    code: ['print("ready", flush=True)', 'time.sleep(30)'],
    status: signalled('SIGTERM'),
    external: { to: 'cli', signal: 'SIGTERM', afterMs: 0 },
  },
  { name: 'a segfault (ctypes.string_at(0))', code: ['ctypes.string_at(0)'], status: signalled('SIGSEGV') },
  { name: 'SIGABRT (os.abort())', code: ['os.abort()'], status: signalled('SIGABRT') },
  {
    // SIGKILL cannot be caught: what the launcher has not sent by then is gone. 200 ms after the
    // 10,000th event, by the program's own clock…
    name: 'SIGKILL 200 ms after the last event (by itself)',
    code: ['last = time.monotonic()', 'time.sleep(max(0.0, last + 0.2 - time.monotonic()))', 'os.kill(os.getpid(), signal.SIGKILL)'],
    status: signalled('SIGKILL'),
  },
  {
    // …and from outside, 200 ms after the program said it had raised them all.
    name: 'SIGKILL 200 ms after the last event (by another process)',
    code: ['print("ready", os.getpid(), flush=True)', 'time.sleep(30)'],
    status: signalled('SIGKILL'),
    external: { to: 'program', signal: 'SIGKILL', afterMs: 200 },
  },
];

for (const { label, python } of TARGETS) {
  describe(`no loss through spython-audit run --jsonl on Python ${label}`, { ...needs(python), concurrency: 2 }, () => {
    for (const ending of ENDINGS) {
      test(`${N_EVENTS} events, then ${ending.name}`, async () => {
        const { dir, file } = program([...RAISE, ...ending.code, 'sys.exit(99)', ''].join('\n'));
        const report = path.join(dir, 'report.jsonl');
        const cli = startCli(['run', '-q', '--no-summary', '--jsonl', report, '--python', python!, file]);
        if (ending.external) {
          const { to, signal, afterMs } = ending.external;
          const ready = await cli.line(/^ready(?: (\d+))?\n/m);
          await new Promise((resolve) => setTimeout(resolve, afterMs));
          process.kill(to === 'cli' ? cli.child.pid! : Number(ready[1]), signal);
        }
        const r = await cli.done;
        assert.equal(r.status, ending.status, show(r));
        const records = readReport(report);
        assertCounter(records, 'spy.n', N_EVENTS);
        assertSeqPerProcess(records);
        assert.equal(new Set(records.map((rec) => rec.pid)).size, 1, 'records of more than one process');
      });
    }

    test('64 threads x 5,000 events: exactly 320,000 records, each valid JSON, each thread in order', async () => {
      const { dir, file } = program(THREADS_PROGRAM);
      const report = path.join(dir, 'report.jsonl');
      const r = await runCli(['run', '-q', '--no-summary', '--jsonl', report, '--python', python!, file], { timeoutMs: 180_000 });
      assert.equal(r.status, 0, show(r));
      const records = readReport(report);
      assertSeqPerProcess(records);
      assert.equal(records.filter((rec) => rec.event === 'spy.n').length, 320_000);
      assertThreadRecords(records);
    });

    test("a forked child's events are in the report under the child's pid", async () => {
      const { dir, file } = program(FORK_PROGRAM);
      const report = path.join(dir, 'report.jsonl');
      const r = await runCli(['run', '-q', '--jsonl', report, '--python', python!, file]);
      assert.equal(r.status, 0, show(r));
      const [parentPid, childPid, childStatus] = r.stdoutText.trim().split(' ').map(Number);
      assert.equal(childStatus, 7);
      const records = readReport(report);
      assertSeqPerProcess(records);
      const child = records.filter((rec) => rec.pid === childPid);
      assertCounter(child, 'spy.child', 1000);
      for (const rec of child) assert.equal(rec.ppid, parentPid, `child record ${rec.event}: ppid ${rec.ppid}`);
      assert.ok(!records.some((rec) => rec.event === 'spy.child' && rec.pid !== childPid), 'a child event under another pid');
      assert.deepEqual(
        records.filter((rec) => rec.event === 'spy.parent').map((rec) => [rec.pid, rec.args[0]]),
        [
          [parentPid, 'before'],
          [parentPid, 'after'],
        ],
      );
      // The summary's process tree has the child under its parent.
      assert.match(r.stderrText, new RegExp(`│ └ ${childPid} +│ +${parentPid} │ \\(fork of ${parentPid}\\) +│ +1,0\\d\\d │`), show(r));
    });
  });
}
