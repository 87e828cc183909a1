// Record timestamps (`ts`, docs/protocol.md) are CLOCK_MONOTONIC in nanoseconds. Where the kernel keeps
// that clock from the TSC, the launcher reads the TSC and scales it (native/core/clock.c): the records
// must still agree with the clock Python reads (time.monotonic_ns() is clock_gettime(CLOCK_MONOTONIC))
// to well under a microsecond's worth of error, across the launcher's re-measures, after a pause, and
// never go back.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { launcherBuilt } from '../helpers/interpreters';
import { runLauncher } from '../helpers/run';
import { baseEnv, describeResult, needs, pythonFor, tempDir, writeFile } from './common';

const NOT_BUILT = launcherBuilt() ? {} : { skip: 'launcher not built (npm run build)' };

/** How far a record's ts may fall outside the two clock reads around its event. */
const TOLERANCE_NS = 5_000n;

const python = pythonFor(12);

describe('record timestamps', { ...NOT_BUILT, ...needs(python) }, () => {
  test("every record's ts lies between the program's clock reads around it, and never goes back", async () => {
    const dir = tempDir('spython-clock-');
    // Each event carries the clock read just before it; the next event's read comes after it. The
    // storm lasts long enough for several re-measures; the pause makes the next read re-measure.
    const script = writeFile(
      dir,
      'probes.py',
      [
        'import sys, time',
        'def probes(n):',
        '    for _ in range(n):',
        '        sys.audit("clock.probe", time.monotonic_ns())',
        'probes(300000)',
        'time.sleep(0.2)',
        'probes(1000)',
        'sys.audit("clock.probe", time.monotonic_ns())',
        '',
      ].join('\n'),
    );
    const log = path.join(dir, 'audit.jsonl');
    const r = await runLauncher(['--log-file', log, '--python', python!.path, '--', script], { env: baseEnv(), cwd: dir });
    assert.equal(r.status, 0, describeResult(r));
    // ts and the clock reads pass 2**53: read them as BigInt from the text.
    const probes = fs
      .readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{"event":"clock.probe"'))
      .map((line) => {
        const m = /"ts":(\d+),.*"args":\[(\d+)\]/.exec(line);
        assert.ok(m, `unexpected record: ${line}`);
        return { ts: BigInt(m[1]), before: BigInt(m[2]) };
      });
    assert.equal(probes.length, 301_001);
    const span = probes[probes.length - 1].ts - probes[0].ts;
    assert.ok(span > 200_000_000n, `the run spans only ${span} ns`);
    for (let i = 0; i + 1 < probes.length; i++) {
      const { ts, before } = probes[i];
      const after = probes[i + 1].before;
      assert.ok(ts >= before - TOLERANCE_NS, `probe ${i}: ts ${ts} is ${before - ts} ns before the clock read before it`);
      assert.ok(ts <= after + TOLERANCE_NS, `probe ${i}: ts ${ts} is ${ts - after} ns after the clock read after it`);
      assert.ok(probes[i + 1].ts >= ts, `probe ${i + 1}: ts went back`);
    }
  });
});
