// Launching: a wrong attribute, a missing program, an interpreter older than 3.8 or a policy that
// refuses the program fail the launch request with a message saying what to fix; the program can run
// in the editor's terminal (runInTerminal); the adapter also serves DAP on a TCP port; terminate ends
// the program and what it started.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { ADAPTER, AdapterServer, needs, NOT_BUILT, processGone, Program, pythonFor, Session, TARGETS, TEST_TIMEOUT_MS } from './common';

after(() => Session.closeAll());

const PYTHON_37 = '/root/.pyenv/versions/3.7.16/bin/python3';
const newest = pythonFor(13)?.path ?? pythonFor(12)?.path;

describe('launch failures say what to fix', { ...needs(newest), concurrency: 2, timeout: TEST_TIMEOUT_MS }, () => {
  test('an unknown attribute is named, with the closest valid one', async () => {
    const program = new Program('pass\n');
    const message = await launchOnce(program.launchArgs(newest, { stopOnEntryy: true }));
    assert.match(message, /unknown attribute "stopOnEntryy" \(did you mean "stopOnEntry"\?\)/);
  });

  test('an attribute of the wrong type', async () => {
    const program = new Program('pass\n');
    const message = await launchOnce(program.launchArgs(newest, { stopOnEntry: 'yes', denyEvents: 'socket.*' }));
    assert.match(message, /"stopOnEntry" must be true or false/);
    assert.match(message, /"denyEvents" must be a list/);
  });

  test('a missing program', async () => {
    const program = new Program('pass\n');
    const message = await launchOnce(program.launchArgs(newest, { program: 'nowhere.py' }));
    assert.match(message, /"program" ".*nowhere\.py" does not exist/);
    const none = await launchOnce({ type: 'spython', request: 'launch', python: newest });
    assert.match(none, /"program" \(the Python file to run\) or "module" \(to run with -m\) is missing/);
  });

  test('an interpreter older than 3.8', { skip: fs.existsSync(PYTHON_37) ? false : 'Python 3.7 not installed' }, async () => {
    const program = new Program('pass\n');
    const message = await launchOnce(program.launchArgs(PYTHON_37));
    assert.match(message, /3\.7.*3\.8 or newer/);
  });
});

for (const { label, python } of TARGETS) {
  describe(`launching on Python ${label}`, { ...needs(python), concurrency: 2, timeout: TEST_TIMEOUT_MS }, () => {
    test('a policy refusal at start-up fails the launch (startupControl refuses -m)', async () => {
      const program = new Program('pass\n');
      const message = await launchOnce({ ...program.launchArgs(python, { startupControl: true }), program: undefined, module: 'json.tool' });
      assert.match(message, /startupControl refused to start the program: cpython\.run_module 'json\.tool'/);
    });

    test('console integratedTerminal runs the program through runInTerminal', async () => {
      const program = new Program('os.listdir(HERE)  # LIST\nsys.exit(4)\n');
      await Session.with(async (s) => {
        s.serveRunInTerminal();
        await s.launch(program.launchArgs(python, { console: 'integratedTerminal' }), {}, { supportsRunInTerminalRequest: true });
        await s.ended();
        assert.ok(s.records().some((r) => r.data.event === 'os.listdir' && r.output.line === program.lineOf('LIST')));
        assert.equal(s.exitCode, 4);
      });
    });

    test('terminate ends the program and the processes it started', async () => {
      const program = new Program(
        [
          'import subprocess, time',
          'child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])',
          'print("child", child.pid, flush=True)',
          'time.sleep(60)',
        ].join('\n'),
      );
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python));
        await s.waitFor(() => /child \d+\n/.test(s.text('stdout')), 'the child pid');
        const child = Number(/child (\d+)/.exec(s.text('stdout'))![1]);
        await s.dc.terminateRequest({});
        await s.ended();
        assert.ok(await processGone(child), `child ${child} still runs`);
      });
    });
  });
}

describe('the adapter as a server', NOT_BUILT, () => {
  test('--server=PORT serves DAP on that port', { ...needs(newest), timeout: 60_000 }, async () => {
    const server = await AdapterServer.start();
    try {
      const dc = new DebugClient('node', ADAPTER, 'spython');
      await dc.start(server.port);
      try {
        const program = new Program('print("served")\n');
        const ended = dc.waitForEvent('terminated');
        const output: string[] = [];
        // Only the program's stdout: unbuffered, "served" and its newline may arrive with event lines between.
        dc.on('output', (e) => e.body.category === 'stdout' && output.push(e.body.output));
        await Promise.all([dc.configurationSequence(), dc.launch(program.launchArgs(newest))]);
        await ended;
        assert.ok(output.join('').includes('served\n'));
      } finally {
        await dc.stop();
      }
    } finally {
      server.stop();
    }
  });
});

/** Launches once and returns the error message (fails when the launch succeeds). */
async function launchOnce(args: Record<string, unknown>): Promise<string> {
  return Session.with(async (s) => {
    try {
      await s.launch(args);
    } catch (err) {
      return (err as Error).message;
    }
    assert.fail('the launch succeeded');
  });
}
