#!/usr/bin/env node
// `npm run test:sanitizers`: the launcher test suites (out/test/launcher, out/test/policies; other
// folders of out/test when named) against the launcher built with AddressSanitizer and
// UndefinedBehaviorSanitizer (make -C native sanitize -> dist-asan/bin), and fails on any sanitizer
// report, whatever the tests made of it.
//
//   npm run test:sanitizers                       launcher + policies
//   npm run test:sanitizers -- adapter trust      other folders of out/test (run compile-tests first)
//
// How reports are caught: the sanitizers write them to files (log_path) in a fresh directory, not
// to the launcher's stderr, which tests compare with the plain interpreter's; an ASan error also
// ends the launcher with status 86. CPython leaks at exit by design, so leak detection is off. First
// a canary program built with the same flags must leave an ASan and a UBSan report there: otherwise
// reports would go unnoticed and the run fails.
//
// In preload mode (interpreters without a shared libpython, e.g. Debian's 3.11) the launcher execs
// the uninstrumented interpreter with the shim preloaded: the shim is built with UBSan only, as
// ASan in a preloaded library would need libasan preloaded before it.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const launcher = path.join(root, 'dist-asan', 'bin', 'spython');
const ASAN_STATUS = 86;

function sanitizerEnv(logDir) {
  return {
    ASAN_OPTIONS: [
      'detect_leaks=0',
      'halt_on_error=1',
      `exitcode=${ASAN_STATUS}`,
      'abort_on_error=0',
      `log_path=${path.join(logDir, 'asan')}`,
    ].join(':'),
    UBSAN_OPTIONS: ['print_stacktrace=1', 'halt_on_error=1', `log_path=${path.join(logDir, 'ubsan')}`].join(':'),
  };
}

/** The reports in logDir, as [file, text]. */
function reports(logDir) {
  return fs
    .readdirSync(logDir)
    .sort()
    .map((f) => [f, fs.readFileSync(path.join(logDir, f), 'utf8')]);
}

function build() {
  const r = spawnSync('make', ['-C', path.join(root, 'native'), 'sanitize'], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    console.error('test-sanitizers: make -C native sanitize failed');
    process.exit(1);
  }
}

/** Checks that an ASan and a UBSan error each leave a report where we look. */
function canary(work) {
  // The compiler `make sanitize` builds the launcher with (native/Makefile: SAN_CC).
  const cc = process.env.SAN_CC || 'clang';
  const exe = path.join(work, 'canary');
  const src = path.join(root, 'test', 'sanitizers', 'canary.c');
  const flags = ['-O1', '-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined', '-fno-sanitize-recover=all'];
  const c = spawnSync(cc, [...flags, '-o', exe, src], { encoding: 'utf8' });
  if (c.status !== 0) {
    console.error(`test-sanitizers: cannot build the canary with ${cc}:\n${c.stderr}`);
    process.exit(1);
  }
  for (const [kind, marker] of [
    ['asan', 'ERROR: AddressSanitizer'],
    ['ubsan', 'runtime error:'],
  ]) {
    const logDir = fs.mkdtempSync(path.join(work, `canary-${kind}-`));
    const r = spawnSync(exe, [kind], { env: { ...process.env, ...sanitizerEnv(logDir) }, encoding: 'utf8' });
    const found = reports(logDir);
    if (r.status === 0 || found.length === 0 || !found.some(([, text]) => text.includes(marker))) {
      console.error(
        `test-sanitizers: the ${kind} canary went unnoticed (status ${r.status}, ${found.length} report file(s)); ` +
          `sanitizer reports would be missed.\n${r.stderr}`,
      );
      process.exit(1);
    }
  }
}

function testFiles(folders) {
  const out = path.join(root, 'out', 'test');
  const list = (dir) =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return list(p);
      return e.name.endsWith('.test.js') ? [p] : [];
    });
  return folders.flatMap((f) => {
    const dir = path.join(out, f);
    if (!fs.existsSync(dir)) {
      console.error(`test-sanitizers: ${dir} does not exist (npm run compile-tests)`);
      process.exit(1);
    }
    return list(dir);
  });
}

function main() {
  const folders = process.argv.slice(2);
  const files = testFiles(folders.length ? folders : ['launcher', 'policies']).sort();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-sanitizers-'));
  const logDir = path.join(work, 'reports');
  fs.mkdirSync(logDir);
  const started = Date.now();

  build();
  canary(work);
  console.log(`test-sanitizers: ${files.length} test files against ${path.relative(root, launcher)}`);
  // Under a test runner (test/sanitizers) NODE_TEST_CONTEXT is set, and a nested `node --test` would
  // then skip every file and succeed: the runner below must be a top-level one.
  const { NODE_TEST_CONTEXT, ...env } = process.env;
  const r = spawnSync(process.execPath, ['--test', ...files], {
    stdio: 'inherit',
    env: { ...env, SPYTHON_LAUNCHER: launcher, ...sanitizerEnv(logDir) },
  });
  const found = reports(logDir);
  for (const [file, text] of found) {
    console.log(`\n==== sanitizer report ${file} ====\n${text}`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  if (found.length > 0) {
    console.log(`test-sanitizers: ${found.length} sanitizer report(s) (above), in ${seconds} s`);
  } else {
    console.log(`test-sanitizers: no sanitizer reports; tests ${r.status === 0 ? 'passed' : 'FAILED'}, in ${seconds} s`);
  }
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(found.length > 0 ? 1 : (r.status ?? 1));
}

main();
