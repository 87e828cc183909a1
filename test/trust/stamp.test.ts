// The trust addon (dist/bin/spython_trust.node) through adapter/trust.ts: stamping and verifying in
// xattr mode, each failure reason, .pyc recompilation, progress, and cancellation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AbortError,
  expandTree,
  hashFiles,
  loadTrustAddon,
  sha256File,
  stamp,
  trustInfo,
  verify,
} from '../../adapter/trust';
import { canMountNoexec, mainPython, readXattrs, setXattr, show, tempDir, writeTree, XATTR } from './common';

const sha = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');
const python = mainPython();

function smallProject(): string {
  const root = tempDir();
  writeTree(root, {
    'main.py': 'import pkg.mod\nprint(pkg.mod.VALUE)\n',
    'pkg/__init__.py': '',
    'pkg/mod.py': 'VALUE = 1\n',
    'pkg/sub/__init__.py': '# sub\n',
    'pkg/sub/deep.py': 'DEEP = True\n',
    'README.txt': 'not code\n',
    'data.json': '{}\n',
  });
  return root;
}

test('the addon loads and reports the launcher defaults', () => {
  const info = trustInfo();
  assert.equal(info.xattrName, XATTR);
  assert.equal(info.maxSize, 2 * 1024 * 1024);
  assert.ok(info.defaultThreads >= 1 && info.defaultThreads <= 4);
  assert.equal(info.reasons.MISMATCH, 'hash mismatch');
  assert.equal(info.reasons.NOT_IN_MANIFEST, 'not in manifest');
  // The .node file is what `npm run build` copies to dist/bin.
  assert.equal(typeof loadTrustAddon().stamp, 'function');
});

test('expandTree keeps .py and .pyc, follows directory symlinks once, and skips exempt trees', async () => {
  const root = smallProject();
  writeTree(root, { 'pkg/__pycache__/mod.cpython-312.pyc': 'x', 'vendor/lib.py': 'L = 1\n', 'notes.pyw': '' });
  fs.symlinkSync(root, path.join(root, 'pkg', 'loop')); // a loop back to the root
  fs.symlinkSync(path.join(root, 'vendor'), path.join(root, 'vendored'));
  fs.symlinkSync(path.join(root, 'pkg', 'mod.py'), path.join(root, 'alias.py'));
  fs.symlinkSync(path.join(root, 'missing.py'), path.join(root, 'dangling.py'));

  const files = await expandTree([root]);
  const rel = files.map((f) => path.relative(root, f));
  assert.deepEqual(rel, [
    'alias.py',
    'dangling.py',
    'main.py',
    'pkg/__init__.py',
    'pkg/__pycache__/mod.cpython-312.pyc',
    'pkg/mod.py',
    'pkg/sub/__init__.py',
    'pkg/sub/deep.py',
    // vendor/ and vendored/ are the same directory: walked once, under whichever name came first.
    rel.includes('vendor/lib.py') ? 'vendor/lib.py' : 'vendored/lib.py',
  ]);

  const exempt = await expandTree([root], { exempt: [path.join(root, 'vendored')] });
  assert.ok(!exempt.some((f) => f.endsWith('lib.py')), 'an exempt tree (named through a symlink) is not listed');

  // Files named explicitly are kept whatever their name, missing or not.
  assert.deepEqual(await expandTree([path.join(root, 'README.txt'), path.join(root, 'nope.py')]), [
    path.join(root, 'README.txt'),
    path.join(root, 'nope.py'),
  ]);

  // A tree without code files lists nothing (not one empty path), and stamping it stamps nothing.
  const empty = tempDir();
  writeTree(empty, { 'README.txt': 'no code\n' });
  assert.deepEqual(await expandTree([empty]), []);
  assert.deepEqual((await stamp([empty])).entries, []);
});

test('stamp then verify: every file OK, the xattr is the lowercase hex SHA-256, restamping writes nothing', async () => {
  const root = smallProject();
  const report = await stamp([root]);
  assert.equal(report.failed.length, 0, JSON.stringify(report.failed));
  assert.equal(report.entries.length, 5);
  assert.equal(report.written, 5);
  for (const e of report.entries) assert.equal(e.hash, sha(fs.readFileSync(e.path)), e.path);
  assert.deepEqual(
    readXattrs(report.entries.map((e) => e.path)),
    report.entries.map((e) => e.hash),
  );

  const v = await verify([root]);
  assert.deepEqual(v.failures, []);
  assert.equal(v.checked, 5);
  assert.equal(v.ok, 5);
  assert.equal(v.mode, 'xattr');

  const again = await stamp([root]);
  assert.equal(again.written, 0);
  assert.equal(again.current, 5);
});

test('stamp and verify hash files of every size whole: empty, one read, exactly and just past 64 KiB reads', async () => {
  // The reads stop once fstat's size is in and the byte asked for beyond it did not come.
  const root = tempDir();
  const sizes = [0, 1, 2047, 65535, 65536, 65537, 131072, (1 << 20) + 7];
  const files = sizes.map((n) => {
    const file = path.join(root, `f${n}.py`);
    fs.writeFileSync(file, crypto.randomBytes(n));
    return file;
  });
  const report = await stamp([root]);
  assert.deepEqual(
    report.entries.map((e) => [path.basename(e.path), e.hash]),
    files.sort().map((f) => [path.basename(f), sha(fs.readFileSync(f))]),
  );
  assert.deepEqual((await verify([root])).failures, []);
  // A byte changed at the very end is seen.
  const last = files.find((f) => f.endsWith(`f${(1 << 20) + 7}.py`))!;
  const fd = fs.openSync(last, 'r+');
  fs.writeSync(fd, Buffer.from([0x41 ^ fs.readFileSync(last)[(1 << 20) + 6]]), 0, 1, (1 << 20) + 6);
  fs.closeSync(fd);
  assert.deepEqual((await verify([root])).failures.map((f) => [path.basename(f.path), f.reason]), [[path.basename(last), 'hash mismatch']]);
});

test('a tampered file fails with "hash mismatch", naming both hashes; the rest stay OK', async () => {
  const root = smallProject();
  await stamp([root]);
  const mod = path.join(root, 'pkg', 'mod.py');
  const before = sha(fs.readFileSync(mod));
  fs.appendFileSync(mod, 'import os; os.system("id")\n');
  const v = await verify([root]);
  assert.equal(v.ok, 4);
  assert.equal(v.failures.length, 1);
  const [f] = v.failures;
  assert.equal(f.path, mod);
  assert.equal(f.reason, 'hash mismatch');
  assert.equal(f.result, 'MISMATCH');
  assert.equal(f.detail, `xattr ${XATTR} is ${before} but the file hashes to ${sha(fs.readFileSync(mod))}`);
});

test('an unstamped file fails with "no xattr"; a malformed xattr with "hash mismatch"', async () => {
  const root = smallProject();
  await stamp([root]);
  const deep = path.join(root, 'pkg', 'sub', 'deep.py');
  const main = path.join(root, 'main.py');
  setXattr(deep, null);
  setXattr(main, 'not-a-hash');
  const v = await verify([root]);
  const byPath = new Map(v.failures.map((f) => [f.path, f]));
  assert.equal(v.failures.length, 2);
  assert.equal(byPath.get(deep)?.reason, 'no xattr');
  assert.match(byPath.get(deep)!.detail, /has no xattr user\.org\.python\.x-spython-hash/);
  assert.equal(byPath.get(main)?.reason, 'hash mismatch');
});

test('a file over the size limit fails with "too large" (the 2 MiB default and maxSize)', async () => {
  const root = tempDir();
  writeTree(root, {
    'big.py': Buffer.alloc(2 * 1024 * 1024 + 1, 0x23), // '#'
    'limit.py': Buffer.alloc(2 * 1024 * 1024, 0x23),
    'small.py': 'X = 1\n',
  });
  const s = await stamp([root]);
  assert.equal(s.failed.length, 0, 'stamping has no size limit');
  const v = await verify([root]);
  assert.deepEqual(
    v.failures.map((f) => [path.basename(f.path), f.reason, f.detail]),
    [['big.py', 'too large', '2097153 bytes, over the 2097152-byte limit']],
  );
  const tight = await verify([root], { maxSize: 5 });
  assert.deepEqual(tight.failures.map((f) => [path.basename(f.path), f.reason]), [
    ['big.py', 'too large'],
    ['limit.py', 'too large'],
    ['small.py', 'too large'],
  ]);
});

test('a FIFO (and a missing file) fails as the launcher would, without blocking', async () => {
  const root = smallProject();
  await stamp([root]);
  const fifo = path.join(root, 'pkg', 'fifo.py');
  const r = spawnSync('mkfifo', [fifo], { encoding: 'utf8' });
  assert.equal(r.status, 0, show(r));

  const v = await verify([root]);
  assert.deepEqual(v.failures, [
    { path: fifo, reason: 'not a regular file', result: 'NOT_REGULAR', detail: 'it is a FIFO' },
  ]);
  const explicit = await verify([fifo, path.join(root, 'gone.py')]);
  assert.deepEqual(
    explicit.failures.map((f) => [path.basename(f.path), f.reason, f.detail]),
    [
      ['gone.py', 'I/O error', 'open: No such file or directory'],
      ['fifo.py', 'not a regular file', 'it is a FIFO'],
    ],
  );
  // Stamping refuses it too, per file.
  const s = await stamp([fifo]);
  assert.match(s.failed[0].error ?? '', /not stamping .*fifo\.py: it is a FIFO/);
});

test('a file on a noexec mount fails with "on a noexec mount"', { skip: !canMountNoexec() && 'needs unshare -m and mount' }, () => {
  // The mount lives in a private mount namespace, so the check runs in a child Node there.
  const dir = tempDir('spython-noexec-');
  const trustJs = path.resolve(__dirname, '..', '..', 'adapter', 'trust.js');
  const script = [
    `const t = require(${JSON.stringify(trustJs)});`,
    `require('fs').writeFileSync(${JSON.stringify(dir + '/a.py')}, 'X = 1\\n');`,
    `t.stamp([${JSON.stringify(dir)}]).then(() => t.verify([${JSON.stringify(dir)}]))`,
    '  .then((v) => console.log(JSON.stringify(v.failures)), (e) => { console.error(e); process.exit(1); });',
  ].join('\n');
  const r = spawnSync(
    'unshare',
    ['-m', 'sh', '-c', `mount -t tmpfs -o noexec none "${dir}" && exec "$0" -e "$1"`, process.execPath, script],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, show(r));
  assert.deepEqual(JSON.parse(r.stdout), [
    {
      path: path.join(dir, 'a.py'),
      reason: 'on a noexec mount',
      result: 'NOEXEC_MOUNT',
      detail: 'its file system is mounted noexec, so no code runs from it',
    },
  ]);
});

test('xattrName: stamps and verifies under another attribute name', async () => {
  const root = smallProject();
  await stamp([root], { xattrName: 'user.test.other-hash' });
  assert.equal((await verify([root], { xattrName: 'user.test.other-hash' })).failures.length, 0);
  const v = await verify([root]);
  assert.equal(v.failures.length, 5);
  assert.ok(v.failures.every((f) => f.reason === 'no xattr'));
});

test('exempt files are counted, not verified (the launcher trusts them unverified)', async () => {
  const root = smallProject();
  const v = await verify([path.join(root, 'pkg', 'mod.py'), path.join(root, 'main.py')], {
    exempt: [path.join(root, 'pkg')],
  });
  assert.equal(v.exempt, 1);
  assert.deepEqual(v.failures.map((f) => path.basename(f.path)), ['main.py']);
  await assert.rejects(verify([root], { exempt: [path.join(root, 'no-such-dir')] }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ERR_SPY_EXEMPT');
    assert.match(e.message, /verifyExempt directory .*no-such-dir: No such file or directory/);
    return true;
  });
});

test('sha256File and hashFiles agree with Node crypto', async () => {
  const root = smallProject();
  const file = path.join(root, 'pkg', 'mod.py');
  assert.equal(await sha256File(file), sha(fs.readFileSync(file)));
  const big = path.join(root, 'big.bin');
  fs.writeFileSync(big, crypto.randomBytes(3 * 1024 * 1024 + 7));
  const entries = await hashFiles([file, big, path.join(root, 'none')]);
  assert.equal(entries[0].hash, sha(fs.readFileSync(file)));
  assert.equal(entries[1].hash, sha(fs.readFileSync(big)));
  assert.match(entries[2].error ?? '', /No such file/);
  await assert.rejects(sha256File(path.join(root, 'none')), /No such file/);
});

test('stamping with an interpreter recompiles the .pyc of an edited .py and stamps both', { skip: !python && 'no Python' }, async () => {
  const root = smallProject();
  const py = python!.path;
  const first = await stamp([root], { python: py });
  assert.equal(first.failed.length, 0);
  assert.equal(first.compileFailed.length, 0);
  const tag = spawnSync(py, ['-c', 'import sys; print(sys.implementation.cache_tag)'], { encoding: 'utf8' }).stdout.trim();
  const pyc = path.join(root, 'pkg', '__pycache__', `mod.${tag}.pyc`);
  assert.ok(first.compiled.includes(pyc), `compiled: ${first.compiled.join(', ')}`);
  assert.ok(first.entries.some((e) => e.path === pyc && e.written));
  const oldPyc = fs.readFileSync(pyc);
  const oldStat = fs.statSync(pyc);
  assert.equal((await verify([root])).failures.length, 0);

  // The same size, within the same second: the .pyc header (mtime, size) cannot tell, the hash can.
  const mod = path.join(root, 'pkg', 'mod.py');
  fs.writeFileSync(mod, 'VALUE = 2\n');
  const second = await stamp([root], { python: py });
  assert.deepEqual(second.recompiled, [mod]);
  const newPyc = fs.readFileSync(pyc);
  assert.notDeepEqual(newPyc, oldPyc, 'the .pyc was rewritten');
  assert.ok(fs.statSync(pyc).mtimeMs > oldStat.mtimeMs, 'the .pyc is newer');
  assert.ok(fs.statSync(pyc).mtimeMs >= fs.statSync(mod).mtimeMs, 'the .pyc is not older than its source');
  assert.deepEqual(readXattrs([pyc, mod]), [sha(newPyc), sha('VALUE = 2\n')]);
  assert.equal(second.written, 2, 'only the edited .py and its .pyc are written');
  assert.equal((await verify([root])).failures.length, 0);

  // The .pyc really is the new code: the interpreter imports 2 from it.
  const r = spawnSync(py, ['-c', 'import pkg.mod; print(pkg.mod.VALUE, pkg.mod.__cached__)'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.stdout.trim(), `2 ${pyc}`, show(r));

  // Without an interpreter nothing is compiled.
  fs.writeFileSync(mod, 'VALUE = 3\n');
  const third = await stamp([root]);
  assert.deepEqual(third.recompiled, []);
  assert.deepEqual(fs.readFileSync(pyc), newPyc);
});

test('a .py that does not compile is still stamped, and reported', { skip: !python && 'no Python' }, async () => {
  const root = tempDir();
  writeTree(root, { 'bad.py': 'def (:\n', 'good.py': 'X = 1\n' });
  const r = await stamp([root], { python: python!.path });
  assert.deepEqual(r.compileFailed, [path.join(root, 'bad.py')]);
  assert.deepEqual(r.recompiled, [path.join(root, 'good.py')]);
  assert.equal(r.failed.length, 0);
  assert.equal((await verify([root])).failures.length, 0);
});

function manyFiles(count: number, size: number): string {
  const root = tempDir('spython-trust-many-');
  const body = Buffer.alloc(size, 0x23);
  for (let d = 0; d < Math.ceil(count / 100); d++) {
    const dir = path.join(root, `pkg${d}`);
    fs.mkdirSync(dir);
    for (let i = 0; i < 100 && d * 100 + i < count; i++) {
      body.write(`X = ${d * 100 + i}\n`, 0);
      fs.writeFileSync(path.join(dir, `m${i}.py`), body);
    }
  }
  return root;
}

test('progress is batched, never goes backwards, and ends at the total before the promise settles', async () => {
  const root = manyFiles(2000, 4096);
  const calls: Array<[number, number, string]> = [];
  let settled = false;
  const report = await stamp([root], {
    onProgress: (done, total, phase) => {
      assert.ok(!settled, 'no progress after the result');
      calls.push([done, total, phase]);
    },
  });
  settled = true;
  assert.equal(report.written, 2000);
  assert.ok(calls.length >= 1);
  assert.ok(calls.length < 200, `${calls.length} progress calls for 2000 files: not batched`);
  assert.deepEqual(calls[calls.length - 1], [2000, 2000, 'stamp']);
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i][0] > calls[i - 1][0], 'progress moves forward');
  assert.ok(calls.every((c) => c[1] === 2000));

  const vcalls: number[] = [];
  const v = await verify([root], { onProgress: (done) => vcalls.push(done) });
  assert.equal(v.ok, 2000);
  assert.equal(vcalls[vcalls.length - 1], 2000);

  // A throwing onProgress ends the call with what it threw.
  await assert.rejects(
    verify([root], {
      onProgress: () => {
        throw new Error('from onProgress');
      },
      threads: 1,
    }),
    /from onProgress/,
  );
});

test('aborting mid-run rejects with an AbortError promptly, and not every file got stamped', async () => {
  // Large enough that one thread needs well over the first 50 ms progress tick.
  const root = manyFiles(4000, 32 * 1024);
  const controller = new AbortController();
  let abortedAt = 0n;
  let lateCalls = 0;
  let rejected = false;
  const started = process.hrtime.bigint();
  await assert.rejects(
    stamp([root], {
      threads: 1,
      signal: controller.signal,
      onProgress: (done, total) => {
        if (rejected) lateCalls++;
        if (!controller.signal.aborted && done > 0 && done < total) {
          abortedAt = process.hrtime.bigint();
          controller.abort();
        }
      },
    }),
    (e: Error & { code?: string }) => {
      rejected = true;
      assert.ok(e instanceof AbortError, `${e}`);
      assert.equal(e.name, 'AbortError');
      assert.equal(e.code, 'ABORT_ERR');
      return true;
    },
  );
  const stopMs = Number(process.hrtime.bigint() - abortedAt) / 1e6;
  assert.ok(abortedAt > 0n, 'a progress call came before the end');
  assert.ok(stopMs < 1000, `stopped ${stopMs.toFixed(0)} ms after the abort`);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(lateCalls, 0, 'no progress after the rejection');

  const v = await verify([root]);
  const stamped = v.ok;
  assert.ok(stamped > 0, 'some files were stamped before the abort');
  assert.ok(stamped < 4000, `all ${stamped} files were stamped: the abort did not stop the workers`);
  assert.equal(v.failures.filter((f) => f.reason === 'no xattr').length, 4000 - stamped);
  assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 60_000);

  // An already aborted signal: nothing is touched.
  const fresh = manyFiles(10, 10);
  await assert.rejects(stamp([fresh], { signal: AbortSignal.abort() }), { name: 'AbortError' });
  assert.equal((await verify([fresh])).ok, 0);

  // verify and hashing stop the same way.
  const c2 = new AbortController();
  await assert.rejects(
    verify([root], { threads: 1, signal: c2.signal, onProgress: () => c2.abort() }),
    { name: 'AbortError' },
  );
});
