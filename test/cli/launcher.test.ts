// `spython-audit launcher --python PATH`: which launcher mode runs for an interpreter (the launcher's
// own answer) and why, for users whose interpreter has no shared libpython.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { needs, PYTHON, runCli, show, tempDir, writeFile } from './common';

const PYTHON_37 = '/root/.pyenv/versions/3.7.16/bin/python3';

/**
 * An interpreter that looks like a static build (no shared libpython): a shell script answering the
 * launcher's probe (-I -S -c) with sysconfig's LDLIBRARY and INSTSONAME changed, running the real
 * interpreter otherwise.
 */
function staticLooking(real: string): string {
  const dir = tempDir('spython-cli-static-');
  const patch =
    "import sysconfig; _v = sysconfig.get_config_var; " +
    "sysconfig.get_config_var = lambda n: {'INSTSONAME': '', 'LDLIBRARY': 'libpython3.12.a', 'Py_ENABLE_SHARED': 0}.get(n, _v(n))";
  return writeFile(
    dir,
    'python3',
    `#!/bin/sh\nif [ "$1" = -I ] && [ "$2" = -S ] && [ "$3" = -c ]; then\n  exec ${real} -I -S -c "${patch}\n$4"\nfi\nexec ${real} "$@"\n`,
    0o755,
  );
}

describe('spython-audit launcher', { ...needs(PYTHON), concurrency: 4 }, () => {
  test('an interpreter with a shared libpython runs in dlopen mode', async () => {
    const r = await runCli(['launcher', '--python', PYTHON!]);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdoutText, /^Launcher\s+.*dist\/bin\/spython: spython \S+ \(channel protocol \d+\)$/m);
    assert.match(r.stdoutText, /^Python\s+3\.12\.\d+$/m);
    assert.match(r.stdoutText, /^Mode\s+dlopen$/m);
    assert.match(r.stdoutText, /^libpython\s+\/.*libpython3\.12\.so/m);
    assert.match(r.stdoutText, /^Why\s+it has a shared libpython/m);
  });

  test('--json', async () => {
    const r = await runCli(['launcher', '--json', '--python', PYTHON!]);
    assert.equal(r.status, 0, show(r));
    const report = JSON.parse(r.stdoutText) as Record<string, unknown>;
    assert.equal(report.mode, 'dlopen');
    assert.equal(report.requestedMode, 'auto');
    assert.match(String(report.version), /^3\.12\./);
    assert.ok(fs.existsSync(String(report.libpython)));
  });

  test('--mode preload is said as asked for', async () => {
    const r = await runCli(['launcher', '--python', PYTHON!, '--mode', 'preload']);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdoutText, /^Mode\s+preload$/m);
    assert.match(r.stdoutText, /--mode preload asks for it: .*LD_PRELOAD.*; without it, dlopen mode would load /);
  });

  test('no shared libpython: preload mode, and why', async () => {
    const python = staticLooking(PYTHON!);
    const r = await runCli(['launcher', '--python', python]);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdoutText, new RegExp(`^Interpreter\\s+${python} → `, 'm'));
    assert.match(r.stdoutText, /^Mode\s+preload$/m);
    assert.match(r.stdoutText, /no shared libpython was found \(Py_ENABLE_SHARED is 0, LDLIBRARY is libpython3\.12\.a\)/);
    assert.match(r.stdoutText, /libspython-preload\.so in LD_PRELOAD/);
    assert.match(r.stdoutText, /apt install libpython3\.12/);
    assert.doesNotMatch(r.stdoutText, /^libpython/m);
    // And the program runs so.
    const { file } = { file: writeFile(path.dirname(python), 'hi.py', 'print("hi")\n') };
    const run = await runCli(['run', '-q', '--no-summary', '--python', python, file]);
    assert.equal(run.status, 0, show(run));
    assert.equal(run.stdoutText, 'hi\n');
  });

  test('an interpreter the launcher cannot run: its reason, status 125', async () => {
    const missing = await runCli(['launcher', '--python', '/nonexistent/python3']);
    assert.equal(missing.status, 125, show(missing));
    assert.match(missing.stdoutText, /^Mode\s+cannot run$/m);
    assert.match(missing.stdoutText, /the launcher cannot run it: cannot find the Python interpreter '\/nonexistent\/python3'/);
    if (fs.existsSync(PYTHON_37)) {
      const old = await runCli(['launcher', '--python', PYTHON_37]);
      assert.equal(old.status, 125, show(old));
      assert.match(old.stdoutText, /is Python 3\.7\.\d+: audit hooks need CPython 3\.8 or newer/);
    }
  });
});
