// Interactive breaks and prompts on a terminal (a pseudo-terminal driven by Python's pty module):
// --break stops on the event, shows the stack and the event's arguments and asks continue / deny /
// stack / print; --prompt asks yes / always / no. Without a terminal, a break says so and continues,
// and a prompt says so and refuses.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runProcess } from '../helpers/run';
import { CLI, cliEnv, lineOf, needs, program, PYTHON, runCli, runOnPty, show } from './common';

const PROMPT = '[c]ontinue / [d]eny / [s]tack / [p]rint EXPR > ';

const BREAKS = `
import sys
value = 41

def work():
    local_value = value + 1
    sys.audit("app.step", "first", 1)  # FIRST
    print("first passed", flush=True)
    try:
        sys.audit("app.step", "second", 2)  # SECOND
        print("second passed", flush=True)
    except PermissionError as e:
        print("second refused:", e, flush=True)

work()  # CALL
`;

const ASKS = `
import sys
for target in ["one", "two", "three", "same", "same"]:
    try:
        sys.audit("app.ask", target)
        print("allowed", target, flush=True)
    except PermissionError:
        print("refused", target, flush=True)
`;

function cli(...args: string[]): string[] {
  return [process.execPath, CLI, ...args];
}

describe('on a terminal', { ...needs(PYTHON), concurrency: 2, timeout: 120_000 }, () => {
  test('--break: stack, print, continue, then deny', async () => {
    const { dir, file } = program(BREAKS);
    const r = await runOnPty(cli('run', '--python', PYTHON!, '--break', 'app.step', file), {
      cwd: dir,
      env: cliEnv({ TERM: 'dumb' }),
      steps: [
        { expect: PROMPT, send: 's\r' },
        { expect: PROMPT, send: 'p local_value * 2\r' },
        { expect: PROMPT, send: 'c\r' },
        { expect: PROMPT, send: 'd\r' },
      ],
    });
    assert.deepEqual(r.unmatched, [], r.output);
    assert.equal(r.status, 0, r.output);
    const out = r.output.replace(/\r\n/g, '\n');
    assert.match(out, new RegExp(`■ Stopped on app\\.step 'first' at prog\\.py:${lineOf(file, 'FIRST')}`));
    assert.match(out, /Stack \(innermost first\):\n  #0 work  prog\.py:\d+\n  #1 <module>  prog\.py:\d+/);
    assert.match(out, new RegExp(`#1 <module>  prog\\.py:${lineOf(file, 'CALL')}`));
    assert.match(out, /Event arguments:\n[^]*'first'[^]*1/);
    assert.match(out, /\n84\n/);
    assert.match(out, /first passed/);
    assert.match(out, new RegExp(`■ Stopped on app\\.step 'second' at prog\\.py:${lineOf(file, 'SECOND')}`));
    assert.match(out, /Denied: app\.step raises PermissionError\./);
    assert.match(out, /second refused: \[spython\] debugger refused app\.step/);
    assert.doesNotMatch(out, /second passed/);
    // The record went out before the refusal; the summary counts it.
    assert.match(out, /1 denied/);
    assert.match(out, new RegExp(`│ app\\.step │ 'second' │ debugger │ prog\\.py:${lineOf(file, 'SECOND')} │`));
  });

  test('--break and next on hidden events amid a storm: each stop knows its record, deny works', async () => {
    // Hidden records are counted, not read: the one a breakpoint names and the one a step lands on
    // must be read all the same (the stop shows where it was raised; deny needs the record).
    const { dir, file } = program(`
import sys
for i in range(20000):
    sys.audit("app.noise", i)
    if i == 15000:
        sys.audit("app.target", i)  # TARGET
        try:
            sys.audit("app.after", i)  # AFTER
        except PermissionError:
            print("after refused", flush=True)
`);
    const r = await runOnPty(cli('run', '-q', '--no-summary', '--python', PYTHON!, '--hide', 'app.*', '--break', 'app.target', file), {
      cwd: dir,
      env: cliEnv({ TERM: 'dumb' }),
      steps: [
        { expect: PROMPT, send: 'n\r' },
        { expect: 'Stopped on app.after', send: '' },
        { expect: PROMPT, send: 'd\r' },
      ],
    });
    assert.deepEqual(r.unmatched, [], r.output);
    assert.equal(r.status, 0, r.output);
    const out = r.output.replace(/\r\n/g, '\n');
    assert.match(out, new RegExp(`■ Stopped on app\\.target 15000 at prog\\.py:${lineOf(file, 'TARGET')}`));
    assert.match(out, new RegExp(`■ Stopped on app\\.after 15000 at prog\\.py:${lineOf(file, 'AFTER')}`));
    assert.match(out, /Denied: app\.after raises PermissionError\./);
    assert.match(out, /after refused/);
  });

  test('--break: a question mark explains, Enter continues', async () => {
    const { dir, file } = program(BREAKS);
    const r = await runOnPty(cli('run', '-q', '--no-summary', '--python', PYTHON!, '--break', 'app.step', file), {
      cwd: dir,
      env: cliEnv({ TERM: 'dumb' }),
      steps: [
        { expect: PROMPT, send: '?\r' },
        { expect: 'q: end the program', send: '' },
        { expect: PROMPT, send: '\r' },
        { expect: "Stopped on app.step 'second'", send: '' },
        { expect: PROMPT, send: 'c\r' },
      ],
    });
    assert.deepEqual(r.unmatched, [], r.output);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /first passed/);
    assert.match(r.output, /second passed/);
  });

  test('--prompt: yes, no, Enter (yes), always', async () => {
    const { dir, file } = program(ASKS);
    const r = await runOnPty(cli('run', '--no-summary', '--python', PYTHON!, '--prompt', 'app.ask', file), {
      cwd: dir,
      env: cliEnv({ TERM: 'dumb' }),
      steps: [
        { expect: "allow app.ask ('one',)?", send: 'y\r' },
        { expect: "allow app.ask ('two',)?", send: 'n\r' },
        { expect: "allow app.ask ('three',)?", send: '\r' },
        { expect: "allow app.ask ('same',)?", send: 'a\r' },
      ],
    });
    assert.deepEqual(r.unmatched, [], r.output);
    assert.equal(r.status, 0, r.output);
    const out = r.output.replace(/\r\n/g, '\n');
    assert.match(out, /allowed one\n[^]*refused two\n[^]*allowed three\n[^]*allowed same\n[^]*allowed same\n/);
    // "always": the second "same" was not asked.
    assert.equal(out.split("allow app.ask ('same',)?").length - 1, 1, out);
    assert.match(out, /\[audit\] app\.ask 'two'  prog\.py:\d+  DENIED by promptEvents/);
  });

  test('live lines are coloured on a terminal (and not with NO_COLOR)', async () => {
    const { dir, file } = program('import os\nos.listdir(".")\n');
    // pty.spawn copies the terminal's bytes as they are (runOnPty strips colours).
    const spawnOnPty = (env: Record<string, string | undefined>) =>
      runProcess(PYTHON!, ['-c', 'import pty, sys\npty.spawn(sys.argv[1:])', ...cli('run', '--no-summary', '--python', PYTHON!, file)], {
        cwd: dir,
        env: cliEnv(env),
      });
    const coloured = await spawnOnPty({ TERM: 'xterm' });
    assert.match(coloured.stdoutText, /\x1b\[2m\[audit\]\x1b\[22m os\.listdir/, show(coloured));
    const plain = await spawnOnPty({ TERM: 'xterm', NO_COLOR: '1' });
    assert.match(plain.stdoutText, /\[audit\] os\.listdir/, show(plain));
    assert.doesNotMatch(plain.stdoutText, /\x1b\[/);
  });
});

describe('without a terminal', { ...needs(PYTHON), concurrency: 2 }, () => {
  test('--break says so and continues', async () => {
    const { dir, file } = program(BREAKS);
    const r = await runCli(['run', '--no-summary', '--python', PYTHON!, '--break', 'app.step', file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, 'first passed\nsecond passed\n');
    assert.match(r.stderrText, new RegExp(`stopped on app\\.step 'first' at prog\\.py:${lineOf(file, 'FIRST')}: no terminal to ask, so it continues`));
    assert.match(r.stderrText, /stopped on app\.step 'second' .*: no terminal to ask, so it continues/);
  });

  test('--prompt says so and refuses', async () => {
    const { dir, file } = program(ASKS);
    const r = await runCli(['run', '--no-summary', '--python', PYTHON!, '--prompt', 'app.ask', file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, 'refused one\nrefused two\nrefused three\nrefused same\nrefused same\n');
    assert.match(r.stderrText, /promptEvents: no terminal to ask whether app\.ask \('one',\) may proceed, so it is refused/);
  });
});
