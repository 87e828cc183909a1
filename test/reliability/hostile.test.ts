// Hostile programs, through `spython-audit run` and through the debug adapter: a program that replaces
// sys.audit, adds hooks of its own (one raising, one recursing), closes or dup2's over the channel's
// descriptor, floods stdout, or forks a thousand times. Each run ends — no crash, no hang of the CLI
// or the adapter — and what happened is reported: a `spython.tamper` record, a notice, or the
// launcher's own message when it had to stop the program (README, "Limits, honestly").

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Program, Session, TARGETS as DAP_TARGETS, TEST_TIMEOUT_MS, needs as dapNeeds } from '../adapter/common';
import { needs, runCli } from '../cli/common';
import { assertCounter, assertSeqPerProcess, program, readReport, show, startCli, TARGETS } from './common';

after(() => Session.closeAll());

/** The channel's descriptor, found as a hostile program would: the socket in /proc/self/fd (past
 * stdio, which Node's pipes make sockets too). */
const FIND_CHANNEL = [
  'def channel_fds():',
  '    found = []',
  '    for name in os.listdir("/proc/self/fd"):',
  '        try:',
  '            if int(name) > 2 and os.readlink("/proc/self/fd/" + name).startswith("socket:"): found.append(int(name))',
  '        except OSError: pass',
  '    return found',
  'fds = channel_fds()',
  'assert len(fds) == 1, fds',
];

/** Runs `source` through `spython-audit run --jsonl`; resolves with the result and the report. */
async function audit(python: string, source: string, extra: string[] = []) {
  const { dir, file } = program(source);
  const report = path.join(dir, 'report.jsonl');
  const r = await runCli(['run', '-q', '--no-summary', '--jsonl', report, ...extra, '--python', python, file], { timeoutMs: 120_000 });
  return { r, records: readReport(report) };
}

function tampers(records: Array<{ event: string; args: unknown[] }>): string[] {
  return records.filter((rec) => rec.event === 'spython.tamper').map((rec) => String(rec.args[0]));
}

for (const { label, python } of TARGETS) {
  describe(`hostile programs through spython-audit on Python ${label}`, { ...needs(python), concurrency: 2 }, () => {
    test('replacing, then deleting sys.audit: each reported as spython.tamper, events from C still recorded', async () => {
      const { r, records } = await audit(
        python!,
        [
          'import os, sys',
          'real = sys.audit',
          'sys.audit = lambda *a: None',
          'sys.audit("spy.silenced")',
          'os.listdir(".")',
          'del sys.audit',
          'os.listdir("/")',
          'sys.audit = real',
          'real("spy.back")',
          '',
        ].join('\n'),
      );
      assert.equal(r.status, 0, show(r));
      assert.deepEqual(tampers(records), [
        'sys.audit was replaced: events raised from Python code no longer reach the audit hooks',
        'sys.audit was deleted: events raised from Python code no longer reach the audit hooks',
      ]);
      assert.deepEqual(
        records.filter((rec) => rec.event === 'os.listdir').slice(-2).map((rec) => rec.args[0]),
        ['.', '/'],
      );
      assert.ok(!records.some((rec) => rec.event === 'spy.silenced'));
      assert.ok(records.some((rec) => rec.event === 'spy.back'));
      assertSeqPerProcess(records);
    });

    test("the program's own hooks: one raises, one recurses (bounded and unbounded); every event is recorded", async () => {
      const { r, records } = await audit(
        python!,
        [
          'import sys',
          'def raising(event, args):',
          '    if event == "spy.raise": raise RuntimeError("hook says no")',
          'def recursive(event, args):',
          '    if event == "spy.deep" and args[0] < 50: sys.audit("spy.deep", args[0] + 1)',
          '    if event == "spy.endless": sys.audit("spy.endless", args[0] + 1)',
          'sys.addaudithook(raising)',
          'sys.addaudithook(recursive)',
          'try:',
          '    sys.audit("spy.raise")',
          'except RuntimeError as e:',
          '    print("caught:", e)',
          'sys.audit("spy.deep", 0)',
          'try:',
          '    sys.audit("spy.endless", 0)',
          'except RecursionError:',
          '    print("RecursionError")',
          'sys.audit("spy.after")',
          '',
        ].join('\n'),
      );
      assert.equal(r.status, 0, show(r));
      assert.equal(r.stdoutText, 'caught: hook says no\nRecursionError\n');
      assert.equal(records.filter((rec) => rec.event === 'sys.addaudithook').length, 2);
      assert.equal(records.filter((rec) => rec.event === 'spy.raise').length, 1);
      assertCounter(records, 'spy.deep', 51);
      const endless = records.filter((rec) => rec.event === 'spy.endless');
      assert.ok(endless.length > 10, `${endless.length} spy.endless records`);
      assert.deepEqual(endless.map((rec) => rec.args[0]), endless.map((_, i) => i));
      assert.ok(records.some((rec) => rec.event === 'spy.after'));
      assertSeqPerProcess(records);
    });

    test("os.close, os.dup2 and os.closerange on the channel's descriptor are refused and reported; nothing is lost", async () => {
      const { r, records } = await audit(
        python!,
        [
          'import os, sys',
          ...FIND_CHANNEL,
          'for i in range(1000): sys.audit("spy.n", i)',
          'os.close(fds[0])',
          'for i in range(1000, 2000): sys.audit("spy.n", i)',
          'try:',
          '    os.dup2(os.open(os.devnull, os.O_WRONLY), fds[0])',
          'except OSError as e:',
          '    print("dup2:", e.strerror)',
          'for i in range(2000, 3000): sys.audit("spy.n", i)',
          'r, w = os.pipe()',
          'os.closerange(3, 1000)',
          'for i in range(3000, 4000): sys.audit("spy.n", i)',
          'print("still there:", channel_fds() == fds, "and the rest closed:", not os.path.exists("/proc/self/fd/%d" % w))',
          '',
        ].join('\n'),
      );
      assert.equal(r.status, 0, show(r));
      assert.equal(r.stdoutText, 'dup2: Device or resource busy\nstill there: True and the rest closed: True\n');
      assertCounter(records, 'spy.n', 4000);
      assertSeqPerProcess(records);
      const reports = tampers(records);
      assert.match(reports[0], /^close\(\) on the audit channel's descriptor \(fd \d+\) refused: it belongs to the launcher$/);
      assert.ok(reports.some((t) => /\bdup2\(\)/.test(t)), reports.join('\n'));
      assert.ok(reports.some((t) => /\b(close_range|close)\(\)/.test(t)), reports.join('\n'));
    });

    for (const [what, call] of [
      ['closes', 'libc.syscall(SYS_close, fds[0])'],
      ['dup2s a socket of its own over', 'libc.syscall(SYS_dup3, mine.fileno(), fds[0], 0)'],
    ]) {
      test(`a raw system call that ${what} the channel's descriptor ends the program with a clear message`, async () => {
        const { r, records } = await audit(
          python!,
          [
            'import ctypes, os, socket, sys, time',
            ...FIND_CHANNEL,
            'SYS_close, SYS_dup3 = 3, 292  # x86-64',
            'libc = ctypes.CDLL("libc.so.6")',
            'mine, theirs = socket.socketpair()',
            'for i in range(100): sys.audit("spy.before", i)',
            'time.sleep(0.1)',
            call,
            'for i in range(100): sys.audit("spy.after", i)',
            'time.sleep(0.1)',
            'print("not stopped")',
            '',
          ].join('\n'),
        );
        assert.equal(r.status, 125, show(r));
        assert.equal(r.stdoutText, '');
        assert.match(r.stderrText, /spython: the program closed or replaced the audit channel's descriptor; stopping the program: fd \d+/);
        // Everything sent before stays whole; what came after the descriptor was taken is missing, and said so.
        assertCounter(records, 'spy.before', 100);
        assertSeqPerProcess(records);
        assert.ok(!records.some((rec) => rec.event === 'spy.after'));
        assert.match(r.stderrText, /The launcher stopped process \d+ \(status 125\): auditing could not go on/, show(r));
      });
    }

    test('a flood of 300 MB on stdout passes through untouched and loses no event', async () => {
      const { dir, file } = program(
        [
          'import sys',
          'chunk = b"x" * 1023 + b"\\n"',
          'for i in range(300 * 1024):',
          '    sys.stdout.buffer.write(chunk)',
          '    if i % 1024 == 0: sys.audit("spy.n", i // 1024)',
          '',
        ].join('\n'),
      );
      const report = path.join(dir, 'report.jsonl');
      const cli = startCli(['run', '-q', '--no-summary', '--jsonl', report, '--python', python!, file], 300_000, false);
      const r = await cli.done;
      assert.equal(r.status, 0, `status ${r.status}, stderr: ${r.stderrText}`);
      assert.equal(cli.stdoutBytes(), 300 * 1024 * 1024);
      assertCounter(readReport(report), 'spy.n', 300);
    });

    test('a thousand forks, all alive at once: every child reported under its own pid', async () => {
      const { r, records } = await audit(
        python!,
        [
          'import os, sys',
          'kids = []',
          'for i in range(1000):',
          '    pid = os.fork()',
          '    if pid == 0:',
          '        for k in range(5): sys.audit("spy.child", i, k)',
          '        os._exit(0)',
          '    kids.append(pid)',
          'print(sum(os.waitpid(pid, 0)[1] for pid in kids))',
          '',
        ].join('\n'),
        ['--python-arg=-Wignore'],
      );
      assert.equal(r.status, 0, show(r));
      assert.equal(r.stdoutText, '0\n');
      assertSeqPerProcess(records);
      const children = new Map<number, Array<[number, number]>>();
      for (const rec of records.filter((x) => x.event === 'spy.child')) {
        children.set(rec.pid, [...(children.get(rec.pid) ?? []), rec.args as [number, number]]);
      }
      assert.equal(children.size, 1000);
      for (const [pid, events] of children) {
        const i = events[0][0];
        assert.deepEqual(events, [0, 1, 2, 3, 4].map((k) => [i, k]), `process ${pid}`);
      }
    });
  });
}

for (const { label, python } of DAP_TARGETS) {
  describe(`hostile programs through the debug adapter on Python ${label}`, { ...dapNeeds(python), concurrency: 2, timeout: TEST_TIMEOUT_MS }, () => {
    test("a channel descriptor closed and dup2'ed over: the session goes on, the console says so", async () => {
      const prog = new Program(
        [...FIND_CHANNEL, 'os.close(fds[0])', 'try: os.dup2(1, fds[0])', 'except OSError: pass', 'sys.audit("spy.after")', 'print("done")'].join('\n'),
      );
      await Session.with(async (s) => {
        await s.launch(prog.launchArgs(python));
        await s.ended();
        assert.equal(s.exitCode, 0);
        assert.equal(s.text('stdout'), 'done\n');
        // Both before the next event: one report names both.
        const reports = s.records().filter((r) => r.data.event === 'spython.tamper').map((r) => r.data.args[0]);
        assert.deepEqual(reports, ["close(), dup2() on the audit channel's descriptor (fd 3) refused: it belongs to the launcher"]);
        assert.ok(prog.runRecords().some((rec) => rec.event === 'spy.after'));
      });
    });

    test('replacing sys.audit and a raising hook of its own: reported, and the session ends', async () => {
      const prog = new Program(
        [
          'def hook(event, args):',
          '    if event == "spy.raise": raise ValueError("no")',
          'sys.addaudithook(hook)',
          'try: sys.audit("spy.raise")',
          'except ValueError: print("caught")',
          'sys.audit = print',
          'os.listdir(HERE)',
        ].join('\n'),
      );
      await Session.with(async (s) => {
        await s.launch(prog.launchArgs(python));
        await s.ended();
        assert.equal(s.exitCode, 0);
        assert.equal(s.text('stdout'), 'caught\n');
        const tamper = s.records().find((r) => r.data.event === 'spython.tamper');
        assert.ok(tamper, s.consoleLines().join('\n'));
        assert.match(tamper.output.output, /sys\.audit was replaced/);
      });
    });

    test('300 MB on stdout: the Debug Console gets a bounded share and a notice, the run log every event', async () => {
      const prog = new Program(
        [
          'chunk = b"x" * 1023 + b"\\n"',
          'for i in range(300 * 1024):',
          '    sys.stdout.buffer.write(chunk)',
          '    if i % 1024 == 0: sys.audit("spy.n", i // 1024)',
        ].join('\n'),
      );
      await Session.with(async (s) => {
        const started = Date.now();
        await s.launch(prog.launchArgs(python));
        await s.ended();
        const seconds = (Date.now() - started) / 1000;
        assert.equal(s.exitCode, 0);
        const shown = s.text('stdout').length;
        // 1 MB at once, then 256 KB a second.
        assert.ok(shown <= 1024 * 1024 + (seconds + 1) * 256 * 1024, `${shown} bytes shown in ${seconds} s`);
        assert.ok(shown >= 1024 * 1024, `only ${shown} bytes shown`);
        assert.ok(
          s.consoleLines().some((line) => /^… [\d.]+ MB of the program's output not shown/.test(line)),
          s.consoleLines().slice(-5).join('\n'),
        );
        const n = prog.runRecords().filter((rec) => rec.event === 'spy.n');
        assert.deepEqual(n.map((rec) => rec.args[0]), Array.from({ length: 300 }, (_, i) => i));
      });
    });

    test('a thousand forks: the session ends, every child in the run log', async () => {
      const prog = new Program(
        [
          'import warnings; warnings.simplefilter("ignore")',
          'kids = []',
          'for i in range(1000):',
          '    pid = os.fork()',
          '    if pid == 0:',
          '        sys.audit("spy.child", i)',
          '        os._exit(0)',
          '    kids.append(pid)',
          'for pid in kids: os.waitpid(pid, 0)',
          'print("forked")',
        ].join('\n'),
      );
      await Session.with(async (s) => {
        await s.launch(prog.launchArgs(python));
        await s.ended();
        assert.equal(s.exitCode, 0);
        assert.equal(s.text('stdout'), 'forked\n');
        const children = prog.runRecords().filter((rec) => rec.event === 'spy.child');
        assert.equal(children.length, 1000);
        assert.equal(new Set(children.map((rec) => rec.pid)).size, 1000);
      });
    });
  });
}
