// How records read in the Debug Console (argument values rendered back into Python's notation), and
// flood control's bounds (with a clock the test moves).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FloodControl } from '../../adapter/flood';
import { AuditRecord, eventLine, eventSummary, formatValue } from '../../adapter/records';

function record(event: string, args: unknown[], extra: Partial<AuditRecord> = {}): AuditRecord {
  return { event, seq: 1, ts: 0, pid: 10, ppid: 1, tid: 10, thread: 'MainThread', args, ...extra };
}

describe('argument values in Python notation', () => {
  test('scalars and strings', () => {
    assert.equal(formatValue(null), 'None');
    assert.equal(formatValue(true), 'True');
    assert.equal(formatValue(8080), '8080');
    assert.equal(formatValue('a\'b'), '"a\'b"');
    assert.equal(formatValue('tab\there\\'), "'tab\\there\\\\'");
    assert.equal(formatValue('\udc80'), "'\\udc80'");
  });

  test('tagged values of docs/protocol.md', () => {
    assert.equal(formatValue({ $bytes: 'GET /\\r\\n', len: 7 }), "b'GET /\\r\\n'");
    assert.equal(formatValue({ $bytes: 'x', len: 1000 }), "b'x'… (1000 bytes)");
    assert.equal(formatValue({ $str: 'abc', len: 5000 }), "'abc'… (5000 characters)");
    assert.equal(formatValue({ $int: '123456789012345678901234567890' }), '123456789012345678901234567890');
    assert.equal(formatValue({ $int: null, bits: 70000 }), '<int of 70000 bits>');
    assert.equal(formatValue({ $float: 'nan' }), 'nan');
    assert.equal(formatValue({ $dict: [['a', 1], [2, null]] }), "{'a': 1, 2: None}");
    assert.equal(formatValue({ $code: '<module>', file: 'x.py', line: 1 }), '<code object <module> at x.py:1>');
    assert.equal(formatValue({ $type: 'socket' }), '<socket>');
    assert.equal(formatValue(['a', [1], { $more: 40 }]), "('a', (1,), …40 more)");
  });
});

describe('event lines', () => {
  test("the event, what it is about, and where: socket.connect ('127.0.0.1', 8080)  demo.py:12", () => {
    const connect = record('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 8080]], { file: '/home/u/demo.py', line: 12 });
    assert.equal(eventLine(connect), "socket.connect ('127.0.0.1', 8080)  demo.py:12");
    assert.equal(eventSummary(connect), "socket.connect ('127.0.0.1', 8080)");
    assert.equal(eventLine(record('open', ['/etc/hosts', 'r', 0])), "open ('/etc/hosts', 'r', 0)");
    assert.equal(eventLine(record('sys.addaudithook', [])), 'sys.addaudithook');
    assert.equal(
      eventLine(record('os.remove', ['/x', -1], { file: '/a.py', line: 3, denied: 'denyEvents' })),
      "os.remove ('/x', -1)  a.py:3  [denied by denyEvents]",
    );
  });

  test('long arguments are cut', () => {
    const line = eventLine(record('open', ['x'.repeat(1000), 'r', 0]));
    assert.ok(line.length < 300, `${line.length}`);
    assert.ok(line.endsWith('…'));
  });
});

describe('flood control', () => {
  const limits = { burstPerSource: 3, ratePerSource: 1, burstTotal: 5, rateTotal: 100 };

  test('a source gets its burst, then its rate; the rest is counted as held back', () => {
    let now = 0;
    const flood = new FloodControl<string>(limits, () => now);
    const admitted = Array.from({ length: 10 }, () => flood.admit('open')).filter(Boolean).length;
    assert.equal(admitted, 3);
    assert.deepEqual(flood.takeHeldBack(), [{ source: 'open', count: 7 }]);
    assert.deepEqual(flood.takeHeldBack(), []);
    now = 2000;
    assert.equal(Array.from({ length: 10 }, () => flood.admit('open')).filter(Boolean).length, 2);
  });

  test('all sources together share one budget', () => {
    const flood = new FloodControl<string | number>(limits, () => 0);
    const admitted = ['a', 'b', 'c', 7].flatMap((source) => [flood.admit(source), flood.admit(source)]);
    assert.equal(admitted.filter(Boolean).length, 5);
    assert.deepEqual(
      flood.takeHeldBack().sort((x, y) => String(x.source).localeCompare(String(y.source))),
      [
        { source: 7, count: 2 },
        { source: 'c', count: 1 },
      ],
    );
  });
});
