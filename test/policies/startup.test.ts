// --startup-control (startupControl; the StartupControl sample): only a script file may run. -c, -m,
// stdin ('-' or a pipe), the interactive mode, -i after a script and PYTHONSTARTUP are refused before
// any of their code runs, with a PermissionError naming the policy and a non-zero exit status. Every
// refused piece of code would create a marker file: "no code ran" means the marker does not exist.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  allTargets,
  describeResult,
  mainTargets,
  needs,
  pyStr,
  run,
  runOnPty,
  runWithChannel,
  LAUNCHER,
  tempDir,
  writeFile,
} from './common';

/** Python code that creates `marker`. */
function touch(marker: string): string {
  return `open(${pyStr(marker)}, "w").close()`;
}

function assertRefused(r: { status: number | null; stderrText: string }, event: string, detail: string): void {
  assert.notEqual(r.status, 0, `exit status must be non-zero\n${detail}`);
  assert.match(
    r.stderrText,
    new RegExp(`PermissionError: \\[spython\\] startupControl refused ${event.replace(/\./g, '\\.')}`),
    `the message names the policy and the target\n${detail}`,
  );
}

for (const t of allTargets()) {
  describe(`--startup-control on Python ${t.label}`, needs(t), () => {
    test('a script file runs normally', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const script = writeFile(dir, 'main.py', `${touch(marker)}\nprint("script ran")\n`);
      const r = await run(t, ['--startup-control', script]);
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stdoutText, 'script ran\n', describeResult(r));
      assert.ok(fs.existsSync(marker), 'the script ran');
      assert.doesNotMatch(r.stderrText, /startupControl/, describeResult(r));
    });

    test('-c is refused before its code runs', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const r = await run(t, ['--startup-control', '-c', touch(marker)]);
      assertRefused(r, 'cpython.run_command', describeResult(r));
      assert.ok(!fs.existsSync(marker), `-c code ran\n${describeResult(r)}`);
    });

    test('-m is refused before the module runs', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      writeFile(dir, 'startmod.py', `${touch(marker)}\n`);
      const r = await run(t, ['--startup-control', '-m', 'startmod'], { cwd: dir });
      assertRefused(r, 'cpython.run_module', describeResult(r));
      assert.match(r.stderrText, /cpython\.run_module \('startmod',\)/, describeResult(r));
      assert.ok(!fs.existsSync(marker), `the module ran\n${describeResult(r)}`);
    });

    test("stdin as '-' is refused before its code runs", async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const r = await run(t, ['--startup-control', '-'], { input: `${touch(marker)}\n` });
      assertRefused(r, 'cpython.run_stdin', describeResult(r));
      assert.ok(!fs.existsSync(marker), `stdin code ran\n${describeResult(r)}`);
    });

    test('a program piped into stdin (no arguments) is refused before its code runs', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const r = await run(t, ['--startup-control'], { input: `${touch(marker)}\n` });
      assertRefused(r, 'cpython.run_stdin', describeResult(r));
      assert.ok(!fs.existsSync(marker), `stdin code ran\n${describeResult(r)}`);
    });

    test('PYTHONSTARTUP is refused before its code runs (-i, piped stdin)', async () => {
      const dir = tempDir();
      const startupMarker = path.join(dir, 'startup-ran');
      const stdinMarker = path.join(dir, 'stdin-ran');
      const startup = writeFile(dir, 'startup.py', `${touch(startupMarker)}\n`);
      const r = await run(t, ['--startup-control', '-i'], {
        input: `${touch(stdinMarker)}\n`,
        env: { PYTHONSTARTUP: startup },
      });
      assertRefused(r, 'cpython.run_startup', describeResult(r));
      assert.ok(!fs.existsSync(startupMarker), `the PYTHONSTARTUP file ran\n${describeResult(r)}`);
      assert.ok(!fs.existsSync(stdinMarker), `stdin code ran\n${describeResult(r)}`);
    });

    test('-i after a script: the script runs, the interactive code that follows does not', async () => {
      const dir = tempDir();
      const scriptMarker = path.join(dir, 'script-ran');
      const stdinMarker = path.join(dir, 'stdin-ran');
      const script = writeFile(dir, 'main.py', `${touch(scriptMarker)}\n`);
      const r = await run(t, ['--startup-control', '-i', script], { input: `${touch(stdinMarker)}\n` });
      assert.ok(fs.existsSync(scriptMarker), `the script itself may run\n${describeResult(r)}`);
      assert.ok(!fs.existsSync(stdinMarker), `the code typed after the script (-i) ran\n${describeResult(r)}`);
      assert.notEqual(r.status, 0, `exit status must be non-zero\n${describeResult(r)}`);
      assert.match(r.stderrText, /PermissionError: \[spython\] startupControl refused/, describeResult(r));
    });

    test('-i after a refused -c does not fall through to the interactive prompt', async () => {
      const dir = tempDir();
      const commandMarker = path.join(dir, 'command-ran');
      const stdinMarker = path.join(dir, 'stdin-ran');
      const r = await run(t, ['--startup-control', '-i', '-c', touch(commandMarker)], {
        input: `${touch(stdinMarker)}\n`,
      });
      assertRefused(r, 'cpython.run_command', describeResult(r));
      assert.ok(!fs.existsSync(commandMarker), `-c code ran\n${describeResult(r)}`);
      assert.ok(!fs.existsSync(stdinMarker), `the code typed after -c (-i) ran\n${describeResult(r)}`);
    });

    test('the interactive mode on a terminal is refused, PYTHONSTARTUP included', async () => {
      const dir = tempDir();
      const startupMarker = path.join(dir, 'startup-ran');
      const typedMarker = path.join(dir, 'typed-ran');
      const startup = writeFile(dir, 'startup.py', `${touch(startupMarker)}\n`);
      // Typed at once: a line of code, then end of input (Ctrl-D), so a REPL that did start would
      // run the line and leave.
      const p = await runOnPty([LAUNCHER, ...t.args, '--startup-control'], {
        env: { PYTHONSTARTUP: startup },
        steps: [{ expect: '', send: `${touch(typedMarker)}\n\x04` }],
      });
      const detail = `status=${p.status}\n--- terminal ---\n${p.output}`;
      assert.ok(!p.timedOut, `the launcher did not exit\n${detail}`);
      assert.ok(!fs.existsSync(startupMarker), `the PYTHONSTARTUP file ran\n${detail}`);
      assert.ok(!fs.existsSync(typedMarker), `code typed at the prompt ran\n${detail}`);
      assert.notEqual(p.status, 0, detail);
      assert.match(p.output, /PermissionError: \[spython\] startupControl refused cpython\.run_startup/, detail);
      // The prompt is refused at whichever comes first: sys.__interactivehook__ or reading stdin.
      assert.match(
        p.output,
        /PermissionError: \[spython\] startupControl refused cpython\.run_(stdin|interactivehook) .*the program ends/,
        detail,
      );
    });
  });
}

for (const t of mainTargets()) {
  describe(`startupControl from the channel on Python ${t.label}`, needs(t), () => {
    test('welcome {"startupControl": true} refuses -c; the record stream marks the event denied', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const { result, records } = await runWithChannel(t, ['-c', touch(marker)], {
        config: { startupControl: true },
      });
      assertRefused(result, 'cpython.run_command', describeResult(result));
      assert.ok(!fs.existsSync(marker), `-c code ran\n${describeResult(result)}`);
      const rec = records.find((r) => r.event === 'cpython.run_command');
      assert.ok(rec, `no cpython.run_command record: ${records.map((r) => r.event).join(' ')}`);
      assert.equal(rec.denied, 'startupControl', JSON.stringify(rec));
      assert.equal(String(rec.args[0]).replace(/\n$/, ''), touch(marker), JSON.stringify(rec));
      // Nothing of the command ran: no 'open' of the marker.
      assert.ok(
        !records.some((r) => r.event === 'open' && JSON.stringify(r.args).includes(marker)),
        'the refused command opened its marker',
      );
    });
  });
}
