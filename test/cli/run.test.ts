// `spython-audit run`: the program's exit status is the command line's (signals as 128+N), its stdout
// and stderr pass through untouched, launcher errors keep their 125 and usage errors are 2; live event
// lines and the summary go to stderr.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CLI, cliEnv, lineOf, needs, program, PYTHON, REPO_ROOT, runCli, show, TARGETS } from './common';

const EXITS = `
import os, signal, sys
what = sys.argv[1]
print("started", flush=True)
if what == "raise":
    raise RuntimeError("boom")
if what.startswith("SIG"):
    os.kill(os.getpid(), getattr(signal, what))
sys.exit(int(what))
`;

for (const { label, python } of TARGETS) {
  describe(`exit statuses pass through on Python ${label}`, { ...needs(python), concurrency: 4 }, () => {
    const { file } = program(EXITS);
    const cases: Array<[string, number]> = [
      ['0', 0],
      ['3', 3],
      ['raise', 1],
      ['SIGTERM', 128 + 15],
      ['SIGKILL', 128 + 9],
    ];
    for (const [what, status] of cases) {
      test(`${what} → ${status}`, async () => {
        const r = await runCli(['run', '--python', python!, file, what]);
        assert.equal(r.status, status, show(r));
        assert.equal(r.stdoutText, 'started\n');
        // The live lines and the program's own stderr are two writers on one stream: a line can land
        // between the traceback's writes of "RuntimeError" and ": boom".
        if (what === 'raise') assert.match(r.stderrText.replace(/\[audit\][^\n]*\n/g, ''), /RuntimeError: boom/);
        const ending = what.startsWith('SIG') ? `was ended by ${what} \\(status ${status}\\)` : `exited with status ${status}`;
        assert.match(r.stderrText, new RegExp(`spython-audit: .*prog\\.py ${ending}`));
      });
    }
  });
}

describe('the program’s input and output', { ...needs(PYTHON), concurrency: 4 }, () => {
  test('stdout and stderr bytes pass through untouched; the audit lines are on stderr', async () => {
    const { file } = program(
      'import os, sys\n' +
        'sys.stdout.buffer.write(bytes(range(256)) + b"\\xff\\xfe not utf-8\\n")\n' +
        'sys.stdout.flush()\n' +
        'sys.stderr.buffer.write(b"err \\xc3\\x28\\n")\n' +
        'os.listdir(".")  # LIST\n',
    );
    const r = await runCli(['run', '--python', PYTHON!, file]);
    assert.equal(r.status, 0, show(r));
    assert.deepEqual(r.stdout, Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('\xff\xfe not utf-8\n', 'latin1')]));
    assert.ok(r.stderr.includes(Buffer.from('err \xc3\x28\n', 'latin1')), show(r));
    assert.match(r.stderrText, new RegExp(`\\[audit\\] os\\.listdir '\\.'  .*prog\\.py:${lineOf(file, 'LIST')}`));
  });

  test('stdin is the program’s', async () => {
    const { file } = program('import sys\nprint(sys.stdin.read().upper())\n');
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, file], { input: 'hello\n' });
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, 'HELLO\n\n');
    assert.equal(r.stderrText, '');
  });

  test('arguments after the program are the program’s, options included', async () => {
    const { file } = program('import sys\nprint(sys.argv[1:])\n');
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, file, '--deny', 'x', '-q']);
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, "['--deny', 'x', '-q']\n");
  });

  test('--module runs a module with its arguments', async () => {
    const { dir } = program('import sys\nprint("mod", sys.argv[1:])\n', 'mymod.py');
    const r = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, '--cwd', dir, '--module', 'mymod', 'a', 'b'], {
      cwd: dir,
    });
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, "mod ['a', 'b']\n");
  });

  test('--quiet leaves the summary, --no-summary the live lines; both leave nothing', async () => {
    const { file } = program('import os\nos.listdir(".")\n');
    const quiet = await runCli(['run', '--quiet', '--python', PYTHON!, file]);
    assert.doesNotMatch(quiet.stderrText, /\[audit\]/);
    assert.match(quiet.stderrText, /Events by category/);
    const neither = await runCli(['run', '-q', '--no-summary', '--python', PYTHON!, file]);
    assert.equal(neither.stderrText, '');
  });

  test('noisy events are hidden as in the Debug Console; --show and --hide change that', async () => {
    const { file } = program('import os\nos.listdir(".")\nobject.__getattribute__(os, "sep")\nsys = __import__("sys")\nsys._getframe()\n');
    const r = await runCli(['run', '--no-summary', '--python', PYTHON!, file]);
    assert.match(r.stderrText, /\[audit\] os\.listdir/);
    assert.doesNotMatch(r.stderrText, /\[audit\] sys\._getframe/);
    const shown = await runCli(['run', '--no-summary', '--show', 'sys._getframe', '--hide', 'os.listdir', '--python', PYTHON!, file]);
    assert.match(shown.stderrText, /\[audit\] sys\._getframe/);
    assert.doesNotMatch(shown.stderrText, /\[audit\] os\.listdir/);
  });

  test('colour only when asked for or on a terminal', async () => {
    const { file } = program('import os\nos.listdir(".")\n');
    const plain = await runCli(['run', '--no-summary', '--python', PYTHON!, file]);
    assert.doesNotMatch(plain.stderrText, /\x1b\[/);
    const coloured = await runCli(['run', '--no-summary', '--color', '--python', PYTHON!, file]);
    assert.match(coloured.stderrText, /\x1b\[2m\[audit\]\x1b\[22m/);
    const forced = await runCli(['run', '--no-summary', '--python', PYTHON!, file], { env: { FORCE_COLOR: '1' } });
    assert.match(forced.stderrText, /\x1b\[/);
  });
});

test('a reader that goes away (… | head) does not end the run: status 0, the report complete', needs(PYTHON), async () => {
  const { dir, file } = program('import os\nfor i in range(20000):\n    os.listdir(".")\n');
  const jsonl = path.join(dir, 'events.jsonl');
  const child = spawn(process.execPath, [CLI, 'run', '--python', PYTHON!, '--jsonl', jsonl, file], {
    env: cliEnv() as NodeJS.ProcessEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // Close the read end after the first live line: every later write meets EPIPE.
  child.stderr!.once('data', () => child.stderr!.destroy());
  const [status] = (await once(child, 'exit')) as [number | null];
  assert.equal(status, 0);
  const listdirs = fs
    .readFileSync(jsonl, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{"event":"os.listdir"') && JSON.parse(line).file === file);
  assert.equal(listdirs.length, 20000);
});

describe('the summary', { ...needs(PYTHON), concurrency: 4 }, () => {
  test('counts per event by category, denied operations, verification failures and processes', async () => {
    const { dir, file } = program(
      'import os, socket, subprocess, sys\n' +
        'open(os.path.join(os.path.dirname(__file__), "w.txt"), "w").close()\n' +
        'exec(compile("x = 1", "<gen>", "exec"))\n' +
        'for _ in range(3):\n' +
        '    try:\n' +
        '        socket.socket().connect(("127.0.0.1", 9))  # CONNECT\n' +
        '    except OSError as e:\n' +
        '        print(type(e).__name__)\n',
    );
    const r = await runCli(['run', '--deny', 'socket.connect', '--python', PYTHON!, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, 'PermissionError\n'.repeat(3));
    const text = r.stderrText;
    assert.match(text, /spython-audit: prog\.py exited with status 0/);
    assert.match(text, /\d+ audit events \(\d+ shown\), 3 denied, 0 verification failures, 1 process/);
    assert.match(text, /│ Network\s+│ socket\.[\w_]+\s+│\s+\d+ │/);
    assert.match(text, /│\s+│ socket\.connect\s+│\s+3 │/);
    assert.match(text, /│ File writes\s+│ open\s+│\s+\d+ │/);
    assert.match(text, /│ Dynamic code\s+│ compile\s+│\s+\d+ │/);
    assert.match(text, /│ Other\s+│/);
    assert.match(text, /Denied operations\n.*\n.*Event.*Target.*Policy.*Location/);
    const row = `│ socket.connect │ ('127.0.0.1', 9) │ denyEvents │ prog.py:${lineOf(file, 'CONNECT')} │`;
    assert.equal(text.split(row).length - 1, 3, text);
    assert.match(text, /Verification failures\n  none/);
    assert.match(text, /Processes\n[^]*│ \d+\s+│\s+\d+ │ prog\.py\s+│\s+\d+ │ exited with status 0/);
    assert.match(text, /Every record: .*\.jsonl/);
  });

  test('--quiet counts every record by its category all the same', async () => {
    const { dir, file } = program(
      'import os\n' +
        'here = os.path.dirname(__file__)\n' +
        'for i in range(300):\n' +
        '    open(os.path.join(here, "w%d.txt" % i), "w").close()\n' +
        'for i in range(200):\n' +
        '    open(os.path.join(here, "w%d.txt" % i)).close()\n',
    );
    const jsonl = path.join(dir, 'run.jsonl');
    const r = await runCli(['run', '-q', '--jsonl', jsonl, '--python', PYTHON!, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    const records = fs
      .readFileSync(jsonl, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; args: unknown[] });
    // The summary's rule (catalog.ts): a mode with w, a, x or + on a path (the standard streams are fds).
    const writes = records.filter(
      (x) => x.event === 'open' && typeof x.args[0] === 'string' && typeof x.args[1] === 'string' && /[wax+]/.test(x.args[1]),
    ).length;
    assert.ok(writes >= 300, `${writes} opens for writing in the log`);
    assert.match(r.stderrText, new RegExp(`^${records.length.toLocaleString('en-US')} audit events \\(0 shown\\)`, 'm'));
    assert.match(r.stderrText, new RegExp(`│ File writes\\s+│ open\\s+│\\s+${writes} │`));
  });
});

describe('launcher and usage errors', { ...needs(PYTHON), concurrency: 4 }, () => {
  test('a launcher error keeps its status 125 and message', async () => {
    const { file } = program('print("never")\n');
    const r = await runCli(['run', '--python', '/nonexistent/python3', file]);
    assert.equal(r.status, 125, show(r));
    assert.equal(r.stdoutText, '');
    assert.match(r.stderrText, /spython: cannot find the Python interpreter '\/nonexistent\/python3'/);
  });

  test('a policy that refuses to start the program is said, with the program’s status', async () => {
    const r = await runCli(['run', '--startup-control', '--python', PYTHON!, '-m', 'json.tool']);
    assert.notEqual(r.status, 0, show(r));
    assert.match(r.stderrText, /startupControl refused to start the program: cpython\.run_module 'json\.tool'/);
    assert.match(r.stderrText, /1 denied/);
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['no program', ['run'], /what should run\?/],
    ['an unknown option', ['run', '--denny', 'x', 'prog.py'], /unknown option '--denny'/],
    ['a bad choice', ['run', '--verify', 'sha1', 'prog.py'], /argument 'sha1' is invalid/],
    ['a missing program file', ['run', 'nowhere.py'], /"program" ".*nowhere\.py" does not exist/],
    ['a bad --env', ['run', '--env', 'NOEQUALS', 'prog.py'], /--env takes NAME=VALUE/],
    ['an unknown subcommand', ['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [what, args, message] of usage) {
    test(`usage error: ${what} → 2`, async () => {
      const r = await runCli(args);
      assert.equal(r.status, 2, show(r));
      assert.match(r.stderrText, message);
    });
  }

  test('--help and --version exit 0 and document the exit statuses', async () => {
    const help = await runCli(['run', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdoutText, /--fail-on <glob>/);
    assert.match(help.stdoutText, /122 when it succeeded but\s+an event matched --fail-on; 125 for launcher errors/);
    const version = await runCli(['--version']);
    assert.equal(version.status, 0);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdoutText.trim(), pkg.version);
  });
});
