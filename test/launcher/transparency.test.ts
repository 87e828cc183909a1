// With no launcher options, `spython --python P -- ARGS` must be indistinguishable from `P ARGS`:
// same stdout, stderr and exit status (or signal). Every installed interpreter is checked, plus a
// venv per interpreter, --mode preload, and the launcher's own errors (status 125).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Interpreter, interpreters, launcherBuilt } from '../helpers/interpreters';
import { runLauncher, runProcess, RunOptions, RunResult } from '../helpers/run';
import { baseEnv, describeResult, needs, pythonFor, PYENV_37, tempDir, writeFile } from './common';

const BUILT = launcherBuilt();
const NOT_BUILT = BUILT ? {} : { skip: 'launcher not built (npm run build)' };

interface Case {
  name: string;
  /** The python arguments (everything after `--`). */
  args: (fx: Fixtures) => string[];
  input?: string;
  cwd?: (fx: Fixtures) => string;
  /** What the direct run must show, so the comparison cannot pass on two identical failures. */
  expect: (direct: RunResult, fx: Fixtures, interp: Interpreter) => void;
}

interface Fixtures {
  dir: string;
  argvScript: string;
  failScript: string;
}

function makeFixtures(): Fixtures {
  const dir = tempDir('spython-transparency-');
  return {
    dir,
    argvScript: writeFile(dir, 'argv_script.py', 'import sys\nprint("argv:", sys.argv)\nprint("name:", __name__)\n'),
    failScript: writeFile(
      dir,
      'fail_script.py',
      [
        'def inner(value):',
        '    raise ValueError("bad value: %r" % (value,))',
        '',
        'def outer():',
        '    inner({"k": [1, 2]})',
        '',
        'print("before the failure")',
        'outer()',
        '',
      ].join('\n'),
    ),
  };
}

const EXT_PROGRAM = [
  'import sqlite3, ssl, ctypes, _ssl, _sqlite3, _ctypes',
  'db = sqlite3.connect(":memory:")',
  'db.execute("create table t (x)")',
  'db.executemany("insert into t values (?)", [(1,), (2,), (39,)])',
  'print("sqlite", db.execute("select sum(x) from t").fetchone()[0])',
  'print("ssl", ssl.OPENSSL_VERSION)',
  'print("ssl-context", type(ssl.create_default_context()).__name__)',
  'print("ctypes", ctypes.c_int(5).value, ctypes.sizeof(ctypes.c_void_p))',
  'print("libc", ctypes.CDLL(None).strlen(b"hello"))',
].join('\n');

const CASES: Case[] = [
  {
    name: '-c writing to stdout and stderr, exit status 3',
    args: () => ['-c', 'import sys\nprint("to stdout")\nprint("to stderr", file=sys.stderr)\nsys.exit(3)'],
    expect: (d) => {
      assert.equal(d.status, 3);
      assert.equal(d.stdoutText, 'to stdout\n');
      assert.equal(d.stderrText, 'to stderr\n');
    },
  },
  {
    name: '-m json.tool reading stdin',
    args: () => ['-m', 'json.tool'],
    input: '{"b": [1, 2, {"c": null}], "a": "\u00e9t\u00e9"}\n',
    expect: (d) => {
      assert.equal(d.status, 0);
      assert.match(d.stdoutText, /^\{\n {4}"b": \[\n/);
      assert.match(d.stdoutText, /"a": "\\u00e9t\\u00e9"/);
    },
  },
  {
    name: '-I (isolated mode)',
    args: () => ['-I', '-c', 'import sys; print(sys.flags.isolated, sys.flags.ignore_environment, sys.flags.no_user_site)'],
    expect: (d) => assert.equal(d.stdoutText, '1 1 1\n'),
  },
  {
    name: '-E -s -u -B flags',
    args: () => [
      '-E',
      '-s',
      '-u',
      '-B',
      '-c',
      'import sys; f = sys.flags; print(f.ignore_environment, f.no_user_site, f.dont_write_bytecode)',
    ],
    expect: (d) => assert.equal(d.stdoutText, '1 1 1\n'),
  },
  {
    name: 'a script file with arguments',
    args: (fx) => [fx.argvScript, 'one', 'two words', '--flag', '\u00e9\u00e8', ''],
    expect: (d, fx) => {
      assert.equal(d.status, 0);
      assert.equal(
        d.stdoutText,
        `argv: ['${fx.argvScript}', 'one', 'two words', '--flag', '\u00e9\u00e8', '']\nname: __main__\n`,
      );
    },
  },
  {
    name: 'a script read from stdin (-)',
    args: () => ['-', 'arg1', 'arg2'],
    input: 'import sys\nprint("from stdin", sys.argv)\nprint(__file__ if "__file__" in dir() else "no file")\n',
    expect: (d) => {
      assert.equal(d.status, 0);
      assert.match(d.stdoutText, /^from stdin \['-', 'arg1', 'arg2'\]\n/);
    },
  },
  {
    name: 'an uncaught exception (traceback, status 1)',
    args: (fx) => [fx.failScript],
    expect: (d, fx) => {
      assert.equal(d.status, 1);
      assert.equal(d.stdoutText, 'before the failure\n');
      assert.match(d.stderrText, /^Traceback \(most recent call last\):\n/);
      assert.ok(d.stderrText.includes(`File "${fx.failScript}", line 8, in <module>`), d.stderrText);
      assert.ok(d.stderrText.endsWith("ValueError: bad value: {'k': [1, 2]}\n"), d.stderrText);
    },
  },
  {
    name: 'an uncaught exception in -c',
    args: () => ['-c', 'import json\njson.loads("{not json")'],
    expect: (d) => {
      assert.equal(d.status, 1);
      assert.match(d.stderrText, /File "<string>", line 2, in <module>/);
      assert.match(d.stderrText, /json\.decoder\.JSONDecodeError: Expecting property name/);
    },
  },
  {
    name: "sys.exit('message')",
    args: () => ['-c', 'import sys; print("out"); sys.exit("the message")'],
    expect: (d) => {
      assert.equal(d.status, 1);
      assert.equal(d.stdoutText, 'out\n');
      assert.equal(d.stderrText, 'the message\n');
    },
  },
  {
    name: 'sys.executable, sys.prefix, sys.base_prefix, sys.orig_argv, sys.path',
    args: () => [
      '-c',
      'import sys; print(sys.executable, sys.prefix, sys.base_prefix); ' +
        'print(getattr(sys, "orig_argv", None)); print(sys.path); print(sys.argv)',
    ],
    expect: (d, _fx, interp) => {
      assert.equal(d.status, 0);
      assert.ok(d.stdoutText.startsWith(interp.path + ' '), d.stdoutText);
    },
  },
  {
    name: 'os.environ is the same',
    args: () => ['-c', 'import os; print(sorted(os.environ.items()))'],
    expect: (d) => {
      assert.equal(d.status, 0);
      assert.match(d.stdoutText, /'SPYTHON_CACHE_DIR'/);
    },
  },
  {
    name: '-V',
    args: () => ['-V'],
    expect: (d, _fx, interp) => {
      assert.equal(d.status, 0);
      assert.equal(d.stdoutText, `Python ${interp.version}\n`);
    },
  },
  {
    name: 'killed by SIGTERM: same signal',
    args: () => ['-c', 'import os, signal, sys\nprint("x", flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\nsys.exit(99)'],
    expect: (d) => {
      assert.equal(d.signal, 'SIGTERM');
      assert.equal(d.stdoutText, 'x\n');
    },
  },
  {
    name: 'KeyboardInterrupt: traceback, then death by SIGINT',
    args: () => ['-c', 'import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nimport time; time.sleep(5)'],
    expect: (d) => {
      assert.equal(d.signal, 'SIGINT');
      assert.match(d.stderrText, /KeyboardInterrupt/);
    },
  },
  {
    name: 'C extension modules _ssl, _sqlite3, _ctypes import and work',
    args: () => ['-c', EXT_PROGRAM],
    expect: (d) => {
      assert.equal(d.status, 0, d.stderrText);
      const lines = d.stdoutText.split('\n');
      assert.equal(lines[0], 'sqlite 42');
      assert.match(lines[1], /^ssl OpenSSL \d/);
      assert.equal(lines[2], 'ssl-context SSLContext');
      assert.equal(lines[3], 'ctypes 5 8');
      assert.equal(lines[4], 'libc 5');
    },
  },
];

/** Runs the case both ways (concurrently) and compares. */
async function compare(
  interp: Interpreter,
  c: Case,
  fx: Fixtures,
  launcherOptions: string[] = [],
  python: string = interp.path,
): Promise<void> {
  const args = c.args(fx);
  const opts: RunOptions = { env: baseEnv(), input: c.input, cwd: c.cwd?.(fx) ?? fx.dir, timeoutMs: 60_000 };
  const [direct, launched] = await Promise.all([
    runProcess(python, args, opts),
    runLauncher([...launcherOptions, '--python', python, '--', ...args], opts),
  ]);
  c.expect(direct, fx, interp);
  const context = `\n=== direct ===\n${describeResult(direct)}\n=== launcher ===\n${describeResult(launched)}`;
  assert.equal(launched.stdoutText, direct.stdoutText, `stdout differs${context}`);
  assert.equal(launched.stderrText, direct.stderrText, `stderr differs${context}`);
  assert.equal(launched.status, direct.status, `exit status differs${context}`);
  assert.equal(launched.signal, direct.signal, `signal differs${context}`);
}

const ALL = interpreters();

test('at least one interpreter is installed', () => {
  assert.ok(ALL.length > 0, 'interpreters() found no CPython 3.8-3.13');
});

for (const interp of ALL) {
  describe(`transparency on ${interp.version} (${interp.path})`, { concurrency: 3, ...NOT_BUILT }, () => {
    const fx = makeFixtures();
    for (const c of CASES) {
      test(c.name, () => compare(interp, c, fx));
    }

    test('a venv: sys.prefix is the venv and its site-packages is used', async () => {
      const venv = path.join(tempDir('spython-venv-'), 'venv');
      const made = await runProcess(interp.path, ['-m', 'venv', '--without-pip', venv], {
        env: baseEnv(),
        timeoutMs: 120_000,
      });
      assert.equal(made.status, 0, `venv creation failed\n${describeResult(made)}`);
      const vpython = path.join(venv, 'bin', 'python');
      const purelib = (
        await runProcess(vpython, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { env: baseEnv() })
      ).stdoutText.trim();
      assert.ok(purelib.startsWith(venv), `purelib ${purelib} is not inside ${venv}`);
      writeFile(purelib, 'spython_venv_probe.py', 'WHERE = __file__\nVALUE = 6 * 7\n');
      const program =
        'import sys, spython_venv_probe as m\n' +
        'print(sys.prefix)\nprint(sys.base_prefix)\nprint(sys.executable)\nprint(m.VALUE, m.WHERE)\n' +
        'print([p for p in sys.path if "site-packages" in p])';
      const opts: RunOptions = { env: baseEnv(), cwd: fx.dir };
      const [direct, launched] = await Promise.all([
        runProcess(vpython, ['-c', program], opts),
        runLauncher(['--python', vpython, '--', '-c', program], opts),
      ]);
      assert.equal(direct.status, 0, describeResult(direct));
      const lines = launched.stdoutText.split('\n');
      assert.equal(lines[0], venv, `launcher: sys.prefix is not the venv\n${describeResult(launched)}`);
      assert.equal(lines[2], vpython, `launcher: sys.executable is not the venv's python\n${describeResult(launched)}`);
      assert.equal(lines[3], `42 ${path.join(purelib, 'spython_venv_probe.py')}`);
      assert.equal(launched.stdoutText, direct.stdoutText, `stdout differs\n${describeResult(launched)}`);
      assert.equal(launched.stderrText, direct.stderrText);
      assert.equal(launched.status, direct.status);
    });
  });
}

describe('transparency in --mode preload', { concurrency: 3, ...NOT_BUILT }, () => {
  const fx = makeFixtures();
  const names = [
    '-c writing to stdout and stderr, exit status 3',
    'a script file with arguments',
    'an uncaught exception (traceback, status 1)',
    'sys.executable, sys.prefix, sys.base_prefix, sys.orig_argv, sys.path',
    'os.environ is the same',
    'C extension modules _ssl, _sqlite3, _ctypes import and work',
    'killed by SIGTERM: same signal',
  ];
  const targets: Array<[string, Interpreter | undefined]> = [
    ['Debian 3.11', pythonFor(11, true)],
    ['3.12', pythonFor(12)],
    ['3.8', pythonFor(8)],
  ];
  for (const [label, interp] of targets) {
    for (const name of names) {
      const c = CASES.find((x) => x.name === name)!;
      test(`${label}: ${name}`, needs(interp), () => compare(interp!, c, fx, ['--mode', 'preload']));
    }
  }
});

describe('default interpreter', { concurrency: 2, ...NOT_BUILT }, () => {
  const interp = pythonFor(12) ?? ALL[ALL.length - 1];
  const program = 'import sys; print(sys.version); print(sys.executable)';

  test('$SPYTHON_PYTHON is used when --python is absent', needs(interp), async () => {
    const [direct, launched] = await Promise.all([
      runProcess(interp!.path, ['-c', program], { env: baseEnv() }),
      runLauncher(['-c', program], { env: baseEnv({ SPYTHON_PYTHON: interp!.path }) }),
    ]);
    assert.equal(direct.status, 0);
    assert.equal(launched.stdoutText, direct.stdoutText, describeResult(launched));
    assert.equal(launched.status, 0);
  });

  test('python3 on PATH is used when neither is given', needs(interp), async () => {
    const bin = tempDir('spython-path-');
    fs.symlinkSync(interp!.path, path.join(bin, 'python3'));
    const env = baseEnv({ PATH: `${bin}:/usr/bin:/bin` });
    const [direct, launched] = await Promise.all([
      runProcess(path.join(bin, 'python3'), ['-c', 'import sys; print(sys.version)'], { env }),
      runLauncher(['-c', 'import sys; print(sys.version)'], { env }),
    ]);
    assert.equal(direct.status, 0);
    assert.equal(launched.stdoutText, direct.stdoutText, describeResult(launched));
    assert.equal(launched.status, 0);
  });
});

describe('launcher errors exit 125', { concurrency: 3, ...NOT_BUILT }, () => {
  const marker = path.join(tempDir('spython-errors-'), 'ran');
  const program = `open(${JSON.stringify(marker)}, "w").close(); print("python ran")`;

  const expect125 = (r: RunResult): void => {
    assert.equal(r.status, 125, describeResult(r));
    assert.equal(r.signal, null);
    assert.match(r.stderrText, /^spython: /, describeResult(r));
    assert.equal(r.stdoutText, '', describeResult(r));
    assert.ok(!fs.existsSync(marker), 'Python code ran');
  };

  test('--python pointing at a missing path: the message names it', async () => {
    const missing = '/nonexistent/dir/python3.99';
    const r = await runLauncher(['--python', missing, '--', '-c', program], { env: baseEnv() });
    expect125(r);
    assert.ok(r.stderrText.includes(missing), r.stderrText);
  });

  test('--python pointing at Python 3.7: the message says 3.8 or newer', needs(fs.existsSync(PYENV_37), 'Python 3.7'), async () => {
    const r = await runLauncher(['--python', PYENV_37, '--', '-c', program], { env: baseEnv() });
    expect125(r);
    assert.match(r.stderrText, /3\.8 or newer/, r.stderrText);
    assert.ok(r.stderrText.includes('3.7'), r.stderrText);
  });

  for (const notPython of ['/bin/true', '/bin/false', '/bin/echo']) {
    test(`--python pointing at a non-Python executable (${notPython})`, async () => {
      const r = await runLauncher(['--python', notPython, '--', '-c', program], { env: baseEnv() });
      expect125(r);
      assert.ok(r.stderrText.includes(notPython), r.stderrText);
    });
  }

  test('an unknown --mode', needs(pythonFor(12)), async () => {
    const r = await runLauncher(['--mode', 'sideways', '--python', pythonFor(12)!.path, '--', '-c', program], {
      env: baseEnv(),
    });
    expect125(r);
  });

  test('--python pointing at a directory', async () => {
    const r = await runLauncher(['--python', tempDir(), '--', '-c', program], { env: baseEnv() });
    expect125(r);
  });
});
