// Breaking on events: function breakpoints named by event globs (conditions over the raising frame,
// hit counts, logpoints), breakOnEvents, stops in any thread with threads, stack, scopes, variables
// and evaluate; continue, deny, step and pause; stopOnEntry; the category filters of the Breakpoints
// view; prompts answered through spythonPrompt / spythonPromptReply.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { needs, Program, scopeVariables, Session, TARGETS, TEST_TIMEOUT_MS } from './common';

after(() => Session.closeAll());

/** Only events the program's own module raises (not the import system listing HERE, say). */
const IN_MAIN = '__name__ == "__main__"';

for (const { label, python } of TARGETS) {
  describe(`debugging on Python ${label}`, { ...needs(python), concurrency: 2, timeout: TEST_TIMEOUT_MS }, () => {
    test('a stop in a worker thread: threads, stack, scopes, variables, evaluate; continue', async () => {
      const program = new Program(
        [
          'import threading',
          'data = {"nested": {"numbers": [1, 2, 3]}, "name": "demo"}',
          'def worker(target):',
          '    secret = "worker-local"',
          '    return os.listdir(target)  # STOP',
          'def main():',
          '    caller_local = 42',
          '    t = threading.Thread(target=worker, args=(HERE,), name="lister")',
          '    t.start()',
          '    t.join()',
          '    print("joined")',
          'main()',
        ].join('\n'),
      );
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python), {
          functionBreakpoints: [{ name: 'os.list*', condition: `${IN_MAIN} and args[0] == HERE` }],
        });
        const stop = await s.nextStop();
        assert.equal(stop.reason, 'function breakpoint');
        assert.equal(stop.description, `Paused on os.listdir '${program.dir}'`);
        assert.ok(stop.hitBreakpointIds?.length === 1);

        const threads = (await s.dc.threadsRequest()).body.threads;
        assert.equal(threads.find((t) => t.id === stop.threadId)?.name, 'lister');
        assert.ok(threads.some((t) => t.name === 'MainThread' && t.id !== stop.threadId), JSON.stringify(threads));

        const frames = (await s.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
        assert.equal(frames[0].name, 'worker');
        assert.equal(frames[0].source?.path, program.file);
        assert.equal(frames[0].line, program.lineOf('STOP'));

        const scopes = (await s.dc.scopesRequest({ frameId: frames[0].id })).body.scopes.map((sc) => sc.name);
        assert.deepEqual(scopes, ['Audit Event', 'Locals', 'Globals']);
        const audit = await scopeVariables(s.dc, frames[0].id, 'Audit Event');
        assert.equal(audit.find((v) => v.name === 'event')?.value, "'os.listdir'");
        const args = audit.find((v) => v.name === 'args')!;
        assert.ok(args.variablesReference > 0);
        const argItems = (await s.dc.variablesRequest({ variablesReference: args.variablesReference })).body.variables;
        assert.ok(argItems.some((v) => v.value === `'${program.dir}'`), JSON.stringify(argItems));

        const locals = await scopeVariables(s.dc, frames[0].id, 'Locals');
        assert.equal(locals.find((v) => v.name === 'secret')?.value, "'worker-local'");
        const globals = await scopeVariables(s.dc, frames[0].id, 'Globals');
        const data = globals.find((v) => v.name === 'data')!;
        const nested = (await s.dc.variablesRequest({ variablesReference: data.variablesReference })).body.variables;
        const inner = nested.find((v) => v.name.includes('nested'))!;
        assert.ok(inner.variablesReference > 0, JSON.stringify(nested));
        const innerItems = (await s.dc.variablesRequest({ variablesReference: inner.variablesReference })).body.variables;
        assert.ok(innerItems.some((v) => v.value === '[1, 2, 3]'), JSON.stringify(innerItems));

        const evaluate = (expression: string, frameId: number, context: string) =>
          s.dc.evaluateRequest({ expression, frameId, context }).then((r) => r.body.result);
        assert.equal(await evaluate('secret + "!"', frames[0].id, 'repl'), "'worker-local!'");
        assert.equal(await evaluate('event', frames[0].id, 'watch'), "'os.listdir'");
        assert.equal(await evaluate('data["name"]', frames[0].id, 'hover'), "'demo'");
        // Another thread's frames: the main thread waits in join(), inside main().
        const mainThread = threads.find((t) => t.name === 'MainThread')!;
        const mainFrames = (await s.dc.stackTraceRequest({ threadId: mainThread.id })).body.stackFrames;
        const mainFrame = mainFrames.find((f) => f.name === 'main')!;
        assert.equal(await evaluate('caller_local + 1', mainFrame.id, 'repl'), '43');

        await s.dc.continueRequest({ threadId: stop.threadId! });
        await s.ended();
        assert.match(s.text('stdout'), /joined\n/);
        assert.equal(s.exitCode, 0);
        assert.equal(s.stops.length, 1);
      });
    });

    test('line breakpoints are answered unverified, saying what to use instead', async () => {
      const program = new Program('os.listdir(HERE)  # LIST\nprint("done")\n');
      await Session.with(async (s) => {
        const configured = s.dc.waitForEvent('initialized').then(() =>
          s.dc.setBreakpointsRequest({ source: { path: program.file }, breakpoints: [{ line: program.lineOf('LIST') }] }),
        );
        const [answer] = await Promise.all([configured, s.launch(program.launchArgs(python))]);
        assert.equal(answer.body.breakpoints.length, 1);
        assert.equal(answer.body.breakpoints[0].verified, false);
        assert.match(answer.body.breakpoints[0].message!, /stops on audit events, not on lines.*function breakpoint/);
        await s.ended();
        assert.equal(s.stops.length, 0);
        assert.match(s.text('stdout'), /^done$/m);
      });
    });

    test('deny makes the audited operation raise PermissionError', async () => {
      const program = new Program(
        [
          'TARGET = os.path.join(HERE, "secret.txt")',
          'try:',
          '    open(TARGET, "w").write("x")  # OPEN',
          '    print("written")',
          'except PermissionError as e:',
          '    print("refused:", e)',
        ].join('\n'),
      );
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python), {
          functionBreakpoints: [{ name: 'open', condition: `${IN_MAIN} and args[0] == TARGET` }],
        });
        const stop = await s.nextStop();
        assert.match(stop.description!, /^Paused on open '.*secret\.txt'$/);
        await s.dc.customRequest('deny', { threadId: stop.threadId });
        await s.ended();
        // The client learns that the thread runs again, as after its own continue request.
        const continued = s.events.filter((e) => e.event === 'continued');
        assert.deepEqual(continued.map((e) => e.body), [{ threadId: stop.threadId, allThreadsContinued: true }]);
        assert.match(s.text('stdout'), /^refused: /m);
        assert.ok(!fs.existsSync(path.join(program.dir, 'secret.txt')));
      });
    });

    test('a condition on a loop variable; evaluate sees it', async () => {
      const program = new Program('for i in range(10):\n    os.listdir(HERE)  # LOOP\nprint("done")\n');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python), {
          // The condition names a variable only the program's frame has: events raised elsewhere
          // (the import system lists directories too) do not match.
          functionBreakpoints: [{ name: 'os.listdir', condition: 'i == 7' }],
        });
        const stop = await s.nextStop();
        const frames = (await s.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
        assert.equal(frames[0].line, program.lineOf('LOOP'));
        assert.equal((await s.dc.evaluateRequest({ expression: 'i', frameId: frames[0].id, context: 'repl' })).body.result, '7');
        await s.dc.continueRequest({ threadId: stop.threadId! });
        await s.ended();
        assert.equal(s.stops.length, 1);
      });
    });

    test('a hit condition counts matching hits', async () => {
      const program = new Program('for i in range(10):\n    os.listdir(HERE)  # LOOP\n');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python), {
          functionBreakpoints: [{ name: 'os.listdir', condition: IN_MAIN, hitCondition: '==3' }],
        });
        const stop = await s.nextStop();
        const frames = (await s.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
        assert.equal((await s.dc.evaluateRequest({ expression: 'i', frameId: frames[0].id, context: 'repl' })).body.result, '2');
        await s.dc.continueRequest({ threadId: stop.threadId! });
        await s.ended();
        assert.equal(s.stops.length, 1);
      });
    });

    test('a logpoint prints its interpolated message and never stops', async () => {
      const program = new Program('for i in range(4):\n    os.listdir(HERE)  # LOOP\n');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python), {
          functionBreakpoints: [{ name: 'os.listdir', condition: IN_MAIN, logMessage: 'listing {args[0]} at i={i}' }],
        });
        await s.ended();
        const logged = s.outputs.filter((o) => o.output.startsWith('listing '));
        assert.deepEqual(
          logged.map((o) => o.output),
          [0, 1, 2, 3].map((i) => `listing ${program.dir} at i=${i}\n`),
        );
        assert.equal(logged[0].source?.path, program.file);
        assert.equal(logged[0].line, program.lineOf('LOOP'));
        assert.equal(s.stops.length, 0);
      });
    });

    test('breakOnEvents in launch.json stops like a function breakpoint', async () => {
      const program = new Program('os.listdir(HERE)  # LIST\n');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python, { breakOnEvents: [{ event: 'os.listdir', condition: IN_MAIN }] }));
        const stop = await s.nextStop();
        assert.equal(stop.reason, 'function breakpoint');
        assert.equal(stop.description, `Paused on os.listdir '${program.dir}'`);
        await s.dc.continueRequest({ threadId: stop.threadId! });
        await s.ended();
      });
    });

    test('next runs to the next audit event on that thread (reason step)', async () => {
      const program = new Program(
        'os.listdir(HERE)  # FIRST\nx = sum(range(10))\nopen(os.path.join(HERE, "next.txt"), "w").close()  # SECOND\n',
      );
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python), { functionBreakpoints: [{ name: 'os.listdir', condition: IN_MAIN }] });
        const first = await s.nextStop();
        await s.dc.nextRequest({ threadId: first.threadId! });
        const second = await s.nextStop();
        assert.equal(second.reason, 'step');
        assert.match(second.description!, /^Paused on open '.*next\.txt'$/);
        const frames = (await s.dc.stackTraceRequest({ threadId: second.threadId! })).body.stackFrames;
        assert.equal(frames[0].line, program.lineOf('SECOND'));
        await s.dc.continueRequest({ threadId: second.threadId! });
        await s.ended();
      });
    });

    test('breakpoints set while the program runs take effect', async () => {
      const program = new Program(
        'import time\nfor i in range(400):\n    os.listdir(HERE)  # LOOP\n    print("tick", flush=True)\n    time.sleep(0.05)\n',
      );
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python));
        await s.waitFor(() => s.text('stdout').includes('tick'), 'the loop to start');
        await assert.rejects(s.dc.evaluateRequest({ expression: 'i', context: 'repl' }), /The program is running/);
        await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'os.listdir', condition: IN_MAIN }] });
        const stop = await s.nextStop();
        assert.equal(stop.description, `Paused on os.listdir '${program.dir}'`);
        const frames = (await s.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
        assert.equal(frames[0].line, program.lineOf('LOOP'));
      });
    });

    test('pause stops a busy loop that raises no events', async () => {
      // The loop says it runs from inside: a pause that lands just after a print before the loop could
      // still be on the print's line.
      const program = new Program(
        'n = 0\nwhile True:  # LOOP\n    n += 1  # BODY\n    if n == 1000:  # CHECK\n        print("looping", flush=True)  # SAY\n',
      );
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python));
        await s.waitFor(() => s.text('stdout').includes('looping'), 'the loop to start');
        const threads = (await s.dc.threadsRequest()).body.threads;
        await s.dc.pauseRequest({ threadId: threads[0].id });
        const stop = await s.nextStop();
        assert.equal(stop.reason, 'pause');
        const frames = (await s.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
        assert.equal(frames[0].source?.path, program.file);
        const loopLines = ['LOOP', 'BODY', 'CHECK', 'SAY'].map((marker) => program.lineOf(marker));
        assert.ok(loopLines.includes(frames[0].line), `line ${frames[0].line}`);
        assert.equal((await s.dc.evaluateRequest({ expression: 'n > 0', frameId: frames[0].id, context: 'repl' })).body.result, 'True');
      });
    });

    test('stopOnEntry stops before the first line', async () => {
      const program = new Program('print("ran")\n');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python, { stopOnEntry: true }));
        const stop = await s.nextStop();
        assert.equal(stop.reason, 'entry');
        assert.ok(!s.text('stdout').includes('ran'));
        const frames = (await s.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
        assert.equal(frames[0].source?.path, program.file);
        await s.dc.continueRequest({ threadId: stop.threadId! });
        await s.ended();
        assert.match(s.text('stdout'), /ran\n/);
      });
    });

    test('category filters: file writes (with a condition), network, subprocesses, dynamic code, hooks', async () => {
      const program = new Program(
        [
          'import socket',
          'open(__file__).close()',
          'open(os.path.join(HERE, "a.txt"), "w").close()',
          'open(os.path.join(HERE, "b.txt"), "w").close()  # WRITE',
          'server = socket.socket()',
          'server.bind(("127.0.0.1", 0))',
          'server.listen(1)',
          'client = socket.create_connection(server.getsockname())  # CONNECT',
          'os.system("true")  # SYSTEM',
          'exec("x = 1")  # EXEC',
          'sys.addaudithook(lambda event, args: None)  # HOOK',
          'print("end")',
        ].join('\n'),
      );
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python), {
          filterOptions: [
            { filterId: 'fileWrite', condition: 'str(args[0]).endswith("b.txt")' },
            { filterId: 'network', condition: 'event == "socket.connect"' },
            { filterId: 'subprocess' },
            // Not the code of a .pth file that site runs at start-up (this machine has one).
            { filterId: 'dynamicCode', condition: IN_MAIN },
            { filterId: 'hooks' },
          ],
        });
        const expected: Array<[string, RegExp, string]> = [
          ['WRITE', /^Paused on open '.*b\.txt'$/, 'File writes'],
          ['CONNECT', /^Paused on socket\.connect \('127\.0\.0\.1', \d+\)$/, 'Network'],
          ['SYSTEM', /^Paused on os\.system b'true'$/, 'Subprocesses'],
          ['EXEC', /^Paused on compile b'x = 1'$/, 'Dynamic code'],
          ['HOOK', /^Paused on sys\.addaudithook$/, 'Hooks and tracers'],
        ];
        for (const [marker, description, text] of expected) {
          const stop = await s.nextStop();
          assert.equal(stop.reason, 'exception', marker);
          assert.match(stop.description!, description);
          assert.equal(stop.text, text);
          const frames = (await s.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
          const own = frames.find((f) => f.source?.path === program.file);
          assert.equal(own?.line, program.lineOf(marker), marker);
          await s.dc.continueRequest({ threadId: stop.threadId! });
        }
        await s.ended();
        assert.match(s.text('stdout'), /end\n/);
        assert.equal(s.stops.length, expected.length);
      });
    });

    test('the denied filter stops after a policy refusal', async () => {
      const program = new Program(
        'try:\n    os.mkdir(os.path.join(HERE, "made"))  # MKDIR\nexcept PermissionError as e:\n    print("refused")\n',
      );
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python, { denyEvents: ['os.mkdir'] }), { filterOptions: [{ filterId: 'denied' }] });
        const stop = await s.nextStop();
        assert.equal(stop.reason, 'exception');
        assert.match(stop.description!, /^Paused on os\.mkdir '.*made' \(denied by denyEvents\)$/);
        assert.equal(stop.text, 'Denied by denyEvents');
        await s.dc.continueRequest({ threadId: stop.threadId! });
        await s.ended();
        assert.match(s.text('stdout'), /refused\n/);
        assert.ok(s.consoleLines().some((line) => /^os\.mkdir \('.*made', .*\)  prog\.py:\d+  \[denied by denyEvents\]$/.test(line)));
      });
    });

    test('prompts: spythonPrompt asks, spythonPromptReply answers', async () => {
      const program = new Program(
        [
          'for attempt in range(2):',
          '    try:',
          '        os.listdir(HERE)  # LIST',
          '        print("allowed")',
          '    except PermissionError:',
          '        print("refused")',
        ].join('\n'),
      );
      await Session.with(async (s) => {
        const prompts: Array<Record<string, any>> = [];
        s.dc.on('spythonPrompt', (event) => {
          prompts.push(event.body);
          void s.dc.customRequest('spythonPromptReply', { id: event.body.id, answer: prompts.length === 1 ? 'deny' : 'allow' });
        });
        await s.launch(program.launchArgs(python, { promptEvents: [{ event: 'os.listdir', condition: IN_MAIN }] }));
        await s.ended();
        assert.equal(s.text('stdout'), 'refused\nallowed\n');
        assert.equal(prompts.length, 2);
        assert.equal(prompts[0].event, 'os.listdir');
        assert.ok(String(prompts[0].target).includes(program.dir), prompts[0].target);
        assert.equal(typeof prompts[0].pid, 'number');
        assert.equal(typeof prompts[0].tid, 'number');
      });
    });

    test('a condition that cannot compile marks its breakpoint unverified', async () => {
      const program = new Program('os.listdir(HERE)\nprint("done")\n');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python), { functionBreakpoints: [{ name: 'os.listdir', condition: 'i ===' }] });
        await s.ended();
        const changed = s.events.find((e) => e.event === 'breakpoint');
        assert.equal(changed?.body.reason, 'changed');
        assert.equal(changed?.body.breakpoint.verified, false);
        assert.ok(changed?.body.breakpoint.message);
        assert.equal(s.stops.length, 0);
        assert.match(s.text('stdout'), /done\n/);
      });
    });
  });
}
