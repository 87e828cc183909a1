#!/usr/bin/env node
// `npm run fuzz`: builds the launcher's libFuzzer targets (make -C native fuzz: clang with
// AddressSanitizer + UndefinedBehaviorSanitizer) and fuzzes each for FUZZ_SECONDS (default 60),
// starting from the committed corpus (native/fuzz/corpus/<target>) and the inputs of past findings
// (native/fuzz/corpus-regressions/<target>). Exits non-zero on any finding (crash, failed check,
// sanitizer report, leak, timeout, out-of-memory), after printing how to reproduce it; the input is
// kept in dist-asan/fuzz/findings/<target>/. Without findings, the new inputs that reach new code
// (edges, not hit counts) are merged into the committed corpus (-merge=1), so it stays small: commit
// them.
//
//   npm run fuzz                      every target, FUZZ_SECONDS each
//   npm run fuzz -- fuzz_json         some targets
//   FUZZ_SECONDS=600 npm run fuzz     longer
//   FUZZ_MERGE=0 npm run fuzz         leave the corpus as it is
//   node scripts/fuzz.js --replay     only run every committed input once (what test/sanitizers does);
//                                     fuzz_render then runs against every CPython 3.8-3.13 found
//
// fuzz_render loads libpython: SPYTHON_FUZZ_LIBPYTHON=/path/libpython3.X.so picks it (default: the
// newest pyenv CPython 3.8-3.13).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const fuzzDir = path.join(root, 'native', 'fuzz');
const binDir = path.join(root, 'dist-asan', 'fuzz');

/** The targets, with the longest input worth trying. */
const TARGETS = {
  fuzz_json: { maxLen: 4096 },
  // 16 KiB: past the harness's 8 KiB line limit, to reach the over-long-line path.
  fuzz_control: { maxLen: 16384 },
  fuzz_render: { maxLen: 4096 },
};

const rel = (p) => path.relative(process.cwd(), p) || '.';

function usage(message) {
  if (message) console.error(`fuzz: ${message}`);
  console.error(`usage: node scripts/fuzz.js [--replay] [${Object.keys(TARGETS).join('|')}...]`);
  process.exit(2);
}

function build() {
  const r = spawnSync('make', ['-C', path.join(root, 'native'), 'fuzz'], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(
      'fuzz: building the targets failed. They need clang with libFuzzer and the sanitizer ' +
        'runtimes (Debian: apt-get install clang libclang-rt-14-dev).',
    );
    process.exit(r.status || 1);
  }
}

/** The input directories of a target that exist: corpus first, then past findings. */
function inputDirs(target) {
  return ['corpus', 'corpus-regressions']
    .map((d) => path.join(fuzzDir, d, target))
    .filter((d) => fs.existsSync(d));
}

function dictArgs(target) {
  const dict = path.join(fuzzDir, `${target}.dict`);
  return fs.existsSync(dict) ? [`-dict=${dict}`] : [];
}

/** Every pyenv CPython 3.8-3.13 with a shared libpython, as [label, path]. */
function libpythons() {
  const base = '/root/.pyenv/versions';
  let names = [];
  try {
    names = fs.readdirSync(base);
  } catch {
    return [];
  }
  const found = [];
  for (const name of names.sort()) {
    const m = /^3\.(\d+)\.\d+$/.exec(name);
    if (!m || Number(m[1]) < 8 || Number(m[1]) > 13) continue;
    const lib = path.join(base, name, 'lib', `libpython3.${m[1]}.so`);
    if (fs.existsSync(lib)) found.push([name, lib]);
  }
  return found.sort((a, b) => Number(a[0].split('.')[1]) - Number(b[0].split('.')[1]));
}

/** Runs every committed input of every target once. */
function replay(targets) {
  let failed = 0;
  for (const target of targets) {
    const dirs = inputDirs(target);
    const runs =
      target === 'fuzz_render' && !process.env.SPYTHON_FUZZ_LIBPYTHON
        ? libpythons().map(([label, lib]) => [`${target} on CPython ${label}`, { SPYTHON_FUZZ_LIBPYTHON: lib }])
        : [[target, {}]];
    if (runs.length === 0) {
      console.error(`fuzz: ${target}: no CPython 3.8-3.13 under /root/.pyenv/versions`);
      failed++;
    }
    for (const [label, env] of runs) {
      const started = Date.now();
      const r = spawnSync(path.join(binDir, target), ['-runs=0', ...dirs], {
        env: { ...process.env, ...env, SPYTHON_FUZZ_QUIET: '1' },
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: 300_000,
      });
      const count = dirs.reduce((n, d) => n + fs.readdirSync(d).length, 0);
      if (r.status === 0) {
        console.log(`ok: ${label}: ${count} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        continue;
      }
      failed++;
      const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
      console.log(`FAILED: ${label} (status ${r.status}, signal ${r.signal})`);
      console.log(output.split('\n').slice(-80).join('\n'));
      const running = [...output.matchAll(/^Running: (.*)$/gm)].map((m) => m[1]);
      const culprit = running[running.length - 1];
      if (culprit) {
        const prefix = Object.entries(env).map(([k, v]) => `${k}=${v} `).join('');
        console.log(`reproduce: ${prefix}${rel(path.join(binDir, target))} ${rel(culprit)}`);
      }
    }
  }
  return failed;
}

/** Fuzzes one target; returns the number of findings. */
function fuzz(target, seconds, merge) {
  const { maxLen } = TARGETS[target];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `spython-${target}-`));
  const fresh = path.join(work, 'new');
  const findings = path.join(binDir, 'findings', target);
  fs.mkdirSync(fresh);
  fs.mkdirSync(findings, { recursive: true });
  const before = new Set(fs.readdirSync(findings));
  const corpus = path.join(fuzzDir, 'corpus', target);
  fs.mkdirSync(corpus, { recursive: true });

  console.log(`\n==== ${target}: ${seconds} s ====`);
  const args = [
    `-max_total_time=${seconds}`,
    `-max_len=${maxLen}`,
    '-timeout=25',
    '-rss_limit_mb=2560',
    '-print_final_stats=1',
    `-artifact_prefix=${findings}${path.sep}`,
    ...dictArgs(target),
    fresh, // new inputs go to the first directory
    ...inputDirs(target),
  ];
  const r = spawnSync(path.join(binDir, target), args, { stdio: 'inherit', timeout: (seconds + 600) * 1000 });
  const found = fs.readdirSync(findings).filter((f) => !before.has(f));
  let failures = 0;
  if (r.status !== 0 || found.length > 0) {
    failures = Math.max(1, found.length);
    console.log(`\nFINDING in ${target} (status ${r.status}, signal ${r.signal}):`);
    for (const f of found) {
      const file = path.join(findings, f);
      console.log(`  input: ${rel(file)}`);
      console.log(`  reproduce: ${rel(path.join(binDir, target))} ${rel(file)}`);
    }
    console.log(
      `  keep it as a regression input once understood: cp <input> ${rel(path.join(fuzzDir, 'corpus-regressions', target))}/`,
    );
  } else if (merge) {
    const had = fs.readdirSync(corpus).length;
    // Edges only (no hit counts): an input joins the corpus when it reaches new code, which keeps
    // the committed corpus small.
    const mergeArgs = ['-merge=1', '-use_counters=0', `-max_len=${maxLen}`, corpus, fresh];
    const m = spawnSync(path.join(binDir, target), mergeArgs, {
      env: { ...process.env, SPYTHON_FUZZ_QUIET: '1' },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (m.status !== 0) {
      console.log(`fuzz: merging into ${rel(corpus)} failed:\n${m.stderr}`);
      failures = 1;
    } else {
      const added = fs.readdirSync(corpus).length - had;
      console.log(`${target}: no findings; ${added} new input(s) merged into ${rel(corpus)}`);
    }
  } else {
    console.log(`${target}: no findings`);
  }
  fs.rmSync(work, { recursive: true, force: true });
  return failures;
}

function main() {
  const args = process.argv.slice(2);
  const replayOnly = args.includes('--replay');
  const names = args.filter((a) => a !== '--replay');
  for (const n of names) if (!(n in TARGETS)) usage(`unknown target ${n}`);
  const targets = names.length ? names : Object.keys(TARGETS);
  const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
  if (!Number.isFinite(seconds) || seconds <= 0) usage('FUZZ_SECONDS must be a positive number');
  const merge = process.env.FUZZ_MERGE !== '0';

  build();
  if (replayOnly) {
    const failed = replay(targets);
    console.log(`${failed === 0 ? 'all' : failed} ${failed === 0 ? 'replays passed' : 'replay(s) failed'}`);
    process.exit(failed ? 1 : 0);
  }
  // The committed inputs first: a regression shows at once, with its file named.
  if (replay(targets) > 0) {
    console.log('\nfuzz: committed inputs fail (above); fix those first.');
    process.exit(1);
  }
  let findings = 0;
  for (const target of targets) findings += fuzz(target, seconds, merge);
  console.log(`\nfuzz: ${findings === 0 ? 'no findings' : `${findings} finding(s)`} in ${targets.join(', ')}`);
  process.exit(findings ? 1 : 0);
}

main();
