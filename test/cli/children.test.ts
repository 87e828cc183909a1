// subProcess through the command line (`spython-audit run --sub-process`): children started through
// sys.executable — subprocess, multiprocessing's spawn and forkserver pools, ProcessPoolExecutor,
// os.exec*, grandchildren, forks — are audited with the same policies on the same channel; every
// record says its pid and parent; the summary shows the process tree.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { needs, program, PYTHON, runCli, show, TARGETS, writeFile } from './common';

type Rec = { event: string; pid: number; ppid: number; args: any[]; denied?: string };

function records(file: string): Rec[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Rec);
}

/** The pid of the process whose cpython.run_file ran `script` (its last run, after an exec). */
function pidRunning(recs: Rec[], script: string): Rec {
  const run = recs.filter((r) => r.event === 'cpython.run_file' && String(r.args[0]).endsWith(`/${script}`)).at(-1);
  assert.ok(run, `no process ran ${script}`);
  return run;
}

/** Records of `open` on a file whose name starts with `prefix`. */
function opened(recs: Rec[], prefix: string): Rec[] {
  return recs.filter((r) => r.event === 'open' && typeof r.args[0] === 'string' && path.basename(r.args[0]).startsWith(prefix));
}

describe('spython-audit run --sub-process', { ...needs(PYTHON), concurrency: 3 }, () => {
  test('a subprocess, its own subprocess (a grandchild) and an os.exec of sys.executable', async () => {
    const { dir, file } = program(
      'import os, subprocess, sys\n' +
        'HERE = os.path.dirname(os.path.abspath(__file__))\n' +
        'subprocess.run([sys.executable, os.path.join(HERE, "child.py")], check=True)\n' +
        'print("main done", flush=True)\n',
      'main.py',
    );
    writeFile(
      dir,
      'child.py',
      'import os, subprocess, sys\n' +
        'HERE = os.path.dirname(os.path.abspath(__file__))\n' +
        'subprocess.run([sys.executable, os.path.join(HERE, "grandchild.py")], check=True)\n',
    );
    writeFile(
      dir,
      'grandchild.py',
      'import os, sys\n' +
        'HERE = os.path.dirname(os.path.abspath(__file__))\n' +
        'sys.stdout.flush()\n' +
        'os.execv(sys.executable, [sys.executable, os.path.join(HERE, "execd.py")])\n',
    );
    writeFile(dir, 'execd.py', 'import os\nopen(os.path.join(os.path.dirname(os.path.abspath(__file__)), "mark-execd"), "w").close()\nprint("execd", os.getpid(), flush=True)\n');
    const jsonl = path.join(dir, 'out.jsonl');
    const r = await runCli(['run', '--sub-process', '--jsonl', jsonl, '--python', PYTHON!, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdoutText, /^execd \d+\nmain done\n$/);
    const recs = records(jsonl);
    const main = pidRunning(recs, 'main.py');
    const child = pidRunning(recs, 'child.py');
    const grandchild = pidRunning(recs, 'grandchild.py');
    const execd = pidRunning(recs, 'execd.py');
    assert.equal(child.ppid, main.pid);
    assert.equal(grandchild.ppid, child.pid);
    // os.exec keeps the process: the same pid runs the new program, audited all the same.
    assert.equal(execd.pid, grandchild.pid);
    assert.equal(r.stdoutText, `execd ${execd.pid}\nmain done\n`);
    assert.deepEqual(opened(recs, 'mark-execd').map((x) => x.pid), [execd.pid]);
    // Every record carries a pid and a parent pid, of the processes above only.
    const pids = new Set([main.pid, child.pid, grandchild.pid]);
    for (const rec of recs) assert.ok(pids.has(rec.pid) && Number.isInteger(rec.ppid), JSON.stringify(rec));
    // The summary's tree: each process under its parent, with what it ran and how it ended.
    const text = r.stderrText;
    assert.match(text, /\d+ audit events \(\d+ shown\), 0 denied, 0 verification failures, 3 processes/);
    assert.match(text, new RegExp(`│ ${main.pid}\\s+│\\s+\\d+ │ main\\.py\\s+│\\s+[\\d,]+ │ exited with status 0`));
    assert.match(text, new RegExp(`│ └ ${child.pid}\\s+│\\s+${main.pid} │ child\\.py\\s+│\\s+[\\d,]+ │ exited with status 0`));
    assert.match(text, new RegExp(`│   └ ${grandchild.pid}\\s+│\\s+${child.pid} │ grandchild\\.py → execd\\.py\\s+│\\s+[\\d,]+ │ exited with status 0`));
    // Live lines of the children say which process they come from.
    assert.match(text, new RegExp(`\\[audit\\] \\[pid ${child.pid}\\] subprocess\\.Popen`));
  });

  test('denyEvents refuses in a child and in a grandchild; -c of anything else is refused under StartupControl', async () => {
    const { dir, file } = program(
      'import os, subprocess, sys\n' +
        'HERE = os.path.dirname(os.path.abspath(__file__))\n' +
        'subprocess.run([sys.executable, os.path.join(HERE, "child.py"), "child"], check=True)\n' +
        'r = subprocess.run([sys.executable, "-c", "print(\'escaped\')"])\n' +
        'print("-c status", r.returncode, flush=True)\n',
    );
    writeFile(
      dir,
      'child.py',
      'import os, subprocess, sys\n' +
        'try:\n' +
        '    os.listdir("/")\n' +
        '    print(sys.argv[1], "listed", flush=True)\n' +
        'except PermissionError as e:\n' +
        '    print(sys.argv[1], "refused:", e, flush=True)\n' +
        'if sys.argv[1] == "child":\n' +
        '    subprocess.run([sys.executable, __file__, "grandchild"], check=True)\n',
    );
    const jsonl = path.join(dir, 'out.jsonl');
    const r = await runCli(['run', '--sub-process', '--startup-control', '--deny', 'os.listdir if args[0] == "/"', '--jsonl', jsonl, '--python', PYTHON!, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    const lines = r.stdoutText.split('\n');
    assert.match(lines[0], /^child refused: \[spython\] denyEvents refused os\.listdir \('\/',\)$/);
    assert.match(lines[1], /^grandchild refused: \[spython\] denyEvents refused os\.listdir \('\/',\)$/);
    assert.doesNotMatch(r.stdoutText, /escaped/);
    assert.match(r.stdoutText, /-c status 1\n$/);
    const recs = records(jsonl);
    const denied = recs.filter((x) => x.event === 'os.listdir' && x.denied === 'denyEvents');
    assert.equal(new Set(denied.map((x) => x.pid)).size, 2, JSON.stringify(denied));
    assert.ok(recs.some((x) => x.event === 'cpython.run_command' && x.denied === 'startupControl'), 'the -c child was not refused');
    assert.match(r.stderrText, /Denied operations[^]*os\.listdir[^]*\(pid \d+\)/);
  });

  test('a Python started by another path is reported, not audited', async () => {
    const { dir, file } = program(
      'import subprocess\n' + `subprocess.run([${JSON.stringify(PYTHON)}, "-c", "pass"], check=True)\n`,
    );
    const jsonl = path.join(dir, 'out.jsonl');
    const r = await runCli(['run', '--sub-process', '-q', '--jsonl', jsonl, '--python', PYTHON!, file], { cwd: dir });
    assert.equal(r.status, 0, show(r));
    const recs = records(jsonl);
    const reported = recs.filter((x) => x.event === 'spython.unaudited_child');
    assert.equal(reported.length, 1, JSON.stringify(reported));
    assert.match(String(reported[0].args[0]), /was started directly, not through sys\.executable/);
    assert.equal(new Set(recs.map((x) => x.pid)).size, 1);
  });

  test('a fork bomb of 200 children ends cleanly, every child counted', { timeout: 180_000 }, async () => {
    const { dir, file } = program(
      'import os\n' +
        'HERE = os.path.dirname(os.path.abspath(__file__))\n' +
        'pids = []\n' +
        'for i in range(200):\n' +
        '    pid = os.fork()\n' +
        '    if pid == 0:\n' +
        '        open(os.path.join(HERE, f"bomb-{i}"), "w").close()\n' +
        '        os._exit(0)\n' +
        '    pids.append(pid)\n' +
        'statuses = [os.waitpid(pid, 0)[1] for pid in pids]\n' +
        'print("children", len(pids), "failed", sum(1 for s in statuses if s != 0), flush=True)\n',
    );
    const jsonl = path.join(dir, 'out.jsonl');
    const r = await runCli(['run', '--sub-process', '-q', '--jsonl', jsonl, '--python', PYTHON!, file], { cwd: dir, timeoutMs: 170_000 });
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, 'children 200 failed 0\n');
    const recs = records(jsonl);
    const main = pidRunning(recs, 'prog.py');
    const bombs = opened(recs, 'bomb-');
    assert.equal(bombs.length, 200);
    const children = new Set(bombs.map((x) => x.pid));
    assert.equal(children.size, 200);
    for (const rec of bombs) assert.equal(rec.ppid, main.pid);
    assert.match(r.stderrText, /, 201 processes/);
    for (let i = 0; i < 200; i++) assert.ok(fs.existsSync(path.join(dir, `bomb-${i}`)));
  });
});

for (const { label, python } of TARGETS) {
  describe(`multiprocessing under --sub-process on Python ${label}`, needs(python), () => {
    test('multiprocessing spawn and forkserver pools and a ProcessPoolExecutor', async () => {
      const { dir, file } = program(
        'import concurrent.futures, multiprocessing as mp, os\n' +
          'HERE = os.path.dirname(os.path.abspath(__file__))\n' +
          'def work(tag):\n' +
          '    open(os.path.join(HERE, f"w-{tag}"), "w").close()\n' +
          '    return os.getpid()\n' +
          'if __name__ == "__main__":\n' +
          '    for method in ("spawn", "forkserver"):\n' +
          '        with mp.get_context(method).Pool(2) as pool:\n' +
          '            print(method, len(pool.map(work, [f"{method}-{i}" for i in range(4)])), flush=True)\n' +
          '    with concurrent.futures.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:\n' +
          '        print("executor", len(list(ex.map(work, [f"executor-{i}" for i in range(4)]))), flush=True)\n',
      );
      const jsonl = path.join(dir, 'out.jsonl');
      const r = await runCli(['run', '--sub-process', '--startup-control', '-q', '--jsonl', jsonl, '--python', python!, file], { cwd: dir });
      assert.equal(r.status, 0, show(r));
      assert.equal(r.stdoutText, 'spawn 4\nforkserver 4\nexecutor 4\n');
      const recs = records(jsonl);
      const main = pidRunning(recs, 'prog.py');
      const parentOf = new Map(recs.map((x) => [x.pid, x.ppid]));
      for (const method of ['spawn', 'forkserver', 'executor']) {
        const work = opened(recs, `w-${method}-`);
        assert.equal(work.length, 4, `${method}: ${work.length} audited opens`);
        for (const rec of work) {
          assert.notEqual(rec.pid, main.pid, `${method} work ran in the main process`);
          // A pool worker descends from the program (forkserver's through the fork server).
          let pid: number | undefined = rec.pid;
          while (pid !== undefined && pid !== main.pid) pid = parentOf.get(pid);
          assert.equal(pid, main.pid, `${method} worker ${rec.pid} does not descend from ${main.pid}`);
        }
      }
      // StartupControl let multiprocessing's own -c through, and nothing was refused.
      const commands = recs.filter((x) => x.event === 'cpython.run_command').map((x) => String(x.args[0]));
      assert.ok(commands.some((c) => c.includes('multiprocessing.spawn import spawn_main')), commands.join('\n'));
      assert.ok(commands.some((c) => c.includes('multiprocessing.forkserver import main')), commands.join('\n'));
      assert.deepEqual(recs.filter((x) => x.denied), []);
    });
  });
}
