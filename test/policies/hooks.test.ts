// --lock-hooks (lockHooks): sys.addaudithook(hook) does not add the hook. On 3.8–3.13 CPython
// swallows the exception raised inside sys.addaudithook, so the proof is that the hook never sees an
// event; the record stream shows the sys.addaudithook event "denied":"lockHooks".
//
// Tamper check: a script that replaces (or deletes) sys.audit is reported as a spython.tamper event
// at the next C-level event, in --stderr output and in the record stream.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  allTargets,
  count,
  describeResult,
  mainTargets,
  needs,
  pyStr,
  run,
  runWithChannel,
  tempDir,
  writeFile,
} from './common';

function addHookScript(dir: string): string {
  return writeFile(
    dir,
    'main.py',
    [
      'import os, sys',
      'seen = []',
      'def hook(event, args):',
      '    seen.append(event)',
      'try:',
      '    print("addaudithook returned", sys.addaudithook(hook))',
      'except Exception as e:',
      '    print("addaudithook raised", type(e).__name__, e)',
      `os.listdir(${pyStr(dir)})`,
      'sys.audit("policytest.ping")',
      'print("hook saw", len(seen), sorted(set(seen) & {"os.listdir", "policytest.ping"}))',
      '',
    ].join('\n'),
  );
}

const REPLACED = 'sys.audit was replaced: events raised from Python code no longer reach the audit hooks';
const DELETED = 'sys.audit was deleted: events raised from Python code no longer reach the audit hooks';

for (const t of allTargets()) {
  describe(`--lock-hooks on Python ${t.label}`, needs(t), () => {
    test('a hook added by the script never sees an event', async () => {
      const dir = tempDir();
      const script = addHookScript(dir);
      const control = await run(t, [script]);
      assert.match(
        control.stdoutText,
        /^hook saw [1-9]\d* \['os\.listdir', 'policytest\.ping'\]$/m,
        `set-up: without the policy the hook works\n${describeResult(control)}`,
      );
      const r = await run(t, ['--lock-hooks', script]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.match(r.stdoutText, /^hook saw 0 \[\]$/m, d);
    });
  });

  describe(`--lock-hooks against ctypes, Python ${t.label}`, needs(t), () => {
    test('a C-level hook added with PySys_AddAuditHook through ctypes is refused too', async () => {
      const dir = tempDir();
      const script = writeFile(
        dir,
        'main.py',
        [
          'import ctypes, os, sys',
          'seen = []',
          'HOOK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.py_object, ctypes.c_void_p)',
          '@HOOK',
          'def hook(event, args, data):',
          '    seen.append(event)',
          '    return 0',
          'ctypes.pythonapi.PySys_AddAuditHook.argtypes = [HOOK, ctypes.c_void_p]',
          'try:',
          '    print("PySys_AddAuditHook returned", ctypes.pythonapi.PySys_AddAuditHook(hook, None))',
          'except Exception as e:',
          '    print("PySys_AddAuditHook raised", type(e).__name__, e)',
          `os.listdir(${pyStr(dir)})`,
          'print("hook saw", len(seen))',
          'sys.stdout.flush()',
          'os._exit(0)  # a ctypes hook that did get in must not outlive its callback object',
          '',
        ].join('\n'),
      );
      const r = await run(t, ['--lock-hooks', script]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.match(r.stdoutText, /^hook saw 0$/m, d);
      assert.match(r.stdoutText, /^PySys_AddAuditHook raised PermissionError \[spython\] lockHooks refused sys\.addaudithook/m, d);
    });
  });

  describe(`the tamper check on Python ${t.label}`, needs(t), () => {
    test('replacing sys.audit is reported as spython.tamper at the next C-level event (--stderr)', async () => {
      const dir = tempDir();
      const sub = path.join(dir, 'next-event');
      const script = writeFile(
        dir,
        'main.py',
        [
          'import os, sys',
          'sys.audit = lambda *a: None',
          `os.makedirs(${pyStr(sub)})`,
          `os.listdir(${pyStr(sub)})`,
          `os.listdir(${pyStr(sub)})`,
          'print("done")',
          '',
        ].join('\n'),
      );
      const r = await run(t, ['--stderr', script]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.equal(r.stdoutText, 'done\n', d);
      const lines = r.stderrText.split('\n');
      const mkdir = lines.indexOf(`os.mkdir: ('${sub}', 511, -1)`);
      assert.ok(mkdir >= 0, d);
      assert.equal(lines[mkdir + 1], `spython.tamper: ('${REPLACED}',)`, `right after the next C-level event\n${d}`);
      assert.equal(count(r.stderrText, 'spython.tamper'), 1, `reported once\n${d}`);
    });
  });
}

for (const t of mainTargets()) {
  describe(`lockHooks and tamper in the record stream, Python ${t.label}`, needs(t), () => {
    test('sys.addaudithook is marked "denied":"lockHooks" (flag and welcome config)', async () => {
      for (const how of ['flag', 'config'] as const) {
        const dir = tempDir();
        const script = addHookScript(dir);
        const { result, records } = await runWithChannel(t, how === 'flag' ? ['--lock-hooks', script] : [script], {
          config: how === 'config' ? { lockHooks: true } : {},
        });
        const d = `${how}\n${describeResult(result)}`;
        assert.equal(result.status, 0, d);
        assert.match(result.stdoutText, /^hook saw 0 \[\]$/m, d);
        const rec = records.filter((r) => r.event === 'sys.addaudithook' && r.file === script);
        assert.equal(rec.length, 1, `${d}\n${JSON.stringify(rec)}`);
        assert.equal(rec[0].denied, 'lockHooks', JSON.stringify(rec[0]));
      }
    });

    test('a replaced, then deleted sys.audit gives one spython.tamper record each, after the next event', async () => {
      const dir = tempDir();
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      const script = writeFile(
        dir,
        'main.py',
        [
          'import os, sys',
          'sys.audit = lambda *a: None',
          `os.mkdir(${pyStr(a)})`,
          `os.listdir(${pyStr(a)})`,
          'del sys.audit',
          `os.mkdir(${pyStr(b)})`,
          '',
        ].join('\n'),
      );
      const { result, records } = await runWithChannel(t, [script]);
      assert.equal(result.status, 0, describeResult(result));
      const tamper = records.filter((r) => r.event === 'spython.tamper');
      assert.deepEqual(
        tamper.map((r) => r.args),
        [[REPLACED], [DELETED]],
        JSON.stringify(tamper),
      );
      for (const [target, rec] of [
        [a, tamper[0]],
        [b, tamper[1]],
      ] as const) {
        const i = records.indexOf(rec);
        assert.equal(records[i - 1].event, 'os.mkdir', JSON.stringify(records.slice(i - 2, i + 1)));
        assert.equal(records[i - 1].args[0], target);
        assert.equal(rec.seq, records[i - 1].seq + 1);
        assert.equal(rec.file, script, JSON.stringify(rec));
      }
    });
  });
}
