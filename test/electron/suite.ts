// The tests @vscode/test-electron runs inside VS Code's extension host (test/electron/runTest.ts): the
// extension activates, contributes its commands, and a launch with an event breakpoint stops on the
// connect line, where Deny makes the program print PermissionError. Not a *.test.ts file: plain Node
// cannot load `vscode`.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

const EXTENSION_ID = 'spython-debug.spython-debug';

type Case = [string, () => Promise<void>];

function waitFor<T>(what: string, register: (done: (value: T) => void) => vscode.Disposable, timeoutMs = 60_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.dispose();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const subscription = register((value) => {
      clearTimeout(timer);
      subscription.dispose();
      resolve(value);
    });
  });
}

/** Output and stops of spython sessions, seen through a tracker. */
const output: string[] = [];
const stops: Array<{ session: vscode.DebugSession; threadId: number; description?: string }> = [];
const stopEmitter = new vscode.EventEmitter<void>();
vscode.debug.registerDebugAdapterTrackerFactory('spython', {
  createDebugAdapterTracker(session) {
    return {
      onDidSendMessage(message) {
        if (message.type === 'event' && message.event === 'output') output.push(message.body.output);
        if (message.type === 'event' && message.event === 'stopped') {
          stops.push({ session, threadId: message.body.threadId, description: message.body.description });
          stopEmitter.fire();
        }
      },
    };
  },
});

const cases: Case[] = [
  [
    'the extension activates and contributes its commands',
    async () => {
      const extension = vscode.extensions.getExtension(EXTENSION_ID);
      assert.ok(extension, `${EXTENSION_ID} is not installed`);
      await extension.activate();
      const commands = await vscode.commands.getCommands(true);
      for (const c of ['spython.addEventBreakpoint', 'spython.denyOperation', 'spython.stampTrustedHashes', 'spython.verifyImports']) {
        assert.ok(commands.includes(c), c);
      }
    },
  ],
  [
    'a socket.connect breakpoint stops on the connect line; Deny raises PermissionError in the program',
    async () => {
      const workspace = process.env.SPYTHON_ELECTRON_WORKSPACE!;
      const program = path.join(workspace, 'net_demo.py');
      await vscode.commands.executeCommand('spython.addEventBreakpoint', 'socket.connect');
      assert.ok(vscode.debug.breakpoints.some((b) => b instanceof vscode.FunctionBreakpoint && b.functionName === 'socket.connect'));
      const stopped = waitFor<void>('the stop', (done) => stopEmitter.event(() => done()));
      const ended = waitFor<void>('the end', (done) => vscode.debug.onDidTerminateDebugSession((s) => s.type === 'spython' && done()));
      const started = await vscode.debug.startDebugging(vscode.workspace.workspaceFolders?.[0], {
        type: 'spython',
        request: 'launch',
        name: 'electron test',
        program,
      });
      assert.ok(started, 'the session did not start');
      await stopped;
      const stop = stops[stops.length - 1];
      assert.match(stop.description ?? '', /Paused on socket\.connect \('127\.0\.0\.1', \d+\)/);
      const trace = await stop.session.customRequest('stackTrace', { threadId: stop.threadId });
      const connectLine = fs.readFileSync(program, 'utf8').split('\n').findIndex((l) => l.includes('client.connect((')) + 1;
      assert.equal(trace.stackFrames[0].line, connectLine);
      await vscode.commands.executeCommand('spython.denyOperation', stop.threadId);
      await ended;
      assert.ok(output.some((o) => /PermissionError: \[spython\] debugger refused socket\.connect/.test(o)), output.join(''));
      vscode.debug.removeBreakpoints(vscode.debug.breakpoints);
    },
  ],
];

export async function run(): Promise<void> {
  const failures: string[] = [];
  for (const [name, body] of cases) {
    try {
      await body();
      console.log(`ok - ${name}`);
    } catch (err) {
      failures.push(name);
      console.log(`not ok - ${name}\n  ${err instanceof Error ? err.stack : err}`);
    }
  }
  console.log(`${cases.length - failures.length} passed, ${failures.length} failed`);
  if (failures.length) throw new Error(`${failures.length} test(s) failed`);
}
