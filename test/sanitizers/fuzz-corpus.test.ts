// The launcher's fuzz targets (native/fuzz: the control-message parser, the channel's message
// handling, the argument renderer) run once over every committed input: the seed corpus, what
// `npm run fuzz` merged into it, and the inputs of past findings (native/fuzz/corpus-regressions).
// The renderer runs against every CPython 3.8-3.13 found. Fuzzing proper is `npm run fuzz`.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLANG_SKIP as SKIP } from './common';

const ROOT = path.resolve(__dirname, '..', '..', '..');

test('fuzz targets pass over their committed inputs', { ...SKIP, timeout: 900_000 }, () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'fuzz.js'), '--replay'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const output = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `scripts/fuzz.js --replay failed:\n${output.split('\n').slice(-120).join('\n')}`);
  assert.match(r.stdout, /^ok: fuzz_json:/m);
  assert.match(r.stdout, /^ok: fuzz_control:/m);
  assert.match(r.stdout, /^ok: fuzz_render/m);
});
