// --exec-check (execCheck; the execveat sample): the kernel is asked with AT_EXECVE_CHECK whether it
// would execute each code file. This machine's kernel (6.18) has it: a main script without the
// execute permission bit, or on a noexec mount, is refused; with chmod +x it runs. --verify-exempt
// applies here too (the interpreter's own library has no execute bits).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  allTargets,
  describeResult,
  exemptInterpreter,
  mainTargets,
  needs,
  PY_FLAGS,
  pyStr,
  run,
  runWithChannel,
  Target,
  tempDir,
  tryMountNoexecTmpfs,
  umount,
  writeFile,
} from './common';

function execArgs(t: Target): string[] {
  return ['--exec-check', ...exemptInterpreter(t)];
}

/** AT_EXECVE_CHECK arrived in Linux 6.14. */
function kernelHasExecveCheck(): boolean {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  return !!m && (Number(m[1]) > 6 || (Number(m[1]) === 6 && Number(m[2]) >= 14));
}

const KERNEL = kernelHasExecveCheck() ? {} : { skip: `kernel ${os.release()} has no AT_EXECVE_CHECK` };

for (const t of allTargets()) {
  describe(`--exec-check on Python ${t.label}`, needs(t).skip ? needs(t) : KERNEL, () => {
    test('a main script without the execute bit is refused before it runs; with chmod +x it runs', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const main = writeFile(dir, 'main.py', `open(${pyStr(marker)}, "w").close()\nprint("ran")\n`, 0o644);
      const r = await run(t, [...execArgs(t), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.notEqual(r.status, 0, d);
      assert.ok(!fs.existsSync(marker), `the script ran\n${d}`);
      assert.ok(
        r.stderrText.includes(
          `PermissionError: [spython] execCheck refused cpython.run_file ${main}: the kernel would not execute it (Permission denied)`,
        ),
        d,
      );
      fs.chmodSync(main, 0o755);
      const ok = await run(t, [...execArgs(t), ...PY_FLAGS, main]);
      assert.equal(ok.status, 0, describeResult(ok));
      assert.equal(ok.stdoutText, 'ran\n', describeResult(ok));
      assert.ok(fs.existsSync(marker));
    });

    test('an imported module without the execute bit is refused; outside checks, exempt trees are trusted', async () => {
      const dir = tempDir();
      const trusted = path.join(dir, 'trusted');
      const main = writeFile(
        dir,
        'main.py',
        [
          'import sys',
          `sys.path.insert(0, ${pyStr(trusted)})`,
          'for name in ("plain", "executable", "exempt"):',
          '    try:',
          '        m = __import__(name)',
          '        print(name, "imported", m.X)',
          '    except PermissionError as e:',
          '        print(name, "PermissionError:", e)',
          '',
        ].join('\n'),
        0o755,
      );
      const plain = writeFile(dir, 'plain.py', 'X = 1\n', 0o644);
      writeFile(dir, 'executable.py', 'X = 2\n', 0o755);
      writeFile(trusted, 'exempt.py', 'X = 3\n', 0o644);
      const r = await run(t, [...execArgs(t), '--verify-exempt', trusted, ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.equal(
        r.stdoutText,
        [
          `plain PermissionError: [spython] execCheck refused ${plain}: the kernel would not execute it (Permission denied)`,
          'executable imported 2',
          'exempt imported 3',
          '',
        ].join('\n'),
        d,
      );
    });
  });
}

describe('--exec-check and noexec mounts', KERNEL, () => {
  let mnt = '';
  let skip: string | undefined;
  before(() => {
    mnt = tempDir('spython-policy-noexec-');
    skip = tryMountNoexecTmpfs(mnt);
  });
  after(() => {
    if (!skip) umount(mnt);
  });
  for (const t of allTargets()) {
    test(`Python ${t.label}: an executable script on a noexec mount is refused`, needs(t), async (ctx) => {
      if (skip) return ctx.skip(skip);
      const sub = fs.mkdtempSync(path.join(mnt, 'x-'));
      const marker = path.join(sub, 'ran');
      const main = writeFile(sub, 'main.py', `open(${pyStr(marker)}, "w").close()\n`, 0o755);
      const r = await run(t, [...execArgs(t), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.notEqual(r.status, 0, d);
      assert.ok(!fs.existsSync(marker), `the script ran\n${d}`);
      assert.match(r.stderrText, /PermissionError: \[spython\] execCheck refused cpython\.run_file .*the kernel would not execute it/, d);
    });
  }
});

for (const t of mainTargets()) {
  describe(`execCheck from the channel, Python ${t.label}`, needs(t).skip ? needs(t) : KERNEL, () => {
    test('welcome {"execCheck": true}: the refused main script is marked "denied":"execCheck"', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const main = writeFile(dir, 'main.py', `open(${pyStr(marker)}, "w").close()\n`, 0o644);
      const { result, records } = await runWithChannel(t, [...PY_FLAGS, main], {
        config: { execCheck: true, verifyExempt: [t.stdlib, t.dynload] },
      });
      assert.notEqual(result.status, 0, describeResult(result));
      assert.ok(!fs.existsSync(marker));
      const rec = records.find((r) => r.event === 'cpython.run_file');
      assert.ok(rec, records.map((r) => r.event).join(' '));
      assert.equal(rec.denied, 'execCheck', JSON.stringify(rec));
    });
  });
}
