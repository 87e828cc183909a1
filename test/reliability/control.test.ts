// The launcher's control messages while a thread is stopped, from a reader that is not the adapter:
// `continue` is recognised by its parsed type (any key order, any spacing), a `request` that happens to
// carry an "action" does not resume the thread, an unknown action gets a protocol error and the thread
// stays stopped; a breakpointError's text is bounded and cut at a character boundary.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelConnection, ControlMessage } from '../../adapter/channel';
import { launcherBuilt } from '../helpers/interpreters';
import { describeResult, pythonFor, runWithChannel, tempDir, writeFile } from '../launcher/common';

const PYTHON = pythonFor(12) ?? pythonFor(13);
const SKIP = launcherBuilt() && PYTHON ? {} : { skip: 'launcher or interpreter missing' };

/** Runs `source` with one breakpoint on `spy.stop`; `onStop` answers each stop by writing raw lines. */
async function runStopping(source: string, onStop: (connection: ChannelConnection, stop: ControlMessage, index: number) => void, condition?: string) {
  const dir = tempDir('spython-control-');
  const script = writeFile(dir, 'prog.py', source);
  let stops = 0;
  return runWithChannel(['--python', PYTHON!.path, '--', script], {
    cwd: dir,
    config: { breakpoints: [{ id: 1, event: 'spy.stop', ...(condition ? { condition } : {}) }] },
    onServer: (server) =>
      server.on('connection', (connection: ChannelConnection) =>
        connection.on('control', (msg) => {
          if (msg.type === 'stopped') onStop(connection, msg, stops++);
        }),
      ),
  });
}

describe('control messages at a stop', SKIP, () => {
  test('continue in another key order and spacing resumes: without an action it allows, with deny it refuses', async () => {
    const run = await runStopping(
      [
        'import sys',
        'for i in range(2):',
        '    try:',
        '        sys.audit("spy.stop")',
        '        print("allowed")',
        '    except PermissionError as e:',
        '        print("denied:", e)',
        '',
      ].join('\n'),
      (connection, stop, index) =>
        connection.socket.write(
          index === 0
            ? `{"threadId":${stop.threadId},"type":"continue"}\n`
            : `{ "threadId" : ${stop.threadId}, "action" : "deny", "type" : "continue" }\n`,
        ),
    );
    assert.equal(run.result.status, 0, describeResult(run.result));
    assert.match(run.result.stdoutText, /^allowed\ndenied: \[spython\] debugger refused spy\.stop/);
  });

  test('a request carrying "action" does not resume; an unknown action is an error and the thread stays', async () => {
    const run = await runStopping('import sys\nsys.audit("spy.stop")\nprint("resumed")\n', (connection, stop) => {
      const tid = stop.threadId;
      connection.socket.write(
        `{"type":"request","id":7,"command":"threads","action":"allow","threadId":${tid}}\n` +
          `{"type":"continue","threadId":${tid},"action":"Deny"}\n`,
      );
      // Resumed only once both were answered.
      const answered = new Set<string>();
      connection.on('control', (msg) => {
        if (msg.type === 'response' && msg.id === 7) answered.add('request');
        if (msg.type === 'error') answered.add('error');
        if (answered.size === 2) connection.send({ type: 'continue', threadId: tid, action: 'allow' });
      });
    });
    assert.equal(run.result.status, 0, describeResult(run.result));
    assert.equal(run.result.stdoutText, 'resumed\n');
    const controls = run.connections[0].controls;
    const response = controls.find((m) => m.type === 'response' && m.id === 7);
    assert.equal(response?.success, true, JSON.stringify(response));
    const error = controls.find((m) => m.type === 'error');
    assert.equal(error?.message, 'continue needs "action": "allow", "deny" or "step"');
    assert.match(String(error?.line), /"action":"Deny"/);
  });

  test("a condition's long error is bounded and cut at a character boundary", async () => {
    const run = await runStopping(
      'import sys\nsys.audit("spy.stop")\nprint("ran")\n',
      () => assert.fail('the condition cannot hold'),
      '(_ for _ in ()).throw(ValueError("\u00e9" * 5000))',
    );
    assert.equal(run.result.status, 0, describeResult(run.result));
    const error = run.connections[0].controls.find((m) => m.type === 'breakpointError');
    assert.ok(error, JSON.stringify(run.connections[0].controls));
    const message = String(error.message);
    assert.ok(Buffer.byteLength(message) <= 800 + 3, `${Buffer.byteLength(message)} bytes`);
    assert.match(message, /^ValueError: (é)+\.\.\.$/u);
  });
});
