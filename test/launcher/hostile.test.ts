// Hostile event arguments (docs/protocol.md, "Rendering of arguments"): the launcher renders them
// itself, never calls user code, keeps every record valid JSON and under 64 KiB, and the script
// is unaffected. Checked through the channel, and under --stderr.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { launcherBuilt } from '../helpers/interpreters';
import { runLauncher, RunResult } from '../helpers/run';
import {
  baseEnv,
  ChannelRun,
  channelTargets,
  describeResult,
  needs,
  parseRecords,
  Rec,
  runWithChannel,
  tempDir,
  writeFile,
} from './common';

const NOT_BUILT = launcherBuilt() ? {} : { skip: 'launcher not built (npm run build)' };

const MB = 1024 * 1024;
const RECORD_LIMIT = 64 * 1024;

/** Characters the JSON escaper looks for (and near misses), each put at every offset of its 16- and
 * 8-byte scans, then a clean tail longer than a word. */
const SPAN_SPECIALS = '"\\\n\x01\x1f\x7f\u2028\u2029\u2027\u20ac\xe2';
/** Runs of 0 to SPAN_REACH - 1 plain characters before each special: past two 16-byte blocks. */
const SPAN_REACH = 40;
const spanStrings = (): string[] =>
  [...SPAN_SPECIALS].map((c) => Array.from({ length: SPAN_REACH }, (_, k) => 'x'.repeat(k) + c).join('') + 'z'.repeat(9));
/** Each special after 0 to 15 plain characters, alone: strings shorter than one 16-byte block. */
const shortSpanStrings = (): string[][] => [...SPAN_SPECIALS].map((c) => Array.from({ length: 16 }, (_, k) => 'x'.repeat(k) + c));

/** The body of Python's repr() of a bytes object, with `quote` (or none) as its quote. */
function bytesReprBody(bytes: number[], quote: string): string {
  const named: Record<number, string> = { 0x5c: '\\\\', 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r' };
  return bytes
    .map((c) => {
      if (named[c]) return named[c];
      if (quote !== '' && c === quote.charCodeAt(0)) return '\\' + quote;
      if (c >= 0x20 && c < 0x7f) return String.fromCharCode(c);
      return '\\x' + c.toString(16).padStart(2, '0');
    })
    .join('');
}
const ALL_BYTES = Array.from({ length: 256 }, (_, i) => i);

/** The hostile script: one `h.<case>` event per case, markers written by any user code that runs. */
function hostileScript(markerDir: string): string {
  return [
    'import os, sys',
    `MARK = ${JSON.stringify(markerDir)}`,
    'def mark(what):',
    '    open(os.path.join(MARK, what), "w").close()',
    '',
    'class Hostile:',
    '    def __repr__(self):',
    '        mark("Hostile.__repr__")',
    '        raise RuntimeError("__repr__ must not be called")',
    '    def __str__(self):',
    '        mark("Hostile.__str__")',
    '        raise RuntimeError("__str__ must not be called")',
    '    def __format__(self, spec):',
    '        mark("Hostile.__format__")',
    '        raise RuntimeError("__format__ must not be called")',
    '    def __getattribute__(self, name):',
    '        mark("Hostile.__getattribute__." + name)',
    '        return object.__getattribute__(self, name)',
    '',
    'class HostileInt(int):',
    '    def __str__(self):',
    '        mark("HostileInt.__str__")',
    '        raise RuntimeError("__str__ must not be called")',
    '    def __repr__(self):',
    '        mark("HostileInt.__repr__")',
    '        raise RuntimeError("__repr__ must not be called")',
    '    __format__ = __str__',
    '',
    'class HostileList(list):',
    '    def __iter__(self):',
    '        mark("HostileList.__iter__")',
    '        raise RuntimeError("__iter__ must not be called")',
    '    def __len__(self):',
    '        mark("HostileList.__len__")',
    '        raise RuntimeError("__len__ must not be called")',
    '    def __getitem__(self, i):',
    '        mark("HostileList.__getitem__")',
    '        raise RuntimeError("__getitem__ must not be called")',
    '    def __repr__(self):',
    '        mark("HostileList.__repr__")',
    '        raise RuntimeError("__repr__ must not be called")',
    '',
    'class HostileStr(str):',
    '    def __str__(self):',
    '        mark("HostileStr.__str__")',
    '        raise RuntimeError("__str__ must not be called")',
    '    def __repr__(self):',
    '        mark("HostileStr.__repr__")',
    '        raise RuntimeError("__repr__ must not be called")',
    '',
    'h = Hostile()',
    'sys.audit("h.evil", h, 1)',
    'cyc = [1]',
    'cyc.append(cyc)',
    'sys.audit("h.cycle_list", cyc)',
    'd = {"a": 1}',
    'd["self"] = d',
    'sys.audit("h.cycle_dict", d)',
    'deep = []',
    'cur = deep',
    'for _ in range(100):',
    '    nxt = []',
    '    cur.append(nxt)',
    '    cur = nxt',
    'sys.audit("h.deep", deep)',
    'big = b"\\x00\\xff\\"\\\\ab" * (100 * 1024 * 1024 // 6) + b"1234"',
    'assert len(big) == 100 * 1024 * 1024',
    'sys.audit("h.bytes", big)',
    'del big',
    'sys.audit("h.bytearray", bytearray(b"GET /\\r\\n"))',
    'huge = "x" * (10 * 1024 * 1024 - 3) + "\\u00e9\\u20ac\\U0001F600"',
    'sys.audit("h.str", huge)',
    'del huge',
    'sys.audit("h.strings", "\\ud800", "a\\x00b", "c\\u2028d\\u2029e", "mixed\\ud800\\x00\\u2028\\U0001F600\\udfff!", "\\ud83d\\ude00", "quote\\"back\\\\slash\\nnl\\ttab\\x7f\\x1f")',
    'sys.audit("h.ints", 2**100, 2**53, 2**53 - 1, -(2**53), -(2**53 - 1), 0, -1, 2**63, -(2**63) - 1)',
    'sys.audit("h.bigints", 2**1024 - 1, 2**1024, -(2**1024))',
    'sys.audit("h.tens", *[[s * (10**k + d) for d in (-1, 0, 1) for s in (1, -1)] for k in range(20)])',
    'sys.audit("h.allbytes", bytes(range(256)))',
    `sys.audit("h.spans", *["".join("x" * k + c for k in range(${SPAN_REACH})) + "z" * 9 for c in ${JSON.stringify(SPAN_SPECIALS)}])`,
    `sys.audit("h.shortspans", *[["x" * k + c for k in range(16)] for c in ${JSON.stringify(SPAN_SPECIALS)}])`,
    'sys.audit("h.floats", float("nan"), float("inf"), float("-inf"), 1.5, -0.0, 1e300, 5e-324)',
    'sys.audit("h.consts", True, False, None)',
    'sys.audit("h.code", compile("1", "f.py", "eval"))',
    'sys.audit("h.intsub", HostileInt(2**64 + 5), HostileInt(7))',
    'sys.audit("h.listsub", HostileList([1, 2, 3]))',
    'sys.audit("h.strsub", HostileStr("plain text"))',
    'sys.audit("h.wide", *[["y" * 1000] * 32 for _ in range(40)])',
    'sys.audit("h.many", *range(100))',
    'sys.audit("h.dict", {i: str(i) for i in range(40)})',
    'if sys.version_info >= (3, 11):',
    '    sys.set_int_max_str_digits(640)',
    '    sys.audit("h.toolong", 10**5000)',
    'else:',
    '    sys.audit("h.toolong", 10**5000)',
    'sys.audit("h.end", "done")',
    'print("done")',
    '',
  ].join('\n');
}

function markers(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

for (const target of channelTargets()) {
  const interp = target.interp;
  const launch = (options: string[], script: string) => [
    ...options,
    ...target.modeArgs,
    '--python',
    interp?.path ?? 'python3',
    '--',
    script,
  ];

  describe(`hostile arguments on ${target.label}`, { ...NOT_BUILT, ...needs(interp) }, () => {
    const dir = tempDir('spython-hostile-');
    const markerDir = path.join(dir, 'markers');
    fs.mkdirSync(markerDir);
    const script = writeFile(dir, 'hostile.py', hostileScript(markerDir));
    let run: ChannelRun;
    let byEvent: Map<string, { rec: Rec; line: Buffer }>;

    before(async () => {
      if (!interp) return;
      run = await runWithChannel(launch([], script), { cwd: dir, timeoutMs: 120_000 });
      byEvent = new Map();
      const conn = run.connections[0];
      if (!conn) return;
      const recs = parseRecords(conn);
      recs.forEach((rec, i) => {
        if (rec.event.startsWith('h.')) byEvent.set(rec.event, { rec, line: conn.records[i] });
      });
    });

    const get = (event: string): { rec: Rec; line: Buffer } => {
      const found = byEvent.get(event);
      assert.ok(found, `no ${event} record\n${run ? describeResult(run.result) : ''}`);
      return found;
    };
    const args = (event: string): unknown[] => get(event).rec.args;

    test('no user code ran (no __repr__, __str__, __getattribute__, __iter__, __len__…)', () => {
      assert.equal(run.result.stdoutText, 'done\n', describeResult(run.result));
      assert.deepEqual(markers(markerDir), [], 'user code was called by the launcher');
    });

    test('the script is unaffected: it completes with status 0', () => {
      assert.equal(run.result.stdoutText, 'done\n', describeResult(run.result));
      assert.equal(run.result.stderrText, '', describeResult(run.result));
      assert.equal(run.result.status, 0, describeResult(run.result));
      assert.equal(run.connections[0]?.exitStatus, 0, 'exit control message');
    });

    test('every record is valid JSON, valid UTF-8, and under 64 KiB', () => {
      const conn = run.connections[0];
      assert.ok(conn, 'no connection');
      assert.equal(conn.protocolErrors.length, 0, conn.protocolErrors.join('\n'));
      for (const line of conn.records) {
        assert.ok(line.length < RECORD_LIMIT, `a ${line.length}-byte record: ${line.toString('utf8', 0, 200)}`);
        assert.ok(Buffer.from(line.toString('utf8'), 'utf8').equals(line), `invalid UTF-8: ${line.toString('utf8', 0, 200)}`);
      }
      parseRecords(conn);
      assert.ok(byEvent.has('h.end'), 'the last hostile event did not arrive');
    });

    test('raising __repr__/__str__: {"$type":"Hostile"}, never called', () => {
      assert.deepEqual(args('h.evil'), [{ $type: 'Hostile' }, 1]);
      assert.ok(!fs.existsSync(path.join(markerDir, 'Hostile.__repr__')), '__repr__ was called');
      assert.ok(!fs.existsSync(path.join(markerDir, 'Hostile.__str__')), '__str__ was called');
    });

    test('a list that contains itself: {"$cycle":"list"} inside', () => {
      assert.deepEqual(args('h.cycle_list'), [[1, { $cycle: 'list' }]]);
    });

    test('a dict that contains itself: {"$cycle":"dict"} inside', () => {
      assert.deepEqual(args('h.cycle_dict'), [
        {
          $dict: [
            ['a', 1],
            ['self', { $cycle: 'dict' }],
          ],
        },
      ]);
    });

    test('100 levels of nesting: 4 levels, then the depth marker', () => {
      let v: unknown = args('h.deep')[0];
      let levels = 0;
      while (Array.isArray(v)) {
        assert.equal(v.length, 1);
        v = v[0];
        levels++;
      }
      assert.equal(levels, 4, 'containers nest at most 4 deep');
      assert.deepEqual(v, { $type: 'list', depth: true });
    });

    test('a 100 MB bytes argument: {"$bytes":…,"len":104857600} in a small record', () => {
      const { rec, line } = get('h.bytes');
      assert.ok(line.length < RECORD_LIMIT, `${line.length} bytes`);
      const b = rec.args[0] as { $bytes: string; len: number };
      assert.equal(b.len, 100 * MB);
      // The repr body of the first 256 bytes: \x00\xff"\\ab repeated.
      const unit = '\\x00\\xff"\\\\ab';
      assert.ok(b.$bytes.startsWith(unit.repeat(10)), `$bytes: ${b.$bytes.slice(0, 80)}`);
      assert.ok(b.$bytes.length <= 256 * 4, 'more than 256 bytes shown');
      assert.deepEqual(Object.keys(b).sort(), ['$bytes', 'len']);
    });

    test('a bytearray argument: {"$bytes":"GET /\\\\r\\\\n","len":7}', () => {
      assert.deepEqual(args('h.bytearray'), [{ $bytes: 'GET /\\r\\n', len: 7 }]);
    });

    test('a 10 MB str: {"$str":"<first 1,024>","len":N}', () => {
      const { rec, line } = get('h.str');
      assert.ok(line.length < RECORD_LIMIT);
      assert.deepEqual(rec.args, [{ $str: 'x'.repeat(1024), len: 10 * MB }]);
    });

    test('lone surrogates, NUL, U+2028/2029: JSON.parse gives back the original strings', () => {
      const { rec, line } = get('h.strings');
      const text = line.toString('utf8');
      assert.ok(!text.includes('\u2028') && !text.includes('\u2029'), 'raw U+2028/U+2029 in the line');
      assert.ok(!/[\x00-\x1f]/.test(text), 'raw control characters in the line');
      assert.deepEqual(rec.args, [
        '\ud800',
        'a\x00b',
        'c\u2028d\u2029e',
        'mixed\ud800\x00\u2028\u{1F600}\udfff!',
        '\ud83d\ude00',
        'quote"back\\slash\nnl\ttab\x7f\x1f',
      ]);
      assert.equal((rec.args[0] as string).length, 1);
      assert.equal((rec.args[0] as string).charCodeAt(0), 0xd800);
    });

    test('integers: exact below 2**53, {"$int":"…"} from 2**53 on', () => {
      assert.deepEqual(args('h.ints'), [
        { $int: '1267650600228229401496703205376' },
        { $int: '9007199254740992' },
        9007199254740991,
        { $int: '-9007199254740992' },
        -9007199254740991,
        0,
        -1,
        { $int: '9223372036854775808' },
        { $int: '-9223372036854775809' },
      ]);
    });

    test('integers on each side of every power of ten to 10**19: their digits, none lost or added', () => {
      const exact = 2n ** 53n;
      const expected = Array.from({ length: 20 }, (_, k) =>
        [-1n, 0n, 1n].flatMap((d) => [1n, -1n].map((sign) => sign * (10n ** BigInt(k) + d))).map((v) =>
          v < exact && v > -exact ? Number(v) : { $int: v.toString() },
        ),
      );
      assert.deepEqual(args('h.tens'), expected);
    });

    test('integers past 1,024 bits: their size, not their digits (decimal conversion is quadratic)', () => {
      assert.deepEqual(args('h.bigints'), [
        { $int: (2n ** 1024n - 1n).toString() },
        { $int: null, bits: 1025 },
        { $int: null, bits: 1025 },
      ]);
    });

    test('every byte value: {"$bytes"} holds the repr() body, quotes unescaped', () => {
      assert.deepEqual(args('h.allbytes'), [{ $bytes: bytesReprBody(ALL_BYTES, ''), len: 256 }]);
    });

    test('escapes at every offset of the 16- and 8-byte scans: JSON.parse gives back the strings', () => {
      const { rec, line } = get('h.spans');
      const text = line.toString('utf8');
      assert.ok(!text.includes('\u2028') && !text.includes('\u2029'), 'raw U+2028/U+2029 in the line');
      assert.ok(!/[\x00-\x1f]/.test(text), 'raw control characters in the line');
      assert.ok(text.includes('x\\u0001xx\\u0001'), 'control characters as \\u00XX');
      assert.deepEqual(rec.args, spanStrings());
      assert.deepEqual(get('h.shortspans').rec.args, shortSpanStrings());
    });

    test('floats: nan/inf/-inf tagged, others plain numbers', () => {
      const a = args('h.floats');
      assert.deepEqual(a.slice(0, 3), [{ $float: 'nan' }, { $float: 'inf' }, { $float: '-inf' }]);
      assert.equal(a[3], 1.5);
      assert.ok(Object.is(a[4], -0), `-0.0 became ${JSON.stringify(a[4])}`);
      assert.equal(a[5], 1e300);
      assert.equal(a[6], 5e-324);
    });

    test('bool and None: true, false, null', () => {
      assert.deepEqual(args('h.consts'), [true, false, null]);
    });

    test('a code object: {"$code":"<module>","file":"f.py","line":1}', () => {
      assert.deepEqual(args('h.code'), [{ $code: '<module>', file: 'f.py', line: 1 }]);
    });

    test('an int subclass > 2**64 with a raising __str__: tagged, __str__ never called', () => {
      const a = args('h.intsub');
      assert.ok(!fs.existsSync(path.join(markerDir, 'HostileInt.__str__')), '__str__ was called');
      assert.ok(!fs.existsSync(path.join(markerDir, 'HostileInt.__repr__')), '__repr__ was called');
      const big = a[0] as Record<string, unknown>;
      assert.ok(typeof big === 'object' && big !== null && '$int' in big, `rendered as ${JSON.stringify(big)}`);
      assert.equal(a[1], 7);
    });

    test('an int subclass > 2**64: rendered as {"$int":"<decimal digits>"} as documented', () => {
      // docs/protocol.md: int "(and subclasses, not bool)" past 2**53 is {"$int":"<decimal digits>"};
      // the {"$int":null,"bits":N} form is only for values past the decimal limit.
      assert.deepEqual(args('h.intsub')[0], { $int: '18446744073709551621' });
    });

    test('a list subclass with hostile methods: its items, no method called', () => {
      assert.deepEqual(args('h.listsub'), [[1, 2, 3]]);
      assert.deepEqual(
        markers(markerDir).filter((m) => m.startsWith('HostileList')),
        [],
        'a HostileList method was called',
      );
    });

    test('a str subclass: its text, no method called', () => {
      assert.deepEqual(args('h.strsub'), ['plain text']);
      assert.deepEqual(markers(markerDir).filter((m) => m.startsWith('HostileStr')), []);
    });

    test('wide arguments: the record stays under 64 KiB and ends with {"$more":N}', () => {
      const { rec, line } = get('h.wide');
      assert.ok(line.length < RECORD_LIMIT, `${line.length} bytes`);
      const a = rec.args;
      const last = a[a.length - 1] as { $more?: number };
      assert.ok(typeof last === 'object' && last !== null && typeof last.$more === 'number', `last: ${JSON.stringify(last)}`);
      assert.equal(a.length - 1 + last.$more!, 32 + 8, 'shown + $more must count every argument');
    });

    test('more than 32 items: 32 shown, then {"$more":N}', () => {
      const a = args('h.many');
      assert.equal(a.length, 33);
      assert.deepEqual(a.slice(0, 32), Array.from({ length: 32 }, (_, i) => i));
      assert.deepEqual(a[32], { $more: 68 });
      const d = args('h.dict')[0] as { $dict: unknown[] };
      assert.equal(d.$dict.length, 33);
      assert.deepEqual(d.$dict[0], [0, '0']);
      assert.deepEqual(d.$dict[32], { $more: 8 });
    });

    test('an int past the decimal limit (3.11+) or a huge one: tagged, record valid', () => {
      const { rec, line } = get('h.toolong');
      assert.ok(line.length < RECORD_LIMIT);
      const v = rec.args[0] as Record<string, unknown>;
      if (v.$int === null) {
        assert.equal(v.bits, 16610);
      } else {
        assert.equal(v.$int, '1' + '0'.repeat(5000));
      }
    });
  });

  describe(`hostile arguments under --stderr on ${target.label}`, { ...NOT_BUILT, ...needs(interp) }, () => {
    const dir = tempDir('spython-hostile-stderr-');
    const markerDir = path.join(dir, 'markers');
    fs.mkdirSync(markerDir);
    const script = writeFile(dir, 'hostile.py', hostileScript(markerDir));
    let r: RunResult;
    before(async () => {
      if (!interp) return;
      r = await runLauncher(launch(['--stderr'], script), { env: baseEnv(), cwd: dir, timeoutMs: 120_000 });
    });

    test('the run completes with status 0 and no user code ran', () => {
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stdoutText, 'done\n');
      assert.deepEqual(markers(markerDir), [], 'user code was called by the launcher');
    });

    test('one bounded line per hostile event', () => {
      const lines = r.stderrText.split('\n');
      for (const event of ['h.evil', 'h.cycle_list', 'h.cycle_dict', 'h.deep', 'h.bytes', 'h.str', 'h.strings', 'h.ints', 'h.floats', 'h.consts', 'h.code', 'h.intsub', 'h.end']) {
        const found = lines.filter((l) => l.startsWith(`${event}: `));
        assert.equal(found.length, 1, `${event}: ${found.length} lines`);
        assert.ok(Buffer.byteLength(found[0]) < RECORD_LIMIT, `${event}: a ${Buffer.byteLength(found[0])}-byte line`);
      }
      assert.ok(lines.includes("h.consts: (True, False, None)"), 'h.consts line');
      assert.ok(lines.includes("h.end: ('done',)"), 'h.end line');
      assert.ok(lines.includes("h.evil: (<Hostile>, 1)"), 'h.evil line');
    });

    test("bytes and big ints as repr() shows them, a big int's size in bits", () => {
      const lines = r.stderrText.split('\n');
      assert.ok(lines.includes(`h.allbytes: (b'${bytesReprBody(ALL_BYTES, "'")}',)`), 'h.allbytes line');
      assert.ok(lines.includes(`h.bigints: (${2n ** 1024n - 1n}, <int of 1025 bits>, <int of 1025 bits>)`), 'h.bigints line');
    });

    test('self-containing containers are shown as repr() shows them: [...] and {...}', () => {
      const lines = r.stderrText.split('\n');
      const list = lines.find((l) => l.startsWith('h.cycle_list: '));
      const dict = lines.find((l) => l.startsWith('h.cycle_dict: '));
      assert.equal(list, 'h.cycle_list: ([1, [...]],)');
      assert.equal(dict, "h.cycle_dict: ({'a': 1, 'self': {...}},)");
    });
  });
}
