// How records read in the Debug Console (argument values rendered back into Python's notation), and
// flood control's bounds (with a clock the test moves).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BytePattern, ChunkView } from '../../adapter/bytes';
import { FloodControl } from '../../adapter/flood';
import { AuditRecord, eventLine, eventSummary, formatValue, fullRecord, RecordReader } from '../../adapter/records';

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

describe('BytePattern', () => {
  test('finds its bytes at any offset of a chunk, whatever its length, and nothing else', () => {
    const text = '{"event":"socket.connect","seq":1}';
    for (let length = 4; length <= text.length; length++) {
      const pattern = new BytePattern(Buffer.from(text.slice(0, length)));
      for (let offset = 0; offset < 9; offset++) {
        // A pooled Buffer: its byteOffset in the ArrayBuffer is not 0 either.
        const chunk = Buffer.from('x'.repeat(offset) + text);
        const view = new ChunkView().of(chunk);
        assert.ok(pattern.isAt(view, offset), `${length} bytes at ${offset}`);
        for (let i = 0; i < length; i++) {
          const changed = Buffer.from(chunk);
          changed[offset + i] ^= 0x20;
          assert.ok(!pattern.isAt(new ChunkView().of(changed), offset), `${length} bytes at ${offset}, byte ${i} changed`);
        }
      }
    }
    assert.throws(() => new BytePattern(Buffer.from('abc')), /at least 4 bytes/);
  });
});

describe('records read without parsing them in full', () => {
  // Lines exactly as the launcher writes them (docs/protocol.md, "Event records").
  const head = (event: string, seq: number, identity: string) => `{"event":"${event}","seq":${seq},"ts":99${identity}`;
  const main = ',"pid":40,"ppid":1,"tid":40,"thread":"MainThread"';

  test('identity, location and arguments agree with JSON.parse', () => {
    const reader = new RecordReader();
    const lines = [
      `${head('open', 1, main)},"file":"/p/a \\"q\\".py","line":3,"func":"f","args":["/etc/x","r",0]}`,
      `${head('exec', 2, main)},"args":[{"$code":"<module>","file":"/p/m.py","line":1}]}`,
      `${head('open', 3, ',"pid":40,"ppid":1,"tid":41,"thread":null')},"file":"<frozen importlib._bootstrap>","line":9,"func":"g","args":[]}`,
      `${head('open', 4, ',"pid":40,"ppid":1,"tid":41,"thread":"Worker, \\"1\\""')},"file":"/p/b.py","line":4,"func":"h","args":[1]}`,
      `${head('socket.connect', 5, ',"pid":40,"ppid":1,"tid":41,"thread":"Worker, \\"1\\""')},"file":"/p/b.py","line":5,"func":"h","args":[{"$type":"socket"},["10.0.0.1",80]],"denied":"denyEvents"}`,
    ];
    for (const text of lines) {
      const parsed = JSON.parse(text) as AuditRecord;
      const received = reader.read(parsed.event, Buffer.from(text));
      assert.equal(received.event, parsed.event);
      assert.deepEqual([received.pid, received.ppid, received.tid, received.thread], [parsed.pid, parsed.ppid, parsed.tid, parsed.thread], text);
      assert.equal(received.file, parsed.file, text);
      assert.equal(received.denied, parsed.denied, text);
      assert.deepEqual(received.args, parsed.args);
      assert.deepEqual(received.record, parsed);
      assert.deepEqual(fullRecord(received), parsed);
    }
  });

  test('sameAsLatest: true only for the thread and thread name of the latest record read', () => {
    const reader = new RecordReader();
    const line = (event: string, seq: number, identity: string) => `${head(event, seq, identity)},"file":"/p/a.py","line":3,"func":"f","args":[${seq}]}`;
    // Records inside one chunk, as the channel hands them over (a pooled Buffer: its byteOffset is not 0).
    const check = (event: string, text: string) => {
      const chunk = Buffer.from(`{"type":"pong","id":1}\n${text}\n`);
      return reader.sameAsLatest(event, chunk, 23, chunk.length - 1);
    };
    const named = (name: string) => `,"pid":40,"ppid":1,"tid":40,"thread":"${name}"`;
    assert.equal(check('open', line('open', 1, main)), false, 'nothing read yet');
    reader.read('open', Buffer.from(line('open', 1, main)));
    assert.equal(check('open', line('open', 2, main)), true);
    assert.equal(check('exec', line('exec', 3, main)), true, 'another name, the same thread');
    assert.equal(check('open', line('open', 4, ',"pid":40,"ppid":1,"tid":41,"thread":"MainThread"')), false, 'another thread');
    assert.equal(check('open', line('open', 5, named('MainThreax'))), false, 'renamed, same length');
    assert.equal(check('open', line('open', 6, named('Main'))), false, 'renamed, shorter');
    assert.equal(check('open', line('open', 7, named('MainThread2'))), false, 'renamed, longer');
    assert.equal(check('open', line('open', 10, main)), false, 'the sequence number grew a digit');
    reader.read('open', Buffer.from(line('open', 10, main)));
    assert.equal(check('open', line('open', 11, main)), true);
    assert.equal(check('öffnen', line('öffnen', 12, main)), false, 'a name of other than ASCII characters');
    reader.read('open', Buffer.from(line('open', 13, ',"pid":40,"ppid":1,"tid":41,"thread":null')));
    assert.equal(check('open', line('open', 14, ',"pid":40,"ppid":1,"tid":41,"thread":null')), true);
    assert.equal(check('open', line('open', 15, main)), false);
  });

  test('a line without the keys of a record is refused; one that is not JSON keeps its identity', () => {
    const reader = new RecordReader();
    assert.throws(() => reader.read('open', Buffer.from('{"event":"open","seq":1}')), /no "pid"/);
    const broken = reader.read('open', Buffer.from(`${head('open', 1, main)},"args":[1,}`));
    assert.deepEqual([broken.tid, broken.thread, broken.file], [40, 'MainThread', undefined]);
    assert.deepEqual(broken.args, []);
  });
});
