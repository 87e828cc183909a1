// `spython-audit run --config NAME`: the workspace's .vscode/launch.json (JSON with comments), with
// ${workspaceFolder}, ${env:…}, ${config:…} and the other common variables resolved, and flags given
// beside it winning over its attributes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { findConfiguration, resolveVariables, UsageError } from '../../adapter/cli/launchjson';
import { launchAttributes } from '../../adapter/cli/run';
import { needs, PYTHON, runCli, show, tempDir, writeFile } from './common';

const LAUNCH_JSON = `{
  // Comments and trailing commas, as VS Code writes and accepts them.
  "version": "0.2.0",
  "configurations": [
    { "type": "debugpy", "request": "launch", "name": "Plain Python", "program": "\${file}" },
    {
      "type": "spython",
      "request": "launch",
      "name": "Audit the app",
      "program": "\${workspaceFolder}/app/main.py",
      "cwd": "\${workspaceFolder}\${/}app",
      "python": "\${env:AUDIT_PYTHON}",
      "args": ["\${workspaceFolderBasename}", "\${env:AUDIT_ARG}", "\${config:audit.greeting}", "\${env:UNSET_VARIABLE}"],
      "env": { "FROM_CONFIG": "\${env:AUDIT_ARG}-env", "KEEP": "from launch.json" },
      "denyEvents": ["socket.connect"], /* refused in CI as in the editor */
      "linux": { "env": { "FROM_CONFIG": "\${env:AUDIT_ARG}-linux", "KEEP": "from launch.json" } },
    },
    {
      "type": "spython",
      "request": "launch",
      "name": "Needs the editor",
      "program": "\${workspaceFolder}/app/main.py",
      "python": "\${command:python.interpreterPath}",
    },
  ],
}
`;

const MAIN_PY = `
import os, socket, sys
print("args", sys.argv[1:])
print("cwd", os.path.basename(os.getcwd()))
print("env", os.environ.get("FROM_CONFIG"), os.environ.get("KEEP"))
try:
    socket.socket().connect(("127.0.0.1", 9))
except PermissionError:
    print("connect refused")
except OSError:
    print("connect not refused")
try:
    sys.audit("app.step")
    print("app.step allowed")
except PermissionError:
    print("app.step refused")
`;

function workspace(): string {
  const dir = path.join(tempDir('spython-cli-ws-'), 'my-project');
  writeFile(dir, '.vscode/launch.json', LAUNCH_JSON);
  writeFile(dir, '.vscode/settings.json', '{\n  // settings\n  "audit.greeting": "hello",\n}\n');
  writeFile(dir, 'app/main.py', MAIN_PY);
  writeFile(dir, 'app/other.py', 'import sys\nprint("other", sys.argv[1:])\n');
  return dir;
}

describe('--config runs a launch.json configuration', { ...needs(PYTHON), concurrency: 4 }, () => {
  test('variables resolved: ${workspaceFolder}, ${/}, ${workspaceFolderBasename}, ${env:…}, ${config:…}; linux section merged', async () => {
    const ws = workspace();
    const r = await runCli(['run', '-q', '--no-summary', '--workspace', ws, '--config', 'Audit the app'], {
      env: { AUDIT_PYTHON: PYTHON, AUDIT_ARG: 'from-env', UNSET_VARIABLE: undefined },
    });
    assert.equal(r.status, 0, show(r));
    assert.equal(
      r.stdoutText,
      "args ['my-project', 'from-env', 'hello', '']\ncwd app\nenv from-env-linux from launch.json\nconnect refused\napp.step allowed\n",
    );
  });

  test('the workspace is the current directory by default', async () => {
    const ws = workspace();
    const r = await runCli(['run', '-q', '--no-summary', '--config', 'Audit the app'], {
      cwd: ws,
      env: { AUDIT_PYTHON: PYTHON, AUDIT_ARG: 'x' },
    });
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdoutText, /^args \['my-project', 'x', 'hello', ''\]/);
  });

  test('flags beside it win: lists are replaced, env is merged key by key, a program replaces its program', async () => {
    const ws = workspace();
    const r = await runCli(
      ['run', '-q', '--no-summary', '--workspace', ws, '--config', 'Audit the app', '--deny', 'app.step', '--env', 'KEEP=from a flag'],
      { env: { AUDIT_PYTHON: PYTHON, AUDIT_ARG: 'y' } },
    );
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdoutText, "args ['my-project', 'y', 'hello', '']\ncwd app\nenv y-linux from a flag\nconnect not refused\napp.step refused\n");

    const other = await runCli(['run', '-q', '--no-summary', '--workspace', ws, '--config', 'Audit the app', path.join(ws, 'app/other.py'), 'one'], {
      env: { AUDIT_PYTHON: PYTHON, AUDIT_ARG: 'y' },
    });
    assert.equal(other.status, 0, show(other));
    assert.equal(other.stdoutText, "other ['one']\n");
  });

  test('a variable only the editor knows is a usage error, unless a flag replaces its attribute', async () => {
    const ws = workspace();
    const refused = await runCli(['run', '--workspace', ws, '--config', 'Needs the editor']);
    assert.equal(refused.status, 2, show(refused));
    assert.match(refused.stderrText, /cannot resolve python: \$\{command:python\.interpreterPath\} needs the editor outside the editor: give the attribute as a flag/);
    const replaced = await runCli(['run', '-q', '--no-summary', '--workspace', ws, '--config', 'Needs the editor', '--python', PYTHON!]);
    assert.equal(replaced.status, 0, show(replaced));
    assert.match(replaced.stdoutText, /connect not refused/);
  });

  test('an unknown name, another type, a missing launch.json and a syntax error are usage errors', async () => {
    const ws = workspace();
    const unknown = await runCli(['run', '--workspace', ws, '--config', 'Nope']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderrText, /has no configuration named "Nope" \(it has "Plain Python", "Audit the app", "Needs the editor"\)/);
    const other = await runCli(['run', '--workspace', ws, '--config', 'Plain Python']);
    assert.equal(other.status, 2);
    assert.match(other.stderrText, /is of type "debugpy", not "spython"/);
    const missing = await runCli(['run', '--workspace', tempDir('spython-cli-empty-'), '--config', 'x']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderrText, /\.vscode\/launch\.json does not exist/);
    const broken = tempDir('spython-cli-broken-');
    writeFile(broken, '.vscode/launch.json', '{\n  "configurations": [\n    { "name": "x" \n  ]\n}\n');
    const bad = await runCli(['run', '--workspace', broken, '--config', 'x']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderrText, /launch\.json:4: (CommaExpected|CloseBraceExpected)/);
  });

  test('an invalid attribute in the configuration is named (the adapter’s own check)', async () => {
    const ws = tempDir('spython-cli-ws-');
    writeFile(ws, '.vscode/launch.json', '{"configurations": [{"type": "spython", "request": "launch", "name": "x", "program": "a.py", "denyEvent": ["x"]}]}');
    writeFile(ws, 'a.py', '');
    const r = await runCli(['run', '--workspace', ws, '--config', 'x'], { cwd: ws });
    assert.equal(r.status, 2, show(r));
    assert.match(r.stderrText, /unknown attribute "denyEvent" \(did you mean "denyEvents"\?\)/);
  });
});

describe('launch attributes (in-process)', () => {
  const context = { workspace: '/ws/proj', env: { HOME_DIR: '/h', EMPTY: '' }, cwd: '/start' };

  test('resolveVariables knows the common variables', () => {
    const out = resolveVariables(
      {
        a: '${workspaceFolder}/x',
        b: '${workspaceFolderBasename}',
        c: ['${env:HOME_DIR}', '${env:MISSING}', '${env:EMPTY}'],
        d: { e: '${userHome}|${cwd}|${pathSeparator}|${/}|${workspaceFolder:proj}' },
        n: 3,
      },
      context,
    );
    assert.deepEqual(out, {
      a: '/ws/proj/x',
      b: 'proj',
      c: ['/h', '', ''],
      d: { e: `${os.homedir()}|/start|/|/|/ws/proj` },
      n: 3,
    });
  });

  test('what only the editor knows is named with its attribute', () => {
    assert.throws(
      () => resolveVariables({ program: '${file}', args: ['${input:pick}'], x: '${workspaceFolder:other}', y: '${nonsense}' }, context),
      (err: Error) =>
        err instanceof UsageError &&
        /program: \$\{file\} names the editor’s state/.test(err.message) &&
        /args\[0\]: \$\{input:pick\} needs the editor/.test(err.message) &&
        /x: \$\{workspaceFolder:other\} names another workspace folder than proj/.test(err.message) &&
        /y: \$\{nonsense\} is not a known variable/.test(err.message),
    );
  });

  test('flags become attributes; without --config there is nothing to resolve', () => {
    const attributes = launchAttributes(
      'prog.py',
      ['--x'],
      {
        python: 'python3.12',
        deny: ['socket.*', 'open if "w" in args[1]'],
        break: ['subprocess.Popen', 'open if "w" in str(args[1])'],
        verifyExempt: ['lib'],
        maxCodeSize: '1000',
        logFile: 'log.jsonl',
        syslog: ['os.system'],
        env: ['A=1', 'B=x=y'],
        startupControl: true,
        show: ['import'],
      },
      '/work',
      {},
    );
    assert.deepEqual(attributes, {
      type: 'spython',
      request: 'launch',
      name: 'spython-audit',
      program: '/work/prog.py',
      args: ['--x'],
      python: 'python3.12',
      startupControl: true,
      denyEvents: ['socket.*', 'open if "w" in args[1]'],
      breakOnEvents: ['subprocess.Popen', { event: 'open', condition: '"w" in str(args[1])' }],
      verifyExempt: ['/work/lib'],
      maxCodeSize: 1000,
      showEvents: ['import'],
      env: { A: '1', B: 'x=y' },
      auditLog: { file: '/work/log.jsonl', syslog: ['os.system'] },
    });
  });

  test('--config: flags replace attributes, env and auditLog merge key by key', () => {
    const ws = tempDir('spython-cli-ws-');
    writeFile(
      ws,
      '.vscode/launch.json',
      JSON.stringify({
        configurations: [
          {
            type: 'spython',
            request: 'launch',
            name: 'c',
            module: 'app',
            denyEvents: ['socket.*'],
            env: { A: 'config', B: '${env:NOPE}' },
            auditLog: { file: '${workspaceFolder}/audit.jsonl', syslog: ['x'] },
          },
        ],
      }),
    );
    assert.equal(findConfiguration(ws, 'c').module, 'app');
    const attributes = launchAttributes(undefined, [], { config: 'c', workspace: ws, deny: ['open'], env: ['B=flag'], journal: ['y'] }, '/', {});
    assert.deepEqual(attributes.denyEvents, ['open']);
    assert.deepEqual(attributes.env, { A: 'config', B: 'flag' });
    assert.deepEqual(attributes.auditLog, { file: `${ws}/audit.jsonl`, syslog: ['x'], journal: ['y'] });
    assert.equal(attributes.module, 'app');
    const asProgram = launchAttributes('main.py', ['1'], { config: 'c', workspace: ws }, '/w', {});
    assert.equal(asProgram.module, undefined);
    assert.equal(asProgram.program, '/w/main.py');
    assert.deepEqual(asProgram.args, ['1']);
    const asModule = launchAttributes('1', ['2'], { config: 'c', workspace: ws, module: 'other' }, '/w', {});
    assert.equal(asModule.module, 'other');
    assert.deepEqual(asModule.args, ['1', '2']);
  });
});
