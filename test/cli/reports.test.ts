// The reports of `spython-audit run`: --jsonl is every record exactly as the launcher sent it (the same
// bytes as the launcher's own --log-file, seq 1..N without a gap), --sarif validates against the SARIF
// 2.1.0 schema with one result per denied or --fail-on event, and --fail-on fails a run that
// succeeded with its documented status.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type * as Sarif from 'sarif';
import { lineOf, needs, program, PYTHON, REPO_ROOT, runCli, show, tempDir } from './common';

/** The SARIF 2.1.0 schema, as @microsoft/sarif-multitool-linux ships it (JSON Schema 2020-12). */
const SCHEMA_FILE = path.join(REPO_ROOT, 'node_modules', '@microsoft', 'sarif-multitool-linux', 'sarif-2.1.0.json');

function sarifValidator() {
  const schema = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
  assert.match(String(schema.title), /SARIF\) Version 2\.1\.0/);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

const FAIL_ON_STATUS = 122;

const PROGRAM = `
import os, socket, sys
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data.txt"), "w") as f:  # WRITE
    f.write("x")
try:
    socket.socket().connect(("127.0.0.1", 9))  # CONNECT
except PermissionError as e:
    print("refused:", e)
except OSError as e:
    print("not refused:", type(e).__name__)
sys.audit("app.checkpoint", HERE)  # CHECKPOINT
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
`;

describe('--jsonl', { ...needs(PYTHON), concurrency: 4 }, () => {
  test('is byte for byte the launcher’s own log of the same run, seq 1..N without a gap', async () => {
    const { dir, file } = program(PROGRAM);
    const jsonl = path.join(dir, 'reports', 'run.jsonl');
    const launcherLog = path.join(dir, 'launcher.jsonl');
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--deny', 'socket.connect', '--log-file', launcherLog, '--jsonl', jsonl, file]);
    assert.equal(r.status, 0, show(r));
    const ours = fs.readFileSync(jsonl);
    const theirs = fs.readFileSync(launcherLog);
    assert.ok(ours.length > 0);
    assert.ok(ours.equals(theirs), 'the --jsonl file differs from the launcher’s --log-file');
    const records = ours.toString('utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as { seq: number; event: string; denied?: string });
    records.forEach((record, i) => assert.equal(record.seq, i + 1));
    // Hidden (noisy) events and the denied one are all there.
    assert.ok(records.some((r) => r.event === 'marshal.loads' || r.event === 'sys._getframe' || r.event === 'object.__getattr__'));
    assert.ok(records.some((r) => r.event === 'socket.connect' && r.denied === 'denyEvents'));
  });

  test('nothing is dropped when the console holds lines back (flood control)', async () => {
    const { dir, file } = program('import sys\nfor i in range(3000):\n    sys.audit("app.tick", i)\n');
    const jsonl = path.join(dir, 'run.jsonl');
    const r = await runCli(['run', '--python', PYTHON!, '--jsonl', jsonl, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    const lines = fs.readFileSync(jsonl, 'utf8').trimEnd().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('{"event":"app.tick"')).length, 3000);
    assert.match(r.stderrText, /… [\d,]+ more `app\.tick` events \(all in the JSONL log\)/);
    assert.match(r.stderrText, /│ app\.tick\s+│\s+3,000 │/);
    assert.match(r.stderrText, /Every record: run\.jsonl/);
  });

  test('counts stay exact when most records are counted, not read: per name, per process, held back', async () => {
    // Two threads interleave (each switch is a record read), a shown event outruns flood control, a
    // hidden one is only counted, and `open` (its category depends on its arguments) is read each time.
    const { dir, file } = program(`
import sys, threading
def tock():
    for i in range(20000):
        sys.audit("app.tock", i)
t = threading.Thread(target=tock, name="tocker")
t.start()
for i in range(30000):
    sys.audit("app.tick", i)
    if i % 1000 == 0:
        open(__file__).close()
t.join()
`);
    const jsonl = path.join(dir, 'run.jsonl');
    const r = await runCli(['run', '--python', PYTHON!, '--hide', 'app.tock', '--jsonl', jsonl, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    const records = fs.readFileSync(jsonl, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as { event: string; seq: number });
    records.forEach((record, i) => assert.equal(record.seq, i + 1));
    const total = records.length.toLocaleString('en-US');
    const opens = records.filter((record) => record.event === 'open').length;
    assert.match(r.stderrText, new RegExp(`\n${total} audit events \\(`));
    assert.match(r.stderrText, /│ app\.tick\s+│\s+30,000 │/);
    assert.match(r.stderrText, /│ app\.tock\s+│\s+20,000 │/);
    assert.match(r.stderrText, new RegExp(`│ open\\s+│\\s+${opens.toLocaleString('en-US')} │`));
    assert.match(r.stderrText, new RegExp(`│\\s+${total} │ exited with status 0`));
    const lines = r.stderrText.split('\n');
    const shown = lines.filter((line) => line.startsWith('[audit] app.tick ')).length;
    const heldBack = [...r.stderrText.matchAll(/… ([\d,]+) more `app\.tick` events/g)].reduce((sum, m) => sum + Number(m[1].replace(/,/g, '')), 0);
    assert.ok(heldBack > 0, show(r));
    assert.equal(shown + heldBack, 30000);
    assert.equal(lines.filter((line) => line.includes('app.tock')).length, 1, 'the hidden event is only in the summary');
  });

  test('an event shown only when the program raises it: shown + held back = the program’s own', async () => {
    // The imports' opens are the import system's (frozen modules): hidden, neither shown nor held back.
    // They come once flood control has started holding the program's opens back.
    const { dir, file } = program(`
for i in range(3000):
    open(__file__).close()
    if i == 1500:
        import json, csv, decimal, fractions, statistics, difflib, textwrap, string
`);
    const jsonl = path.join(dir, 'run.jsonl');
    const r = await runCli(['run', '--no-summary', '--python', PYTHON!, '--jsonl', jsonl, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    const opens = fs
      .readFileSync(jsonl, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; file?: string })
      .filter((record) => record.event === 'open');
    assert.equal(opens.filter((record) => record.file === file).length, 3000);
    assert.ok(opens.some((record) => record.file?.startsWith('<frozen ')), 'no import opened a file');
    const shown = r.stderrText.split('\n').filter((line) => line.startsWith('[audit] open ')).length;
    const heldBack = [...r.stderrText.matchAll(/… ([\d,]+) more `open` events/g)].reduce((sum, m) => sum + Number(m[1].replace(/,/g, '')), 0);
    assert.ok(heldBack > 0, show(r));
    assert.equal(shown + heldBack, 3000);
  });
});

describe('--sarif', { ...needs(PYTHON), concurrency: 4 }, () => {
  test('validates against the SARIF 2.1.0 schema; a denied operation is a result with its rule and location', async () => {
    const { dir, file } = program(PROGRAM);
    const sarifFile = path.join(dir, 'out', 'audit.sarif');
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--deny', 'socket.connect', '--sarif', sarifFile, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdoutText, /refused: \[spython\] denyEvents refused socket\.connect/);
    const log = JSON.parse(fs.readFileSync(sarifFile, 'utf8')) as Sarif.Log;
    const validate = sarifValidator();
    assert.ok(validate(log), JSON.stringify(validate.errors, null, 2));

    assert.equal(log.version, '2.1.0');
    const run = log.runs[0];
    assert.equal(run.tool.driver.name, 'spython-audit');
    assert.equal(run.results?.length, 1);
    const result = run.results![0];
    assert.equal(result.ruleId, 'socket.connect');
    assert.equal(run.tool.driver.rules?.[result.ruleIndex!]?.id, 'socket.connect');
    assert.equal(result.level, 'error');
    assert.match(result.message.text!, /socket\.connect \('127\.0\.0\.1', 9\): refused by denyEvents/);
    assert.equal(result.properties?.policy, 'denyEvents');
    const physical = result.locations?.[0]?.physicalLocation;
    assert.deepEqual(physical?.artifactLocation, { uri: 'prog.py', uriBaseId: 'SRCROOT' });
    assert.equal(physical?.region?.startLine, lineOf(file, 'CONNECT'));
    assert.equal(run.originalUriBaseIds?.SRCROOT?.uri, pathToFileURL(dir + '/').href);
    assert.equal(run.invocations?.[0]?.exitCode, 0);
    assert.equal(run.invocations?.[0]?.executionSuccessful, true);
  });

  test('a prompt refused (no terminal) and --fail-on events are results too; a run with none has none', async () => {
    const { dir, file } = program(PROGRAM);
    const sarifFile = path.join(dir, 'audit.sarif');
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--prompt', 'socket.connect', '--fail-on', 'app.checkpoint', '--sarif', sarifFile, file], {
      cwd: dir,
    });
    assert.equal(r.status, FAIL_ON_STATUS, show(r));
    const log = JSON.parse(fs.readFileSync(sarifFile, 'utf8')) as Sarif.Log;
    const validate = sarifValidator();
    assert.ok(validate(log), JSON.stringify(validate.errors, null, 2));
    const results = log.runs[0].results!;
    assert.deepEqual(results.map((x) => x.ruleId), ['socket.connect', 'app.checkpoint']);
    assert.equal(results[0].properties?.policy, 'promptEvents');
    assert.equal(results[1].properties?.failOn, 'app.checkpoint');
    assert.match(results[1].message.text!, /matched --fail-on app\.checkpoint/);
    assert.equal(results[1].locations?.[0]?.physicalLocation?.region?.startLine, lineOf(file, 'CHECKPOINT'));
    assert.equal(log.runs[0].invocations?.[0]?.executionSuccessful, false);
    assert.match(
      log.runs[0].invocations?.[0]?.toolExecutionNotifications?.[0]?.message.text ?? '',
      /promptEvents: no terminal to ask whether socket\.connect .* may proceed, so it is refused/,
    );

    const clean = path.join(dir, 'clean.sarif');
    const quiet = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--sarif', clean, file], { cwd: dir });
    assert.equal(quiet.status, 0, show(quiet));
    const empty = JSON.parse(fs.readFileSync(clean, 'utf8')) as Sarif.Log;
    assert.ok(validate(empty), JSON.stringify(validate.errors, null, 2));
    assert.deepEqual(empty.runs[0].results, []);
  });

  test('an unwritable report is a usage error before anything runs', async () => {
    const { dir, file } = program('print("ran")\n');
    fs.writeFileSync(path.join(dir, 'blocker'), '');
    const r = await runCli(['run', '--python', PYTHON!, '--sarif', path.join(dir, 'blocker', 'x.sarif'), file]);
    assert.equal(r.status, 2, show(r));
    assert.match(r.stderrText, /--sarif .*x\.sarif: cannot write it/);
    assert.equal(r.stdoutText, '');
  });
});

describe('--fail-on', { ...needs(PYTHON), concurrency: 4 }, () => {
  test(`a matching event fails a run that succeeded, with status ${FAIL_ON_STATUS}`, async () => {
    const { file } = program(PROGRAM);
    const r = await runCli(['run', '-q', '--python', PYTHON!, '--fail-on', 'socket.*', file]);
    assert.equal(r.status, FAIL_ON_STATUS, show(r));
    assert.match(r.stderrText, /--fail-on socket\.\*\n\s+socket\.__new__ 1, socket\.connect 1/);
    assert.match(r.stderrText, new RegExp(`--fail-on matched 2 event\\(s\\) \\(socket\\.__new__, socket\\.connect\\): exit status ${FAIL_ON_STATUS}`));
  });

  test('hidden events count too (the glob is matched against every record)', async () => {
    const { file } = program(PROGRAM);
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--fail-on', 'marshal.loads', '--fail-on', 'no.such.event', file]);
    assert.equal(r.status, FAIL_ON_STATUS, show(r));
  });

  test('no match: the program’s own status stands', async () => {
    const { file } = program(PROGRAM);
    const ok = await runCli(['run', '-q', '--python', PYTHON!, '--fail-on', 'ctypes.*', file]);
    assert.equal(ok.status, 0, show(ok));
    assert.match(ok.stderrText, /--fail-on ctypes\.\*\n  no matching event/);
    const three = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--fail-on', 'ctypes.*', file, '3']);
    assert.equal(three.status, 3, show(three));
  });

  test('a program that failed keeps its own status even when an event matched', async () => {
    const { file } = program(PROGRAM);
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--fail-on', 'app.checkpoint', file, '4']);
    assert.equal(r.status, 4, show(r));
  });
});

describe('--jsonl and --sarif in a fresh directory', { ...needs(PYTHON) }, () => {
  test('parent directories are created', async () => {
    const { file } = program('pass\n');
    const dir = tempDir('spython-cli-out-');
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--jsonl', path.join(dir, 'a/b/run.jsonl'), '--sarif', path.join(dir, 'c/d/run.sarif'), file]);
    assert.equal(r.status, 0, show(r));
    assert.ok(fs.statSync(path.join(dir, 'a/b/run.jsonl')).size > 0);
    assert.ok(fs.statSync(path.join(dir, 'c/d/run.sarif')).size > 0);
  });
});
