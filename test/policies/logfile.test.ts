// --log-file PATH (auditLog.file): every record as one JSON line, with full fidelity: the same
// records, byte for byte and with the same seq, as the channel stream; forked children append their
// own records to the same file.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  allTargets,
  describeResult,
  mainTargets,
  needs,
  pyStr,
  run,
  runWithChannel,
  tempDir,
  writeFile,
} from './common';

/** The log file's lines (without their newlines); the file must end with a newline. */
function logLines(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'), 'the log ends with a complete line');
  return text.slice(0, -1).split('\n');
}

function script(dir: string, extra: string[] = []): string {
  return writeFile(
    dir,
    'main.py',
    [
      'import os, sys',
      `os.listdir(${pyStr(dir)})`,
      'try:',
      '    os.system("true")',
      'except PermissionError:',
      '    pass',
      'sys.audit("policytest.values", "é\\u2603", b"\\x00\\xff", 2**60, 1.5, None, [1, (2, 3)], {"k": "v"})',
      ...extra,
      '',
    ].join('\n'),
  );
}

for (const t of mainTargets()) {
  describe(`--log-file against the channel stream, Python ${t.label}`, needs(t), () => {
    test('the log holds exactly the channel records, byte for byte, refusals included', async () => {
      const dir = tempDir();
      const log = path.join(dir, 'audit.jsonl');
      const main = script(dir);
      const { result, connections } = await runWithChannel(t, ['--log-file', log, '--deny', 'os.system', main]);
      assert.equal(result.status, 0, describeResult(result));
      assert.equal(connections.length, 1);
      const channel = connections[0].records.map((b) => b.toString('utf8'));
      const lines = logLines(log);
      assert.ok(channel.length > 10, `${channel.length} records`);
      assert.equal(lines.length, channel.length, 'same number of records');
      for (let i = 0; i < lines.length; i++) assert.equal(lines[i], channel[i], `record #${i + 1}`);
      const recs = lines.map((l) => JSON.parse(l));
      assert.deepEqual(
        recs.map((r) => r.seq),
        recs.map((_, i) => i + 1),
        'seq 1, 2, 3 … without gaps',
      );
      assert.ok(recs.some((r) => r.event === 'os.system' && r.denied === 'denyEvents'));
      assert.ok(recs.some((r) => r.event === 'policytest.values'));
      assert.equal(fs.statSync(log).mode & 0o777, 0o600, 'the audit log is private');
    });

    test('welcome {"auditLog": {"file": PATH}}; a forked child appends its own records', async () => {
      const dir = tempDir();
      const log = path.join(dir, 'audit.jsonl');
      const main = script(dir, [
        'pid = os.fork()',
        'if pid == 0:',
        '    sys.audit("policytest.child", os.getpid())',
        '    os._exit(0)',
        'os.waitpid(pid, 0)',
        'sys.audit("policytest.parent", os.getpid())',
      ]);
      const { result, connections } = await runWithChannel(t, [main], { config: { auditLog: { file: log } } });
      assert.equal(result.status, 0, describeResult(result));
      assert.equal(connections.length, 2, 'the child has its own connection');
      const lines = logLines(log);
      for (const c of connections) {
        const pid = c.hello!.pid;
        const fromLog = lines.filter((l) => (JSON.parse(l) as { pid: number }).pid === pid);
        const fromChannel = c.records.map((b) => b.toString('utf8'));
        assert.deepEqual(fromLog, fromChannel, `pid ${pid}: same records in the same order`);
      }
      assert.equal(lines.length, connections[0].records.length + connections[1].records.length);
      assert.ok(lines.some((l) => l.includes('"event":"policytest.child"')));
    });
  });
}

for (const t of allTargets()) {
  describe(`--log-file without a channel, Python ${t.label}`, needs(t), () => {
    test('every record is one JSON line, seq without gaps, complete even after os._exit', async () => {
      const dir = tempDir();
      const log = path.join(dir, 'audit.jsonl');
      const main = script(dir, ['sys.audit("policytest.last")', 'os._exit(3)']);
      const r = await run(t, ['--log-file', log, main]);
      assert.equal(r.status, 3, describeResult(r));
      const recs = logLines(log).map((l) => JSON.parse(l));
      assert.deepEqual(
        recs.map((x) => x.seq),
        recs.map((_, i) => i + 1),
      );
      assert.ok(recs.every((x) => typeof x.event === 'string' && Array.isArray(x.args) && x.pid === recs[0].pid));
      const values = recs.find((x) => x.event === 'policytest.values');
      assert.ok(values);
      assert.deepEqual(values.args, [
        'é\u2603',
        { $bytes: '\\x00\\xff', len: 2 },
        2 ** 60 >= 2 ** 53 ? { $int: String(2n ** 60n) } : 2 ** 60,
        1.5,
        null,
        [1, [2, 3]],
        { $dict: [['k', 'v']] },
      ]);
      assert.equal(values.file, main);
      assert.equal(recs[recs.length - 1].event, 'policytest.last', 'the last record before os._exit is there');
    });
  });
}
