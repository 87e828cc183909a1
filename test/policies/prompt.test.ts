// --prompt GLOB (promptEvents; the NetworkPrompt sample done better). Standalone, the question goes to
// the terminal (/dev/tty) and ends with 'Continue [Y/n] '; 'n' raises a PermissionError (policy
// promptEvents) instead of killing the process, 'y' or plain Enter lets the operation proceed, and
// with neither a terminal nor an editor the operation is refused, said plainly on stderr. Through
// the channel the launcher sends {"type":"prompt"} and waits for {"type":"promptReply"}.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ControlMessage } from '../../adapter/channel';
import { runProcess } from '../helpers/run';
import {
  allTargets,
  baseEnv,
  describeResult,
  LAUNCHER,
  mainTargets,
  needs,
  runOnPty,
  runWithChannel,
  Target,
  tempDir,
  writeFile,
} from './common';

const TARGET_9 = "('127.0.0.1', 9)";
const QUESTION_9 = `spython: allow socket.connect ${TARGET_9}? Continue [Y/n] `;

/** Connects to 127.0.0.1:port for each port; prints 'connect N: <outcome>' and finally 'after'. */
function connectScript(dir: string, ports: number[]): string {
  return writeFile(
    dir,
    'main.py',
    [
      'import socket',
      'for i, port in enumerate([' + ports.join(', ') + ']):',
      '    s = socket.socket()',
      '    s.settimeout(10)',
      '    try:',
      '        s.connect(("127.0.0.1", port))',
      '        print("connect %d: connected" % i)',
      '    except PermissionError as e:',
      '        print("connect %d: PermissionError: %s" % (i, e))',
      '    except OSError as e:',
      '        print("connect %d: proceeded (%s)" % (i, type(e).__name__))',
      '    finally:',
      '        s.close()',
      'print("after")',
      '',
    ].join('\n'),
  );
}

/** Runs the launcher on a pseudo-terminal with stdin from /dev/null and stdout and stderr sent to
 * files, so that the question and the answer can only go through /dev/tty, and the
 * terminal shows only what the launcher wrote there (and the echo of what was typed). */
async function onTerminal(t: Target, script: string, answer: string | undefined) {
  const dir = path.dirname(script);
  const outFile = path.join(dir, 'stdout.txt');
  const errFile = path.join(dir, 'stderr.txt');
  const p = await runOnPty(
    ['/bin/sh', '-c', 'exec "$@" </dev/null >"$OUT" 2>"$ERR"', 'sh', LAUNCHER, ...t.args, '--prompt', 'socket.connect', script],
    {
      env: { OUT: outFile, ERR: errFile },
      steps: answer === undefined ? [] : [{ expect: 'Continue [Y/n] ', send: answer }],
    },
  );
  const stdout = fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8') : '';
  const stderr = fs.existsSync(errFile) ? fs.readFileSync(errFile, 'utf8') : '';
  const detail = `status=${p.status}\n--- terminal ---\n${p.output}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
  return { ...p, stdout, stderr, detail };
}

for (const t of allTargets()) {
  describe(`--prompt on a terminal, Python ${t.label}`, needs(t), () => {
    test("the question goes to the terminal; 'n' raises PermissionError (promptEvents) and the program goes on", async () => {
      const dir = tempDir();
      const r = await onTerminal(t, connectScript(dir, [9]), 'n\n');
      assert.ok(!r.timedOut && r.unmatched.length === 0, r.detail);
      assert.equal(r.status, 0, r.detail);
      assert.ok(r.output.startsWith(QUESTION_9), `the terminal shows the question\n${r.detail}`);
      assert.ok(!r.stderr.includes('Continue [Y/n]'), `the question is not on stderr\n${r.detail}`);
      assert.ok(!r.stdout.includes('Continue [Y/n]'), `the question is not on stdout\n${r.detail}`);
      assert.equal(
        r.stdout,
        `connect 0: PermissionError: [spython] promptEvents refused socket.connect ${TARGET_9}\nafter\n`,
        r.detail,
      );
    });

    test("'y' lets the operation proceed", async () => {
      const dir = tempDir();
      const r = await onTerminal(t, connectScript(dir, [9]), 'y\n');
      assert.ok(!r.timedOut && r.unmatched.length === 0, r.detail);
      assert.equal(r.status, 0, r.detail);
      assert.equal(r.stdout, 'connect 0: proceeded (ConnectionRefusedError)\nafter\n', r.detail);
    });

    test('plain Enter lets the operation proceed', async () => {
      const dir = tempDir();
      const r = await onTerminal(t, connectScript(dir, [9]), '\n');
      assert.ok(!r.timedOut && r.unmatched.length === 0, r.detail);
      assert.equal(r.status, 0, r.detail);
      assert.equal(r.stdout, 'connect 0: proceeded (ConnectionRefusedError)\nafter\n', r.detail);
    });

    test('end of input (Ctrl-D) at the question is a no', async () => {
      const dir = tempDir();
      const r = await onTerminal(t, connectScript(dir, [9]), '\x04');
      assert.ok(!r.timedOut && r.unmatched.length === 0, r.detail);
      assert.equal(r.status, 0, r.detail);
      assert.equal(
        r.stdout,
        `connect 0: PermissionError: [spython] promptEvents refused socket.connect ${TARGET_9}\nafter\n`,
        r.detail,
      );
    });

    test('no terminal and no editor: refused, said plainly on stderr', async () => {
      const dir = tempDir();
      const script = connectScript(dir, [9]);
      // setsid: no controlling terminal; stdin from /dev/null.
      const r = await runProcess(
        '/bin/sh',
        ['-c', 'exec setsid "$@" </dev/null', 'sh', LAUNCHER, ...t.args, '--prompt', 'socket.connect', script],
        { env: baseEnv() },
      );
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.equal(
        r.stdoutText,
        `connect 0: PermissionError: [spython] promptEvents refused socket.connect ${TARGET_9}\nafter\n`,
        d,
      );
      assert.ok(
        r.stderrText.includes(
          `spython: promptEvents: no editor and no terminal to ask whether socket.connect ${TARGET_9} may proceed, so it is refused\n`,
        ),
        d,
      );
    });
  });
}

for (const t of mainTargets()) {
  describe(`promptEvents through the channel, Python ${t.label}`, needs(t), () => {
    async function withAnswers(ports: number[], answers: string[]) {
      const dir = tempDir();
      const script = connectScript(dir, ports);
      const prompts: ControlMessage[] = [];
      const run = await runWithChannel(t, [script], {
        config: { promptEvents: ['socket.connect'] },
        onControl(msg, connection) {
          if (msg.type !== 'prompt') return;
          const answer = answers[prompts.length] ?? 'deny';
          prompts.push(msg);
          connection.send({ type: 'promptReply', id: msg.id, answer });
        },
      });
      return { ...run, prompts, d: describeResult(run.result) + `\n--- prompts ---\n${JSON.stringify(prompts)}` };
    }

    test('the launcher asks with {"type":"prompt"}; "deny" raises PermissionError and marks the record', async () => {
      const { result, prompts, records, d } = await withAnswers([9], ['deny']);
      assert.equal(result.status, 0, d);
      assert.equal(
        result.stdoutText,
        `connect 0: PermissionError: [spython] promptEvents refused socket.connect ${TARGET_9}\nafter\n`,
        d,
      );
      assert.equal(prompts.length, 1, d);
      const p = prompts[0];
      assert.equal(p.event, 'socket.connect', d);
      assert.equal(p.target, TARGET_9, d);
      assert.equal(typeof p.id, 'number', d);
      assert.equal(typeof p.pid, 'number', d);
      assert.equal(typeof p.tid, 'number', d);
      const rec = records.filter((r) => r.event === 'socket.connect');
      assert.equal(rec.length, 1, d);
      assert.equal(rec[0].denied, 'promptEvents', JSON.stringify(rec[0]));
      assert.equal(rec[0].pid, p.pid, d);
      assert.doesNotMatch(result.stderrText, /Continue \[Y\/n\]/, `not asked on the terminal as well\n${d}`);
    });

    test('"allow" lets the operation proceed', async () => {
      const { result, prompts, records, d } = await withAnswers([9], ['allow']);
      assert.equal(result.status, 0, d);
      assert.equal(result.stdoutText, 'connect 0: proceeded (ConnectionRefusedError)\nafter\n', d);
      assert.equal(prompts.length, 1, d);
      const rec = records.filter((r) => r.event === 'socket.connect');
      assert.equal(rec.length, 1, d);
      assert.ok(!('denied' in rec[0]), JSON.stringify(rec[0]));
    });

    test("while a thread waits for the answer, the program's other threads run (the GIL is released)", async () => {
      const dir = tempDir();
      const counter = path.join(dir, 'counter');
      const script = writeFile(
        dir,
        'main.py',
        [
          'import socket, threading, time',
          'stop = False',
          'def tick():',
          '    n = 0',
          '    while not stop:',
          '        n += 1',
          `        with open(${JSON.stringify(counter)}, "w") as f:`,
          '            f.write(str(n))',
          '        time.sleep(0.005)',
          'threading.Thread(target=tick, daemon=True).start()',
          's = socket.socket()',
          'try:',
          '    s.connect(("127.0.0.1", 9))',
          'except OSError as e:',
          '    print(type(e).__name__)',
          'stop = True',
          '',
        ].join('\n'),
      );
      const read = () => Number(fs.existsSync(counter) ? fs.readFileSync(counter, 'utf8') || 0 : 0) || 0;
      let progressed: boolean | undefined;
      const { result } = await runWithChannel(t, [script], {
        config: { promptEvents: ['socket.connect'] },
        onControl(msg, connection) {
          if (msg.type !== 'prompt') return;
          // Answer once the ticking thread has visibly moved on (or after a generous 20 s).
          const start = read();
          const deadline = Date.now() + 20_000;
          const poll = () => {
            if (read() >= start + 5 || Date.now() > deadline) {
              progressed = read() >= start + 5;
              connection.send({ type: 'promptReply', id: msg.id, answer: 'allow' });
            } else {
              setTimeout(poll, 20);
            }
          };
          poll();
        },
      });
      assert.equal(result.status, 0, describeResult(result));
      assert.equal(result.stdoutText, 'ConnectionRefusedError\n', describeResult(result));
      assert.equal(progressed, true, 'the other thread did not run while the prompt was pending');
    });

    test('"allowAlways": the same event and target is not asked again; another target is', async () => {
      const { result, prompts, records, d } = await withAnswers([9, 9, 10], ['allowAlways', 'deny']);
      assert.equal(result.status, 0, d);
      assert.equal(
        result.stdoutText,
        [
          'connect 0: proceeded (ConnectionRefusedError)',
          'connect 1: proceeded (ConnectionRefusedError)',
          "connect 2: PermissionError: [spython] promptEvents refused socket.connect ('127.0.0.1', 10)",
          'after',
          '',
        ].join('\n'),
        d,
      );
      assert.deepEqual(
        prompts.map((p) => p.target),
        [TARGET_9, "('127.0.0.1', 10)"],
        d,
      );
      assert.equal(new Set(prompts.map((p) => p.id)).size, 2, `prompt ids are distinct\n${d}`);
      const denied = records.filter((r) => r.event === 'socket.connect').map((r) => r.denied ?? null);
      assert.deepEqual(denied, [null, null, 'promptEvents'], d);
    });
  });
}
