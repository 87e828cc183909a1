// `spython-audit stamp`, `verify` and `keygen`: a stamp-then-verify round trip (xattrs and signed
// manifests), failures named with file and reason and a non-zero status, --json, the progress bar on a
// terminal, and the launcher accepting what verify accepts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runProcess } from '../helpers/run';
import { readXattrs, setXattr, writeTree } from '../trust/common';
import { CLI, cliEnv, needs, NOT_BUILT, PYTHON, runCli, show, tempDir } from './common';

function project(): string {
  const root = tempDir('spython-cli-trust-');
  writeTree(root, {
    'main.py': 'import pkg.mod\nprint("value", pkg.mod.VALUE)\n',
    'pkg/__init__.py': '',
    'pkg/mod.py': 'VALUE = 7\n',
    'notes.txt': 'not code\n',
  });
  return root;
}

describe('stamp and verify (xattr)', { ...NOT_BUILT, concurrency: 4 }, () => {
  test('round trip: stamp, verify passes; an edit fails naming the file and the reason', async () => {
    const root = project();
    const stamped = await runCli(['stamp', root]);
    assert.equal(stamped.status, 0, show(stamped));
    assert.match(stamped.stdoutText, /^Stamped 3 files: 3 written, 0 already current\n$/);
    assert.equal(readXattrs([path.join(root, 'notes.txt')])[0], null, 'only code files are stamped');

    const again = await runCli(['stamp', root]);
    assert.match(again.stdoutText, /Stamped 3 files: 0 written, 3 already current/);

    const verified = await runCli(['verify', root]);
    assert.equal(verified.status, 0, show(verified));
    assert.equal(verified.stdoutText, 'Verified 3 files (xattr): 3 ok, 0 failed\n');
    assert.equal(verified.stderrText, '');

    fs.appendFileSync(path.join(root, 'pkg/mod.py'), 'VALUE = 8\n');
    setXattr(path.join(root, 'main.py'), null);
    const failed = await runCli(['verify', root]);
    assert.equal(failed.status, 1, show(failed));
    assert.match(failed.stderrText, new RegExp(`^FAIL ${root}/main\\.py: no xattr`, 'm'));
    assert.match(failed.stderrText, new RegExp(`^FAIL ${root}/pkg/mod\\.py: hash mismatch \\(xattr user\\.org\\.python\\.x-spython-hash is [0-9a-f]{64} but the file hashes to [0-9a-f]{64}\\)$`, 'm'));
    assert.match(failed.stdoutText, /Verified 3 files \(xattr\): 1 ok, 2 failed/);
  });

  test('--json reports on stdout, with the same status', async () => {
    const root = project();
    const stamped = await runCli(['stamp', '--json', root]);
    assert.equal(stamped.status, 0, show(stamped));
    const stampReport = JSON.parse(stamped.stdoutText) as { success: boolean; written: number; entries: Array<{ path: string; hash: string }> };
    assert.equal(stampReport.success, true);
    assert.equal(stampReport.written, 3);
    assert.deepEqual(stampReport.entries.map((e) => path.relative(root, e.path)), ['main.py', 'pkg/__init__.py', 'pkg/mod.py']);

    fs.writeFileSync(path.join(root, 'pkg/mod.py'), 'VALUE = 9\n');
    const verified = await runCli(['verify', '--json', root]);
    assert.equal(verified.status, 1, show(verified));
    const report = JSON.parse(verified.stdoutText) as {
      success: boolean;
      mode: string;
      checked: number;
      ok: number;
      failures: Array<{ path: string; reason: string; result: string }>;
    };
    assert.equal(report.success, false);
    assert.equal(report.mode, 'xattr');
    assert.equal(report.checked, 3);
    assert.equal(report.ok, 2);
    assert.deepEqual(report.failures.map((f) => [path.relative(root, f.path), f.reason, f.result]), [['pkg/mod.py', 'hash mismatch', 'MISMATCH']]);
  });

  test('--xattr-name, --max-code-size and --verify-exempt', async () => {
    const root = project();
    writeTree(root, { 'vendor/big.py': `# ${'x'.repeat(4000)}\n` });
    assert.equal((await runCli(['stamp', '--xattr-name', 'user.test.hash', root])).status, 0);
    assert.equal(readXattrs([path.join(root, 'main.py')], 'user.test.hash')[0]?.length, 64);
    const defaultName = await runCli(['verify', root]);
    assert.equal(defaultName.status, 1);
    assert.match(defaultName.stderrText, /main\.py: no xattr/);
    const small = await runCli(['verify', '--xattr-name', 'user.test.hash', '--max-code-size', '1000', root]);
    assert.equal(small.status, 1, show(small));
    assert.match(small.stderrText, /vendor\/big\.py: too large/);
    const exempt = await runCli(['verify', '--xattr-name', 'user.test.hash', '--max-code-size', '1000', '--verify-exempt', path.join(root, 'vendor'), root]);
    assert.equal(exempt.status, 0, show(exempt));
  });

  test('a missing file is named; no paths and a bad number are usage errors', async () => {
    const missing = await runCli(['verify', '/nonexistent/file.py']);
    assert.equal(missing.status, 1, show(missing));
    assert.match(missing.stderrText, /FAIL \/nonexistent\/file\.py: /);
    assert.equal((await runCli(['verify'])).status, 2);
    const bad = await runCli(['verify', '--max-code-size', 'lots', '.']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderrText, /--max-code-size must be a positive integer/);
  });

  test('stamp --python recompiles out-of-date .pyc files and stamps them', needs(PYTHON), async () => {
    const root = project();
    const r = await runCli(['stamp', '--python', PYTHON!, root]);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdoutText, /Stamped \d+ files: \d+ written, 0 already current, 3 recompiled/);
    const pycs = fs.readdirSync(path.join(root, 'pkg', '__pycache__'));
    assert.ok(pycs.some((f) => f.startsWith('mod.') && f.endsWith('.pyc')));
    assert.equal((await runCli(['verify', root])).status, 0);
  });

  test('the launcher runs what verify accepts', needs(PYTHON), async () => {
    const root = project();
    assert.equal((await runCli(['stamp', '--python', PYTHON!, root])).status, 0);
    const stdlib = path.resolve(path.dirname(fs.realpathSync(PYTHON!)), '..');
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--verify', 'xattr', '--verify-exempt', stdlib, path.join(root, 'main.py')], {
      env: { PYTHONNOUSERSITE: '1' },
    });
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, 'value 7\n');
  });

  test('a whole standard library stamped by the CLI runs under --verify xattr with no exemptions', needs(PYTHON), async () => {
    // A copy of the interpreter's stdlib (PYTHONHOME points the interpreter at it), so that stamping
    // and tampering never touch the installed one; its own tests and GUI packages are left out.
    const installed = path.resolve(path.dirname(fs.realpathSync(PYTHON!)), '..', 'lib');
    const libName = fs.readdirSync(installed).find((name) => /^python3\.\d+$/.test(name))!;
    const home = tempDir('spython-cli-stdlib-');
    const skipped = new Set(['test', 'idlelib', 'tkinter', 'turtledemo', 'site-packages', '__pycache__']);
    fs.cpSync(path.join(installed, libName), path.join(home, 'lib', libName), {
      recursive: true,
      filter: (source) => !skipped.has(path.basename(source)),
    });
    const main = path.join(home, 'main.py');
    fs.writeFileSync(
      main,
      'import argparse, asyncio, decimal, email.parser, http.client, json, sqlite3, unittest, xml.etree.ElementTree\n' +
        'import sys\nprint(sys.prefix, len(sys.modules))\n',
    );
    const stamped = await runCli(['stamp', path.join(home, 'lib'), main]);
    assert.equal(stamped.status, 0, show(stamped));
    const env = { PYTHONHOME: home, PYTHONDONTWRITEBYTECODE: '1', PYTHONNOUSERSITE: '1' };
    const args = ['run', '-q', '--no-summary', '--python', PYTHON!, '--verify', 'xattr', main];

    const r = await runCli(args, { env });
    assert.equal(r.status, 0, show(r));
    const [prefix, modules] = r.stdoutText.trim().split(' ');
    assert.equal(prefix, home);
    assert.ok(Number(modules) > 100, `only ${modules} modules imported`);

    const decoder = path.join(home, 'lib', libName, 'json', 'decoder.py');
    fs.appendFileSync(decoder, '# edited after stamping\n');
    const tampered = await runCli(args, { env });
    assert.notEqual(tampered.status, 0, show(tampered));
    assert.match(tampered.stderrText, new RegExp(`${decoder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*hash mismatch`));
  });

  test('a progress bar on a terminal', needs(PYTHON), async () => {
    const root = project();
    const r = await runProcess(PYTHON!, ['-c', 'import pty, sys\npty.spawn(sys.argv[1:])', process.execPath, CLI, 'stamp', root], { env: cliEnv({ TERM: 'xterm' }) });
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdoutText, /stamping\s+\[[█░]+\] \d+\/3 files/);
    assert.match(r.stdoutText, /Stamped 3 files/);
  });
});

describe('signed manifests', { ...NOT_BUILT, concurrency: 4 }, () => {
  test('keygen, stamp --manifest, verify --manifest; a changed file or a bad signature fails', async () => {
    const root = project();
    const keys = tempDir('spython-cli-keys-');
    const keygen = await runCli(['keygen', keys]);
    assert.equal(keygen.status, 0, show(keygen));
    const privateKey = path.join(keys, 'spython-manifest.key.pem');
    const publicKey = path.join(keys, 'spython-manifest.pub.pem');
    assert.match(fs.readFileSync(publicKey, 'utf8'), /BEGIN PUBLIC KEY/);
    assert.equal(fs.statSync(privateKey).mode & 0o777, 0o600);
    const again = await runCli(['keygen', keys]);
    assert.equal(again.status, 2);
    assert.match(again.stderrText, /already exist.*--force replaces them/);

    const manifest = path.join(keys, 'code.manifest');
    const written = await runCli(['stamp', '--manifest', manifest, '--key', privateKey, root]);
    assert.equal(written.status, 0, show(written));
    assert.match(written.stdoutText, /Wrote .*code\.manifest \(3 files\) and its signature .*code\.manifest\.sig/);
    assert.equal(readXattrs([path.join(root, 'main.py')])[0], null, 'a manifest run writes no xattrs');

    const verified = await runCli(['verify', '--manifest', manifest, '--key', publicKey, root]);
    assert.equal(verified.status, 0, show(verified));
    assert.match(verified.stdoutText, /Verified 3 files \(manifest\): 3 ok, 0 failed/);

    fs.writeFileSync(path.join(root, 'pkg/mod.py'), 'VALUE = 10\n');
    writeTree(root, { 'extra.py': 'EXTRA = 1\n' });
    const changed = await runCli(['verify', '--manifest', manifest, '--key', publicKey, root]);
    assert.equal(changed.status, 1, show(changed));
    assert.match(changed.stderrText, /FAIL .*\/extra\.py: not in manifest/);
    assert.match(changed.stderrText, /FAIL .*\/pkg\/mod\.py: not in manifest/);

    const other = tempDir('spython-cli-keys-');
    assert.equal((await runCli(['keygen', '--name', 'other', other])).status, 0);
    const wrongKey = await runCli(['verify', '--json', '--manifest', manifest, '--key', path.join(other, 'other.pub.pem'), root]);
    assert.equal(wrongKey.status, 1, show(wrongKey));
    const report = JSON.parse(wrongKey.stdoutText) as { success: boolean; reason: string };
    assert.equal(report.success, false);
    assert.equal(report.reason, 'bad signature');
    assert.match(wrongKey.stderrText, /spython-audit: .*signature/);

    const halfManifest = await runCli(['verify', '--manifest', manifest, root]);
    assert.equal(halfManifest.status, 2);
    assert.match(halfManifest.stderrText, /--manifest and --key \(the public key\) go together/);
  });
});
