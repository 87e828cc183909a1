// The native trust checks (native/core/verify.c, sha256.c): builds the C driver native/tests/verify_check.c
// with the system compiler, runs its checks, and compares its SHA-256 with sha256sum and Node's crypto.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`);
  }
}

const root = repoRoot();
const sources = ['native/tests/verify_check.c', 'native/core/verify.c', 'native/core/sha256.c'].map((s) =>
  path.join(root, s),
);
let work = '';
// Two builds: the default one (SHA-NI where the CPU has it) and the portable C block function alone.
const drivers: Record<'default' | 'portable', string> = { default: '', portable: '' };

function show(r: SpawnSyncReturns<string>): string {
  return `status ${r.status} signal ${r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function build(out: string, defines: string[]): void {
  const args = ['-O2', '-Wall', '-Wextra', '-Wshadow', '-Werror', ...defines, '-o', out, ...sources, '-ldl', '-lpthread'];
  const r = spawnSync('cc', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `cc ${args.join(' ')} failed:\n${show(r)}`);
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'spy-verify-test-'));
  drivers.default = path.join(work, 'verify_check');
  drivers.portable = path.join(work, 'verify_check_portable');
  build(drivers.default, []);
  build(drivers.portable, ['-DSPY_SHA256_PORTABLE']);
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

for (const kind of ['default', 'portable'] as const) {
  test(`verify_check (${kind} SHA-256) passes every check`, () => {
    const r = spawnSync(drivers[kind], [], { encoding: 'utf8', cwd: work, timeout: 120_000 });
    const lines = r.stdout.trimEnd().split('\n');
    const failures = lines.filter((l) => l.startsWith('FAIL'));
    assert.equal(r.status, 0, `verify_check failed:\n${failures.join('\n')}\n${show(r)}`);
    assert.match(lines[lines.length - 1], /^\d+ passed, 0 failed$/);
  });
}

test('spy_sha256 agrees with sha256sum and Node on files of many sizes', (t) => {
  const dir = path.join(work, 'hash');
  fs.mkdirSync(dir);
  const sizes = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4096, 65535, 65536, 65537, 1 << 20, 3 * (1 << 20) + 7];
  const files = sizes.map((n) => {
    const file = path.join(dir, `f${n}.bin`);
    fs.writeFileSync(file, crypto.randomBytes(n));
    return file;
  });
  const text = path.join(dir, 'text.py');
  fs.writeFileSync(text, 'print("hello")\n'.repeat(5000));
  files.push(text);

  const expected = files.map((f) => `${crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex')}  ${f}`);
  for (const kind of ['default', 'portable'] as const) {
    const ours = spawnSync(drivers[kind], ['--hash', ...files], { encoding: 'utf8' });
    assert.equal(ours.status, 0, show(ours));
    assert.deepEqual(ours.stdout.trimEnd().split('\n'), expected, `${kind} build differs from Node's crypto`);
  }

  const sum = spawnSync('sha256sum', files, { encoding: 'utf8' });
  if (sum.error) {
    t.diagnostic('sha256sum is not installed; compared with Node crypto only');
    return;
  }
  assert.equal(sum.status, 0, show(sum));
  assert.deepEqual(sum.stdout.trimEnd().split('\n'), expected, 'sha256sum differs from our output');
});
