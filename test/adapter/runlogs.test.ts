// Each session copies every record to a run log in its runsDir ($TMPDIR/spython-runs by default): as a
// session ends, the logs past the newest RUN_LOGS_KEPT, or past RUN_LOGS_MAX_BYTES in all, go (oldest
// first), except those written within the last hour (a running session's). Nothing else in the
// directory is touched, and a file named by --jsonl is never pruned.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pruneRunLogs, RUN_LOGS_KEPT } from '../../adapter/engine';
import { tempDir } from '../helpers/fixtures';
import { needs, NOT_BUILT, Program, pythonFor, Session, TEST_TIMEOUT_MS } from './common';

after(() => Session.closeAll());

const HOUR_MS = 60 * 60 * 1000;

/** A run log's name as the engine makes it, `minute` minutes into 2026-01-01. */
function runLogName(minute: number, program = 'prog.py'): string {
  const time = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString().replace(/[:.]/g, '-');
  return `${time}-${program}-${(minute % 4096).toString(16).padStart(6, '0')}.jsonl`;
}

/** Writes `bytes` bytes to dir/name, last modified `ageMs` ago. */
function put(dir: string, name: string, bytes = 10, ageMs = 2 * HOUR_MS): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, 'x'.repeat(bytes));
  const when = new Date(Date.now() - ageMs);
  fs.utimesSync(file, when, when);
  return file;
}

describe('pruneRunLogs', () => {
  test('keeps the newest logs by the time in their names, and touches nothing else', async () => {
    const dir = tempDir('spython-runlogs-');
    // Written in shuffled order, so modification times say nothing of which is newest.
    const minutes = Array.from({ length: 30 }, (_, i) => (i * 7) % 30);
    for (const minute of minutes) put(dir, runLogName(minute));
    const outside = put(tempDir('spython-runlogs-outside-'), 'target.jsonl');
    const others = ['notes.txt', 'other.jsonl', `x${runLogName(1)}`, runLogName(2).replace('.jsonl', '.json')];
    for (const name of others) put(dir, name);
    fs.mkdirSync(path.join(dir, runLogName(100)));
    fs.symlinkSync(outside, path.join(dir, runLogName(101)));

    assert.equal(await pruneRunLogs(dir, { keep: 10 }), 20);
    const left = fs.readdirSync(dir).sort();
    const expected = [...Array.from({ length: 10 }, (_, i) => runLogName(20 + i)), ...others, runLogName(100), runLogName(101)].sort();
    assert.deepEqual(left, expected);
    assert.ok(fs.existsSync(outside));
    assert.equal(await pruneRunLogs(dir, { keep: 10 }), 0);
  });

  test('a size budget: from the first log past it on, older ones go; the newest stays whatever its size', async () => {
    const dir = tempDir('spython-runlogs-');
    for (let minute = 0; minute < 5; minute++) put(dir, runLogName(minute), 400);
    put(dir, runLogName(1), 100); // smaller, but older than one past the budget: it goes too
    assert.equal(await pruneRunLogs(dir, { maxBytes: 1000 }), 3);
    assert.deepEqual(fs.readdirSync(dir).sort(), [runLogName(3), runLogName(4)]);

    put(dir, runLogName(9), 5000);
    assert.equal(await pruneRunLogs(dir, { maxBytes: 1000 }), 2);
    assert.deepEqual(fs.readdirSync(dir), [runLogName(9)]);
  });

  test('a log written within the last hour stays, and counts', async () => {
    const dir = tempDir('spython-runlogs-');
    for (let minute = 0; minute < 6; minute++) put(dir, runLogName(minute), 10, minute === 1 ? 5 * 60 * 1000 : 2 * HOUR_MS);
    // Keep 3: minutes 5, 4, 3; 2 and 0 go; 1 is a running session's.
    assert.equal(await pruneRunLogs(dir, { keep: 3 }), 2);
    assert.deepEqual(fs.readdirSync(dir).sort(), [runLogName(1), runLogName(3), runLogName(4), runLogName(5)]);
  });

  test('a missing directory rejects (the engine ignores it)', async () => {
    await assert.rejects(pruneRunLogs(path.join(tempDir('spython-runlogs-'), 'none')), /ENOENT/);
  });
});

const python = pythonFor(12)?.path;

describe('a session prunes its runsDir', { ...NOT_BUILT, ...needs(python), timeout: TEST_TIMEOUT_MS }, () => {
  test(`after a session, the runsDir holds its own log and the newest of the others: ${RUN_LOGS_KEPT} in all`, async () => {
    const program = new Program('print("hello")\n');
    const runs = path.join(program.dir, 'runs');
    fs.mkdirSync(runs);
    for (let minute = 0; minute < RUN_LOGS_KEPT + 5; minute++) put(runs, runLogName(minute));
    put(runs, 'keep-me.txt');
    await Session.with(async (s) => {
      await s.launch(program.launchArgs(python));
      await s.ended();
    });
    const left = fs.readdirSync(runs).sort();
    assert.equal(left.length, RUN_LOGS_KEPT + 1, left.join('\n'));
    assert.ok(left.includes('keep-me.txt'));
    // The oldest six went: the session's own log is the newest.
    for (let minute = 0; minute < 6; minute++) assert.ok(!left.includes(runLogName(minute)), runLogName(minute));
    const own = left.filter((name) => name.endsWith('.jsonl') && !name.startsWith('2026-01-01T'));
    assert.equal(own.length, 1, left.slice(-3).join('\n'));
    assert.match(fs.readFileSync(path.join(runs, own[0]), 'utf8'), /"event":"cpython\.run_file"/);
  });
});
