// The two logging modes of the launcher, modelled on zooba/spython's samples:
//   --stderr   LogToStderr:        "<event>: <repr(args)>" on stderr; compile shows at most 200
//                                  characters of the source, then "..."
//   --minimal  LogToStderrMinimal: "Event occurred: <event>(<repr(args), at most 80 characters>)" on
//                                  stdout
// The program's own output must be unaffected.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { launcherBuilt } from '../helpers/interpreters';
import { runLauncher, RunResult } from '../helpers/run';
import { baseEnv, describeResult, needs, pythonFor, tempDir, Target, writeFile } from './common';

const NOT_BUILT = launcherBuilt() ? {} : { skip: 'launcher not built (npm run build)' };

/** O_RDONLY | O_CLOEXEC on Linux: the flags of open() for reading. */
const O_RDONLY_CLOEXEC = 524288;

/** Python's repr() of a str made of printable ASCII. */
function pyStr(s: string): string {
  assert.match(s, /^[\x20-\x7e]*$/, 'pyStr only handles printable ASCII');
  if (s.includes("'") && !s.includes('"')) return `"${s.replace(/\\/g, '\\\\')}"`;
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function targets(): Target[] {
  const t = (minor: number): Target => ({ label: `3.${minor}`, interp: pythonFor(minor), modeArgs: [], mode: 'dlopen' });
  return [
    t(8),
    t(12),
    t(13),
    { label: '3.11 (Debian, preload)', interp: pythonFor(11, true), modeArgs: ['--mode', 'preload'], mode: 'preload' },
  ];
}

function lines(text: string): string[] {
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all;
}

const MINIMAL_LINE = /^Event occurred: ([^(]*)\((.*)\)$/;

for (const target of targets()) {
  describe(`log modes on ${target.label}`, { concurrency: 3, ...NOT_BUILT, ...needs(target.interp) }, () => {
    const dir = tempDir('spython-logmodes-');
    const known = writeFile(dir, 'known.txt', 'hello\n');
    const longDir = path.join(dir, 'a-rather-long-directory-name-so-that-the-repr-is-longer-than-eighty-characters');
    const longKnown = writeFile(longDir, 'known-with-a-long-name.txt', 'long hello\n');
    const script = writeFile(
      dir,
      'opener.py',
      [
        'import sys',
        `with open(${pyStr(known)}) as f:`,
        '    print("file says:", f.read().strip())',
        `with open(${pyStr(longKnown)}) as f:`,
        '    print("long file says:", f.read().strip())',
        'print("to stderr", file=sys.stderr)',
        '',
      ].join('\n'),
    );
    const run = (options: string[], pyArgs: string[]): Promise<RunResult> =>
      runLauncher([...options, ...target.modeArgs, '--python', target.interp!.path, '--', ...pyArgs], {
        env: baseEnv(),
        cwd: dir,
      });

    test('--stderr: an open() is logged as open: (path, mode, flags)', async () => {
      const r = await run(['--stderr'], [script]);
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stdoutText, 'file says: hello\nlong file says: long hello\n', 'program stdout changed');
      const err = lines(r.stderrText);
      const expected = `open: (${pyStr(known)}, 'r', ${O_RDONLY_CLOEXEC})`;
      assert.ok(err.includes(expected), `no line ${JSON.stringify(expected)} on stderr\n${describeResult(r)}`);
      assert.ok(err.includes(`open: (${pyStr(longKnown)}, 'r', ${O_RDONLY_CLOEXEC})`), 'long path not logged in full');
      assert.ok(err.includes('to stderr'), "the program's own stderr line is missing");
      // The order of events is the order of the program's operations.
      assert.ok(err.indexOf(expected) < err.indexOf('to stderr'));
      // Every log line has the "<event>: <args>" form.
      for (const line of err) {
        if (line === 'to stderr') continue;
        assert.match(line, /^[^\s:]+: (\(.*\)|compiling .*)$/, `malformed --stderr line: ${line}`);
      }
      assert.ok(!r.stdoutText.includes('open:'), 'event lines leaked to stdout');
    });

    test('--stderr: compile shows at most 200 characters of a long -c program, then ...', async () => {
      const source = 'x = 0' + Array.from({ length: 120 }, (_, i) => `; x += ${i}`).join('') + '; print(x)';
      assert.ok(source.length > 400);
      const r = await run(['--stderr'], ['-c', source]);
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stdoutText, `${(119 * 120) / 2}\n`);
      const prefix = 'compile: compiling <string>: ';
      const candidates = lines(r.stderrText).filter((l) => l.startsWith(prefix) && l.includes('x = 0; x += 0'));
      assert.equal(candidates.length, 1, `expected one compile line for the -c program\n${describeResult(r)}`);
      const shown = candidates[0].slice(prefix.length);
      // LogToStderr: repr() for a non-str source (the -c source arrives as bytes), cut to 200
      // characters, then '...'.
      // (CPython appends a newline to the -c source before compiling it.)
      const reprs = [source, `b'${source}'`, `b'${source}\\n'`, `${source}\\n`];
      assert.ok(shown.endsWith('...'), `no '...' after the cut source: ${shown}`);
      assert.ok(shown.length <= 203, `${shown.length - 3} characters of source shown (at most 200): ${shown}`);
      assert.ok(
        reprs.some((repr) => shown === repr.slice(0, 200) + '...'),
        `compile line is not the first 200 characters of the source's repr + '...': ${shown}`,
      );
    });

    test('--stderr: compile of a short -c program shows it whole', async () => {
      const source = 'y = 6 * 7; print(y)';
      const r = await run(['--stderr'], ['-c', source]);
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stdoutText, '42\n');
      const l = lines(r.stderrText);
      const shown = [`b'${source}'`, `b'${source}\\n'`, source, `${source}\\n`];
      assert.ok(
        shown.some((s) => l.includes(`compile: compiling <string>: ${s}`)),
        describeResult(r),
      );
    });

    test('--stderr: arguments of plain types are rendered as repr() renders them', async () => {
      const program = [
        'import sys',
        "args = ('plain', 'tab\\there\\nnl', '\\u00e9t\\u00e9', b'bytes\\x00\\xff', 12, -3, 2**70, 2.5, None, True, False, (1,), (), [1, [2]], {'k': 'v'})",
        "sys.audit('spy.repr', *args)",
        "print('spy.repr: ' + repr(args))",
      ].join('\n');
      const r = await run(['--stderr'], ['-c', program]);
      assert.equal(r.status, 0, describeResult(r));
      const expected = lines(r.stdoutText)[0];
      assert.ok(lines(r.stderrText).includes(expected), `expected on stderr: ${expected}\n${describeResult(r)}`);
    });

    test('--stderr: strings containing quotes are rendered as repr() renders them', async () => {
      const program = [
        'import sys',
        "args = (\"it's\", 'say \"hi\"', 'both \\' and \"', b\"it's\")",
        "sys.audit('spy.quotes', *args)",
        "print('spy.quotes: ' + repr(args))",
      ].join('\n');
      const r = await run(['--stderr'], ['-c', program]);
      assert.equal(r.status, 0, describeResult(r));
      const expected = lines(r.stdoutText)[0];
      const got = lines(r.stderrText).find((l) => l.startsWith('spy.quotes: '));
      assert.equal(got, expected);
    });

    test('--stderr: a bytearray argument is rendered as repr() renders it', async () => {
      const program = [
        'import sys',
        "args = (bytearray(b'ba'), 1)",
        "sys.audit('spy.ba', *args)",
        "print('spy.ba: ' + repr(args))",
      ].join('\n');
      const r = await run(['--stderr'], ['-c', program]);
      assert.equal(r.status, 0, describeResult(r));
      const expected = lines(r.stdoutText)[0];
      const got = lines(r.stderrText).find((l) => l.startsWith('spy.ba: '));
      assert.equal(got, expected);
    });

    test('--minimal: Event occurred: open((...)) with at most 80 characters inside', async () => {
      const r = await run(['--minimal'], [script]);
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stderrText, 'to stderr\n', 'stderr must hold only the program output');
      const out = lines(r.stdoutText);
      const events = out.filter((l) => l.startsWith('Event occurred: '));
      const program = out.filter((l) => !l.startsWith('Event occurred: '));
      assert.deepEqual(program, ['file says: hello', 'long file says: long hello'], "the program's own stdout");
      assert.ok(events.length > 5, 'too few events');
      for (const line of events) {
        const m = MINIMAL_LINE.exec(line);
        assert.ok(m, `malformed --minimal line: ${line}`);
        assert.ok([...m[2]].length <= 80, `more than 80 characters of arguments: ${line}`);
      }
      const short = `Event occurred: open((${pyStr(known)}, 'r', ${O_RDONLY_CLOEXEC}))`;
      if (short.length - 'Event occurred: open()'.length <= 80) {
        assert.ok(events.includes(short), `missing ${short}`);
      }
      const longRepr = `(${pyStr(longKnown)}, 'r', ${O_RDONLY_CLOEXEC})`;
      assert.ok(longRepr.length > 80);
      const longLine = `Event occurred: open(${longRepr.slice(0, 80)})`;
      assert.ok(events.includes(longLine), `missing ${longLine}\n${describeResult(r)}`);
      // The open events come before the program's line that follows them.
      assert.ok(out.indexOf(longLine) < out.indexOf('long file says: long hello'));
    });

    test('--minimal: an event without arguments is Event occurred: name(())', async () => {
      const r = await run(['--minimal'], ['-c', "import sys; sys.audit('spy.noargs'); sys.audit('spy.one', 1)"]);
      assert.equal(r.status, 0, describeResult(r));
      const out = lines(r.stdoutText);
      assert.ok(out.includes('Event occurred: spy.noargs(())'), describeResult(r));
      assert.ok(out.includes('Event occurred: spy.one((1,))'), describeResult(r));
    });

    test('--stderr --minimal together: both logs, program output intact', async () => {
      const r = await run(['--stderr', '--minimal'], [script]);
      assert.equal(r.status, 0, describeResult(r));
      assert.ok(lines(r.stderrText).includes(`open: (${pyStr(known)}, 'r', ${O_RDONLY_CLOEXEC})`));
      assert.ok(lines(r.stdoutText).some((l) => l.startsWith('Event occurred: open(')));
      assert.ok(lines(r.stdoutText).includes('file says: hello'));
      assert.ok(lines(r.stderrText).includes('to stderr'));
    });
  });
}
