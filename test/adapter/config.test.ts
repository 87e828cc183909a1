// The launch configuration: what a valid one becomes (the launcher's command line, the welcome
// configuration, the program's environment) and the messages that say what to fix in a wrong one.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_RUNS_DIR, LaunchConfigError, planLaunch } from '../../adapter/config';
import { tempDir } from './common';

function fixture(): { dir: string; program: string } {
  const dir = tempDir();
  const program = path.join(dir, 'main.py');
  fs.writeFileSync(program, 'pass\n');
  return { dir, program };
}

function problem(attributes: Record<string, unknown>): string {
  try {
    planLaunch(attributes, {});
  } catch (err) {
    assert.ok(err instanceof LaunchConfigError, String(err));
    return err.message;
  }
  assert.fail('the configuration was accepted');
}

describe('a valid launch configuration', () => {
  test('a program: the launcher runs it with the default interpreter, in the internal console', () => {
    const { dir, program } = fixture();
    const plan = planLaunch({ type: 'spython', request: 'launch', name: 'x', program, cwd: dir }, {});
    assert.deepEqual(plan.launcherArgs, ['--', program]);
    assert.deepEqual(plan.launcherConfig, {});
    assert.equal(plan.console, 'internalConsole');
    assert.equal(plan.cwd, dir);
    assert.equal(plan.runsDir, DEFAULT_RUNS_DIR);
    assert.equal(plan.title, program);
  });

  test('a module with an interpreter, its arguments and the program arguments', () => {
    const { dir } = fixture();
    const plan = planLaunch(
      { module: 'http.server', python: '/usr/bin/python3', pythonArgs: ['-X', 'dev'], args: ['8000', '--bind', '127.0.0.1'], cwd: dir },
      {},
    );
    assert.deepEqual(plan.launcherArgs, [
      '--python',
      '/usr/bin/python3',
      '--',
      '-X',
      'dev',
      '-m',
      'http.server',
      '8000',
      '--bind',
      '127.0.0.1',
    ]);
    assert.equal(plan.title, '-m http.server');
  });

  test('a relative program is found in cwd', () => {
    const { dir, program } = fixture();
    assert.deepEqual(planLaunch({ program: 'main.py', cwd: dir }, {}).launcherArgs, ['--', program]);
  });

  test('the policy attributes become the welcome configuration; false switches are left out', () => {
    const { program } = fixture();
    const plan = planLaunch(
      {
        program,
        startupControl: true,
        lockHooks: false,
        execCheck: true,
        stopOnEntry: true,
        subProcess: true,
        denyEvents: ['socket.*', { event: 'open', condition: 'args[1] != "r"' }],
        promptEvents: ['subprocess.Popen if "curl" in str(args)'],
        verifyImports: 'warn',
        verifyExempt: ['/usr/lib/python3'],
        auditLog: { file: '/tmp/audit.jsonl', syslog: ['socket.connect'] },
        breakOnEvents: ['os.system', { event: 'open', hitCondition: '>2', logMessage: '{args[0]}' }],
        showEvents: ['import'],
        hideEvents: ['open'],
      },
      {},
    );
    assert.deepEqual(plan.launcherConfig, {
      startupControl: true,
      execCheck: true,
      subProcess: true,
      stopOnEntry: true,
      denyEvents: ['socket.*', { event: 'open', condition: 'args[1] != "r"' }],
      promptEvents: ['subprocess.Popen if "curl" in str(args)'],
      verifyImports: 'warn',
      verifyExempt: ['/usr/lib/python3'],
      auditLog: { file: '/tmp/audit.jsonl', syslog: ['socket.connect'] },
    });
    assert.deepEqual(plan.breakOnEvents, [{ event: 'os.system' }, { event: 'open', hitCondition: '>2', logMessage: '{args[0]}' }]);
    assert.deepEqual(plan.showEvents, ['import']);
    assert.deepEqual(plan.hideEvents, ['open']);
  });

  test('the environment: inherited, then envFile (dotenv), then env where null removes', () => {
    const { dir, program } = fixture();
    fs.writeFileSync(
      path.join(dir, '.env'),
      '# comment\nFROM_FILE=file\nQUOTED="two words"\nexport EXPORTED=yes\nOVERRIDDEN=file\n',
    );
    const plan = planLaunch(
      { program, cwd: dir, envFile: '.env', env: { OVERRIDDEN: 'env', GONE: null, ADDED: 'added' } },
      { INHERITED: 'inherited', GONE: 'x', SPYTHON_CHANNEL: '/tmp/sock', SPYTHON_TOKEN: 'secret' },
    );
    assert.deepEqual(plan.env, {
      INHERITED: 'inherited',
      FROM_FILE: 'file',
      QUOTED: 'two words',
      EXPORTED: 'yes',
      OVERRIDDEN: 'env',
      ADDED: 'added',
      PYTHONUNBUFFERED: '1',
    });
  });

  test('PYTHONUNBUFFERED=1 for the Debug Console (a pipe), unless set; not for a terminal', () => {
    const { program } = fixture();
    assert.equal(planLaunch({ program }, {}).env.PYTHONUNBUFFERED, '1');
    assert.equal(planLaunch({ program, env: { PYTHONUNBUFFERED: '' } }, {}).env.PYTHONUNBUFFERED, '');
    assert.equal(planLaunch({ program }, { PYTHONUNBUFFERED: '0' }).env.PYTHONUNBUFFERED, '0');
    assert.equal(planLaunch({ program, console: 'integratedTerminal' }, {}).env.PYTHONUNBUFFERED, undefined);
  });

  test("the editor's own attributes are accepted", () => {
    const { program } = fixture();
    planLaunch(
      { program, preLaunchTask: 'build', internalConsoleOptions: 'openOnSessionStart', __sessionId: 'abc', __configurationTarget: 5, noDebug: false },
      {},
    );
  });
});

describe('a wrong launch configuration says what to fix', () => {
  test('an unknown attribute is named with the closest valid one', () => {
    const { program } = fixture();
    assert.match(problem({ program, denyEvent: ['x'] }), /unknown attribute "denyEvent" \(did you mean "denyEvents"\?\)/);
    assert.match(problem({ program, breakOnEvent: [] }), /did you mean "breakOnEvents"\?/);
  });

  test('every problem is listed at once', () => {
    const { program } = fixture();
    const message = problem({ program, console: 'terminal', args: 'a b', verifyImports: 'yes', maxCodeSize: -1 });
    assert.match(message, /"console" must be one of "internalConsole", "integratedTerminal", "externalTerminal" \(got "terminal"\)/);
    assert.match(message, /"args" must be a list of strings/);
    assert.match(message, /"verifyImports" must be one of "xattr", "warn", "manifest", "off"/);
    assert.match(message, /"maxCodeSize" must be a positive integer/);
  });

  test('rules and breakpoints of the wrong shape', () => {
    const { program } = fixture();
    assert.match(problem({ program, denyEvents: [{ glob: 'x' }] }), /"denyEvents\[0\]" must be an event glob or an object with a string "event"/);
    assert.match(
      problem({ program, breakOnEvents: [{ event: 'open', hitcondition: '3' }] }),
      /"breakOnEvents\[0\]" has an unknown key "hitcondition" \(did you mean "hitCondition"\?\)/,
    );
    assert.match(problem({ program, promptEvents: [''] }), /"promptEvents\[0\]" is an empty event glob/);
    assert.match(problem({ program, auditLog: { files: 'x' } }), /"auditLog" has an unknown key "files" \(did you mean "file"\?\)/);
    assert.match(problem({ program, env: { A: 1 } }), /"env" must be an object of strings/);
  });

  test('program and module: one of them, and an existing program', () => {
    const { dir, program } = fixture();
    assert.match(problem({ cwd: dir }), /"program" \(the Python file to run\) or "module" \(to run with -m\) is missing/);
    assert.match(problem({ program, module: 'x' }), /give either "program" or "module", not both/);
    assert.match(problem({ program: 'missing.py', cwd: dir }), /"program" ".*missing\.py" does not exist or is not a file/);
    assert.match(problem({ program: dir }), /is not a file/);
    assert.match(problem({ program, cwd: path.join(dir, 'nowhere') }), /"cwd" ".*nowhere" is not a directory/);
    assert.match(problem({ program, envFile: path.join(dir, 'none.env') }), /"envFile" ".*none\.env" cannot be read \(ENOENT\)/);
  });
});
