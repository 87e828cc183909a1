// The launcher built with ThreadSanitizer (make -C native tsan -> dist-asan/tsan/spython) runs
// programs that work the stream from every side at once — threads, a fork, a SIGTERM — through
// the command line: every record arrives, and ThreadSanitizer reports nothing. The program's
// threads, the flusher, the control reader and the signal handlers all share the stream. A racy
// canary built with the same flags must leave a report first, or reports would go unnoticed.
// SPYTHON_SKIP_SANITIZERS=1 skips it.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { REPO_ROOT } from '../helpers/interpreters';
import { describeResult, needs, PYTHON, program, runCli } from '../cli/common';
import { tempDir } from '../helpers/fixtures';
import { assertCounter, readReport } from '../reliability/common';
import { SANITIZERS_SKIP } from './common';

const TSAN_LAUNCHER = path.join(REPO_ROOT, 'dist-asan', 'tsan', 'spython');
const SKIP = SANITIZERS_SKIP.skip ? SANITIZERS_SKIP : needs(PYTHON);

// die_after_fork=0: the fork below happens while the program's threads run; the child starts a
// flusher of its own, which ThreadSanitizer otherwise refuses.
const tsanEnv = (logDir: string) => ({
  SPYTHON_LAUNCHER: TSAN_LAUNCHER,
  TSAN_OPTIONS: `die_after_fork=0:log_path=${path.join(logDir, 'tsan')}`,
});

const reports = (logDir: string) => fs.readdirSync(logDir).map((f) => fs.readFileSync(path.join(logDir, f), 'utf8'));

const THREADS = [
  'import os, signal, sys, threading',
  'def work(k):',
  '    for i in range(20000):',
  '        sys.audit("spy.t%d" % k, i)',
  'threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]',
  'for t in threads: t.start()',
  'pid = os.fork()',
  'if pid == 0:',
  '    for i in range(50000): sys.audit("spy.child", i)',
  '    os._exit(0)',
  'for t in threads: t.join()',
  'os.waitpid(pid, 0)',
  'for i in range(200000): sys.audit("spy.n", i)',
];

describe('the stream under ThreadSanitizer', { ...SKIP, concurrency: 1, timeout: 600_000 }, () => {
  const work = tempDir('spython-tsan-');

  before(() => {
    const made = spawnSync('make', ['-C', path.join(REPO_ROOT, 'native'), 'tsan'], { encoding: 'utf8' });
    assert.equal(made.status, 0, `make -C native tsan failed:\n${made.stdout}${made.stderr}`);
  });

  test('a racy canary built with the same flags leaves a report', () => {
    const exe = path.join(work, 'race');
    const cc = spawnSync('clang', ['-O1', '-g', '-fsanitize=thread', '-pthread', '-o', exe, path.join(REPO_ROOT, 'test', 'sanitizers', 'race.c')], {
      encoding: 'utf8',
    });
    assert.equal(cc.status, 0, cc.stderr);
    const logDir = fs.mkdtempSync(path.join(work, 'canary-'));
    spawnSync(exe, { env: { ...process.env, TSAN_OPTIONS: tsanEnv(logDir).TSAN_OPTIONS } });
    assert.ok(reports(logDir).some((r) => r.includes('WARNING: ThreadSanitizer: data race')), 'the canary went unnoticed');
  });

  for (const ending of [
    { name: 'a normal exit', code: [], status: 0 },
    { name: 'SIGTERM to itself', code: ['os.kill(os.getpid(), signal.SIGTERM)'], status: 128 + 15 },
  ]) {
    test(`threads, a fork and ${ending.name}: every record, no report`, async () => {
      const logDir = fs.mkdtempSync(path.join(work, 'reports-'));
      const { dir, file } = program([...THREADS, ...ending.code, ''].join('\n'));
      const log = path.join(dir, 'log.jsonl');
      const r = await runCli(['run', '-q', '--no-summary', '--jsonl', log, '--python', PYTHON!, file], {
        env: tsanEnv(logDir),
        timeoutMs: 300_000,
      });
      assert.equal(r.status, ending.status, describeResult(r));
      const found = reports(logDir);
      assert.equal(found.length, 0, `ThreadSanitizer reports:\n${found.join('\n')}`);
      const records = readReport(log);
      for (let k = 0; k < 4; k++) assertCounter(records, `spy.t${k}`, 20000);
      assertCounter(records, 'spy.child', 50000);
      assertCounter(records, 'spy.n', 200000);
    });
  }
});
