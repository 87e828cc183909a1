// Signed manifests (verifyImports "manifest") through adapter/trust.ts: key generation, writing and
// signing, verifying, an unlisted file, forged and wrongly signed manifests.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateKeyPair, signManifest, TrustError, verify, writeManifest } from '../../adapter/trust';
import { show, tempDir, writeTree } from './common';

const sha = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');

function project(): string {
  const root = tempDir();
  writeTree(root, {
    'main.py': 'import pkg.mod\n',
    'pkg/__init__.py': '',
    'pkg/mod.py': 'VALUE = 1\n',
    'pkg/same.py': 'VALUE = 1\n', // the same hash twice: listed twice, counted once
  });
  return root;
}

test('generateKeyPair writes an Ed25519 PEM pair (private 0600) that Node and OpenSSL read', () => {
  const dir = path.join(tempDir(), 'keys');
  const pair = generateKeyPair(dir);
  assert.equal(pair.privateKey, path.join(dir, 'spython-manifest.key.pem'));
  assert.equal(pair.publicKey, path.join(dir, 'spython-manifest.pub.pem'));
  assert.equal(fs.statSync(pair.privateKey).mode & 0o777, 0o600);
  assert.equal(fs.statSync(pair.publicKey).mode & 0o777, 0o644);
  assert.match(fs.readFileSync(pair.privateKey, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(fs.readFileSync(pair.publicKey, 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/);
  const priv = crypto.createPrivateKey(fs.readFileSync(pair.privateKey));
  const pub = crypto.createPublicKey(fs.readFileSync(pair.publicKey));
  assert.equal(priv.asymmetricKeyType, 'ed25519');
  assert.equal(pub.asymmetricKeyType, 'ed25519');
  // Public half of the private key.
  assert.equal(
    crypto.createPublicKey(priv).export({ type: 'spki', format: 'pem' }),
    pub.export({ type: 'spki', format: 'pem' }),
  );
});

test('writeManifest: sha256sum lines, signed; verify in manifest mode accepts exactly the listed files', async () => {
  const root = project();
  const keys = generateKeyPair(path.join(tempDir(), 'keys'));
  const manifest = path.join(tempDir(), 'code.manifest');
  const written = await writeManifest([root], manifest, keys.privateKey);
  assert.equal(written.signature, manifest + '.sig');
  assert.equal(fs.statSync(written.signature).size, 64);

  // sha256sum's own format, which `sha256sum -c` accepts.
  const lines = fs.readFileSync(manifest, 'utf8').trimEnd().split('\n');
  assert.deepEqual(
    lines,
    written.files.map((f) => `${sha(fs.readFileSync(f))}  ${f}`),
  );
  assert.equal(written.files.length, 4);
  const check = spawnSync('sha256sum', ['-c', '--quiet', manifest], { encoding: 'utf8' });
  if (!check.error) assert.equal(check.status, 0, show(check));

  // Node's crypto accepts the signature over the manifest's exact bytes.
  assert.ok(
    crypto.verify(null, fs.readFileSync(manifest), fs.readFileSync(keys.publicKey), fs.readFileSync(written.signature)),
  );

  const v = await verify([root], { manifest, manifestKey: keys.publicKey });
  assert.equal(v.mode, 'manifest');
  assert.deepEqual(v.failures, []);
  assert.equal(v.ok, 4);
  assert.equal(v.manifestHashes, 3);

  // A file the manifest does not list.
  const extra = path.join(root, 'pkg', 'extra.py');
  fs.writeFileSync(extra, 'EXTRA = 1\n');
  // And a listed file changed afterwards: its new hash is not listed either.
  fs.appendFileSync(path.join(root, 'pkg', 'mod.py'), '# changed\n');
  const v2 = await verify([root], { manifest, manifestKey: keys.publicKey });
  assert.deepEqual(
    v2.failures.map((f) => [path.relative(root, f.path), f.reason, f.result, f.detail]),
    [
      ['pkg/extra.py', 'not in manifest', 'NOT_IN_MANIFEST', `its SHA-256 ${sha('EXTRA = 1\n')} is not listed in the manifest`],
      [
        'pkg/mod.py',
        'not in manifest',
        'NOT_IN_MANIFEST',
        `its SHA-256 ${sha('VALUE = 1\n# changed\n')} is not listed in the manifest`,
      ],
    ],
  );
  // pkg/same.py still has the old content, whose hash stays listed.
  assert.equal(v2.ok, 3);
});

test('a forged manifest (edited after signing) fails the whole call with "bad signature"', async () => {
  const root = project();
  const keys = generateKeyPair(tempDir());
  const manifest = path.join(tempDir(), 'code.manifest');
  await writeManifest([root], manifest, keys.privateKey);

  const evil = path.join(root, 'evil.py');
  fs.writeFileSync(evil, 'import os\n');
  fs.appendFileSync(manifest, `${sha('import os\n')}  ${evil}\n`);
  const isBadSignature = (e: unknown) => {
    assert.ok(e instanceof TrustError, `${e}`);
    assert.equal(e.reason, 'bad signature');
    assert.equal(e.code, 'ERR_SPY_BAD_SIGNATURE');
    assert.match(e.detail ?? '', /does not match manifest .* the manifest changed after signing, or another key signed it/);
    return true;
  };
  await assert.rejects(verify([root], { manifest, manifestKey: keys.publicKey }), isBadSignature);

  // Re-signed with the right key it is trusted again (signManifest alone).
  signManifest(manifest, keys.privateKey);
  assert.deepEqual((await verify([root], { manifest, manifestKey: keys.publicKey })).failures, []);

  // Signed with another key.
  const other = generateKeyPair(tempDir(), 'other');
  signManifest(manifest, other.privateKey);
  await assert.rejects(verify([root], { manifest, manifestKey: keys.publicKey }), isBadSignature);

  // No signature at all.
  fs.unlinkSync(manifest + '.sig');
  await assert.rejects(verify([root], { manifest, manifestKey: keys.publicKey }), (e: unknown) => {
    assert.ok(e instanceof TrustError);
    assert.equal(e.reason, 'bad signature');
    assert.match(e.detail ?? '', /cannot read the signature .*code\.manifest\.sig/);
    return true;
  });

  // Signed, but not sha256sum output.
  fs.writeFileSync(manifest, 'hello\n');
  signManifest(manifest, keys.privateKey);
  await assert.rejects(verify([root], { manifest, manifestKey: keys.publicKey }), (e: unknown) => {
    assert.ok(e instanceof TrustError);
    assert.equal(e.reason, 'malformed manifest');
    return true;
  });
});

test('a manifest signed by OpenSSL verifies; one of ours verifies under openssl pkeyutl', { skip: spawnSync('openssl', ['version']).status !== 0 && 'no openssl' }, async () => {
  const root = project();
  const dir = tempDir();
  const keys = generateKeyPair(dir);
  const manifest = path.join(dir, 'm');
  await writeManifest([root], manifest, keys.privateKey);
  const ours = spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', keys.publicKey, '-rawin', '-in', manifest, '-sigfile', manifest + '.sig'], {
    encoding: 'utf8',
  });
  assert.equal(ours.status, 0, show(ours));

  const sslKey = path.join(dir, 'ssl.pem');
  const sslPub = path.join(dir, 'ssl.pub.pem');
  assert.equal(spawnSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', sslKey]).status, 0);
  assert.equal(spawnSync('openssl', ['pkey', '-in', sslKey, '-pubout', '-out', sslPub]).status, 0);
  const sign = spawnSync('openssl', ['pkeyutl', '-sign', '-inkey', sslKey, '-rawin', '-in', manifest, '-out', manifest + '.sig'], {
    encoding: 'utf8',
  });
  assert.equal(sign.status, 0, show(sign));
  assert.deepEqual((await verify([root], { manifest, manifestKey: sslPub })).failures, []);
});

test('writeManifest refuses files it cannot hash, and escapes names as sha256sum does', async () => {
  const root = project();
  const keys = generateKeyPair(tempDir());
  const manifest = path.join(tempDir(), 'm');
  await assert.rejects(writeManifest([path.join(root, 'missing.py')], manifest, keys.privateKey), (e: unknown) => {
    assert.ok(e instanceof TrustError);
    assert.match(e.message, /cannot hash 1 file\(s\).*missing\.py/);
    return true;
  });
  const odd = path.join(root, 'back\\slash.py');
  fs.writeFileSync(odd, 'X = 1\n');
  await writeManifest([odd], manifest, keys.privateKey);
  assert.equal(fs.readFileSync(manifest, 'utf8'), `\\${sha('X = 1\n')}  ${odd.replace(/\\/g, '\\\\')}\n`);
  assert.deepEqual((await verify([odd], { manifest, manifestKey: keys.publicKey })).failures, []);
});
