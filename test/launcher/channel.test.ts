// The real launcher against a real ChannelServer (docs/protocol.md): the handshake, the record
// fields, no loss on any way out of a process, threads, fork, and the reader's side of things
// (reject, a missing socket, backpressure, a reader that goes away).

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChannelConnection, ChannelServer, ControlMessage } from '../../adapter/channel';
import { until } from '../helpers/fixtures';
import { launcherBuilt } from '../helpers/interpreters';
import { assertThreadRecords, FORK_PROGRAM, THREADS_PROGRAM } from '../helpers/workloads';
import { collect, CollectedConnection, runLauncher, RunResult } from '../helpers/run';
import {
  baseEnv,
  ChannelRun,
  channelTargets,
  describeResult,
  needs,
  parseRecords,
  Rec,
  runWithChannel,
  tempDir,
  writeFile,
} from './common';

const NOT_BUILT = launcherBuilt() ? {} : { skip: 'launcher not built (npm run build)' };

function pyStr(s: string): string {
  return JSON.stringify(s); // a JSON string literal is a valid Python str literal for these paths
}

/** seq must run 1, 2, … N with no gap and no repeat. */
function assertSeq(records: Rec[], what = 'records'): void {
  for (let i = 0; i < records.length; i++) {
    if (records[i].seq !== i + 1) {
      assert.fail(`${what}: record #${i + 1} has seq ${records[i].seq} (expected ${i + 1}): a gap or a repeat`);
    }
  }
}

/** The args[0] of every `name` record must be exactly 0, 1, … count-1. */
function assertCounter(records: Rec[], name: string, count: number): void {
  const values = records.filter((r) => r.event === name).map((r) => r.args[0]);
  if (values.length !== count) {
    const missingFrom = values.findIndex((v, i) => v !== i);
    assert.fail(
      `${values.length} '${name}' records arrived, expected ${count}` +
        (values.length ? ` (first: ${values[0]}, last: ${values[values.length - 1]}, first out of place at #${missingFrom})` : ''),
    );
  }
  for (let i = 0; i < count; i++) {
    if (values[i] !== i) assert.fail(`'${name}' record #${i} carries ${JSON.stringify(values[i])}, expected ${i}`);
  }
}

/** Whether `pid` is still there. A zombie may still have threads exiting, its sockets still open:
 * only a process reaped is surely gone. */
function processExists(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}

function single(run: ChannelRun): CollectedConnection {
  assert.equal(run.connections.length, 1, `expected one channel connection\n${describeResult(run.result)}`);
  return run.connections[0];
}

function isInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v);
}

interface Ending {
  name: string;
  /** Python lines after the 10,000 events. */
  code: string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  /** The `exit` control message's status (undefined: the message must be absent). */
  exitMessage: number | undefined;
}

const N_EVENTS = 10_000;

const ENDINGS: Ending[] = [
  { name: 'normal end', code: ['pass'], status: 0, signal: null, exitMessage: 0 },
  { name: 'sys.exit(3)', code: ['sys.exit(3)'], status: 3, signal: null, exitMessage: 3 },
  { name: 'uncaught exception', code: ['raise RuntimeError("boom")'], status: 1, signal: null, exitMessage: 1 },
  { name: 'os._exit(5)', code: ['os._exit(5)'], status: 5, signal: null, exitMessage: undefined },
  {
    name: 'SIGTERM to itself',
    code: ['os.kill(os.getpid(), signal.SIGTERM)', 'time.sleep(5)', 'sys.exit(99)'],
    status: null,
    signal: 'SIGTERM',
    exitMessage: undefined,
  },
  {
    name: 'segfault (ctypes.string_at(0))',
    code: ['import ctypes', 'ctypes.string_at(0)', 'sys.exit(99)'],
    status: null,
    signal: 'SIGSEGV',
    exitMessage: undefined,
  },
  { name: 'os.abort()', code: ['os.abort()', 'sys.exit(99)'], status: null, signal: 'SIGABRT', exitMessage: undefined },
  {
    name: 'SIGKILL after a 0.2 s sleep',
    code: ['time.sleep(0.2)', 'os.kill(os.getpid(), signal.SIGKILL)', 'time.sleep(5)', 'sys.exit(99)'],
    status: null,
    signal: 'SIGKILL',
    exitMessage: undefined,
  },
];

for (const target of channelTargets()) {
  const interp = target.interp;
  const launch = (pyArgs: string[]) => [...target.modeArgs, '--python', interp?.path ?? 'python3', '--', ...pyArgs];

  describe(`channel on ${target.label}`, { concurrency: 2, ...NOT_BUILT, ...needs(interp) }, () => {
    const dir = tempDir('spython-channel-');

    // --- one run, several checks ------------------------------------------------------------
    const basicScript = writeFile(
      dir,
      'basic.py',
      [
        /* 1 */ 'import os, sys, subprocess',
        /* 2 */ 'print("env", repr(os.environ.get("SPYTHON_CHANNEL")), repr(os.environ.get("SPYTHON_TOKEN")))',
        /* 3 */ 'print("pid", os.getpid(), os.getppid())',
        /* 4 */ 'sys.audit("spy.test", 1)',
        /* 5 */ 'def where():',
        /* 6 */ '    sys.audit("spy.func", "x")',
        /* 7 */ 'where()',
        /* 8 */ 'child = subprocess.run(["/usr/bin/env"], stdout=subprocess.PIPE).stdout.decode()',
        /* 9 */ 'print("child-env", [l.split("=")[0] for l in child.splitlines() if l.startswith(("SPYTHON_CHANNEL=", "SPYTHON_TOKEN="))])',
        /* 10 */ 'with open("/proc/self/environ", "rb") as f: environ = f.read()',
        /* 11 */ 'print("proc-environ", [v.split(b"=")[0].decode() for v in environ.split(b"\\0") if v.startswith(b"SPYTHON_")])',
        '',
      ].join('\n'),
    );
    let basic: ChannelRun;
    let conn: CollectedConnection;
    let records: Rec[];
    let out: Record<string, string>;
    before(async () => {
      if (!interp) return;
      basic = await runWithChannel(launch([basicScript]), { cwd: dir });
      conn = basic.connections[0];
      out = {};
      for (const line of basic.result.stdoutText.split('\n')) {
        const sp = line.indexOf(' ');
        if (sp > 0) out[line.slice(0, sp)] = line.slice(sp + 1);
      }
    });

    test('the script runs and one connection arrives', () => {
      assert.equal(basic.result.status, 0, describeResult(basic.result));
      single(basic);
      assert.equal(conn.protocolErrors.length, 0, conn.protocolErrors.join('\n'));
      assert.equal(conn.rejected, undefined);
    });

    test('hello: protocol 1, pid, ppid, python version, mode, executable', () => {
      const hello = conn.hello;
      assert.ok(hello, 'no hello');
      const [pid, ppid] = out.pid.split(' ').map(Number);
      assert.equal(hello.protocol, 1);
      assert.equal(hello.pid, pid, 'hello.pid is not the Python process');
      assert.equal(hello.ppid, ppid, 'hello.ppid is not the parent of the Python process');
      assert.equal(hello.ppid, process.pid, 'the launcher is not a direct child of the test');
      assert.equal(hello.python, interp!.version);
      assert.equal(hello.mode, target.mode);
      assert.equal(hello.executable, interp!.path);
      assert.equal(hello.freeThreaded, false);
      assert.equal(hello.token, basic.server.token);
    });

    test('SPYTHON_CHANNEL and SPYTHON_TOKEN are not in os.environ, nor in a child process', () => {
      assert.equal(out.env, 'None None', `the script sees: ${out.env}`);
      assert.equal(out['child-env'], '[]', `a child process sees: ${out['child-env']}`);
    });

    test('SPYTHON_TOKEN cannot be read from /proc/self/environ', () => {
      assert.ok(out['proc-environ'] !== undefined, describeResult(basic.result));
      assert.ok(
        !out['proc-environ'].includes('SPYTHON_TOKEN'),
        `the audited script reads the channel token from /proc/self/environ: ${out['proc-environ']}`,
      );
    });

    test('every record is valid JSON with event/seq/ts/pid/ppid/tid/args, seq 1..N without gaps', () => {
      records = parseRecords(conn);
      assert.ok(records.length > 10, `only ${records.length} records`);
      const [pid] = out.pid.split(' ').map(Number);
      const firstKeys = new Set<string>();
      for (const [i, r] of records.entries()) {
        firstKeys.add(Object.keys(r)[0]);
        assert.equal(typeof r.event, 'string', `record #${i + 1}: event`);
        assert.equal(r.event, conn.names[i], `record #${i + 1}: name seen by the reader differs`);
        assert.ok(isInt(r.seq) && isInt(r.ts) && isInt(r.tid), `record #${i + 1}: seq/ts/tid not integers`);
        assert.equal(r.pid, pid, `record #${i + 1}: pid`);
        assert.equal(r.ppid, process.pid, `record #${i + 1}: ppid`);
        assert.ok(Array.isArray(r.args), `record #${i + 1}: args is not an array`);
        if ('file' in r || 'line' in r || 'func' in r) {
          assert.ok(typeof r.file === 'string' && isInt(r.line) && typeof r.func === 'string', `record #${i + 1}: location`);
        }
        if (i > 0) assert.ok(r.ts >= records[i - 1].ts, `record #${i + 1}: ts went backwards`);
      }
      assert.deepEqual([...firstKeys], ['event']);
      assertSeq(records);
      assert.equal(conn.records.length, conn.connection.records);
    });

    test("a record's file/line/func point at the line that raised it", () => {
      records ??= parseRecords(conn);
      const t = records.find((r) => r.event === 'spy.test');
      assert.ok(t, 'no spy.test record');
      assert.deepEqual(t.args, [1]);
      assert.equal(t.file, basicScript);
      assert.equal(t.line, 4);
      assert.equal(t.func, '<module>');
      assert.equal(t.thread, 'MainThread');
      assert.equal(t.tid, t.pid, 'the main thread has tid == pid');
      const f = records.find((r) => r.event === 'spy.func');
      assert.ok(f, 'no spy.func record');
      assert.deepEqual(f.args, ['x']);
      assert.equal(f.file, basicScript);
      assert.equal(f.line, 6);
      assert.equal(f.func, 'where');
    });

    test("an event raised in the library carries the program's calling line as `caller`", () => {
      records ??= parseRecords(conn);
      const popen = records.find((r) => r.event === 'subprocess.Popen');
      assert.ok(popen, 'no subprocess.Popen record');
      assert.match(String(popen.file), /subprocess\.py$/);
      assert.deepEqual(popen.caller, { file: basicScript, line: 8, func: '<module>' });
      // The import system's reads for `import subprocess` are placed at the import statement.
      const read = records.find((r) => r.event === 'open' && /\/subprocess(\.cpython-\d+)?\.pyc?$/.test(String(r.args[0])));
      assert.ok(read, 'no open of subprocess.py');
      assert.match(String(read.file), /^<frozen importlib\./);
      assert.deepEqual(read.caller, { file: basicScript, line: 1, func: '<module>' });
      // Program code's own events have no caller.
      for (const name of ['spy.test', 'spy.func']) assert.equal(records.find((r) => r.event === name)?.caller, undefined, name);
      for (const r of records) {
        if (r.caller === undefined) continue;
        const caller = r.caller as Record<string, unknown>;
        assert.ok(typeof caller.file === 'string' && isInt(caller.line) && typeof caller.func === 'string', `caller of ${r.event}`);
      }
    });

    test("`caller` is found past frames that C code called, CPython's shim frames and generators' frames", async () => {
      // map() calls glob.glob from C (3.12+ puts a shim frame between); logging.FileHandler's __init__
      // (library code), called with all its parameters (3.9 added one) often enough to be specialized
      // (3.13 then pushes a shim frame of a static code object below it); pathlib's glob is a
      // generator the program's loop resumes.
      const script = writeFile(
        dir,
        'walk_through_c.py',
        [
          /* 1 */ 'import glob, logging, pathlib, sys',
          /* 2 */ 'def main():',
          /* 3 */ '    list(map(glob.glob, ["*.nothing"]))',
          /* 4 */ '    for i in range(20):',
          /* 5 */ '        (logging.FileHandler("walk.log", "a", None, False, None) if sys.version_info >= (3, 9) else logging.FileHandler("walk.log", "a", None, False)).close()',
          /* 6 */ '    return [p for p in pathlib.Path(".").glob("*.nothing")]',
          /* 7 */ 'main()',
          '',
        ].join('\n'),
      );
      const run = await runWithChannel(launch([script]), { cwd: dir });
      assert.equal(run.result.status, 0, describeResult(run.result));
      const recs = parseRecords(single(run));
      const callers = (event: string, pattern: RegExp) =>
        recs.filter((r) => r.event === event && pattern.test(String(r.args[0])) && r.caller !== undefined).map((r) => r.caller as Record<string, unknown>);
      const scans = callers('os.scandir', /^\.?$/);
      assert.ok(scans.length >= 2, `os.scandir records with a caller: ${JSON.stringify(scans)}`);
      assert.deepEqual(scans[0], { file: script, line: 3, func: 'main' });
      // The comprehension is a function of its own before 3.12 (PEP 709 inlined it).
      assert.deepEqual({ ...scans[scans.length - 1], func: undefined }, { file: script, line: 6, func: undefined });
      assert.match(String(scans[scans.length - 1].func), /^(main|<listcomp>)$/);
      const opens = callers('open', /walk\.log$/);
      assert.equal(opens.length, 20, JSON.stringify(opens));
      for (const c of opens) assert.deepEqual(c, { file: script, line: 5, func: 'main' });
    });

    test('locations stay right with more live code objects than the cache holds, and with dead ones replaced', async () => {
      // 3,000 live functions (the launcher caches 1,024 code objects), called in order and back;
      // then 2,000 that each die before the next is made, so addresses come back for new code.
      const script = writeFile(
        dir,
        'many_codes.py',
        [
          'import sys',
          'live = []',
          'for i in range(3000):',
          '    ns = {}',
          '    exec(compile("\\n" * (i % 50) + "def f():\\n    sys.audit(\'spy.live\', %d)\\n" % i, "live%d.py" % i, "exec"), {"sys": sys}, ns)',
          '    live.append(ns["f"])',
          'for f in live + live[::-1]:',
          '    f()',
          'for i in range(2000):',
          '    ns = {}',
          '    exec(compile("\\n" * (i % 7) + "def g():\\n    sys.audit(\'spy.dead\', %d)\\n" % i, "dead%d.py" % i, "exec"), {"sys": sys}, ns)',
          '    ns["g"]()',
          '',
        ].join('\n'),
      );
      const run = await runWithChannel(launch([script]), { cwd: dir });
      assert.equal(run.result.status, 0, describeResult(run.result));
      const recs = parseRecords(single(run));
      const wrong: string[] = [];
      const check = (event: string, expectedCount: number, place: (i: number) => { file: string; line: number; func: string }) => {
        const found = recs.filter((r) => r.event === event);
        assert.equal(found.length, expectedCount, event);
        for (const r of found) {
          const expected = place(Number(r.args[0]));
          const actual = { file: r.file, line: r.line, func: r.func };
          if (JSON.stringify(actual) !== JSON.stringify(expected)) wrong.push(`${event} ${JSON.stringify(r.args)}: ${JSON.stringify(actual)}`);
        }
      };
      check('spy.live', 6000, (i) => ({ file: `live${i}.py`, line: (i % 50) + 2, func: 'f' }));
      check('spy.dead', 2000, (i) => ({ file: `dead${i}.py`, line: (i % 7) + 2, func: 'g' }));
      assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} records placed wrong`);
    });

    test("the 'exit' control message carries the status on normal exit", () => {
      const exits = conn.controls.filter((c) => c.type === 'exit');
      assert.equal(exits.length, 1, `exit messages: ${JSON.stringify(conn.controls)}`);
      assert.equal(exits[0].status, 0);
      assert.equal(conn.exitStatus, 0);
    });

    // --- no loss on every way out ------------------------------------------------------------
    for (const ending of ENDINGS) {
      test(`no loss: ${N_EVENTS} events, then ${ending.name}`, async () => {
        const script = writeFile(
          dir,
          `ending_${ending.name.replace(/\W+/g, '_')}.py`,
          [
            'import os, sys, signal, time',
            `for i in range(${N_EVENTS}):`,
            '    sys.audit("spy.n", i)',
            ...ending.code,
            '',
          ].join('\n'),
        );
        const run = await runWithChannel(launch([script]), { cwd: dir });
        const r = run.result;
        // Every property is checked, and every failure reported together.
        const failures: string[] = [];
        const check = (what: string, fn: () => void) => {
          try {
            fn();
          } catch (err) {
            failures.push(`${what}: ${(err as Error).message}`);
          }
        };
        const c = run.connections[0];
        check('connections', () => single(run));
        check('protocol errors', () => assert.equal(c?.protocolErrors.length, 0, c?.protocolErrors.join('\n')));
        check('records', () => {
          const recs = parseRecords(c);
          assertCounter(recs, 'spy.n', N_EVENTS);
          assertSeq(recs);
        });
        check('signal', () => assert.equal(r.signal, ending.signal));
        check('status', () => assert.equal(r.status, ending.status));
        check('exit control message', () =>
          assert.equal(
            c?.exitStatus,
            ending.exitMessage,
            JSON.stringify(c?.controls.filter((m) => m.type === 'exit')),
          ),
        );
        if (failures.length) assert.fail(`${failures.join('\n')}\n${describeResult(r)}`);
      });
    }

    test('64 threads x 5,000 events: all 320,000 arrive, valid, per-thread order kept', async () => {
      const script = writeFile(dir, 'threads.py', THREADS_PROGRAM);
      const run = await runWithChannel(launch([script]), { cwd: dir, timeoutMs: 180_000 });
      assert.equal(run.result.status, 0, describeResult(run.result));
      assert.equal(run.result.stdoutText, 'done\n');
      const c = single(run);
      assert.equal(c.protocolErrors.length, 0, c.protocolErrors.slice(0, 5).join('\n'));
      const count = c.names.filter((n) => n === 'spy.n').length;
      assert.equal(count, 320_000, 'number of spy.n records');
      const recs = parseRecords(c);
      assertSeq(recs);
      assertThreadRecords(recs);
    });

    test('event names: runs of one name, names of one length, names that need escaping', async () => {
      // The launcher escapes a name once per run of it; each record must still carry its own name.
      const names = ['spy.a', 'spy.a', 'spy.b', 'spy"c', 'spy.a', 'spy\\d', 'spy.b', 'spy.b', 'é.ü', 'spy.a'];
      const script = writeFile(
        dir,
        'names.py',
        ['import sys', `for name in ${JSON.stringify(names)} * 50:`, '    sys.audit(name)', ''].join('\n'),
      );
      const run = await runWithChannel(launch([script]), { cwd: dir });
      assert.equal(run.result.status, 0, describeResult(run.result));
      const seen = parseRecords(single(run))
        .map((r) => r.event)
        .filter((name) => names.includes(name));
      assert.deepEqual(seen, Array.from({ length: 50 }, () => names).flat());
    });

    test("a forked child's events arrive on its own connection", async () => {
      const script = writeFile(dir, 'fork.py', FORK_PROGRAM);
      const run = await runWithChannel(launch([script]), { cwd: dir, minConnections: 2 });
      assert.equal(run.result.status, 0, describeResult(run.result));
      const [parentPid, childPid, childStatus] = run.result.stdoutText.trim().split(' ').map(Number);
      assert.equal(childStatus, 7);
      assert.equal(run.connections.length, 2, 'expected two connections');
      const parent = run.connections.find((c) => c.hello?.pid === parentPid);
      const child = run.connections.find((c) => c.hello?.pid === childPid);
      assert.ok(parent, `no connection with hello.pid ${parentPid}`);
      assert.ok(child, `no connection with hello.pid ${childPid}`);
      assert.equal(child.hello!.ppid, parentPid, "the child's hello.ppid is not the parent's pid");
      assert.equal(child.hello!.python, interp!.version);
      assert.equal(child.hello!.mode, target.mode);

      const childRecs = parseRecords(child);
      assertSeq(childRecs, 'child');
      assertCounter(childRecs, 'spy.child', 1000);
      for (const r of childRecs) {
        assert.equal(r.pid, childPid, `child record ${r.event} carries pid ${r.pid}`);
        assert.equal(r.ppid, parentPid, `child record ${r.event} carries ppid ${r.ppid}`);
      }
      assert.ok(!childRecs.some((r) => r.event === 'spy.parent'), "the parent's events leaked into the child's stream");

      const parentRecs = parseRecords(parent);
      assertSeq(parentRecs, 'parent');
      assert.ok(!parentRecs.some((r) => r.event === 'spy.child'), "the child's events arrived on the parent's connection");
      assert.deepEqual(
        parentRecs.filter((r) => r.event === 'spy.parent').map((r) => r.args[0]),
        ['before', 'after'],
      );
      for (const r of parentRecs) assert.equal(r.pid, parentPid);
      assert.equal(parent.exitStatus, 0);
      assert.equal(child.exitStatus, undefined, 'os._exit in the child: no exit message');
    });

    test('os.fork() behaves as without the launcher, but for the documented fork warning', async () => {
      // Python 3.12+ warns when a process that has other threads forks. With a channel the launcher
      // runs two helper threads (the flusher and the control reader; README, "Limits"), so that one
      // DeprecationWarning is the only difference allowed.
      const program = [
        'import os, sys',
        'pid = os.fork()',
        'if pid == 0:',
        '    os._exit(0)',
        'os.waitpid(pid, 0)',
        'print("forked")',
      ].join('\n');
      const pyArgs = ['-c', program];
      const [direct, run] = await Promise.all([
        runLauncher([...target.modeArgs, '--python', interp!.path, '--', ...pyArgs], { env: baseEnv() }),
        runWithChannel(launch(pyArgs), { cwd: dir, minConnections: 1 }),
      ]);
      assert.equal(direct.status, 0, describeResult(direct));
      assert.equal(direct.stdoutText, 'forked\n');
      const forkWarning =
        /^<string>:2: DeprecationWarning: This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks in the child\.\n(?: {2}pid = os\.fork\(\)\n)?/;
      const version = interp!.version.split('.').map(Number);
      const stderr =
        version[0] === 3 && version[1] >= 12 ? run.result.stderrText.replace(forkWarning, '') : run.result.stderrText;
      assert.equal(stderr, direct.stderrText, describeResult(run.result));
      assert.equal(run.result.stdoutText, direct.stdoutText, describeResult(run.result));
      assert.equal(run.result.status, direct.status);
    });

    // --- the reader's side --------------------------------------------------------------------
    test('a reject answer: exit 125, the reason on stderr, no Python code run', async () => {
      const marker = path.join(dir, 'rejected-but-ran');
      const run = await runWithChannel(launch(['-c', `open(${pyStr(marker)}, "w").close(); print("ran")`]), {
        config: () => {
          throw new Error('not today, thank you');
        },
      });
      assert.equal(run.result.status, 125, describeResult(run.result));
      assert.match(run.result.stderrText, /^spython: .*not today, thank you/m, describeResult(run.result));
      assert.equal(run.result.stdoutText, '');
      assert.ok(!fs.existsSync(marker), 'Python code ran although the handshake was refused');
      assert.equal(run.connections[0]?.rejected, 'configuration failed: not today, thank you');
    });

    test('a wrong token: refused, exit 125, no Python code run', async () => {
      const marker = path.join(dir, 'wrong-token-but-ran');
      const run = await runWithChannel(launch(['-c', `open(${pyStr(marker)}, "w").close()`]), {
        env: { SPYTHON_TOKEN: '0'.repeat(64) },
      });
      assert.equal(run.result.status, 125, describeResult(run.result));
      assert.match(run.result.stderrText, /^spython: .*wrong channel token/m);
      assert.ok(!fs.existsSync(marker), 'Python code ran');
    });

    test('a reader that closes without answering: exit 125, no Python code run', async () => {
      const marker = path.join(dir, 'closed-but-ran');
      const run = await runWithChannel(launch(['-c', `open(${pyStr(marker)}, "w").close()`]), {
        onServer: (server) => server.on('connection', (c: ChannelConnection) => c.destroy()),
      });
      assert.equal(run.result.status, 125, describeResult(run.result));
      assert.match(run.result.stderrText, /^spython: /);
      assert.ok(!fs.existsSync(marker), 'Python code ran');
    });

    test('a channel path that does not exist: exit 125, no Python code run', async () => {
      const marker = path.join(dir, 'nochannel-but-ran');
      const r = await runLauncher(launch(['-c', `open(${pyStr(marker)}, "w").close()`]), {
        env: baseEnv({ SPYTHON_CHANNEL: path.join(dir, 'no-such-dir', 'sock'), SPYTHON_TOKEN: 'ab'.repeat(32) }),
      });
      assert.equal(r.status, 125, describeResult(r));
      assert.match(r.stderrText, /^spython: /);
      assert.ok(!fs.existsSync(marker), 'Python code ran');
    });

    test('backpressure: a paused reader loses nothing (200,000 events)', async () => {
      let exited = false;
      let runningWhilePaused: boolean | undefined;
      const server = await ChannelServer.create();
      const collector = collect(server);
      server.on('connection', (c: ChannelConnection) => {
        // Paused at the first record (not in the 'hello' listener: ChannelConnection resumes the
        // socket itself right after emitting 'hello', which would undo the pause).
        c.once('record', () => {
          c.pause();
          setTimeout(() => {
            runningWhilePaused = !exited;
            c.resume();
          }, 1000);
        });
      });
      let result: RunResult;
      let conns: CollectedConnection[];
      try {
        result = await runLauncher(
          launch(['-c', 'import sys\nfor i in range(200000): sys.audit("spy.n", i)\nprint("done")']),
          { env: baseEnv(), channel: server, timeoutMs: 120_000 },
        ).finally(() => (exited = true));
        conns = await collector.all(1, 30_000);
      } finally {
        collector.stop();
        await server.close();
      }
      assert.equal(result.status, 0, describeResult(result));
      assert.equal(result.stdoutText, 'done\n');
      assert.equal(runningWhilePaused, true, 'the program finished while its reader was paused: writes did not block');
      assert.equal(conns.length, 1);
      const recs = parseRecords(conns[0]);
      assertSeq(recs);
      assertCounter(recs, 'spy.n', 200_000);
    });

    test("pongs written while the program's threads storm: nothing waits forever, every record arrives", async () => {
      // Each pong is written at once, after every record committed before it, by the launcher's
      // reader thread: the program's threads must go on meanwhile (a design with the flusher
      // writing batches outside the lock starved them here). The flood goes on until the connection
      // ends: the pings written after the launcher exited fail, and must not cost a record.
      let pongs = 0;
      const flood = (server: ChannelServer) =>
        server.on('connection', (c: ChannelConnection) =>
          c.once('hello', () => {
            c.on('control', (m: ControlMessage) => m.type === 'pong' && pongs++);
            const send = () => {
              if (c.ended) return;
              for (let i = 0; i < 20; i++) c.send({ type: 'ping', id: i });
              setImmediate(send);
            };
            send();
          }),
        );
      const program = [
        'import sys, threading, time',
        'def storm(k):',
        '    for i in range(150000): sys.audit("spy.t%d" % k, i)',
        'threads = [threading.Thread(target=storm, args=(k,)) for k in range(2)]',
        'for t in threads: t.start()',
        'for t in threads: t.join()',
        'print("done")',
      ].join('\n');
      const { result, connections } = await runWithChannel(launch(['-c', program]), { onServer: flood, minConnections: 1 });
      assert.equal(result.status, 0, describeResult(result));
      assert.equal(result.stdoutText, 'done\n');
      assert.ok(pongs > 100, `${pongs} pongs`);
      const recs = parseRecords(connections[0]);
      assertSeq(recs);
      assertCounter(recs, 'spy.t0', 150_000);
      assertCounter(recs, 'spy.t1', 150_000);
    });

    test('a message written after the launcher exited, with its last records unread: none is lost', async () => {
      // The reader stops reading at the hello, the program leaves its records in the socket and exits;
      // then the reader writes (as the adapter does when the user pauses), and only then reads on.
      // A failed write must not end the reading.
      let sent: boolean | undefined;
      const writeLate = (server: ChannelServer) =>
        server.on('connection', (c: ChannelConnection) =>
          c.once('hello', (hello) => {
            c.pause();
            void until(() => !processExists(hello.pid), `process ${hello.pid} reaped`, 30_000).then(() => {
              sent = c.send({ type: 'pause' });
              setTimeout(() => c.resume(), 100);
            });
          }),
        );
      const program = 'import sys\nfor i in range(500): sys.audit("spy.late", i, "x" * 40)\nprint("done")';
      const run = await runWithChannel(launch(['-c', program]), { onServer: writeLate, minConnections: 1 });
      assert.equal(run.result.status, 0, describeResult(run.result));
      assert.equal(sent, false, 'the write after the exit cannot succeed');
      const connection = single(run);
      const recs = parseRecords(connection);
      assertSeq(recs);
      assertCounter(recs, 'spy.late', 500);
      assert.equal(connection.exitStatus, 0);
    });

    test('a reader that goes away mid-run: stderr says so, exit 125', async () => {
      const server = await ChannelServer.create();
      const collector = collect(server);
      let seen = 0;
      server.on('connection', (c: ChannelConnection) => {
        c.on('record', (name: string) => {
          if (name === 'spy.tick' && ++seen === 50) c.destroy();
        });
      });
      let result: RunResult;
      try {
        result = await runLauncher(
          launch([
            '-c',
            'import sys, time\nfor i in range(60000):\n    sys.audit("spy.tick", i)\n    time.sleep(0.0005)\nprint("finished unaudited")',
          ]),
          { env: baseEnv(), channel: server, timeoutMs: 120_000 },
        );
      } finally {
        collector.stop();
        await server.close();
      }
      assert.equal(result.status, 125, describeResult(result));
      assert.match(result.stderrText, /^spython: .*audit channel closed/m);
      assert.ok(!result.stdoutText.includes('finished unaudited'));
    });

    test('control messages: ping gets pong, an unknown type gets an error, the connection stays up', async () => {
      const flag = path.join(dir, `control-${Date.now()}`);
      const got: ControlMessage[] = [];
      let pingError: unknown;
      const run = await runWithChannel(
        launch([
          '-c',
          [
            'import os, sys, time',
            `while not os.path.exists(${pyStr(flag)}):`,
            '    time.sleep(0.01)',
            'sys.audit("spy.after", 1)',
          ].join('\n'),
        ]),
        {
          timeoutMs: 60_000,
          onServer: (server) =>
            server.on('connection', (c: ChannelConnection) => {
              c.on('control', (m: ControlMessage) => got.push(m));
              c.once('hello', async () => {
                try {
                  await c.ping(20_000);
                  c.send({ type: 'no-such-type', x: 1 });
                  c.send({ type: 'ping', id: 77 });
                  // Wait for the answers before letting the script go on.
                  for (let i = 0; i < 2000 && !got.some((m) => m.type === 'pong' && m.id === 77); i++) {
                    await new Promise((r) => setTimeout(r, 10));
                  }
                } catch (err) {
                  pingError = err;
                } finally {
                  fs.writeFileSync(flag, '');
                }
              });
            }),
        },
      );
      assert.equal(run.result.status, 0, describeResult(run.result));
      assert.equal(pingError, undefined, `ping failed: ${pingError}`);
      const error = got.find((m) => m.type === 'error');
      assert.ok(error, `no error answer: ${JSON.stringify(got)}`);
      assert.match(String(error.line), /no-such-type/);
      assert.ok(got.some((m) => m.type === 'pong' && m.id === 77), `no pong 77: ${JSON.stringify(got)}`);
      assert.ok(run.connections[0].names.includes('spy.after'));
    });
  });
}
