// The command line's pieces in-process: the summary's categories (mirroring the catalogue's
// conditions over rendered arguments), event lines, the summary text and the SARIF log.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { categoryOf, colors, eventLine, location } from '../../adapter/cli/render';
import { sarifLog } from '../../adapter/cli/sarif';
import { compareNames, RunStats, summaryText } from '../../adapter/cli/summary';
import { AUDIT_EVENTS } from '../../adapter/catalog';
import { AuditRecord } from '../../adapter/records';
import { thousands } from '../../adapter/thousands';
import { REPO_ROOT } from './common';

let seq = 0;
function record(event: string, args: unknown[], extra: Partial<AuditRecord> = {}): AuditRecord {
  seq++;
  return { event, seq, ts: seq, pid: 100, ppid: 1, tid: 100, thread: 'MainThread', file: '/proj/app.py', line: seq, func: 'main', args, ...extra };
}

describe('categories', () => {
  const cases: Array<[string, unknown[], string]> = [
    ['socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 80]], 'network'],
    ['urllib.Request', ['http://x', null, {}, 'GET'], 'network'],
    ['subprocess.Popen', ['ls', ['ls'], null, null], 'subprocess'],
    ['os.system', [{ $bytes: 'ls', len: 2 }], 'subprocess'],
    ['open', ['/tmp/x', 'w', 0], 'fileWrite'],
    ['open', ['/tmp/x', 'r+', 0], 'fileWrite'],
    ['open', ['/tmp/x', 'r', 524288], 'other'],
    ['open', ['/tmp/x', null, 0o101], 'fileWrite'],
    ['open', ['/tmp/x', null, 0], 'other'],
    ['open', [1, 'w', 0], 'other'],
    ['os.remove', ['/tmp/x', -100], 'fileWrite'],
    ['compile', [{ $bytes: 'x = 1', len: 5 }, '<string>'], 'dynamicCode'],
    ['compile', ['x = 1', '<gen>'], 'dynamicCode'],
    ['compile', [{ $bytes: 'x = 1', len: 5 }, '/lib/mod.py'], 'other'],
    ['compile', [{ $type: 'Module' }, '<ast>'], 'other'],
    ['ctypes.dlopen', ['libc.so.6'], 'nativeCode'],
    ['sys.addaudithook', [], 'hooks'],
    ['import', ['os', null, [], [], []], 'other'],
    ['app.custom', [], 'other'],
  ];
  for (const [event, args, expected] of cases) {
    test(`${event} ${JSON.stringify(args)} → ${expected}`, () => {
      assert.equal(categoryOf({ event, args }), expected);
    });
  }
});

describe('event lines', () => {
  const c = colors(false);

  test('arguments as Python shows them, the location relative to the base, the refusal', () => {
    assert.equal(
      eventLine(c, record('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 8080]], { file: '/proj/src/net.py', line: 12 }), '/proj'),
      "[audit] socket.connect ('127.0.0.1', 8080)  src/net.py:12",
    );
    assert.equal(
      eventLine(c, record('os.system', [{ $bytes: 'rm -rf /', len: 8 }], { file: '/elsewhere/x.py', line: 3, denied: 'denyEvents' }), '/proj'),
      "[audit] os.system b'rm -rf /'  /elsewhere/x.py:3  DENIED by denyEvents",
    );
    assert.equal(eventLine(c, record('cpython._PySys_ClearAuditHooks', [], { file: undefined, line: undefined }), '/proj'), '[audit] cpython._PySys_ClearAuditHooks');
  });

  test('long arguments are cut; frozen modules keep their name', () => {
    const line = eventLine(c, record('exec', ['x'.repeat(1000)], { file: '<frozen importlib._bootstrap>', line: 241 }), '/proj');
    assert.ok(line.length < 260, line);
    assert.match(line, /…  <frozen importlib\._bootstrap>:241$/);
    assert.equal(location('/proj/a.py', undefined, '/proj'), 'a.py');
  });

  test('colours by category, and red for a refusal', () => {
    const coloured = colors(true);
    assert.match(eventLine(coloured, record('socket.connect', [null, ['h', 1]]), '/proj'), /\x1b\[36msocket\.connect\x1b\[39m/);
    assert.match(eventLine(coloured, record('open', ['/x', 'r', 0], { denied: 'verifyImports' }), '/proj'), /\x1b\[31m/);
  });
});

describe('which records the run statistics read', () => {
  test('an open is read for its category only when the summary groups by category', () => {
    const grouped = new RunStats();
    assert.equal(grouped.readEach('open'), true, "an open's category depends on its mode");
    assert.equal(grouped.readEach('socket.connect'), false, 'a connect is network by its name alone');
    const ungrouped = new RunStats([], { byCategory: false });
    assert.equal(ungrouped.readEach('open'), false);
    // What is kept is read whatever the grouping.
    assert.equal(ungrouped.readEach('cpython.run_file'), true);
    assert.equal(ungrouped.readEach('spython.code_refused'), true);
    assert.equal(new RunStats(['open'], { byCategory: false }).readEach('open'), true, '--fail-on keeps its matches');
    ungrouped.addCounted(100, 1, 'open', 3);
    assert.equal(ungrouped.total, 3);
    assert.equal(ungrouped.processes.get(100)?.events, 3);
  });
});

describe('the summary text', () => {
  test('sections, rows and the truncation of long lists', () => {
    const stats = new RunStats(['app.*']);
    for (let i = 0; i < 25; i++) stats.add(record('socket.connect', [null, ['10.0.0.1', i]], { denied: 'denyEvents' }));
    stats.add(record('spython.code_refused', ['/proj/evil.py', 'verifyImports', '/proj/evil.py: hash mismatch: xattr is a but the file hashes to b'], { denied: 'verifyImports' }));
    stats.add(record('app.thing', [1]));
    for (let i = 0; i < 15; i++) stats.add(record(`noise.${i}`, []));
    stats.add(record('import', ['x'], { pid: 200, ppid: 100 }));
    const text = summaryText(stats, {
      c: colors(false),
      title: 'app.py',
      ending: 'exited with status 0',
      shown: 10,
      runLog: 'runs/x.jsonl',
      reports: [['SARIF report', 'out.sarif']],
      failOn: ['app.*'],
      mainPid: 100,
      base: '/proj',
    });
    assert.match(text, /^spython-audit: app\.py exited with status 0$/m);
    assert.match(text, /^43 audit events \(10 shown\), 26 denied, 1 verification failure, 2 processes$/m);
    assert.match(text, /│ Network\s+│ socket\.connect\s+│\s+25 │/);
    assert.match(text, /│\s+│ … 8 more event names\s+│\s+8 │/);
    assert.match(text, /│ socket\.connect │ \('10\.0\.0\.1', 0\)\s+│ denyEvents │ app\.py:\d+ \(pid 100\)\s+│/);
    assert.match(text, /… and 6 more \(all in the JSONL log\)/);
    assert.match(text, /│ \/proj\/evil\.py │ verifyImports │ hash mismatch: xattr is a but the file hashes to b │/);
    assert.match(text, /--fail-on app\.\*\n\s+app\.thing 1/);
    assert.match(text, /│ 100\s+│\s+1 │\s+│\s+42 │ exited with status 0 │/);
    assert.match(text, /│ └ 200\s+│\s+100 │ \(fork of 100\)\s+│\s+1 │\s+│/);
    assert.match(text, /Every record: runs\/x\.jsonl\nSARIF report: out\.sarif$/);
    assert.equal(stats.findings.length, 27);
    assert.ok(stats.failed);
  });
});

describe('the process tree', () => {
  test('each process under its parent, with what it ran (exec chains too) and its status', () => {
    const stats = new RunStats();
    stats.add(record('cpython.run_file', ['/proj/main.py'], { pid: 10, ppid: 1 }));
    stats.add(record('cpython.run_command', ['from multiprocessing.spawn import spawn_main;\n spawn_main(tracker_fd=5)'], { pid: 12, ppid: 10 }));
    stats.add(record('cpython.run_file', ['/proj/child.py'], { pid: 11, ppid: 10 }));
    stats.add(record('cpython.run_module', ['tool'], { pid: 13, ppid: 11 }));
    stats.add(record('cpython.run_file', ['/proj/other.py'], { pid: 13, ppid: 11 }));
    stats.add(record('open', ['/x', 'r', 0], { pid: 14, ppid: 13 }));
    stats.processEnded(11, 3);
    stats.processEnded(13, undefined);
    const text = summaryText(stats, { c: colors(false), title: 'main.py', ending: 'exited with status 0', shown: 0, reports: [], failOn: [], mainPid: 10, base: '/proj' });
    const rows = text.split('Processes\n')[1].split('\n').filter((line) => /^│ /.test(line)).slice(1);
    assert.deepEqual(
      // The PID column keeps its indentation.
      rows.map((row) => row.split('│').slice(1, -1).map((cell, i) => (i === 0 ? cell.slice(1).trimEnd() : cell.trim()))),
      [
        ['10', '1', 'main.py', '1', 'exited with status 0'],
        ['└ 12', '10', '-c from multiprocessing.spawn import spawn_main; spawn_main…', '1', ''],
        ['└ 11', '10', 'child.py', '1', 'exited with status 3'],
        ['  └ 13', '11', '-m tool → other.py', '2', ''],
        ['    └ 14', '13', '(fork of 13)', '1', ''],
      ],
    );
  });
});

describe('the SARIF log', () => {
  const schema = JSON.parse(
    fs.readFileSync(path.join(REPO_ROOT, 'node_modules', '@microsoft', 'sarif-multitool-linux', 'sarif-2.1.0.json'), 'utf8'),
  ) as object;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(schema);

  test('locations: under the base, elsewhere, frozen, none; rules once each; notes', () => {
    const stats = new RunStats(['open']);
    stats.add(record('socket.connect', [null, ['1.2.3.4', 443]], { file: '/proj/src/a b.py', line: 7, denied: 'denyEvents' }));
    stats.add(record('socket.connect', [null, ['1.2.3.4', 80]], { file: '/usr/lib/python3/socket.py', line: 836, denied: 'promptEvents' }));
    stats.add(record('open', ['/x', 'r', 0], { file: '<frozen importlib._bootstrap_external>', line: 1 }));
    stats.add(record('open', ['/y', 'r', 0], { file: undefined, line: undefined, func: undefined }));
    const log = sarifLog({
      findings: stats.findings,
      dropped: 3,
      toolVersion: '9.9.9',
      base: '/proj',
      commandLine: ['spython-audit', 'run', '--deny', 'socket.*', 'a b.py'],
      exitCode: 0,
      ending: 'exited with status 0',
      successful: false,
      startTime: new Date(0),
      endTime: new Date(1000),
      notes: ['a note'],
    });
    assert.ok(validate(log), JSON.stringify(validate.errors, null, 2));
    const run = log.runs[0];
    assert.deepEqual(run.tool.driver.rules!.map((r) => r.id), ['socket.connect', 'open']);
    const [first, second, frozen, bare] = run.results!;
    assert.deepEqual(first.locations![0].physicalLocation, { artifactLocation: { uri: 'src/a%20b.py', uriBaseId: 'SRCROOT' }, region: { startLine: 7 } });
    assert.equal(second.locations![0].physicalLocation!.artifactLocation!.uri, 'file:///usr/lib/python3/socket.py');
    assert.equal(second.ruleIndex, 0);
    assert.equal(frozen.locations![0].physicalLocation, undefined);
    assert.equal(frozen.locations![0].message!.text, 'in <frozen importlib._bootstrap_external>');
    assert.equal(bare.locations, undefined);
    assert.equal(run.invocations![0].commandLine, "spython-audit run --deny 'socket.*' 'a b.py'");
    assert.deepEqual(
      run.invocations![0].toolExecutionNotifications!.map((n) => n.message.text),
      ['a note', '3 more results were left out (every record is in the JSONL log)'],
    );
  });
});

describe('ICU-free formatting and ordering (ICU costs a short run ~20 ms to start)', () => {
  test('thousands writes what toLocaleString("en-US") writes', () => {
    const values = [0, -0, 1, 7, 12, 999, 1000, 1001, 12_345, 123_456, 1_234_567, 10_000_000, -1, -999, -1000, -1_234_567];
    values.push(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 60, 1.5, 1234.5678, NaN, Infinity, -Infinity);
    for (let power = 1; power < 1e15; power *= 10) values.push(power - 1, power, power + 1);
    for (const value of values) assert.equal(thousands(value), value.toLocaleString('en-US'), String(value));
  });

  test('compareNames orders as localeCompare does: every printable ASCII pair, the catalogue, case variants', () => {
    const sign = (a: string, b: string) => Math.sign(a.localeCompare(b));
    const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
    for (const a of printable) for (const b of printable) assert.equal(compareNames(a, b), sign(a, b), `${a} ${b}`);

    const names = AUDIT_EVENTS.map((info) => info.event);
    assert.deepEqual([...names].sort(compareNames), [...names].sort((a, b) => a.localeCompare(b)));

    // Reproducible strings over printable ASCII, each beside a copy with letters in another case.
    let seed = 12345;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const text = () => Array.from({ length: next(9) }, () => printable[next(printable.length)]).join('');
    for (let i = 0; i < 20_000; i++) {
      const a = text();
      const b = next(2) ? text() : [...a].map((ch) => (next(2) ? ch.toUpperCase() : ch.toLowerCase())).join('');
      assert.equal(compareNames(a, b), sign(a, b), `${JSON.stringify(a)} ${JSON.stringify(b)}`);
    }
    // Beyond printable ASCII, localeCompare decides.
    assert.equal(compareNames('é', 'f'), sign('é', 'f'));
    assert.equal(compareNames('tab\there', 'tab here'), sign('tab\there', 'tab here'));
  });
});
