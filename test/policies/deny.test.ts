// --deny GLOB and 'GLOB if EXPR' (denyEvents): a matching event fails with a PermissionError that
// names the policy and the target, the program goes on, and the record stream marks the event
// "denied":"denyEvents". Conditions are Python over `event` and `args`, evaluated in the frame that
// raised the event (its locals visible); a broken one is reported once on stderr and ignored.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  allTargets,
  count,
  describeResult,
  mainTargets,
  needs,
  pyStr,
  run,
  runWithChannel,
  tempDir,
  writeFile,
} from './common';

/** A script that tries `attempts` (name -> Python statement) and prints one line per attempt:
 * 'name: ok', 'name: PermissionError: <message>' or 'name: <OtherError>'. */
function attemptScript(attempts: Array<[string, string]>, prologue = ''): string {
  const lines = ['import os, socket, sys', prologue, 'def attempt(name, fn):', '    try:', '        fn()', '        print(name + ": ok")'];
  lines.push('    except PermissionError as e:', '        print(name + ": PermissionError: " + str(e))');
  lines.push('    except Exception as e:', '        print(name + ": " + type(e).__name__)');
  for (const [name, stmt] of attempts) {
    lines.push(`def _${name}():`, `    ${stmt}`, `attempt(${pyStr(name)}, _${name})`);
  }
  lines.push('print("end")');
  return lines.join('\n') + '\n';
}

/** The printed outcome of each attempt, by name. */
function outcomes(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(': ');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 2));
  }
  return m;
}

for (const t of allTargets()) {
  describe(`--deny on Python ${t.label}`, needs(t), () => {
    test("a glob ('socket.*') refuses every matching event with a PermissionError; the program goes on", async () => {
      const dir = tempDir();
      const script = writeFile(
        dir,
        'main.py',
        attemptScript([
          ['new', 'socket.socket()'],
          ['resolve', 'socket.getaddrinfo("127.0.0.1", 9)'],
          ['listdir', `os.listdir(${pyStr(dir)})`],
        ]),
      );
      const r = await run(t, ['--deny', 'socket.*', script]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      const o = outcomes(r.stdoutText);
      assert.match(o.get('new') ?? '', /^PermissionError: \[spython\] denyEvents refused socket\.__new__ /, d);
      assert.equal(o.get('resolve'), "PermissionError: [spython] denyEvents refused socket.getaddrinfo '127.0.0.1'", d);
      assert.equal(o.get('listdir'), 'ok', `a non-matching event proceeds\n${d}`);
      assert.match(r.stdoutText, /^end$/m, d);
    });

    test('the message names the policy, the event and its target', async () => {
      const dir = tempDir();
      const script = writeFile(
        dir,
        'main.py',
        attemptScript([['connect', 's = socket.socket(); s.settimeout(5); s.connect(("127.0.0.1", 9))']]),
      );
      const r = await run(t, ['--deny', 'socket.connect', script]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.equal(
        outcomes(r.stdoutText).get('connect'),
        "PermissionError: [spython] denyEvents refused socket.connect ('127.0.0.1', 9)",
        d,
      );
    });

    test('an uncaught refusal is an ordinary PermissionError traceback (not a kill)', async () => {
      const dir = tempDir();
      const script = writeFile(dir, 'main.py', 'import os\nos.system("echo not-run")\n');
      const r = await run(t, ['--deny', 'os.system', script]);
      const d = describeResult(r);
      assert.equal(r.status, 1, d);
      assert.equal(r.signal, null, d);
      assert.doesNotMatch(r.stdoutText, /not-run/, d);
      assert.match(r.stderrText, /Traceback \(most recent call last\):/, d);
      assert.match(r.stderrText, /PermissionError: \[spython\] denyEvents refused os\.system b'echo not-run'/, d);
    });

    test("'open if \"w\" in args[1]' refuses writing but not reading", async () => {
      const dir = tempDir();
      const existing = writeFile(dir, 'data.txt', 'hello');
      const target = path.join(dir, 'written.txt');
      const script = writeFile(
        dir,
        'main.py',
        attemptScript([
          ['read', `open(${pyStr(existing)}).read()`],
          ['write', `open(${pyStr(target)}, "w").close()`],
          ['append', `open(${pyStr(existing)}, "a").close()`],
        ]),
      );
      const r = await run(t, ['--deny', 'open if "w" in args[1]', script]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      const o = outcomes(r.stdoutText);
      assert.equal(o.get('read'), 'ok', d);
      assert.equal(o.get('write'), `PermissionError: [spython] denyEvents refused open '${target}'`, d);
      assert.equal(o.get('append'), 'ok', d);
      assert.ok(!fs.existsSync(target), 'the refused open created the file');
      assert.doesNotMatch(r.stderrText, /is ignored/, `the condition must not have failed anywhere\n${d}`);
    });

    test('a condition sees the locals of the frame that raised the event', async () => {
      const dir = tempDir();
      const script = writeFile(
        dir,
        'main.py',
        [
          'import os, sys',
          'def look(where, secret):',
          '    try:',
          '        os.listdir(where)',
          '        print(secret + ": ok")',
          '    except PermissionError as e:',
          '        print(secret + ": PermissionError: " + str(e))',
          'def ping(level):',
          '    try:',
          '        sys.audit("policytest.ping", 1)',
          '        print("ping " + level + ": ok")',
          '    except PermissionError as e:',
          '        print("ping " + level + ": PermissionError: " + str(e))',
          `look(${pyStr(dir)}, "no")`,
          `look(${pyStr(dir)}, "yes")`,
          'ping("low")',
          'ping("high")',
          '',
        ].join('\n'),
      );
      const r = await run(t, [
        '--deny',
        `os.listdir if args[0] == ${pyStr(dir)} and secret == "yes"`,
        '--deny',
        'policytest.* if level == "high" and args == (1,) and event == "policytest.ping"',
        script,
      ]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      const o = outcomes(r.stdoutText);
      assert.equal(o.get('no'), 'ok', d);
      assert.equal(o.get('yes'), `PermissionError: [spython] denyEvents refused os.listdir ('${dir}',)`, d);
      assert.equal(o.get('ping low'), 'ok', d);
      assert.equal(o.get('ping high'), 'PermissionError: [spython] denyEvents refused policytest.ping (1,)', d);
      assert.doesNotMatch(r.stderrText, /is ignored/, d);
    });

    test("a condition that raises ('open if nosuchname') does not match, is reported once and is not fatal", async () => {
      const dir = tempDir();
      const data = writeFile(dir, 'data.txt', 'hello');
      const script = writeFile(
        dir,
        'main.py',
        attemptScript([
          ['first', `open(${pyStr(data)}).read()`],
          ['second', `open(${pyStr(data)}).read()`],
          ['third', `open(${pyStr(path.join(dir, 'new.txt'))}, "w").close()`],
        ]),
      );
      const r = await run(t, ['--deny', 'open if nosuchname', script]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      const o = outcomes(r.stdoutText);
      assert.equal(o.get('first'), 'ok', d);
      assert.equal(o.get('second'), 'ok', d);
      assert.equal(o.get('third'), 'ok', d);
      assert.match(r.stdoutText, /^end$/m, d);
      const message =
        "spython: denyEvents rule 'open if nosuchname' does not match where its condition raises " +
        "(NameError: name 'nosuchname' is not defined)\n";
      assert.equal(count(r.stderrText, 'denyEvents rule'), 1, `reported exactly once\n${d}`);
      assert.ok(r.stderrText.includes(message), `expected ${JSON.stringify(message)}\n${d}`);
    });

    test('a condition that does not compile is reported once (SyntaxError) and is not fatal', async () => {
      const dir = tempDir();
      const script = writeFile(dir, 'main.py', attemptScript([['listdir', `os.listdir(${pyStr(dir)})`]]));
      const r = await run(t, ['--deny', 'os.listdir if (', script]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.equal(outcomes(r.stdoutText).get('listdir'), 'ok', d);
      assert.equal(count(r.stderrText, 'denyEvents rule'), 1, d);
      assert.match(
        r.stderrText,
        /^spython: denyEvents rule 'os\.listdir if \(' is ignored: its condition does not compile \(SyntaxError: /m,
        d,
      );
    });
  });
}

for (const t of mainTargets()) {
  describe(`denyEvents through the channel on Python ${t.label}`, needs(t), () => {
    test('welcome {"denyEvents": ["os.system"]} refuses os.system; the record says "denied":"denyEvents"', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'system-ran');
      const script = writeFile(
        dir,
        'main.py',
        attemptScript([['system', `os.system("touch ${marker}")`]]),
      );
      const { result, records } = await runWithChannel(t, [script], { config: { denyEvents: ['os.system'] } });
      const d = describeResult(result);
      assert.equal(result.status, 0, d);
      assert.equal(
        outcomes(result.stdoutText).get('system'),
        `PermissionError: [spython] denyEvents refused os.system b'touch ${marker}'`,
        d,
      );
      assert.ok(!fs.existsSync(marker), 'the refused command ran');
      const rec = records.filter((r) => r.event === 'os.system');
      assert.equal(rec.length, 1, JSON.stringify(rec));
      assert.equal(rec[0].denied, 'denyEvents', JSON.stringify(rec[0]));
      assert.equal(rec[0].file, script, JSON.stringify(rec[0]));
      assert.ok(!records.some((r) => r.event === 'subprocess.Popen' || r.event === 'os.posix_spawn'));
      // Events that were not refused carry no "denied" key at all.
      const others = records.filter((r) => r.event !== 'os.system');
      assert.ok(others.length > 0);
      assert.ok(others.every((r) => !('denied' in r)), 'only the refused event is marked');
    });

    test('rule objects {"event", "condition"} and the flags merge with the welcome config', async () => {
      const dir = tempDir();
      // Not the script's own directory: the import system lists that one too.
      const sub = path.join(dir, 'sub');
      fs.mkdirSync(sub);
      const script = writeFile(
        dir,
        'main.py',
        attemptScript([
          ['listdir', `os.listdir(${pyStr(sub)})`],
          ['listtmp', 'os.listdir("/")'],
          ['connect', 's = socket.socket(); s.settimeout(5); s.connect(("127.0.0.1", 9))'],
        ]),
      );
      const { result, records } = await runWithChannel(t, ['--deny', 'socket.connect', script], {
        config: { denyEvents: [{ event: 'os.listdir', condition: `args[0] == ${pyStr(sub)}` }] },
      });
      const d = describeResult(result);
      assert.equal(result.status, 0, d);
      const o = outcomes(result.stdoutText);
      assert.equal(o.get('listdir'), `PermissionError: [spython] denyEvents refused os.listdir ('${sub}',)`, d);
      assert.equal(o.get('listtmp'), 'ok', d);
      assert.equal(o.get('connect'), "PermissionError: [spython] denyEvents refused socket.connect ('127.0.0.1', 9)", d);
      const denied = records.filter((r) => r.denied).map((r) => `${r.event}:${r.denied}`);
      assert.deepEqual(denied, ['os.listdir:denyEvents', 'socket.connect:denyEvents'], JSON.stringify(denied));
    });
  });
}
