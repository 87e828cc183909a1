// --verify manifest --manifest FILE --key PUB (verifyImports "manifest"): a sha256sum-format manifest
// signed with Ed25519 (made here with the openssl command line). Files whose hash is listed run,
// others are refused; a manifest whose signature does not check out ends the launch with status 125
// and a clear message before any Python code runs.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
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
  writeFile,
} from './common';

let keys: { dir: string; priv: string; pub: string; otherPriv: string } | undefined;
let opensslMissing: string | undefined;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeKeys() {
  const dir = tempDir('spython-policy-keys-');
  const priv = path.join(dir, 'k.pem');
  const pub = path.join(dir, 'k.pub');
  const otherPriv = path.join(dir, 'other.pem');
  openssl(['genpkey', '-algorithm', 'ed25519', '-out', priv]);
  openssl(['pkey', '-in', priv, '-pubout', '-out', pub]);
  openssl(['genpkey', '-algorithm', 'ed25519', '-out', otherPriv]);
  return { dir, priv, pub, otherPriv };
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Writes a sha256sum-format manifest of `files` and signs it (manifest.sig) with `key`. */
function signedManifest(dir: string, files: string[], key = keys!.priv): string {
  const manifest = path.join(dir, 'manifest.sha256');
  fs.writeFileSync(manifest, ['# policy test manifest', ...files.map((f) => `${sha256(f)}  ${f}`), ''].join('\n'));
  openssl(['pkeyutl', '-sign', '-inkey', key, '-rawin', '-in', manifest, '-out', `${manifest}.sig`]);
  return manifest;
}

function manifestArgs(t: Target, manifest: string): string[] {
  return [
    '--verify',
    'manifest',
    '--manifest',
    manifest,
    '--key',
    keys!.pub,
    ...exemptInterpreter(t),
  ];
}

/** main.py (creates `marker` first), listed.py and unlisted.py; main imports both. */
function project(dir: string, marker: string) {
  const main = writeFile(
    dir,
    'main.py',
    [
      `open(${pyStr(marker)}, "w").close()`,
      'import listed',
      'print("imported", listed.X)',
      'try:',
      '    import unlisted',
      '    print("imported", unlisted.X)',
      'except PermissionError as e:',
      '    print("PermissionError:", e)',
      '',
    ].join('\n'),
  );
  const listed = writeFile(dir, 'listed.py', 'X = "listed"\n');
  const unlisted = writeFile(dir, 'unlisted.py', 'X = "unlisted"\n');
  return { main, listed, unlisted };
}

before(() => {
  try {
    keys = makeKeys();
  } catch (err) {
    opensslMissing = `openssl cannot make Ed25519 keys here: ${(err as Error).message}`;
  }
});

for (const t of allTargets()) {
  describe(`--verify manifest on Python ${t.label}`, needs(t), () => {
    test('listed files run; an unlisted module is refused', async (ctx) => {
      if (opensslMissing) return ctx.skip(opensslMissing);
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const { main, listed, unlisted } = project(dir, marker);
      const manifest = signedManifest(dir, [main, listed]);
      const r = await run(t, [...manifestArgs(t, manifest), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.ok(fs.existsSync(marker));
      const lines = r.stdoutText.split('\n');
      assert.equal(lines[0], 'imported listed', d);
      assert.match(
        lines[1],
        new RegExp(
          `^PermissionError: \\[spython\\] verifyImports refused ${unlisted.replace(/[.]/g, '\\.')}: not in manifest: ` +
            `its SHA-256 ${sha256(unlisted)} is not listed in the manifest$`,
        ),
        d,
      );
    });

    test('an unlisted main script is refused before it runs', async (ctx) => {
      if (opensslMissing) return ctx.skip(opensslMissing);
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const { main, listed } = project(dir, marker);
      const manifest = signedManifest(dir, [listed]);
      const r = await run(t, [...manifestArgs(t, manifest), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.notEqual(r.status, 0, d);
      assert.match(r.stderrText, /PermissionError: \[spython\] verifyImports refused cpython\.run_file .*not in manifest/, d);
      assert.ok(!fs.existsSync(marker), `the unlisted script ran\n${d}`);
    });

    test('a signature in base64 is accepted as well', async (ctx) => {
      if (opensslMissing) return ctx.skip(opensslMissing);
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const { main, listed } = project(dir, marker);
      const manifest = signedManifest(dir, [main, listed]);
      fs.writeFileSync(`${manifest}.sig`, fs.readFileSync(`${manifest}.sig`).toString('base64') + '\n');
      const r = await run(t, [...manifestArgs(t, manifest), ...PY_FLAGS, main]);
      assert.equal(r.status, 0, describeResult(r));
      assert.match(r.stdoutText, /^imported listed$/m, describeResult(r));
    });

    test('a tampered manifest (signature mismatch) ends the launch with 125 before Python runs', async (ctx) => {
      if (opensslMissing) return ctx.skip(opensslMissing);
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const { main, listed, unlisted } = project(dir, marker);
      const manifest = signedManifest(dir, [main, listed]);
      fs.appendFileSync(manifest, `${sha256(unlisted)}  ${unlisted}\n`);
      const r = await run(t, [...manifestArgs(t, manifest), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.equal(r.status, 125, d);
      assert.equal(r.stdoutText, '', d);
      assert.ok(!fs.existsSync(marker), `Python ran\n${d}`);
      assert.match(r.stderrText, /^spython: cannot use the manifest: signature .* does not match manifest /m, d);
      assert.doesNotMatch(r.stderrText, /Traceback/, d);
    });

    test('a manifest signed by another key, or not signed at all, ends the launch with 125', async (ctx) => {
      if (opensslMissing) return ctx.skip(opensslMissing);
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const { main, listed } = project(dir, marker);
      const manifest = signedManifest(dir, [main, listed], keys!.otherPriv);
      const r = await run(t, [...manifestArgs(t, manifest), ...PY_FLAGS, main]);
      assert.equal(r.status, 125, describeResult(r));
      assert.match(r.stderrText, /^spython: cannot use the manifest: .*does not match/m, describeResult(r));
      fs.unlinkSync(`${manifest}.sig`);
      const unsigned = await run(t, [...manifestArgs(t, manifest), ...PY_FLAGS, main]);
      assert.equal(unsigned.status, 125, describeResult(unsigned));
      assert.match(unsigned.stderrText, /^spython: cannot use the manifest: cannot read the signature /m, describeResult(unsigned));
      assert.ok(!fs.existsSync(marker), 'Python ran');
    });
  });
}

for (const t of mainTargets()) {
  describe(`verifyImports "manifest" from the channel, Python ${t.label}`, needs(t), () => {
    test('the welcome config selects the manifest and its key', async (ctx) => {
      if (opensslMissing) return ctx.skip(opensslMissing);
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const { main, listed } = project(dir, marker);
      const manifest = signedManifest(dir, [main, listed]);
      const { result, records } = await runWithChannel(t, [...PY_FLAGS, main], {
        config: {
          verifyImports: 'manifest',
          manifest,
          manifestKey: keys!.pub,
          verifyExempt: [t.stdlib, t.dynload],
        },
      });
      const d = describeResult(result);
      assert.equal(result.status, 0, d);
      assert.match(result.stdoutText, /^imported listed\nPermissionError: .*not in manifest/, d);
      assert.ok(records.some((r) => r.denied === 'verifyImports'), 'the refusal is in the record stream');
    });
  });
}
