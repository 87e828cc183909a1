// `npm start`'s demo: the start script's command (after its set-up hook) runs examples/demo.py with the
// policy of examples/.vscode/launch.json, which denies the subprocess; the live lines, the program's
// own output and the summary say so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runProcess } from '../helpers/run';
import { cliEnv, lineOf, NOT_BUILT, REPO_ROOT, show } from './common';

const DEMO = path.join(REPO_ROOT, 'examples', 'demo.py');

test('npm start runs the audited demo: four operations, the subprocess denied, live lines and a summary', NOT_BUILT, async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const start = pkg.scripts.start;
  assert.match(start, /^node dist\/cli\.js run /, 'the start script runs the command line');
  assert.equal(pkg.scripts.prestart, 'node scripts/setup.js', 'a fresh clone sets itself up first');

  // What npm runs for `npm start`, less the set-up hook (the tests run after the build).
  const r = await runProcess('/bin/sh', ['-c', start], { cwd: REPO_ROOT, env: cliEnv(), timeoutMs: 60_000 });
  assert.equal(r.status, 0, show(r));

  // The program's own output: each of the four things, the subprocess refused.
  assert.match(r.stdoutText, /^1\. read greeting\.txt: 'Hello from examples\/greeting\.txt'$/m);
  assert.match(r.stdoutText, /^2\. the subprocess was refused: \[spython\] denyEvents refused subprocess\.Popen /m);
  assert.match(r.stdoutText, /^3\. HTTP server on 127\.0\.0\.1:\d+ answered 'you asked for \/status'$/m);
  assert.match(r.stdoutText, /^4\. exec'd 5 lines of generated code: total = 14$/m);

  // Live lines (stderr), located relative to the workspace (examples/).
  const err = r.stderrText;
  assert.match(err, new RegExp(`^\\[audit\\] open \\('.*/examples/greeting\\.txt', 'r', \\d+\\)  demo\\.py:${lineOf(DEMO, 'READ')}$`, 'm'));
  assert.match(err, /^\[audit\] subprocess\.Popen .*  DENIED by denyEvents$/m);
  assert.match(err, /^\[audit\] socket\.bind \('127\.0\.0\.1', 0\)  /m);
  assert.match(err, /^\[audit\] urllib\.Request \('http:\/\/127\.0\.0\.1:\d+\/status', /m);
  assert.match(err, /^\[audit\] socket\.connect \('127\.0\.0\.1', \d+\)  /m);
  assert.match(err, /^\[audit\] http\.client\.send b'GET \/status HTTP\/1\.1/m);
  assert.match(err, new RegExp(`^\\[audit\\] compile \\(b'square_0 = 0 \\* 0.*', '<generated>'\\)  demo\\.py:${lineOf(DEMO, 'EXEC')}$`, 'm'));
  assert.match(err, new RegExp(`^\\[audit\\] exec <code object <module> at <generated>:1>  demo\\.py:${lineOf(DEMO, 'EXEC')}$`, 'm'));
  // hideEvents in the demo's configuration: no import lines.
  assert.doesNotMatch(err, /^\[audit\] import /m);

  // The summary.
  assert.match(err, /^spython-audit: examples\/demo\.py exited with status 0$/m);
  assert.match(err, /^[\d,]+ audit events \([\d,]+ shown\), 1 denied, 0 verification failures, 1 process$/m);
  assert.match(err, /│ Network\s+│ /);
  assert.match(err, /│ Subprocesses\s+│ subprocess\.Popen\s+│\s+1 │/);
  assert.match(err, /│ Dynamic code\s+│ compile\s+│/);
  // Refused inside subprocess.py, located at the demo's own subprocess.run(…) line (the record's caller).
  assert.match(
    err,
    new RegExp(`Denied operations\\n[^]*│ subprocess\\.Popen │ \\('[^│]*python[^│]* │ denyEvents │ demo\\.py:${lineOf(DEMO, 'SPAWN')} +│`),
  );
  assert.match(err, /Verification failures\n  none/);
  assert.match(err, /^Every record: .*demo\.py-[0-9a-f]+\.jsonl$/m);
});
