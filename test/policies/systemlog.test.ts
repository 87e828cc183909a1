// --syslog GLOB and --journal GLOB (auditLog.syslog / auditLog.journal; the syslog sample).
//
// syslog: matching events (and every refused operation) go to the syslog socket as RFC 3164
// datagrams, '<PRI>Mmm dd hh:mm:ss spython[PID]: MESSAGE', worded as the sample words them:
// 'importing NAME' / 'importing NAME from FILE' (LOG_INFO), "os.system('CMD') attempted" (LOG_ERR),
// '<policy> refused <event> <target>' for refusals.
//
// journal: the systemd journal's native protocol, one datagram of NAME=value lines (a value holding
// a newline uses NAME\n<64-bit LE length><bytes>\n), with MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
// SPYTHON_EVENT, SPYTHON_ARGS (JSON), CODE_FILE, CODE_LINE, CODE_FUNC.
//
// The launcher honours SPYTHON_SYSLOG_SOCKET and SPYTHON_JOURNAL_SOCKET; the listeners are small
// python3 programs (Node's dgram has no AF_UNIX).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { RunResult } from '../helpers/run';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  allTargets,
  describeResult,
  listenDgram,
  mainTargets,
  needs,
  pyStr,
  run,
  Target,
  tempDir,
  writeFile,
} from './common';

const RFC3164 = /^<(\d{1,3})>([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) spython\[(\d+)\]: ([^]*)$/;

interface SyslogLine {
  pri: number;
  stamp: string;
  pid: number;
  message: string;
  raw: string;
}

function parseSyslog(datagrams: Buffer[]): SyslogLine[] {
  return datagrams.map((d) => {
    const raw = d.toString('utf8');
    const m = RFC3164.exec(raw);
    assert.ok(m, `not an RFC 3164 line: ${JSON.stringify(raw)}`);
    return { pri: Number(m[1]), stamp: m[2], pid: Number(m[3]), message: m[4], raw };
  });
}

/** The fields of a journal native-protocol datagram, in order. */
function parseJournal(d: Buffer): Array<[string, Buffer, 'text' | 'binary']> {
  const fields: Array<[string, Buffer, 'text' | 'binary']> = [];
  let i = 0;
  while (i < d.length) {
    const nl = d.indexOf(0x0a, i);
    const eq = d.indexOf(0x3d, i);
    assert.ok(nl >= 0, `field without a newline at ${i}: ${JSON.stringify(d.toString('latin1'))}`);
    if (eq >= 0 && eq < nl) {
      fields.push([d.toString('latin1', i, eq), d.subarray(eq + 1, nl), 'text']);
      i = nl + 1;
    } else {
      const name = d.toString('latin1', i, nl);
      assert.ok(nl + 9 <= d.length, `binary field ${name} cut short`);
      const len = Number(d.readBigUInt64LE(nl + 1));
      const start = nl + 9;
      assert.ok(start + len < d.length, `binary field ${name} cut short`);
      fields.push([name, d.subarray(start, start + len), 'binary']);
      assert.equal(d[start + len], 0x0a, `binary field ${name} must end with a newline`);
      i = start + len + 1;
    }
  }
  return fields;
}

function fieldMap(fields: Array<[string, Buffer, 'text' | 'binary']>): Map<string, string> {
  const m = new Map<string, string>();
  for (const [name, value] of fields) {
    assert.ok(!m.has(name), `field ${name} twice`);
    m.set(name, value.toString('utf8'));
  }
  return m;
}

/** Where the target's _json extension module lives (a plain run of the interpreter). */
function extensionOrigin(t: Target, module: string): string {
  return execFileSync(t.interp!.path, ['-E', '-S', '-c', `import importlib.util; print(importlib.util.find_spec(${pyStr(module)}).origin)`], {
    encoding: 'utf8',
  }).trim();
}

function sampleScript(dir: string): string {
  return writeFile(
    dir,
    'main.py',
    [
      'import os, socket, sys',
      'print(os.getpid(), flush=True)',
      'import json',
      'os.system("echo hi")',
      `os.listdir(${pyStr(dir)})`,
      's = socket.socket()',
      'try:',
      '    s.connect(("127.0.0.1", 9))',
      'except PermissionError as e:',
      '    print(e)',
      '',
    ].join('\n'),
  );
}

for (const t of allTargets()) {
  describe(`--syslog on Python ${t.label}`, needs(t), () => {
    async function runSample() {
      const dir = tempDir();
      const listener = await listenDgram(path.join(dir, 'log.sock'));
      const script = sampleScript(dir);
      const r = await run(
        t,
        ['--syslog', 'import', '--syslog', 'os.system', '--deny', 'socket.connect', '-E', '-S', script],
        { env: { SPYTHON_SYSLOG_SOCKET: listener.path } },
      );
      const lines = parseSyslog(await listener.stop());
      const pid = Number(r.stdoutText.split('\n')[0]);
      const detail = `${describeResult(r)}\n--- syslog ---\n${lines.map((l) => l.raw).join('\n')}`;
      return { r, lines, pid, detail, dir };
    }

    test('datagrams are RFC 3164 lines from spython[PID], user facility; only matching events and refusals', async () => {
      const { r, lines, pid, detail, dir } = await runSample();
      assert.equal(r.status, 0, detail);
      assert.ok(lines.length > 0, detail);
      for (const l of lines) {
        assert.equal(l.pid, pid, `PID is the audited process's\n${detail}`);
        assert.equal(l.pri >> 3, 1, `LOG_USER facility: ${l.raw}`);
      }
      assert.ok(!lines.some((l) => l.message.includes('os.listdir') || l.message.includes(dir + "'")), `os.listdir matched no rule\n${detail}`);
      assert.ok(
        lines.every(
          (l) => l.message.startsWith('importing ') || l.message.startsWith('os.system(') || l.message.startsWith('denyEvents refused '),
        ),
        detail,
      );
    });

    test("imports are logged at <14> as 'importing NAME' (pure Python) and 'importing NAME from FILE' (extension)", async () => {
      const { lines, detail } = await runSample();
      const json = lines.filter((l) => /^importing json( from .*)?$/.test(l.message));
      assert.equal(json.length, 1, detail);
      assert.equal(json[0].pri, 14, detail);
      // The import event names no file for a source module; if one is given it must be json's.
      const m = / from (.*)$/.exec(json[0].message);
      if (m) assert.match(m[1], /\/json\/__init__\.py$/, detail);
      const ext = extensionOrigin(t, '_json');
      const native = lines.filter((l) => l.message === `importing _json from ${ext}`);
      assert.equal(native.length, 1, detail);
      assert.equal(native[0].pri, 14, detail);
    });

    test("os.system is logged at <11> as os.system('echo hi') attempted", async () => {
      const { lines, detail } = await runSample();
      const sys = lines.filter((l) => l.message.startsWith('os.system('));
      assert.equal(sys.length, 1, detail);
      assert.equal(sys[0].pri, 11, detail);
      assert.equal(sys[0].message, "os.system('echo hi') attempted", detail);
    });

    test('a refused operation is logged too', async () => {
      const { r, lines, detail } = await runSample();
      assert.match(r.stdoutText, /^\[spython\] denyEvents refused socket\.connect \('127\.0\.0\.1', 9\)$/m, detail);
      const refused = lines.filter((l) => l.message.startsWith('denyEvents refused'));
      assert.equal(refused.length, 1, detail);
      assert.equal(refused[0].message, "denyEvents refused socket.connect ('127.0.0.1', 9)", detail);
      assert.ok(refused[0].pri >= 8 + 0 && refused[0].pri <= 8 + 4, `at warning or more severe: ${refused[0].raw}`);
    });

    test('no syslog daemon: said once on stderr, the program runs on', async () => {
      const dir = tempDir();
      const missing = path.join(dir, 'no-such.sock');
      const script = writeFile(dir, 'main.py', 'import os\nfor i in range(3):\n    os.system("true")\nprint("done")\n');
      const r = await run(t, ['--syslog', 'os.system', script], { env: { SPYTHON_SYSLOG_SOCKET: missing } });
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.equal(r.stdoutText, 'done\n', d);
      const said = r.stderrText.split('\n').filter((l) => l.startsWith(`spython: cannot write to syslog at ${missing}`));
      assert.equal(said.length, 1, d);
    });
  });
}

describe('--syslog to the real /dev/log', () => {
  const t = mainTargets()[1];
  const exists = fs.existsSync('/dev/log');
  const skip = needs(t).skip ?? (exists ? '/dev/log exists already (a syslog daemon is running): not touching it' : undefined);
  test(`Python ${t.label}: with no SPYTHON_SYSLOG_SOCKET the datagrams go to /dev/log`, { skip }, async () => {
    const listener = await listenDgram('/dev/log');
    let lines: SyslogLine[] = [];
    let r: RunResult | undefined;
    try {
      const dir = tempDir();
      const script = writeFile(dir, 'main.py', 'import os\nos.system("true")\n');
      r = await run(t, ['--syslog', 'os.system', script]);
    } finally {
      lines = parseSyslog(await listener.stop());
      fs.rmSync('/dev/log', { force: true });
    }
    assert.ok(r);
    assert.equal(r.status, 0, describeResult(r));
    assert.equal(lines.length, 1, lines.map((l) => l.raw).join('\n'));
    assert.equal(lines[0].pri, 11);
    assert.ok(!fs.existsSync('/dev/log'), 'removed afterwards');
  });
});

for (const t of allTargets()) {
  describe(`--journal on Python ${t.label}`, needs(t), () => {
    test('one native-protocol datagram per matching event, with exactly the documented fields', async () => {
      const dir = tempDir();
      const listener = await listenDgram(path.join(dir, 'journal.sock'));
      const syslog = await listenDgram(path.join(dir, 'log.sock'));
      const script = writeFile(
        dir,
        'main.py',
        ['import os', 'def run_it():', '    os.system("echo hi")', 'run_it()', `os.listdir(${pyStr(dir)})`, ''].join('\n'),
      );
      const r = await run(t, ['--journal', 'os.system', '--syslog', 'os.system', script], {
        env: { SPYTHON_JOURNAL_SOCKET: listener.path, SPYTHON_SYSLOG_SOCKET: syslog.path },
      });
      const datagrams = await listener.stop();
      const syslogLines = parseSyslog(await syslog.stop());
      const detail = `${describeResult(r)}\n--- journal ---\n${datagrams.map((d) => JSON.stringify(d.toString('latin1'))).join('\n')}`;
      assert.equal(r.status, 0, detail);
      assert.equal(datagrams.length, 1, detail);
      const fields = parseJournal(datagrams[0]);
      assert.deepEqual(
        fields.map(([name]) => name).sort(),
        ['CODE_FILE', 'CODE_FUNC', 'CODE_LINE', 'MESSAGE', 'PRIORITY', 'SPYTHON_ARGS', 'SPYTHON_EVENT', 'SYSLOG_IDENTIFIER'],
        detail,
      );
      assert.ok(fields.every(([, , form]) => form === 'text'), `no value holds a newline\n${detail}`);
      const f = fieldMap(fields);
      assert.equal(f.get('PRIORITY'), '3', detail);
      assert.equal(f.get('SYSLOG_IDENTIFIER'), 'spython', detail);
      assert.equal(f.get('SPYTHON_EVENT'), 'os.system', detail);
      assert.deepEqual(JSON.parse(f.get('SPYTHON_ARGS')!), [{ $bytes: 'echo hi', len: 7 }], detail);
      assert.equal(f.get('CODE_FILE'), script, detail);
      assert.equal(f.get('CODE_LINE'), '3', detail);
      assert.equal(f.get('CODE_FUNC'), 'run_it', detail);
      // The same words as the syslog line.
      assert.equal(syslogLines.length, 1, detail);
      assert.equal(f.get('MESSAGE'), syslogLines[0].message, detail);
    });

    test('values holding a newline use the binary form NAME\\n<64-bit LE length><bytes>\\n', async () => {
      const dir = tempDir();
      const listener = await listenDgram(path.join(dir, 'journal.sock'));
      // A script whose path holds a newline, raising an event whose name holds one.
      const sub = path.join(dir, 'two\nlines');
      const script = writeFile(sub, 'main.py', 'import sys\nsys.audit("policytest.multi\\nline", "a\\nb")\n');
      const r = await run(t, ['--journal', 'policytest.*', script], { env: { SPYTHON_JOURNAL_SOCKET: listener.path } });
      const datagrams = await listener.stop();
      const detail = `${describeResult(r)}\n--- journal ---\n${datagrams.map((d) => JSON.stringify(d.toString('latin1'))).join('\n')}`;
      assert.equal(r.status, 0, detail);
      assert.equal(datagrams.length, 1, detail);
      const d = datagrams[0];
      const fields = parseJournal(d);
      const f = fieldMap(fields);
      const form = new Map(fields.map(([name, , how]) => [name, how]));
      assert.equal(f.get('SPYTHON_EVENT'), 'policytest.multi\nline', detail);
      assert.equal(form.get('SPYTHON_EVENT'), 'binary', detail);
      assert.equal(f.get('CODE_FILE'), script, detail);
      assert.equal(form.get('CODE_FILE'), 'binary', detail);
      assert.equal(form.get('SPYTHON_ARGS'), 'text', `JSON escapes the newline\n${detail}`);
      assert.deepEqual(JSON.parse(f.get('SPYTHON_ARGS')!), ['a\nb'], detail);
      assert.equal(form.get('SYSLOG_IDENTIFIER'), 'text', detail);
      // The exact bytes of one binary field.
      const value = Buffer.from(script, 'utf8');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(value.length));
      const expected = Buffer.concat([Buffer.from('CODE_FILE\n'), len, value, Buffer.from('\n')]);
      assert.ok(d.includes(expected), detail);
    });
  });
}
