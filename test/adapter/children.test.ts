// subProcess in the debug adapter: a process the program starts through sys.executable becomes a
// child debug session (the startDebugging reverse request, answered here as VS Code does: by opening
// another session with the given configuration) where its own breakpoints stop it — whether each
// session has its own adapter process (`node dist/adapter.js` on stdio, as VS Code runs an external
// adapter) or all share one (`--server`, as when the adapter runs inline in VS Code). A client without
// startDebugging, or one that refuses it, gets the children's events in the parent session, tagged by
// pid, and the parent's breakpoints stop them.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DebugProtocol } from '@vscode/debugprotocol';
import { AdapterServer, needs, processGone, Program, Session, TARGETS, TEST_TIMEOUT_MS } from './common';

after(() => Session.closeAll());

/** Only events the program's own module raises (not the import system listing directories). */
const IN_MAIN = { name: 'os.listdir', condition: '__name__ == "__main__"' };

const PYTHON = TARGETS.find((t) => t.label === '3.12')?.python ?? TARGETS.find((t) => t.python)?.python;

/** The program: starts child.py through sys.executable, which lists its own directory (STOP). */
function parentAndChild(): { program: Program; childLine: number } {
  const program = new Program(
    [
      'import subprocess',
      'r = subprocess.run([sys.executable, os.path.join(HERE, "child.py")])',
      'print("child status", r.returncode, flush=True)',
    ].join('\n'),
  );
  const child = new Program('print("child listed", len(os.listdir(HERE)), flush=True)  # STOP\n', 'child.py');
  // The child lives beside the parent.
  require('node:fs').renameSync(child.file, require('node:path').join(program.dir, 'child.py'));
  return { program, childLine: child.lineOf('STOP') };
}

/** What startDebugging asked for, and the child sessions opened for it. */
interface Children {
  requests: DebugProtocol.StartDebuggingRequestArguments[];
  sessions: Session[];
  /** Resolves with the n-th child session once it has attached. */
  nth(n: number): Promise<Session>;
}

/**
 * Answers startDebugging as VS Code does: a new session (a new adapter process, or a new connection to
 * `server`) initialized with `setup`'s breakpoints, then `attach` with the configuration.
 */
function serveChildSessions(parent: Session, setup: Parameters<Session['attach']>[1], server?: AdapterServer): Children {
  const children: Children = {
    requests: [],
    sessions: [],
    nth: (n) =>
      parent
        .waitFor(() => children.sessions.length > n && attached.has(children.sessions[n]), `child session ${n + 1}`)
        .then(() => children.sessions[n]),
  };
  const attached = new Set<Session>();
  parent.serveReverseRequest('startDebugging', async (args: DebugProtocol.StartDebuggingRequestArguments) => {
    children.requests.push(args);
    const child = await Session.start(server);
    children.sessions.push(child);
    await child.attach(args.configuration, setup);
    attached.add(child);
    // Wake the parent's waiters: an attach is no event of theirs.
    parent.events.push({ seq: 0, type: 'event', event: 'test.childAttached' });
    (parent as unknown as { waiters: Array<() => void> }).waiters.splice(0).forEach((wake) => wake());
    return { success: true };
  });
  return children;
}

describe('child sessions (subProcess)', { ...needs(PYTHON), concurrency: 2, timeout: TEST_TIMEOUT_MS }, () => {
  for (const mode of ['an adapter process per session (stdio)', 'one adapter process for all sessions (server)']) {
    test(`each child is a child session where its own breakpoints stop it: ${mode}`, async () => {
      const server = mode.includes('server') ? await AdapterServer.start() : undefined;
      const { program, childLine } = parentAndChild();
      try {
        await Session.with(async (s) => {
          const children = serveChildSessions(s, { functionBreakpoints: [IN_MAIN] }, server);
          await s.launch(program.launchArgs(PYTHON, { subProcess: true }), {}, { supportsStartDebuggingRequest: true });
          const child = await children.nth(0);

          const [request] = children.requests;
          assert.equal(request.request, 'attach');
          const configuration = request.configuration as Record<string, any>;
          assert.equal(configuration.type, 'spython');
          assert.equal(configuration.lifecycleManagedByParent, true);
          const { pid, ppid } = configuration.__spythonChild;
          assert.equal(configuration.name, `python-${pid} (child of ${ppid})`);

          // The child's breakpoint stops the child, in its own session, on the child's own line.
          const stop = await child.nextStop();
          assert.equal(stop.reason, 'function breakpoint');
          assert.equal(stop.threadId, pid);
          const frames = (await child.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
          assert.equal(frames[0].source?.path, `${program.dir}/child.py`);
          assert.equal(frames[0].line, childLine);
          const evaluated = await child.dc.evaluateRequest({ expression: 'os.getppid()', frameId: frames[0].id, context: 'repl' });
          assert.equal(evaluated.body.result, String(ppid));
          // The parent session neither stopped nor shows the child's events.
          assert.equal(s.stops.length, 0);
          assert.ok(s.consoleLines().some((l) => l === `Process ${pid} (child of ${ppid}) runs in its own debug session, python-${pid}.`));
          assert.ok(!s.records().some((r) => r.data.pid === pid));
          assert.ok(child.records().every((r) => r.data.pid === pid) && child.records().length > 0);
          // Each session names its own run log (the editor's Audit Events view reads it).
          const runLogOf = (session: Session) => session.events.find((e) => e.event === 'spythonRunLog')?.body.path;
          assert.ok(runLogOf(child) && runLogOf(s) && runLogOf(child) !== runLogOf(s), `${runLogOf(child)} / ${runLogOf(s)}`);

          await child.dc.continueRequest({ threadId: stop.threadId! });
          // The child ending ends its session; then the program ends and so does the parent's.
          await child.ended();
          assert.equal(child.exitCode, 0);
          await s.ended();
          assert.equal(s.exitCode, 0);
          assert.match(s.text('stdout'), /child listed \d+\nchild status 0\n/);
          assert.match(s.consoleLines().at(-1)!, /; 1 process in child sessions; every record: /);
          await child.close();
        });
      } finally {
        server?.stop();
      }
    });
  }

  test('a forked child gets a child session too: its first event waits for that session', async () => {
    const program = new Program(
      [
        'pid = os.fork()',
        'if pid == 0:',
        '    os.listdir(HERE)  # STOP',
        '    os._exit(7)',
        'print("fork status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)',
      ].join('\n'),
    );
    await Session.with(async (s) => {
      const children = serveChildSessions(s, { functionBreakpoints: [IN_MAIN] });
      await s.launch(program.launchArgs(PYTHON, { subProcess: true }), {}, { supportsStartDebuggingRequest: true });
      const child = await children.nth(0);
      const stop = await child.nextStop();
      const { pid, ppid } = (children.requests[0].configuration as Record<string, any>).__spythonChild;
      assert.equal(stop.threadId, pid);
      const frames = (await child.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
      assert.equal(frames[0].source?.path, program.file);
      assert.equal(frames[0].line, program.lineOf('STOP'));
      await child.dc.continueRequest({ threadId: stop.threadId! });
      await child.ended();
      await s.ended();
      assert.equal(s.stops.length, 0);
      assert.ok(child.records().every((r) => r.data.pid === pid && r.data.ppid === ppid));
      assert.match(s.text('stdout'), /^fork status 7\n$/);
      await child.close();
    });
  });

  test('without startDebugging, a fork bomb of 200 children ends cleanly, every child counted', async () => {
    const program = new Program(
      [
        'pids = []',
        'for i in range(200):',
        '    pid = os.fork()',
        '    if pid == 0:',
        '        open(os.path.join(HERE, f"bomb-{i}"), "w").close()',
        '        os._exit(0)',
        '    pids.append(pid)',
        'print("failed", sum(1 for p in pids if os.waitpid(p, 0)[1] != 0), flush=True)',
      ].join('\n'),
    );
    await Session.with(async (s) => {
      await s.launch(program.launchArgs(PYTHON, { subProcess: true }));
      await s.ended();
      assert.equal(s.exitCode, 0);
      assert.equal(s.text('stdout'), 'failed 0\n');
      const bombs = program.runRecords().filter((r) => r.event === 'open' && /\/bomb-\d+$/.test(String(r.args[0])));
      assert.equal(bombs.length, 200);
      assert.equal(new Set(bombs.map((r) => r.pid)).size, 200);
    });
  });

  test('terminating the parent ends the child and its session', async () => {
    const { program } = parentAndChild();
    await Session.with(async (s) => {
      const children = serveChildSessions(s, { functionBreakpoints: [IN_MAIN] });
      await s.launch(program.launchArgs(PYTHON, { subProcess: true }), {}, { supportsStartDebuggingRequest: true });
      const child = await children.nth(0);
      await child.nextStop();
      const { pid } = (children.requests[0].configuration as Record<string, any>).__spythonChild;
      await s.dc.terminateRequest({});
      await s.ended();
      await child.ended();
      assert.ok(await processGone(pid), `process ${pid} is still there`);
      await child.close();
    });
  });

  test('without startDebugging the children stay in the session, tagged by pid, and its breakpoints stop them', async () => {
    const { program, childLine } = parentAndChild();
    await Session.with(async (s) => {
      await s.launch(program.launchArgs(PYTHON, { subProcess: true }), { functionBreakpoints: [IN_MAIN] });
      const stop = await s.nextStop();
      const threads = (await s.dc.threadsRequest()).body.threads;
      const thread = threads.find((t) => t.id === stop.threadId)!;
      assert.match(thread.name, new RegExp(`^MainThread \\(pid ${stop.threadId}\\)$`));
      const frames = (await s.dc.stackTraceRequest({ threadId: stop.threadId! })).body.stackFrames;
      assert.equal(frames[0].source?.path, `${program.dir}/child.py`);
      assert.equal(frames[0].line, childLine);
      await s.dc.continueRequest({ threadId: stop.threadId! });
      await s.ended();
      assert.equal(s.exitCode, 0);
      const childLines = s.consoleLines().filter((l) => l.startsWith(`[pid ${stop.threadId}] `));
      assert.ok(childLines.some((l) => l.startsWith(`[pid ${stop.threadId}] cpython.run_file`)), s.consoleLines().join('\n'));
      const records = s.records().map((r) => r.data);
      assert.ok(records.some((r) => r.pid === stop.threadId && r.event === 'os.listdir'));
      const listed = program.runRecords().filter((r) => r.pid === stop.threadId && r.event === 'os.listdir' && r.file === frames[0].source?.path);
      assert.equal(listed.length, 1);
    });
  });

  test('a client that agrees to startDebugging but never attaches: after 15 s the child runs here, with a notice', async () => {
    const { program } = parentAndChild();
    await Session.with(async (s) => {
      s.serveReverseRequest('startDebugging', async () => ({ success: true }));
      await s.launch(program.launchArgs(PYTHON, { subProcess: true }), {}, { supportsStartDebuggingRequest: true });
      await s.ended();
      assert.equal(s.exitCode, 0);
      assert.ok(
        s.consoleLines().some((l) => /^Process \d+ \(child of \d+\) is shown in this session: no child session attached within 15 s\.$/.test(l)),
        s.consoleLines().join('\n'),
      );
      assert.match(s.text('stdout'), /child listed \d+\nchild status 0\n/);
    });
  });

  test('terminating the parent while a child waits for its child session ends both without waiting it out', async () => {
    const { program } = parentAndChild();
    await Session.with(async (s) => {
      let asked!: (pid: number) => void;
      const child = new Promise<number>((resolve) => (asked = resolve));
      s.serveReverseRequest('startDebugging', async (args: DebugProtocol.StartDebuggingRequestArguments) => {
        asked((args.configuration as Record<string, any>).__spythonChild.pid);
        return { success: true };
      });
      await s.launch(program.launchArgs(PYTHON, { subProcess: true }), {}, { supportsStartDebuggingRequest: true });
      const pid = await child;
      await s.dc.terminateRequest({});
      await s.ended();
      assert.ok(await processGone(pid), `process ${pid} is still there`);
      // Not the 15 s attach timeout's fallback: the wait was given up.
      assert.ok(!s.consoleLines().some((l) => l.includes('no child session attached')), s.consoleLines().join('\n'));
      assert.doesNotMatch(s.text('stdout'), /child listed/);
    });
  });

  test('a child session that never sends configurationDone: after 10 s the child runs, with a notice', async () => {
    const { program } = parentAndChild();
    await Session.with(async (s) => {
      let child: Session | undefined;
      s.serveReverseRequest('startDebugging', async (args: DebugProtocol.StartDebuggingRequestArguments) => {
        child = await Session.start();
        await child.dc.initializeRequest({ adapterID: 'spython', pathFormat: 'path' });
        await child.dc.send('attach', args.configuration);
        return { success: true };
      });
      await s.launch(program.launchArgs(PYTHON, { subProcess: true }), {}, { supportsStartDebuggingRequest: true });
      await s.ended();
      assert.equal(s.exitCode, 0);
      assert.match(s.text('stdout'), /child listed \d+\nchild status 0\n/);
      await child!.ended();
      assert.ok(
        child!.consoleLines().some((l) => /^No breakpoints arrived within 10 s: process \d+ runs without them\.$/.test(l)),
        child!.consoleLines().join('\n'),
      );
      await child!.close();
    });
  });

  test('a client that refuses startDebugging gets the child here, with a notice', async () => {
    const { program } = parentAndChild();
    await Session.with(async (s) => {
      s.serveReverseRequest('startDebugging', async () => ({ success: false, message: 'not today' }));
      await s.launch(program.launchArgs(PYTHON, { subProcess: true }), {}, { supportsStartDebuggingRequest: true });
      await s.ended();
      assert.equal(s.exitCode, 0);
      const notice = s.consoleLines().find((l) => /^Process \d+ \(child of \d+\) is shown in this session: /.test(l));
      assert.match(notice ?? s.consoleLines().join('\n'), /the editor did not open a child session \(not today\)\.$/);
      const pid = Number(/^Process (\d+)/.exec(notice!)![1]);
      assert.ok(s.consoleLines().some((l) => l.startsWith(`[pid ${pid}] os.listdir`)), s.consoleLines().join('\n'));
      assert.match(s.text('stdout'), /child listed \d+\nchild status 0\n/);
    });
  });
});
