// Policies under attack: what PEP 578 itself warns about — ctypes writing memory, gc.get_objects()
// walks to the hook's objects, sys.audit replaced (test/reliability/hostile), hooks added by the
// program — each refused, or reported (a record of its own, or `spython.tamper`), through
// `spython-audit run`. What ctypes can still do is in README, "Limits, honestly".

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { needs, runCli } from '../cli/common';
import { assertSeqPerProcess, program, readReport, show, TARGETS } from './common';

async function audit(python: string, source: string, flags: string[] = []) {
  const { dir, file } = program(source);
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'the secret\n');
  const report = path.join(dir, 'report.jsonl');
  const r = await runCli(['run', '-q', '--no-summary', '--jsonl', report, ...flags, '--python', python, file], { cwd: dir });
  return { r, records: readReport(report) };
}

/** A write into an immutable bytes object's storage, as a write into the hook's state would be done. */
const CTYPES_WRITE = [
  'import sys',
  'target = bytes(b"hook state")',
  'try:',
  '    import ctypes',
  '    ctypes.memmove(id(target) + sys.getsizeof(b"") - 1, b"OVERWRITE!", 10)',
  'except PermissionError as e:',
  '    print("refused:", e)',
  'print(target)',
  '',
].join('\n');

/**
 * The attack PEP 578 warns about, for real: find the launcher's entry in CPython's list of C audit
 * hooks (a word of _PyRuntime pointing at an entry whose function lies in the launcher's code, read
 * safely through /proc/self/mem) and clear the list's head with ctypes.memmove.
 */
const UNHOOK = [
  'import ctypes, os, sys, time',
  'runtime = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))',
  'code = []',
  'for line in open("/proc/self/maps"):',
  '    parts = line.split()',
  '    if len(parts) >= 6 and "x" in parts[1] and "spython" in os.path.basename(parts[5]):',
  '        code.append([int(x, 16) for x in parts[0].split("-")])',
  'mem = os.open("/proc/self/mem", os.O_RDONLY)',
  'def words(address, n):',
  '    try:',
  '        data = os.pread(mem, 8 * n, address)',
  '    except OSError:',
  '        return []',
  '    return [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]',
  'slot = None',
  'for i, w in enumerate(words(runtime, 1 << 16)):',
  '    entry = words(w, 3) if w and w % 8 == 0 else []',
  '    if len(entry) == 3 and any(lo <= entry[1] < hi for lo, hi in code):',
  '        slot = runtime + 8 * i',
  '        break',
  'print("found", slot is not None, flush=True)',
  'sys.audit("spy.before")',
  'ctypes.memmove(slot, ctypes.byref(ctypes.c_void_p(0)), 8)',
  'for i in range(100): sys.audit("spy.after", i)',
  'time.sleep(1)',
  'print("went on unaudited")',
  '',
].join('\n');

/** Walks the heap to the launcher's helper and tries to void the conditions of deny rules. */
const GC_WALK = [
  'import gc',
  'try:',
  '    objects = gc.get_objects()',
  'except PermissionError as e:',
  '    print("refused:", e)',
  '    objects = []',
  'agent = {o.__name__: o for o in objects if getattr(getattr(o, "__code__", None), "co_filename", "") == "<spython agent>"}',
  'print("found", "test_value" in agent)',
  'if agent:',
  '    try:',
  '        agent["test_value"].__code__ = (lambda code, event, args, frame: False).__code__',
  '    except PermissionError as e:',
  '        print("setattr refused:", e)',
  '    agent["test_condition"].__globals__["test_value"] = lambda *a: False',
  '    agent["test_condition"].__globals__["eval"] = lambda *a: False',
  'try:',
  '    print(open("secret.txt").read())',
  'except PermissionError as e:',
  '    print("open refused:", e)',
  '',
].join('\n');

for (const { label, python } of TARGETS) {
  describe(`policies under attack on Python ${label}`, { ...needs(python), concurrency: 2 }, () => {
    test('a ctypes memory write: refused by denyEvents ctypes.*, which stops ctypes before any memory is touched', async () => {
      const { r, records } = await audit(python!, CTYPES_WRITE, ['--deny', 'ctypes.*']);
      assert.equal(r.status, 0, show(r));
      assert.match(r.stdoutText, /^refused: \[spython\] denyEvents refused ctypes\.dlopen/);
      assert.match(r.stdoutText, /^b'hook state'$/m);
      assert.ok(records.some((rec) => rec.event === 'ctypes.dlopen' && rec.denied === 'denyEvents'));
    });

    test('a ctypes memory write without that rule happens: loading ctypes is all the record shows (the limit)', async () => {
      const { r, records } = await audit(python!, CTYPES_WRITE);
      assert.equal(r.status, 0, show(r));
      assert.match(r.stdoutText, /^b'OVERWRITE!'$/m);
      // memmove raises no audit event of its own; ctypes.dlopen is the trace.
      assert.ok(records.some((rec) => rec.event === 'ctypes.dlopen'), 'no ctypes.dlopen record');
    });

    test("unhooking the launcher's hook by a ctypes write: reported as spython.tamper within 10 ms, the program stopped", async () => {
      const { r, records } = await audit(python!, UNHOOK);
      assert.equal(r.status, 125, show(r));
      assert.equal(r.stdoutText, 'found True\n');
      assert.match(r.stderrText, /spython: the program removed the launcher's audit hook; stopping the program/);
      const tamper = records.filter((rec) => rec.event === 'spython.tamper');
      assert.equal(tamper.length, 1, show(r));
      assert.match(String(tamper[0].args[0]), /^the launcher's audit hook was removed from CPython's hook list/);
      assert.ok(records.some((rec) => rec.event === 'spy.before'));
      // Unhooked, the events after it reach no hook: stopping the program is what is left to do.
      assert.ok(!records.some((rec) => rec.event === 'spy.after'));
      assertSeqPerProcess(records);
    });

    test('a gc.get_objects() walk is recorded, and refused by denyEvents gc.get_*', async () => {
      const { r, records } = await audit(python!, GC_WALK, ['--deny', 'gc.get_*', '--deny', 'open if "secret" in args[0]']);
      assert.equal(r.status, 0, show(r));
      assert.match(r.stdoutText, /^refused: \[spython\] denyEvents refused gc\.get_objects/);
      assert.match(r.stdoutText, /^open refused: \[spython\] denyEvents refused open 'secret\.txt'$/m);
      assert.ok(records.some((rec) => rec.event === 'gc.get_objects' && rec.denied === 'denyEvents'));
    });

    test('the helper found by a gc walk cannot be patched: __code__ refused, rebinding undone and reported, the rule holds', async () => {
      const { r, records } = await audit(python!, GC_WALK, ['--deny', 'open if "secret" in args[0]']);
      assert.equal(r.status, 0, show(r));
      assert.match(r.stdoutText, /^found True$/m);
      assert.match(r.stdoutText, /^setattr refused: \[spython\] launcherIntegrity refused object\.__setattr__/m);
      assert.match(r.stdoutText, /^open refused: \[spython\] denyEvents refused open 'secret\.txt'$/m);
      assert.ok(records.some((rec) => rec.event === 'gc.get_objects'), 'the walk is not in the record');
      assert.ok(records.some((rec) => rec.event === 'object.__setattr__' && rec.denied === 'launcherIntegrity'));
      const tamper = records.filter((rec) => rec.event === 'spython.tamper').map((rec) => rec.args[0]);
      assert.deepEqual(tamper, ["the launcher's helper was tampered with (rebound test_value, added eval): undone"]);
    });

    test('a hook added by the program is recorded; with lockHooks it is refused and never sees an event', async () => {
      const source = [
        'import os, sys',
        'seen = []',
        'sys.addaudithook(lambda event, args: seen.append(event))',
        'os.listdir(".")',
        'print("hook saw", len(seen))',
        '',
      ].join('\n');
      const open = await audit(python!, source);
      assert.match(open.r.stdoutText, /^hook saw [1-9]/);
      assert.ok(open.records.some((rec) => rec.event === 'sys.addaudithook' && rec.denied === undefined));
      const locked = await audit(python!, source, ['--lock-hooks']);
      assert.equal(locked.r.stdoutText, 'hook saw 0\n', show(locked.r));
      assert.ok(locked.records.some((rec) => rec.event === 'sys.addaudithook' && rec.denied === 'lockHooks'));
    });
  });
}
