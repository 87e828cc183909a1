// The launcher accepts exactly what verify accepts, on the same trees: a project stamped (or listed in
// a signed manifest) by the addon runs under `spython --verify ...`; after each kind of tampering,
// verify names the file and the launcher refuses that same file, with the same reason and detail,
// in a PermissionError. The interpreter's own prefix (the stdlib) is exempt in every run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateKeyPair, stamp, TrustError, verify, VerifyFailure, writeManifest } from '../../adapter/trust';
import { launcherBuilt } from '../helpers/interpreters';
import {
  allPythons,
  canMountNoexec,
  fifoWriter,
  IMPORTER,
  launch,
  LAUNCHER,
  loggedRefusals,
  mainPython,
  parseRefusal,
  Python,
  Refusal,
  setXattr,
  show,
  tempDir,
  writeTree,
} from './common';

const skip = !launcherBuilt() ? `the launcher ${LAUNCHER} is not built (make -C native)` : !mainPython() ? 'no Python' : false;
const MODULES = ['m0', 'm1', 'm2', 'm3', 'm4', 'pkg.sub'];

function project(): string {
  const root = tempDir();
  const files: Record<string, string> = { 'main.py': IMPORTER, 'pkg/__init__.py': '' };
  MODULES.forEach((m, i) => {
    files[m.replace('.', '/') + '.py'] = `VALUE = ${i}\n`;
  });
  writeTree(root, files);
  return root;
}

interface Outcome {
  /** Modules imported, and those whose import raised the launcher's PermissionError. */
  ok: string[];
  refused: Refusal[];
  /** Every file the launcher refused (its log's spython.code_refused events). */
  logged: Refusal[];
}

/** Runs main.py importing every module, and sorts out what ran and what was refused (and why). */
function runAll(python: Python, root: string, launcherArgs: string[], env: Record<string, string> = {}): Outcome {
  const log = path.join(tempDir('spython-trust-log-'), 'events.jsonl');
  const r = launch({
    python,
    launcherArgs: [...launcherArgs, '--log-file', log],
    script: path.join(root, 'main.py'),
    args: MODULES,
    cwd: root,
    env,
  });
  assert.equal(r.status, 0, show(r));
  const ok: string[] = [];
  const refused: Refusal[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('OK ')) ok.push(line.split(' ')[1]);
    else if (line.startsWith('REFUSED ')) {
      const refusal = parseRefusal(line);
      assert.ok(refusal, `cannot parse: ${line}`);
      refused.push(refusal);
    } else if (line) assert.fail(`unexpected output: ${line}\n${show(r)}`);
  }
  assert.equal(ok.length + refused.length, MODULES.length, show(r));
  const logged = loggedRefusals(log);
  for (const x of refused) assert.ok(logged.some((l) => l.path === x.path && l.detail === x.detail), 'each refusal is logged');
  return { ok, refused, logged };
}

const asRefusals = (failures: VerifyFailure[]) =>
  failures.map((f) => ({ path: f.path, reason: f.reason, detail: f.detail })).sort((a, b) => a.path.localeCompare(b.path));
const sorted = (refusals: Refusal[]) => [...refusals].sort((a, b) => a.path.localeCompare(b.path));

for (const python of skip ? [] : allPythons()) {
  test(`Python ${python.version}: sources only (-B): the launcher refuses exactly what verify fails`, async () => {
    const root = project();
    const s = await stamp([root]);
    assert.equal(s.failed.length, 0);
    // No bytecode: every import opens the .py, so every .py in the tree is checked by both.
    const env = { PYTHONDONTWRITEBYTECODE: '1' };
    const args = ['--verify', 'xattr', '--max-code-size', '4096'];
    assert.deepEqual((await verify([root], { maxSize: 4096 })).failures, []);
    const clean = runAll(python, root, args, env);
    assert.deepEqual(clean.logged, []);
    assert.deepEqual(clean.ok.sort(), [...MODULES].sort());

    fs.appendFileSync(path.join(root, 'm1.py'), 'import os\n'); // hash mismatch
    setXattr(path.join(root, 'm2.py'), null); // no xattr
    fs.writeFileSync(path.join(root, 'm3.py'), `VALUE = 3\n${'#'.repeat(5000)}\n`); // too large (after restamping)
    await stamp([path.join(root, 'm3.py')]);
    setXattr(path.join(root, 'pkg', 'sub.py'), 'A'.repeat(64)); // a malformed hash (uppercase)

    const v = await verify([root], { maxSize: 4096 });
    assert.deepEqual(
      v.failures.map((f) => [path.relative(root, f.path), f.reason]),
      [
        ['m1.py', 'hash mismatch'],
        ['m2.py', 'no xattr'],
        ['m3.py', 'too large'],
        ['pkg/sub.py', 'hash mismatch'],
      ],
    );
    const out = runAll(python, root, args, env);
    assert.deepEqual(sorted(out.refused), asRefusals(v.failures));
    assert.deepEqual(sorted(out.logged), asRefusals(v.failures));
    assert.deepEqual(out.ok.sort(), ['m0', 'm4']);
  });

  test(`Python ${python.version}: with bytecode stamped by the addon, refusals match verify's on the .pyc files`, async () => {
    const root = project();
    const s = await stamp([root], { python: python.path });
    assert.equal(s.failed.length, 0);
    assert.equal(s.compiled.length, MODULES.length + 2, s.compiled.join('\n')); // main.py, pkg/__init__.py too
    assert.deepEqual((await verify([root])).failures, []);
    const env = { PYTHONDONTWRITEBYTECODE: '1' };
    const clean = runAll(python, root, ['--verify', 'xattr'], env);
    assert.deepEqual(clean.logged, []);

    const pyc = (m: string) => s.compiled.find((f) => path.basename(f).startsWith(m + '.'))!;
    setXattr(pyc('m1'), null); // the .pyc Python loads has no xattr
    setXattr(pyc('m2'), '0'.repeat(64)); // the .pyc's xattr is wrong
    fs.appendFileSync(path.join(root, 'm3.py'), '# edited\n'); // stale .pyc: Python reads the .py
    const v = await verify([root]);
    assert.deepEqual(
      v.failures.map((f) => [path.relative(root, f.path), f.reason]),
      [
        [path.relative(root, pyc('m1')), 'no xattr'],
        [path.relative(root, pyc('m2')), 'hash mismatch'],
        ['m3.py', 'hash mismatch'],
      ],
    );
    const out = runAll(python, root, ['--verify', 'xattr'], env);
    // The launcher refused exactly those files. Python swallows a refused .pyc (an OSError) and
    // compiles the verified source instead, so m1 and m2 still import; m3's source is refused.
    assert.deepEqual(sorted(out.logged), asRefusals(v.failures));
    assert.deepEqual(out.refused, [asRefusals(v.failures)[2]]);
    assert.deepEqual(out.ok.sort(), ['m0', 'm1', 'm2', 'm4', 'pkg.sub']);

    // Restamping with the interpreter (as mkxattr.py would) makes both accept it all again.
    const again = await stamp([root], { python: python.path });
    assert.deepEqual(again.recompiled, [path.join(root, 'm3.py')]);
    assert.deepEqual((await verify([root])).failures, []);
    assert.deepEqual(runAll(python, root, ['--verify', 'xattr'], env).logged, []);
  });
}

test('manifest mode: the launcher runs what the signed manifest lists, refuses the rest, and rejects a forgery', { skip }, async () => {
  const python = mainPython()!;
  const root = project();
  const keyDir = tempDir();
  const keys = generateKeyPair(keyDir);
  const manifest = path.join(keyDir, 'code.manifest');
  await writeManifest([root], manifest, keys.privateKey);
  const args = ['--verify', 'manifest', '--manifest', manifest, '--key', keys.publicKey];
  const env = { PYTHONDONTWRITEBYTECODE: '1' };
  assert.deepEqual((await verify([root], { manifest, manifestKey: keys.publicKey })).failures, []);
  assert.deepEqual(runAll(python, root, args, env).logged, []);

  fs.writeFileSync(path.join(root, 'm4.py'), 'VALUE = "replaced"\n');
  const v = await verify([root], { manifest, manifestKey: keys.publicKey });
  assert.deepEqual(v.failures.map((f) => [path.basename(f.path), f.reason]), [['m4.py', 'not in manifest']]);
  const out = runAll(python, root, args, env);
  assert.deepEqual(sorted(out.refused), asRefusals(v.failures));
  assert.deepEqual(sorted(out.logged), asRefusals(v.failures));

  // Forged: the replaced module's hash appended after signing.
  const hash = v.failures[0].detail.split(' ')[2];
  fs.appendFileSync(manifest, `${hash}  ${path.join(root, 'm4.py')}\n`);
  let detail = '';
  await assert.rejects(verify([root], { manifest, manifestKey: keys.publicKey }), (e: unknown) => {
    assert.ok(e instanceof TrustError);
    assert.equal(e.reason, 'bad signature');
    detail = e.detail ?? '';
    return true;
  });
  const r = launch({ python, launcherArgs: args, script: path.join(root, 'main.py'), args: MODULES, cwd: root, env });
  assert.equal(r.status, 125, show(r));
  assert.ok(r.stderr.includes(detail), `the launcher's message names the same problem:\n${show(r)}\nexpected: ${detail}`);
  assert.equal(r.stdout, '', 'nothing ran');
});

test('a FIFO as the main script: verify and the launcher both say "not a regular file"', { skip }, async () => {
  const python = mainPython()!;
  const root = tempDir();
  const fifo = path.join(root, 'main.py');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const v = await verify([fifo]);
  assert.deepEqual(asRefusals(v.failures), [{ path: fifo, reason: 'not a regular file', detail: 'it is a FIFO' }]);
  // The launcher opens it blocking (as Python would), so give it a writer.
  const stop = fifoWriter(fifo, 'print("ran")\n');
  try {
    const r = launch({ python, launcherArgs: ['--verify', 'xattr'], script: fifo, cwd: root, timeoutMs: 20_000 });
    assert.notEqual(r.status, 0, show(r));
    assert.equal(r.stdout, '');
    assert.deepEqual(parseRefusal(r.stderr), asRefusals(v.failures)[0], show(r));
  } finally {
    stop();
  }
});

test('a noexec mount: verify and the launcher both say "on a noexec mount"', { skip: skip || (!canMountNoexec() && 'needs unshare -m and mount') }, async () => {
  const python = mainPython()!;
  const root = project();
  await stamp([root]);
  const mnt = tempDir('spython-noexec-');
  const trustJs = path.resolve(__dirname, '..', '..', 'adapter', 'trust.js');
  // In a private mount namespace: a noexec tmpfs holding a copy of the stamped tree (xattrs kept).
  const verifyJs = [
    `require(${JSON.stringify(trustJs)}).verify([${JSON.stringify(mnt)}])`,
    '  .then((v) => console.log(JSON.stringify(v.failures)), (e) => { console.error(e); process.exit(1); });',
  ].join('\n');
  const exempt = python.prefixes.map((p) => `--verify-exempt '${p}'`).join(' ');
  const script = [
    'set -e',
    `mount -t tmpfs -o noexec none '${mnt}'`,
    `cp -a '${root}/.' '${mnt}/'`,
    `"$NODE" -e "$VERIFY_JS"`,
    'echo ---',
    `'${LAUNCHER}' --verify xattr ${exempt} --python '${python.path}' -- '${mnt}/main.py' m0 2>&1 || echo "status $?"`,
  ].join('\n');
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script], {
    encoding: 'utf8',
    env: { ...process.env, NODE: process.execPath, VERIFY_JS: verifyJs, PYTHONDONTWRITEBYTECODE: '1' },
  });
  assert.equal(r.status, 0, show(r));
  const [json, launcherOut] = r.stdout.split('\n---\n');
  const failures = JSON.parse(json) as VerifyFailure[];
  assert.equal(failures.length, MODULES.length + 2);
  assert.ok(failures.every((f) => f.reason === 'on a noexec mount'));
  const refusal = parseRefusal(launcherOut);
  const main = failures.find((f) => f.path === path.join(mnt, 'main.py'))!;
  assert.deepEqual(refusal, { path: main.path, reason: main.reason, detail: main.detail }, launcherOut);
  assert.match(launcherOut, /status [1-9]/);
});
