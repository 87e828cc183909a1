// The launcher and policies test suites again, against the launcher built with AddressSanitizer and
// UndefinedBehaviorSanitizer (scripts/test-sanitizers.js: make -C native sanitize, then the suites
// with SPYTHON_LAUNCHER=dist-asan/bin/spython; any sanitizer report fails). About 1.5 minutes on two
// cores. SPYTHON_SKIP_SANITIZERS=1 skips it (npm run test:sanitizers runs it alone).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { SANITIZERS_SKIP as SKIP } from './common';

const ROOT = path.resolve(__dirname, '..', '..', '..');

test('launcher and policies suites pass under ASan/UBSan', { ...SKIP, timeout: 1_200_000 }, () => {
  // Output is captured: the nested runner's TAP must not mix with this one's.
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'test-sanitizers.js')], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const output = `${r.stdout}${r.stderr}`;
  const failures = output
    .split('\n')
    .filter((line) => /^\s*not ok /.test(line))
    .join('\n');
  assert.equal(
    r.status,
    0,
    `scripts/test-sanitizers.js failed (status ${r.status}):\n${failures}\n--- last lines ---\n` +
      output.split('\n').slice(-150).join('\n'),
  );
  assert.match(r.stdout, /test-sanitizers: no sanitizer reports; tests passed/);
  // The suites really ran (a nested runner that skips its files also ends "passed").
  const passed = Number(/^# pass (\d+)$/m.exec(r.stdout)?.[1] ?? 0);
  assert.ok(passed > 100, `expected the launcher and policies suites to run, got ${passed} passing tests`);
});
