// The Audit Events view's model on its own: classifying records from their first bytes, counts and
// kept occurrences, hidden events, the filter, reading a growing run log, exports — and that a big run
// is cheap.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  argumentsText,
  AuditModel,
  csvField,
  DENIED_GROUP,
  exportRunLog,
  LineClassifier,
  LineSplitter,
  MAX_OCCURRENCES,
  OTHER_GROUP,
  RunLogReader,
} from '../../extension/auditModel';

function tmp(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'spython-ext-model-')));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let seq = 0;
/** A record line as the launcher writes it (keys in protocol order). */
function record(
  event: string,
  args: unknown[],
  extra: { file?: string; line?: number; func?: string; caller?: object; denied?: string; pid?: number } = {},
): string {
  const r: Record<string, unknown> = { event, seq: ++seq, ts: 1000 + seq, pid: extra.pid ?? 42, ppid: 1, tid: extra.pid ?? 42, thread: null };
  if (extra.file !== undefined) {
    r.file = extra.file;
    r.line = extra.line ?? 1;
    r.func = extra.func ?? '<module>';
  }
  if (extra.caller) r.caller = extra.caller;
  r.args = args;
  if (extra.denied) r.denied = extra.denied;
  return JSON.stringify(r);
}

const buf = (line: string) => Buffer.from(line);

describe('LineClassifier', () => {
  const c = new LineClassifier();

  it('groups by the catalogue categories, refusals first', () => {
    assert.deepEqual(c.classify(buf(record('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 9]], { file: '/app/x.py' }))), {
      event: 'socket.connect',
      group: 'network',
      hidden: false,
      denied: false,
    });
    assert.equal(c.classify(buf(record('subprocess.Popen', ['ls', ['ls'], null, null], { file: '/app/x.py' })))?.group, 'subprocess');
    const denied = c.classify(buf(record('socket.connect', [{ $type: 'socket' }, ['1.2.3.4', 443]], { file: '/app/x.py', denied: 'denyEvents' })));
    assert.equal(denied?.group, DENIED_GROUP);
    assert.equal(denied?.denied, true);
  });

  it('puts open under File writes only when it writes, and compile under Dynamic code only for strings', () => {
    assert.equal(c.classify(buf(record('open', ['/tmp/out', 'w', 524865], { file: '/app/x.py' })))?.group, 'fileWrite');
    assert.equal(c.classify(buf(record('open', ['/etc/hosts', 'r', 524288], { file: '/app/x.py' })))?.group, OTHER_GROUP);
    assert.equal(c.classify(buf(record('compile', ['x = 1', '<string>'], { file: '/app/x.py' })))?.group, 'dynamicCode');
    assert.equal(c.classify(buf(record('compile', [null, '/app/x.py'], { file: '/app/x.py' })))?.group, OTHER_GROUP);
  });

  it('hides what the Debug Console hides: machinery always, telling noise when the import system raises it', () => {
    assert.equal(c.classify(buf(record('marshal.loads', [{ $bytes: 'x', len: 1 }], { file: '/app/x.py' })))?.hidden, true);
    assert.equal(c.classify(buf(record('open', ['/lib/x.py', 'rb', 0], { file: '<frozen importlib._bootstrap_external>' })))?.hidden, true);
    assert.equal(c.classify(buf(record('open', ['/etc/hosts', 'r', 0], { file: '/app/x.py' })))?.hidden, false);
    // No Python frame: not program code. A code object's own "file" key in the arguments does not count.
    assert.equal(c.classify(buf(record('exec', [{ $code: '<module>', file: '/app/x.py', line: 1 }])))?.hidden, true);
    assert.equal(c.classify(buf(record('socket.connect', [{ $type: 'socket' }, ['::1', 1]])))?.hidden, false);
  });

  it('follows showEvents and hideEvents like the Debug Console', () => {
    const custom = new LineClassifier({ showEvents: ['marshal.*'], hideEvents: ['socket.*'] });
    assert.equal(custom.classify(buf(record('marshal.loads', [], { file: '/app/x.py' })))?.hidden, false);
    assert.equal(custom.classify(buf(record('socket.connect', [], { file: '/app/x.py' })))?.hidden, true);
    // A refusal always shows.
    assert.equal(custom.classify(buf(record('socket.connect', [], { file: '/app/x.py', denied: 'denyEvents' })))?.hidden, false);
  });

  it('ignores control messages and junk', () => {
    assert.equal(c.classify(buf('{"type":"hello","protocol":1}')), undefined);
    assert.equal(c.classify(buf('garbage')), undefined);
    assert.equal(c.classify(buf('')), undefined);
  });
});

describe('AuditModel', () => {
  it('counts by category and event, newest occurrences first, and hides noisy ones until asked', () => {
    const m = new AuditModel();
    m.addLine(buf(record('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 1]], { file: '/app/x.py', line: 5 })));
    m.addLine(buf(record('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 2]], { file: '/app/x.py', line: 6 })));
    m.addLine(buf(record('marshal.loads', [{ $bytes: 'x', len: 1 }], { file: '/app/x.py' })));
    m.addLine(buf(record('open', ['/tmp/o', 'w', 0], { file: '/app/x.py', denied: 'denyEvents' })));
    m.addLine(buf('{"type":"exit","status":0}'));
    assert.equal(m.records, 4);
    assert.equal(m.denied, 1);

    const tree = m.tree(false);
    assert.deepEqual(
      tree.map((g) => [g.label, g.count, g.events.map((e) => `${e.event} ${e.countFor(false)}`)]),
      [
        ['Denied operations', 1, ['open 1']],
        ['Network', 2, ['socket.connect 2']],
      ],
    );
    const connect = tree[1].events[0];
    const occurrences = m.occurrences(connect, false);
    assert.deepEqual(occurrences.map((o) => o.argumentsText), ["('127.0.0.1', 2)", "('127.0.0.1', 1)"]);
    assert.equal(occurrences[0].location, 'x.py:6');

    // Raised in the library: the occurrence sits at the program's calling line.
    m.addLine(
      buf(record('subprocess.Popen', ['/bin/ls', ['ls'], null, null], {
        file: '/usr/lib/python3.12/subprocess.py',
        line: 1821,
        caller: { file: '/app/x.py', line: 9, func: '<module>' },
      })),
    );
    const popen = m.tree(false).find((g) => g.label === 'Subprocesses')!.events[0];
    const [spawned] = m.occurrences(popen, false);
    assert.equal(spawned.location, 'x.py:9');
    assert.deepEqual(spawned.site, { file: '/app/x.py', line: 9, func: '<module>' });
    assert.ok(spawned.matches('subprocess.py') && spawned.matches('/app/x.py'));

    const all = m.tree(true);
    assert.ok(all.some((g) => g.label === 'Other events' && g.events.some((e) => e.event === 'marshal.loads')));
  });

  it('filters by event name, category, arguments and file', () => {
    const m = new AuditModel();
    m.addLine(buf(record('socket.connect', [{ $type: 'socket' }, ['10.0.0.1', 80]], { file: '/app/net.py' })));
    m.addLine(buf(record('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 80]], { file: '/app/net.py' })));
    m.addLine(buf(record('subprocess.Popen', ['ls', ['ls', '-l'], null, null], { file: '/app/run.py' })));
    assert.deepEqual(m.tree(false, 'popen').map((g) => g.label), ['Subprocesses']);
    assert.deepEqual(m.tree(false, 'network').map((g) => g.label), ['Network']);
    const byArgs = m.tree(false, '10.0.0');
    assert.deepEqual(byArgs.map((g) => g.label), ['Network']);
    assert.deepEqual(m.occurrences(byArgs[0].events[0], false, '10.0.0').map((o) => o.argumentsText), ["('10.0.0.1', 80)"]);
    assert.deepEqual(m.tree(false, 'run.py').map((g) => g.label), ['Subprocesses']);
    assert.deepEqual(m.tree(false, 'nothing like it'), []);
  });

  it(`keeps the latest ${MAX_OCCURRENCES} occurrences of an event and counts them all`, () => {
    const m = new AuditModel();
    for (let i = 0; i < MAX_OCCURRENCES + 50; i++) {
      m.addLine(buf(record('os.listdir', [`/d/${i}`], { file: '/app/x.py' })));
    }
    const group = m.tree(false)[0].events[0];
    assert.equal(group.countFor(false), MAX_OCCURRENCES + 50);
    const kept = m.occurrences(group, false);
    assert.equal(kept.length, MAX_OCCURRENCES);
    assert.equal(kept[0].argumentsText, `'/d/${MAX_OCCURRENCES + 49}'`);
    assert.equal(kept[kept.length - 1].argumentsText, "'/d/50'");
  });

  it('counts verification failures (spython.code_refused) and clears', () => {
    const m = new AuditModel();
    m.addLine(buf(record('spython.code_refused', ['/app/evil.py', 'verifyImports', '/app/evil.py: no xattr'], { denied: 'verifyImports' })));
    assert.equal(m.codeRefused, 1);
    assert.equal(m.denied, 1);
    const v = m.version;
    m.clear();
    assert.equal(m.records, 0);
    assert.equal(m.codeRefused, 0);
    assert.ok(m.version > v);
    assert.deepEqual(m.tree(true), []);
  });

  it('folds a million records in seconds, keeping memory bounded', () => {
    const m = new AuditModel();
    const names = ['open', 'os.listdir', 'socket.connect', 'marshal.loads', 'import', 'exec', 'compile', 'sys._getframe'];
    const lines = names.map((name, i) =>
      Buffer.from(record(name, name === 'open' ? ['/tmp/f', i % 2 ? 'r' : 'w', 0] : ['x', 1], { file: i % 3 ? '/app/x.py' : '<frozen importlib._bootstrap>' }) + '\n'),
    );
    const chunk = Buffer.concat(Array.from({ length: 1250 }, () => lines).flat()); // 10,000 records
    const splitter = new LineSplitter();
    const started = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) splitter.push(chunk, (line) => m.addLine(line));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(m.records, 1_000_000);
    // Generous for a busy 2-core machine; it takes about a second on an idle one.
    assert.ok(ms < 30_000, `folding 1,000,000 records took ${ms.toFixed(0)} ms`);
    const kept = m.tree(true).flatMap((g) => g.events).reduce((n, g) => n + g.occurrences(true).length, 0);
    assert.ok(kept <= names.length * 2 * MAX_OCCURRENCES);
  });
});

describe('LineSplitter and RunLogReader', () => {
  it('splits lines across chunks and waits for a partial last line', () => {
    const s = new LineSplitter();
    const out: string[] = [];
    s.push(Buffer.from('{"a":1}\n{"b"'), (l) => out.push(l.toString()));
    assert.deepEqual(out, ['{"a":1}']);
    s.push(Buffer.from(':2}\n\n{"c":3}'), (l) => out.push(l.toString()));
    assert.deepEqual(out, ['{"a":1}', '{"b":2}', '']);
    s.push(Buffer.from('\n'), (l) => out.push(l.toString()));
    assert.deepEqual(out, ['{"a":1}', '{"b":2}', '', '{"c":3}']);
  });

  it('reads a growing file from where it stopped, with small chunks', async () => {
    const dir = tmp();
    const file = path.join(dir, 'run.jsonl');
    const m = new AuditModel();
    const reader = new RunLogReader(file, (line) => m.addLine(line), 64);
    await reader.read(); // not there yet
    assert.equal(m.records, 0);
    fs.writeFileSync(file, record('os.listdir', ['/a'], { file: '/app/x.py' }) + '\n' + record('os.listdir', ['/b'], { file: '/app/x.py' }).slice(0, 20));
    await reader.read();
    assert.equal(m.records, 1);
    fs.writeFileSync(file, record('os.listdir', ['/a'], { file: '/app/x.py' }) + '\n' + record('os.listdir', ['/b'], { file: '/app/x.py' }) + '\n');
    // (rewritten whole: same first bytes; the reader goes on from its offset)
    await reader.read();
    assert.equal(m.records, 2);
    await reader.close();
  });
});

describe('exports', () => {
  const lines = [
    record('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 9]], { file: '/app/x.py', line: 3, func: 'main' }),
    record('marshal.loads', [{ $bytes: 'x', len: 1 }], { file: '/app/x.py' }),
    record('open', ['/tmp/a,b "c"', 'w', 0], { file: '/app/x.py', line: 4, denied: 'denyEvents' }),
    '{"type":"exit","status":0}',
  ];

  it('writes JSONL byte for byte, without hidden events unless asked, and CSV with one row per record', async () => {
    const dir = tmp();
    const log = path.join(dir, 'run.jsonl');
    fs.writeFileSync(log, lines.join('\n') + '\n');

    const jsonl = path.join(dir, 'out.jsonl');
    assert.equal(await exportRunLog(log, jsonl, { format: 'jsonl', showHidden: false }), 2);
    assert.equal(fs.readFileSync(jsonl, 'utf8'), `${lines[0]}\n${lines[2]}\n`);
    assert.equal(await exportRunLog(log, jsonl, { format: 'jsonl', showHidden: true }), 3);

    const csv = path.join(dir, 'out.csv');
    assert.equal(await exportRunLog(log, csv, { format: 'csv', showHidden: false, filter: '127.0.0' }), 1);
    const rows = fs.readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(rows[0], 'seq,ts,pid,ppid,tid,thread,event,category,arguments,file,line,func,denied');
    assert.match(rows[1], /,42,1,42,,socket\.connect,Network,"\('127\.0\.0\.1', 9\)",\/app\/x\.py,3,main,$/);

    await exportRunLog(log, csv, { format: 'csv', showHidden: false, filter: 'denied' });
    const denied = fs.readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(denied.length, 2);
    assert.ok(denied[1].includes(`"('/tmp/a,b ""c""', 'w', 0)"`), denied[1]);
    assert.ok(denied[1].endsWith(',denyEvents'));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['out.csv', 'out.jsonl', 'run.jsonl']);
  });

  it('stops when cancelled and leaves no file behind', async () => {
    const dir = tmp();
    const log = path.join(dir, 'run.jsonl');
    fs.writeFileSync(log, lines.join('\n') + '\n');
    const abort = new AbortController();
    abort.abort();
    await assert.rejects(exportRunLog(log, path.join(dir, 'x.csv'), { format: 'csv', showHidden: true, signal: abort.signal }), { name: 'AbortError' });
    assert.deepEqual(fs.readdirSync(dir), ['run.jsonl']);
  });

  it('quotes CSV fields and defuses spreadsheet formulas', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('=cmd()'), "'=cmd()");
    assert.equal(csvField(null), '');
    assert.equal(csvField(12), '12');
  });

  it('shows one argument as itself and several as a tuple, without self', () => {
    assert.equal(argumentsText('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 9]]), "('127.0.0.1', 9)");
    assert.equal(argumentsText('open', ['/x', 'r', 0]), "('/x', 'r', 0)");
    assert.equal(argumentsText('os.listdir', ['/x']), "'/x'");
    assert.equal(argumentsText('socket.gethostname', []), '()');
  });
});
