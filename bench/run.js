#!/usr/bin/env node
// The benchmark suite (`npm run bench`, `npm run bench -- --quick`): every workload under every
// contender, side by side in one run, as medians of paired ratios (see lib/measure.js); writes
// bench/results.md with the table and the machine it ran on. Not part of `npm test`: targets are
// judged here, never by timed assertions in tests.
//
// Options: --quick (fewer rounds, smaller workloads), --only NAME[,NAME] (sections: imports, fileio,
// storm, argsize, ingest, compileall, unittest, overhead, instructions, versions, stamp, f5, memory),
// --out FILE (default bench/results.md).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');
const { timeProcess, paired, summary, hasGnuTime } = require('./lib/measure');
const { f5Once, plainOnce } = require('./lib/dap');
const { sampleResident } = require('./lib/memory');

const ROOT = path.resolve(__dirname, '..');
const LAUNCHER = path.join(ROOT, 'dist', 'bin', 'spython');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const ADAPTER = path.join(ROOT, 'dist', 'adapter.js');
const WORKLOADS = path.join(__dirname, 'workloads');
const PYENV = process.env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv');
const SECTIONS = ['imports', 'fileio', 'storm', 'argsize', 'ingest', 'compileall', 'unittest', 'overhead', 'instructions', 'versions', 'stamp', 'f5', 'memory'];

// ---- options ---------------------------------------------------------------------------------------

function parseOptions(argv) {
  const options = { quick: false, only: new Set(SECTIONS), out: path.join(__dirname, 'results.md') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--only') options.only = new Set(String(argv[++i] ?? '').split(','));
    else if (arg === '--out') options.out = path.resolve(argv[++i] ?? '');
    else {
      console.error(`bench: unknown option ${arg}\nusage: npm run bench [-- --quick] [--only ${SECTIONS.join(',')}] [--out FILE]`);
      process.exit(2);
    }
  }
  for (const name of options.only) {
    if (!SECTIONS.includes(name)) {
      console.error(`bench: unknown section ${name} (known: ${SECTIONS.join(', ')})`);
      process.exit(2);
    }
  }
  return options;
}

const options = parseOptions(process.argv.slice(2));
const SIZE = options.quick
  ? { rounds: 3, overheadRounds: 5, storm: 300_000, argsize: 100_000, files: 5_000, stamp: 5_000, memoryEvents: 2_000_000, f5: 5 }
  : { rounds: 11, overheadRounds: 31, storm: 1_000_000, argsize: 300_000, files: 20_000, stamp: 5_000, memoryEvents: 10_000_000, f5: 11 };

// ---- the machine -----------------------------------------------------------------------------------

function pythonAt(version) {
  const dir = fs.existsSync(PYENV) ? fs.readdirSync(path.join(PYENV, 'versions')).find((v) => v.startsWith(`${version}.`)) : undefined;
  if (!dir) return undefined;
  const exe = path.join(PYENV, 'versions', dir, 'bin', `python${version}`);
  return fs.existsSync(exe) ? exe : undefined;
}

function commandOutput(argv) {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return undefined;
  }
}

// Node's own start-up, which every CLI figure carries: the median of a few `node -e 0`. Said with
// NODE_EXTRA_CA_CERTS, which makes every Node start parse a whole CA bundle (set on some machines).
function nodeStartup() {
  const times = [];
  for (let i = 0; i < 7; i++) {
    const start = process.hrtime.bigint();
    execFileSync(process.execPath, ['-e', '0']);
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  return `\`node -e 0\` takes ${summary(times).median.toFixed(3)} s (median of 7)${extra ? `; NODE_EXTRA_CA_CERTS=${extra} is set, so every Node start parses that bundle` : ''}`;
}

function machine(pythons) {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cpu: model,
    cores: os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    node: process.version,
    pythons: Object.entries(pythons)
      .filter(([, exe]) => exe)
      .map(([v, exe]) => `${commandOutput([exe, '--version']) ?? v} (${exe})`),
    strace: commandOutput(['strace', '-V'])?.split('\n')[0],
    nodeStartup: nodeStartup(),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    loadAtStart: os.loadavg()[0],
  };
}

// ---- contenders ------------------------------------------------------------------------------------

const WORK = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'spython-bench-'));
let logCount = 0;
const freshLog = () => path.join(WORK, `log-${++logCount}`);
const hasStrace = commandOutput(['strace', '-V']) !== undefined;
const hasValgrind = commandOutput(['valgrind', '--version']) !== undefined;
const notes = [];

/** The launcher with full JSONL capture into `log`, running `target` (the interpreter's arguments). */
const launcherArgv = (log, python, target) => [LAUNCHER, '--log-file', log, '--python', python, ...target];
/** Runs launcherArgv to completion. */
const runLauncher = (log, python, target) => {
  const [file, ...args] = launcherArgv(log, python, target);
  return execFileSync(file, args);
};

/**
 * The contenders for one Python program: `target` is the interpreter's own arguments for it
 * (`[script, ...args]` or `['-m', module, ...args]`).
 */
function contenders(python, target, { prepare, cleanup, only } = {}) {
  const module = target[0] === '-m';
  const list = [
    { name: 'plain', argv: () => [python, ...target] },
    { name: 'launcher', argv: (log) => launcherArgv(log, python, target) },
    {
      name: 'cli',
      argv: (log) => [process.execPath, CLI, 'run', '-q', '--no-summary', '--jsonl', log, '--python', python,
        ...(module ? ['--module', target[1], '--', ...target.slice(2)] : ['--', ...target])],
    },
    {
      name: 'pyhook',
      argv: (log) => [python, path.join(WORKLOADS, 'pyhook.py'), log, ...(module ? target : ['--', ...target])],
    },
    { name: 'strace', argv: (log) => ['strace', '-f', '-qq', '-e', 'trace=file,network', '-o', log, python, ...target] },
  ].filter((c) => (only ? only.includes(c.name) : true) && (c.name !== 'strace' || hasStrace));
  return list.map((c) => contender(c.name, c.argv, { prepare, cleanup }));
}

/** A contender running `argv(log)` in the work directory, with a fresh log it removes afterwards. */
function contender(name, argv, { prepare, cleanup } = {}) {
  const log = freshLog();
  return {
    name,
    before: async () => prepare?.(),
    run: () => timeProcess(argv(log), { cwd: WORK }),
    after: async () => {
      fs.rmSync(log, { force: true });
      await cleanup?.();
    },
  };
}

/** The launcher writing its records to /dev/null: what making them costs, storing them left out. */
const devNullContender = (python, target, options) =>
  contender('launcher-devnull', () => launcherArgv('/dev/null', python, target), options);

/**
 * The floors any C audit hook pays (bench/floor/floorhook.c, built against `python`'s headers):
 * CPython's dispatch to a hook that does nothing, and that plus writing a fixed line as long as the
 * launcher's record for this workload. Both are measured against the same wrapper with no hook
 * (ctypes loaded), so the per-event figures leave the wrapper's start-up out. None when no compiler.
 */
function floorContenders(python, target) {
  const include = commandOutput([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["include"])']);
  const lib = path.join(WORK, `floorhook-${path.basename(python)}.so`);
  try {
    execFileSync('cc', ['-O2', '-shared', '-fPIC', `-I${include}`, '-o', lib, path.join(__dirname, 'floor', 'floorhook.c')], { stdio: 'pipe' });
  } catch (err) {
    notes.push(`The C hook floors were not measured: building bench/floor/floorhook.c failed (${String(err.stderr ?? err.message).split('\n')[0]}).`);
    return [];
  }
  // The launcher's mean record length on this workload, from a short run.
  const sample = freshLog();
  runLauncher(sample, python, [target[0], '2000']);
  const records = fs.readFileSync(sample, 'latin1').split('\n').filter((l) => l.includes('"bench.storm"'));
  fs.rmSync(sample, { force: true });
  const recordBytes = Math.round(records.reduce((n, l) => n + l.length + 1, 0) / records.length);
  return [['floor-base', -1], ['floor-empty', 0], ['floor-line', 1]].map(([name, mode]) =>
    contender(name, (log) => [python, path.join(WORKLOADS, 'floorhook.py'), lib, String(mode), log, String(recordBytes), '--', ...target]));
}

/** The launcher's per-event target on the storm (ns added per event, with the location). */
const PER_EVENT_LIMIT_NS = 150;

/** The launcher's overhead targets, by workload. */
const OVERHEAD_LIMITS = { imports: 1.02, fileio: 1.05, compileall: 1.02, unittest: 1.02 };

/**
 * The workloads the launcher's overhead targets are judged on. `target()` gives the interpreter's
 * arguments (made on first use: the stdlib copy takes a few seconds).
 */
function overheadWorkloads(python) {
  const dir = path.join(WORK, 'files');
  let copy;
  return [
    { section: 'imports', title: 'Import-heavy start-up (~150 stdlib modules)', target: () => [path.join(WORKLOADS, 'imports.py')] },
    {
      section: 'fileio',
      title: `File I/O: ${SIZE.files.toLocaleString('en')} small files on tmpfs (create, stat, read, list, remove)`,
      target: () => [path.join(WORKLOADS, 'fileio.py'), dir, String(SIZE.files)],
      options: { prepare: () => fs.mkdirSync(dir), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) },
    },
    {
      section: 'compileall',
      title: '`compileall -f` of a stdlib copy (16 packages and the top-level modules)',
      target: () => ['-m', 'compileall', '-q', '-f', (copy ??= stdlibCopy(python))],
    },
    { section: 'unittest', title: 'Stdlib unittest modules (`-m unittest test.test_re test.test_difflib`)', target: () => ['-m', 'unittest', '-q', 'test.test_re', 'test.test_difflib'] },
  ];
}

// ---- sections --------------------------------------------------------------------------------------

const CONTENDER_LABEL = {
  plain: 'plain python (the floor)',
  'plain-again': 'plain python again (its ratio to itself: the noise floor of these rounds)',
  launcher: 'launcher, full JSONL capture',
  cli: 'CLI end to end (Node ingests every record)',
  pyhook: 'hand-written `sys.addaudithook` JSON logger',
  strace: '`strace -f -e trace=file,network`',
  'cli-startup': 'CLI end to end, the same program raising no event (its start-up)',
  'launcher-devnull': 'launcher, records made and written to /dev/null (storing them left out)',
  'floor-base': 'floor: python with ctypes loaded, no hook (the two floors\' baseline)',
  'floor-empty': 'floor: a C hook that returns at once (CPython\'s own dispatch)',
  'floor-line': 'floor: a C hook writing a fixed line of a record\'s length, 64 KiB batches (the bytes\' cost)',
};

const results = [];   // {section, title, rows: [{contender, ratio, seconds, rssKiB, extra}], targets: [...]}

function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

async function ratioSection(section, title, runs, list, extra) {
  log(`${title}: ${list.map((c) => c.name).join(', ')}; ${runs} rounds`);
  const samples = await paired(list, runs, (m) => log(`  ${m}`));
  const rows = list.map((c) => {
    const s = samples.get(c.name);
    return {
      contender: c.name,
      ratio: summary(s.ratio),
      seconds: summary(s.seconds),
      rssKiB: s.rssKiB.length ? summary(s.rssKiB) : undefined,
      cpuRatio: s.cpuRatio.length ? summary(s.cpuRatio) : undefined,
    };
  });
  const entry = { section, title, rows, samples, extra: extra?.(samples) };
  results.push(entry);
  return entry;
}

/**
 * Nanoseconds each event adds over plain python, round by round: (contender − plain) / events, in
 * wall time and, when GNU time measured it, in CPU time (user + system of all the contender's
 * processes: on a loaded machine it is the steadier of the two, but it adds up work done in parallel).
 */
function perEventNs(samples, name, events, baseline = 'plain') {
  const per = (key) => {
    const plain = samples.get(baseline)[key];
    const mine = samples.get(name)[key];
    return mine.length === plain.length && mine.length > 0
      ? summary(mine.map((t, i) => ((t - plain[i]) / events) * 1e9))
      : undefined;
  };
  return { wall: per('seconds'), cpu: per('cpuSeconds') };
}

function stdlibCopy(python) {
  const lib = commandOutput([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["stdlib"])']);
  const dest = path.join(WORK, 'stdlib-copy');
  const packages = ['email', 'json', 'http', 'logging', 'xml', 'asyncio', 'concurrent', 'importlib', 'unittest', 'urllib', 'wsgiref', 'zoneinfo', 'tomllib', 'sqlite3', 'collections', 're'];
  fs.mkdirSync(dest);
  for (const name of fs.readdirSync(lib)) {
    const from = path.join(lib, name);
    if ((name.endsWith('.py') || packages.includes(name)) && fs.existsSync(from)) {
      fs.cpSync(from, path.join(dest, name), { recursive: true, filter: (p) => !p.includes('__pycache__') });
    }
  }
  return dest;
}

function stampTree(count) {
  const dest = path.join(WORK, 'stamp-tree');
  const files = [];
  for (let i = 0; i < count; i++) {
    const dir = path.join(dest, `pkg${Math.floor(i / 100)}`);
    if (i % 100 === 0) fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `mod${i}.py`);
    // About 2 KB of plausible source each.
    const body = Array.from({ length: 40 }, (_, k) => `def function_${k}(value):\n    return value * ${i + k}  # ${'x'.repeat(10)}\n`).join('');
    fs.writeFileSync(file, `"""Module ${i}."""\n${body}`);
    files.push(file);
  }
  return { dest, files };
}

async function main() {
  const pythons = { '3.12': pythonAt('3.12'), '3.8': pythonAt('3.8'), '3.13': pythonAt('3.13') };
  const python = pythons['3.12'] ?? commandOutput(['sh', '-c', 'command -v python3']);
  for (const file of [LAUNCHER, CLI, ADAPTER]) {
    if (!fs.existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing: run \`npm run build\` first`);
  }
  if (!pythons['3.12']) notes.push(`Python 3.12 not found under ${PYENV}/versions: the workloads ran on ${python}.`);
  if (!hasStrace) notes.push('strace is not installed (Debian package `strace`): its column is missing.');
  if (!hasValgrind && options.only.has('instructions')) notes.push('valgrind is not installed (Debian package `valgrind`): the instruction counts are missing.');
  if (!hasGnuTime) notes.push('GNU time (/usr/bin/time, Debian package `time`) is not installed: no peak-memory figures.');
  const info = machine(pythons);
  const R = SIZE.rounds;

  const workloads = overheadWorkloads(python);
  // Each asked-for workload of `sections`, under every contender.
  const workloadSections = async (...sections) => {
    for (const w of workloads.filter((x) => sections.includes(x.section) && options.only.has(x.section))) {
      await ratioSection(w.section, w.title, R, contenders(python, w.target(), w.options));
    }
  };
  await workloadSections('imports', 'fileio');
  if (options.only.has('storm')) {
    const events = SIZE.storm;
    const storm = [path.join(WORKLOADS, 'storm.py'), String(events)];
    // The CLI's own start-up (Node, the engine, the channel), to tell it from what each event costs.
    const cliStartup = contenders(python, [path.join(WORKLOADS, 'storm.py'), '0'], { only: ['cli'] })
      .map((c) => ({ ...c, name: 'cli-startup' }));
    // Beside full capture, the file system's share (tmpfs allocating and filling a page every 4 KiB) left out.
    const devNull = devNullContender(python, storm);
    const floors = floorContenders(python, storm);
    await ratioSection('storm', `Event storm: ${events.toLocaleString('en')} \`sys.audit\` calls`, R,
      [...contenders(python, storm), devNull, ...cliStartup, ...floors],
      (samples) => ({
        ...Object.fromEntries(['launcher', 'launcher-devnull', 'cli', 'pyhook', 'strace'].filter((n) => samples.has(n)).map((n) => [n, perEventNs(samples, n, events)])),
        ...Object.fromEntries(['floor-empty', 'floor-line'].filter((n) => samples.has(n)).map((n) => [n, perEventNs(samples, n, events, 'floor-base')])),
      }));
  }
  if (options.only.has('argsize')) {
    await argsizeSection(python, R);
  }
  if (options.only.has('ingest')) {
    await ingestSection(python, R);
  }
  await workloadSections('compileall', 'unittest');
  if (options.only.has('overhead')) {
    // The launcher's 1.02× and 1.05× targets lie within the spread of an 11-round median here: the
    // launcher and plain python alone, over more rounds, with plain python against itself for the
    // noise floor of the same rounds.
    for (const w of workloads) {
      const target = w.target();
      await ratioSection(`${w.section}-overhead`, `${w.title}: the launcher alone, ${SIZE.overheadRounds} rounds`, SIZE.overheadRounds, [
        ...contenders(python, target, { ...w.options, only: ['plain', 'launcher'] }),
        contender('plain-again', () => [python, ...target], w.options),
        // Where the log's bytes are a visible share (tens of MB): the launcher without storing them.
        ...(w.section === 'fileio' ? [devNullContender(python, target, w.options)] : []),
      ]);
    }
  }
  if (options.only.has('instructions') && hasValgrind) {
    instructionsSection(python);
  }
  if (options.only.has('versions')) {
    for (const version of ['3.8', '3.13']) {
      const exe = pythons[version];
      if (!exe) {
        notes.push(`Python ${version} not found under ${PYENV}/versions: its storm row is missing.`);
        continue;
      }
      const events = SIZE.storm;
      await ratioSection(`storm-${version}`, `Event storm on ${version}: ${events.toLocaleString('en')} \`sys.audit\` calls`, R,
        contenders(exe, [path.join(WORKLOADS, 'storm.py'), String(events)], { only: ['plain', 'launcher', 'cli'] }),
        (samples) => Object.fromEntries(['launcher', 'cli'].map((n) => [n, perEventNs(samples, n, events)])));
    }
  }
  if (options.only.has('stamp')) {
    const { dest, files } = stampTree(SIZE.stamp);
    log(`stamp: ${files.length} modules`);
    const list = [
      { name: 'sha256sum', run: () => timeProcess(['sha256sum', ...files]) },
      { name: 'stamp', run: () => timeProcess([process.execPath, CLI, 'stamp', dest]) },
      // The command line's start-up alone: stamping's own cost is the difference.
      { name: 'startup', run: () => timeProcess([process.execPath, CLI, '--version']) },
    ];
    const samples = await paired(list, R, (m) => log(`  ${m}`));
    results.push({
      section: 'stamp',
      title: `Stamping ${files.length.toLocaleString('en')} small modules vs \`sha256sum\` over the same files`,
      rows: list.map((c) => ({ contender: c.name, ratio: summary(samples.get(c.name).ratio), seconds: summary(samples.get(c.name).seconds) })),
    });
  }
  if (options.only.has('f5')) {
    const program = path.join(WORKLOADS, 'hello.py');
    const list = [
      { name: 'plain', run: () => plainOnce(python, program) },
      { name: 'f5', run: () => f5Once(ADAPTER, python, program, process.env) },
    ];
    log(`F5 latency: ${SIZE.f5} rounds`);
    const samples = await paired(list, SIZE.f5, (m) => log(`  ${m}`));
    const plain = samples.get('plain').seconds;
    results.push({
      section: 'f5',
      title: 'F5 (DAP initialize → launch → configurationDone) to the program\'s first output',
      rows: list.map((c) => ({ contender: c.name, ratio: summary(samples.get(c.name).ratio), seconds: summary(samples.get(c.name).seconds) })),
      extra: { addedMs: summary(samples.get('f5').seconds.map((t, i) => (t - plain[i]) * 1000)) },
    });
  }
  if (options.only.has('memory')) {
    const events = SIZE.memoryEvents;
    const jsonl = freshLog();
    log(`adapter memory: ${events.toLocaleString('en')} events through the CLI`);
    const run = await sampleResident([process.execPath, CLI, 'run', '-q', '--no-summary', '--jsonl', jsonl, '--python', python,
      '--', path.join(WORKLOADS, 'storm.py'), String(events)]);
    const lines = Number(commandOutput(['sh', '-c', `grep -c '^{"event":"bench.storm"' ${jsonl}`]));
    fs.rmSync(jsonl, { force: true });
    // The steady state: past the first tenth of the run the engine, the launcher's connection and the
    // buffers are all set up.
    const steady = run.samples.filter(([t]) => t >= run.seconds / 10).map(([, kib]) => kib);
    const at = (fraction) => run.samples.filter(([t]) => t <= run.seconds * fraction).pop()?.[1];
    results.push({
      section: 'memory',
      title: `Adapter (CLI engine) resident memory over a ${events.toLocaleString('en')}-event storm`,
      memory: {
        events, seconds: run.seconds, logged: lines, samples: run.samples.length,
        trajectory: [0.1, 0.25, 0.5, 0.75, 1].map((f) => [f, at(f)]),
        medianKiB: summary(steady).median, minKiB: Math.min(...steady), maxKiB: Math.max(...steady),
      },
    });
  }

  fs.writeFileSync(options.out, report(info));
  log(`wrote ${path.relative(process.cwd(), options.out)}`);
}

/**
 * Arguments: one per kind, just past the size at which the launcher stops rendering (so the record
 * shows the cut) and 16,000–65,000 times larger. Their records are the same length (but for the
 * length's digits): what the larger one adds per event is work that grows with the argument.
 */
const ARGUMENT_SIZES = [
  { kind: 'bytes', unit: 'bytes', small: 257, large: 16 * 2 ** 20 },
  { kind: 'str', unit: 'characters', small: 1025, large: 16 * 2 ** 20 },
  { kind: 'list', unit: 'items', small: 33, large: 2 ** 20 },
  { kind: 'dict', unit: 'pairs', small: 33, large: 2 ** 20 },
  { kind: 'int', unit: 'bits', small: 1025, large: 16 * 2 ** 20 },
];
/** The most the large argument's cost per event may exceed the small one's: noise, not growth. */
const ARGSIZE_LIMIT = 1.25;

/**
 * The storm's cost per event by argument size: for each kind, plain python and the launcher on the
 * small and the large argument in the same rounds; per event, each launcher run less the plain run
 * of the same program (which builds the argument once), round by round.
 */
async function argsizeSection(python, rounds) {
  const events = SIZE.argsize;
  const rows = [];
  for (const a of ARGUMENT_SIZES) {
    const program = (size) => [path.join(WORKLOADS, 'storm.py'), String(events), a.kind, String(size)];
    const list = ['small', 'large'].flatMap((which) =>
      contenders(python, program(a[which]), { only: ['plain', 'launcher'] }).map((c) => ({ ...c, name: `${c.name}-${which}` })));
    log(`argument size, ${a.kind}: ${a.small} and ${a.large} ${a.unit}, ${events.toLocaleString('en')} events; ${rounds} rounds`);
    const samples = await paired(list, rounds, (m) => log(`  ${m}`));
    const added = (which) => samples.get(`launcher-${which}`).seconds.map((t, i) => ((t - samples.get(`plain-${which}`).seconds[i]) / events) * 1e9);
    const small = added('small');
    const large = added('large');
    rows.push({ ...a, smallNs: summary(small), largeNs: summary(large), ratio: summary(large.map((ns, i) => ns / small[i])) });
  }
  results.push({
    section: 'argsize',
    title: `Event storm by argument size: ${events.toLocaleString('en')} \`sys.audit\` calls passing one argument, small or large`,
    argsize: rows,
  });
}

/**
 * Instructions executed in user space (valgrind's callgrind), plain python and the launcher on the same
 * program: a count the machine's load does not move, so a few tenths of a percent between builds show
 * where an 11-round median cannot. It leaves out the kernel's work (the log's writes) and counts every
 * instruction alike (a `rep movsb` copy counts each byte): a measure of the work the launcher adds in
 * user space, not of time.
 */
function instructionsSection(python) {
  const dir = path.join(WORK, 'files-counted');
  const files = 2_000;
  const events = 100_000;
  const programs = [
    { label: 'Import-heavy start-up (~150 stdlib modules)', target: [path.join(WORKLOADS, 'imports.py')] },
    { label: `File I/O: ${files.toLocaleString('en')} small files on tmpfs`, target: [path.join(WORKLOADS, 'fileio.py'), dir, String(files)], dir },
    { label: `Event storm: ${events.toLocaleString('en')} \`sys.audit\` calls`, target: [path.join(WORKLOADS, 'storm.py'), String(events)], events },
  ];
  const counted = (argv, program) => {
    if (program.dir) fs.mkdirSync(program.dir);
    // A fixed hash seed: randomized str hashes move a count by ~0.1% from run to run.
    const run = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', ...argv], {
      cwd: WORK,
      encoding: 'utf8',
      env: { ...process.env, PYTHONHASHSEED: '0' },
    });
    if (program.dir) fs.rmSync(program.dir, { recursive: true, force: true });
    const collected = /Collected : (\d+)/.exec(run.stderr ?? '');
    if (run.status !== 0 || !collected) throw new Error(`callgrind of ${argv.join(' ')} failed (status ${run.status}):\n${String(run.stderr).slice(-2000)}`);
    return Number(collected[1]);
  };
  const rows = [];
  for (const program of programs) {
    log(`instructions: ${program.label}`);
    const jsonl = freshLog();
    const plain = counted([python, ...program.target], program);
    const launcher = counted(launcherArgv(jsonl, python, program.target), program);
    fs.rmSync(jsonl, { force: true });
    rows.push({ label: program.label, plain, launcher, perEvent: program.events ? (launcher - plain) / program.events : undefined });
  }
  results.push({ section: 'instructions', title: 'Instructions executed in user space (valgrind\'s callgrind): plain python and the launcher', instructions: rows });
}

/**
 * Node's ingest on its own: the CLI reading a storm the launcher recorded, sent by a stand-in for the
 * launcher (workloads/replay.py, started as $SPYTHON_LAUNCHER) whose sendfile costs far less than
 * Node's reading, so the CLI's pace is Node's. The same CLI run on an empty recording is its
 * start-up; the difference, round by round, is what the records cost.
 */
async function ingestSection(python, rounds) {
  const recorded = freshLog();
  runLauncher(recorded, python, [path.join(WORKLOADS, 'storm.py'), String(SIZE.storm)]);
  const records = Number(commandOutput(['sh', '-c', `wc -l < ${recorded}`]));
  const recordedBytes = fs.statSync(recorded).size;
  const empty = freshLog();
  fs.writeFileSync(empty, '');
  const standIn = path.join(WORK, 'replay-launcher');
  fs.writeFileSync(standIn, `#!/bin/sh\nexec '${python}' '${path.join(WORKLOADS, 'replay.py')}' "$@"\n`, { mode: 0o755 });
  const replay = (name, file) => {
    const log = freshLog();
    return {
      name,
      run: () => timeProcess([process.execPath, CLI, 'run', '-q', '--no-summary', '--jsonl', log, '--python', python, '--', path.join(WORKLOADS, 'storm.py')], {
        cwd: WORK,
        env: { ...process.env, SPYTHON_LAUNCHER: standIn, BENCH_REPLAY: file },
      }),
      after: async () => {
        // Every record must have come through: else the figures would time a failure.
        const logged = fs.statSync(log).size;
        if (file === recorded && logged !== recordedBytes) {
          throw new Error(`ingest: the CLI logged ${logged} bytes of the ${recordedBytes} replayed`);
        }
        fs.rmSync(log, { force: true });
      },
    };
  };
  const list = [replay('replay-empty', empty), replay('replay', recorded)];
  log(`Node ingest: ${records.toLocaleString('en')} recorded records replayed through the CLI; ${rounds} rounds`);
  const samples = await paired(list, rounds, (m) => log(`  ${m}`));
  fs.rmSync(recorded, { force: true });
  const base = samples.get('replay-empty');
  const full = samples.get('replay');
  const perRecordNs = (xs, bases) => summary(xs.map((x, i) => ((x - bases[i]) / records) * 1e9));
  results.push({
    section: 'ingest',
    title: `Node ingest on its own: ${records.toLocaleString('en')} recorded storm records replayed into the CLI`,
    ingest: {
      records,
      startup: summary(base.seconds),
      total: summary(full.seconds),
      wallNs: perRecordNs(full.seconds, base.seconds),
      cpuNs: full.cpuSeconds.length > 0 ? perRecordNs(full.cpuSeconds, base.cpuSeconds) : undefined,
    },
  });
}

// ---- the report ------------------------------------------------------------------------------------

const fmt = (x, digits = 2) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(digits));
const spread = (s, digits = 2) => `${fmt(s.min, digits)}–${fmt(s.max, digits)}`;
const mib = (kib) => (kib === undefined ? '—' : (kib / 1024).toFixed(1));

function verdict(ok) {
  return ok ? 'met' : '**missed**';
}

function report(info) {
  const out = [];
  out.push('# Benchmark results', '');
  out.push(`Written by \`npm run bench${options.quick ? ' -- --quick' : ''}\` (bench/run.js). Each round runs every contender once, in a rotating order, after one`);
  out.push('warm-up round; a ratio is the contender\'s wall time over plain python\'s *in the same round*, and the table gives the median');
  out.push('of those paired ratios with their spread (min–max over rounds). Absolute times are for orientation only: this machine is shared');
  out.push('and noisy (other tenants take CPU time: wall time then exceeds user + system time). The CPU ratio (user + system time of');
  out.push('all the contender\'s processes over plain python\'s) is less disturbed by them, but counts work done in parallel (the CLI\'s');
  out.push('Node process runs beside the launcher) that the wall ratio does not. Peak RSS is the largest single process (GNU time), and GNU time counts CPU in 10 ms steps: the CPU ratio means little for runs of a few tenths of a second.', '');
  out.push('## Machine', '');
  out.push(`- CPU: ${info.cpu}, ${info.cores} cores; memory ${info.memory}`);
  out.push(`- Kernel: ${info.kernel}`);
  out.push(`- Python: ${info.pythons.join('; ')}`);
  out.push(`- Node: ${info.node}; ${info.nodeStartup}`);
  if (info.strace) out.push(`- ${info.strace}`);
  out.push(`- Date: ${info.date}`);
  // Other tenants' load is the main source of spread: said, so a noisy table can be read as one.
  out.push(`- Load average (1 min): ${fmt(info.loadAtStart)} at the start, ${fmt(os.loadavg()[0])} at the end, on ${info.cores} cores`);
  out.push(`- Mode: ${options.quick ? 'quick (fewer rounds, smaller workloads)' : 'full'}`, '');

  const targets = [];
  const bySection = Object.fromEntries(results.map((r) => [r.section, r]));
  const rowOf = (section, name) => bySection[section]?.rows?.find((r) => r.contender === name);

  out.push('## Workloads × contenders', '');
  for (const r of results.filter((x) => x.rows && !['stamp', 'f5'].includes(x.section))) {
    out.push(`### ${r.title}`, '');
    const perEventColumns = r.extra !== undefined;
    out.push(`| contender | wall ratio to plain (median) | spread | CPU ratio (median) | wall s (median) | peak RSS MiB (median) |${perEventColumns ? ' added per event, wall (median, spread) | added per event, CPU (median) |' : ''}`);
    out.push(`| --- | --- | --- | --- | --- | --- |${perEventColumns ? ' --- | --- |' : ''}`);
    for (const row of r.rows) {
      const perEvent = r.extra?.[row.contender];
      const perEventCells = !perEventColumns ? ''
        : perEvent ? ` ${fmt(perEvent.wall.median, 0)} ns (${spread(perEvent.wall, 0)}) | ${perEvent.cpu ? `${fmt(perEvent.cpu.median, 0)} ns` : '—'} |`
          : ' | |';
      out.push(`| ${CONTENDER_LABEL[row.contender]} | ${fmt(row.ratio.median, 3)}× | ${spread(row.ratio)} | ${row.cpuRatio ? `${fmt(row.cpuRatio.median, 3)}×` : '—'} | ${fmt(row.seconds.median, 3)} | ${mib(row.rssKiB?.median)} |${perEventCells}`);
    }
    out.push('');
  }

  // Targets of issue #9 (and #7, #10).
  const storm = bySection.storm;
  if (storm) {
    const perEvent = (ns) => `${fmt(ns.wall.median, 0)} ns wall${ns.cpu ? `, ${fmt(ns.cpu.median, 0)} ns CPU` : ''}`;
    const launcherNs = storm.extra.launcher;
    // What any C hook pays before formatting anything: said beside the target it bounds.
    const floorEmpty = storm.extra['floor-empty'];
    const floorLine = storm.extra['floor-line'];
    const devNullNs = storm.extra['launcher-devnull'];
    const floorText = [
      devNullNs && `; the launcher writing to /dev/null ${perEvent(devNullNs)}`,
      floorEmpty && floorLine && `; floors in the same rounds: a C hook that does nothing ${perEvent(floorEmpty)}, one writing a record-length line ${perEvent(floorLine)}`,
    ].filter(Boolean).join('');
    targets.push([`≤ ${PER_EVENT_LIMIT_NS} ns added per event, launcher, storm (3.12)`, `${perEvent(launcherNs)}${floorText}`, launcherNs.wall.median <= PER_EVENT_LIMIT_NS]);
    for (const version of ['3.8', '3.13']) {
      const s = bySection[`storm-${version}`];
      if (s) targets.push([`… held on ${version}`, perEvent(s.extra.launcher), s.extra.launcher.wall.median <= PER_EVENT_LIMIT_NS]);
    }
    const cli = rowOf('storm', 'cli');
    if (cli) {
      // What bounds it from below, measured in the same rounds: the CLI's start-up and the launcher alone.
      const startupRow = rowOf('storm', 'cli-startup');
      const launcherRow = rowOf('storm', 'launcher');
      // The CLI waits for the launcher, which its start-up precedes: a launcher exactly at the
      // per-event target would alone take the storm to this ratio.
      const plainSeconds = rowOf('storm', 'plain').seconds.median;
      const atTarget = (plainSeconds + SIZE.storm * PER_EVENT_LIMIT_NS * 1e-9) / plainSeconds;
      const bounds = [
        startupRow && `its start-up alone ${fmt(startupRow.ratio.median)}×`,
        launcherRow && `the launcher alone ${fmt(launcherRow.ratio.median)}×`,
        `a launcher at ${PER_EVENT_LIMIT_NS} ns an event alone ${fmt(atTarget)}×`,
      ].filter(Boolean);
      targets.push(['CLI end to end ≤ 3× on the storm', `${fmt(cli.ratio.median)}× (${bounds.join(', ')})`, cli.ratio.median <= 3]);
      // What one more event costs end to end, the CLI's start-up left out (paired, round by round).
      const startup = storm.samples.get('cli-startup').seconds;
      const marginalNs = summary(storm.samples.get('cli').seconds.map((t, i) => ((t - startup[i]) / SIZE.storm) * 1e9));
      // Bounded by the launcher's own pace (it, not Node, is the slower side here): Node's on its own
      // is the ingest section's.
      targets.push(['Node ingest ≥ 4 M events/s, end to end (storm events / (CLI time − CLI start-up time), the launcher producing them)', `${fmt(1e3 / marginalNs.median)} M/s`, marginalNs.median <= 250]);
      const pyhookNs = storm.extra.pyhook;
      if (pyhookNs) {
        const factor = pyhookNs.wall.median / marginalNs.median;
        targets.push(['CLI ≥ 10× cheaper per event than the hand-written Python hook (CLI start-up left out)', `${fmt(factor, 1)}× (${fmt(marginalNs.median, 0)} vs ${fmt(pyhookNs.wall.median, 0)} ns)`, factor >= 10]);
      }
    }
  }
  for (const [section, limit] of Object.entries(OVERHEAD_LIMITS)) {
    // The longer pass when there is one (with its noise floor), else the workload's own section.
    const long = rowOf(`${section}-overhead`, 'launcher');
    const short = rowOf(section, 'launcher');
    const row = long ?? short;
    const floor = long && rowOf(`${section}-overhead`, 'plain-again');
    const devNull = long && rowOf(`${section}-overhead`, 'launcher-devnull');
    const detail = long ? ` (${SIZE.overheadRounds} rounds; plain python against itself ${fmt(floor.ratio.median, 3)}×${devNull ? `; writing to /dev/null ${fmt(devNull.ratio.median, 3)}×` : ''}${short ? `; ${fmt(short.ratio.median, 3)}× in the ${SIZE.rounds}-round section` : ''})` : '';
    if (row) targets.push([`launcher ≤ ${limit.toFixed(2)}× on ${section}`, `${fmt(row.ratio.median, 3)}×${detail}`, row.ratio.median <= limit]);
  }
  const cliFiles = rowOf('fileio', 'cli');
  if (cliFiles) {
    // The CLI's start-up (the storm section's program raising no event) against plain python's whole run.
    const startupRow = rowOf('storm', 'cli-startup');
    const plainFiles = rowOf('fileio', 'plain');
    const context = startupRow && plainFiles
      ? ` (the CLI's start-up alone: ${fmt(startupRow.seconds.median, 3)} s, measured in the storm section, against plain python's ${fmt(plainFiles.seconds.median, 3)} s for the whole workload)`
      : '';
    targets.push(['CLI end to end ≤ 1.10× on file I/O', `${fmt(cliFiles.ratio.median, 3)}×${context}`, cliFiles.ratio.median <= 1.1]);
  }
  for (const section of ['imports', 'storm']) {
    const plain = rowOf(section, 'plain');
    const launcher = rowOf(section, 'launcher');
    if (plain?.rssKiB && launcher?.rssKiB) {
      const extra = (launcher.rssKiB.median - plain.rssKiB.median) / 1024;
      targets.push([`#10: launcher peak RSS within a few MB of plain python (${section})`, `+${fmt(extra, 1)} MiB (${mib(launcher.rssKiB.median)} vs ${mib(plain.rssKiB.median)})`, extra <= 5]);
    }
  }

  const stamp = bySection.stamp;
  if (stamp) {
    out.push(`### ${stamp.title}`, '');
    out.push('| contender | ratio to sha256sum (median) | spread | wall s (median) |', '| --- | --- | --- | --- |');
    const label = { sha256sum: '`sha256sum FILE...`', stamp: '`spython-audit stamp DIR`', startup: '`spython-audit --version` (its start-up)' };
    for (const row of stamp.rows) {
      out.push(`| ${label[row.contender]} | ${fmt(row.ratio.median)}× | ${spread(row.ratio)} | ${fmt(row.seconds.median, 3)} |`);
    }
    const byName = Object.fromEntries(stamp.rows.map((row) => [row.contender, row]));
    const ratio = byName.stamp.ratio.median;
    const own = byName.startup ? (byName.stamp.seconds.median - byName.startup.seconds.median) / byName.sha256sum.seconds.median : undefined;
    if (own !== undefined) out.push('', `Stamping less the command line's start-up: ${fmt(own)}× sha256sum's time.`);
    out.push('');
    targets.push(['#7: stamping keeps up with sha256sum (ratio ≤ 1.5×, end to end)', `${fmt(ratio)}×${own !== undefined ? ` (${fmt(own)}× without start-up)` : ''}`, ratio <= 1.5]);
  }
  const f5 = bySection.f5;
  if (f5) {
    out.push(`### ${f5.title}`, '');
    out.push('| contender | wall s to first output (median) | spread |', '| --- | --- | --- |');
    for (const row of f5.rows) {
      out.push(`| ${row.contender === 'f5' ? 'F5 through the adapter (DAP on stdio)' : '`python hello.py`'} | ${fmt(row.seconds.median, 3)} | ${spread(row.seconds, 3)} |`);
    }
    out.push('', `Added by F5: ${fmt(f5.extra.addedMs.median, 0)} ms median (${spread(f5.extra.addedMs, 0)} ms).`, '');
    targets.push(['F5 to first output ≤ 100 ms more than plain python', `+${fmt(f5.extra.addedMs.median, 0)} ms`, f5.extra.addedMs.median <= 100]);
  }
  const argsize = bySection.argsize;
  if (argsize) {
    out.push(`### ${argsize.title}`, '');
    out.push('Each argument is made once and passed to every call; the launcher renders at most 256 bytes, 1,024 characters, 32 items or pairs, and an int\'s bit count past 1,024 bits. Per event: the launcher\'s run less plain python\'s on the same program, round by round.', '');
    out.push('| argument | small | large | added per event, small (median, spread) | added per event, large (median, spread) | large ÷ small (median, spread) |', '| --- | --- | --- | --- | --- | --- |');
    for (const a of argsize.argsize) {
      out.push(`| ${a.kind} | ${a.small.toLocaleString('en')} ${a.unit} | ${a.large.toLocaleString('en')} ${a.unit} | ${fmt(a.smallNs.median, 0)} ns (${spread(a.smallNs, 0)}) | ${fmt(a.largeNs.median, 0)} ns (${spread(a.largeNs, 0)}) | ${fmt(a.ratio.median, 3)}× (${spread(a.ratio)}) |`);
    }
    out.push('');
    const worst = argsize.argsize.reduce((w, a) => (a.ratio.median > w.ratio.median ? a : w));
    targets.push([`launcher's cost per event independent of argument size (each kind's large argument against its small one, ≤ ${ARGSIZE_LIMIT}×)`,
      `${argsize.argsize.map((a) => `${a.kind} ${fmt(a.ratio.median, 3)}×`).join(', ')}`, worst.ratio.median <= ARGSIZE_LIMIT]);
  }
  const instructions = bySection.instructions;
  if (instructions) {
    out.push(`### ${instructions.title}`, '');
    out.push('One run each, with PYTHONHASHSEED=0: the count does not depend on the machine\'s load. It leaves out the kernel\'s work and counts every instruction alike: the user-space work the launcher adds, not its time.', '');
    out.push('| program | plain python | launcher, full JSONL capture | ratio | added per event |', '| --- | --- | --- | --- | --- |');
    for (const row of instructions.instructions) {
      out.push(`| ${row.label} | ${row.plain.toLocaleString('en')} | ${row.launcher.toLocaleString('en')} | ${fmt(row.launcher / row.plain, 4)}× | ${row.perEvent === undefined ? '' : `${fmt(row.perEvent, 0)} instructions`} |`);
    }
    out.push('');
  }
  const ingest = bySection.ingest?.ingest;
  if (ingest) {
    out.push(`### ${bySection.ingest.title}`, '');
    out.push('A stand-in for the launcher (bench/workloads/replay.py) sends the records with sendfile: no Python program, no hook. The CLI logs them to JSONL as in the storm rows (`--jsonl`, `--no-summary`). Per record: the CLI run less the same run on an empty recording, round by round.', '');
    out.push('| CLI, empty recording (its start-up): wall s | CLI, all records: wall s | per record, wall (median, spread) | per record, CPU (median) | records a second (wall) |', '| --- | --- | --- | --- | --- |');
    out.push(`| ${fmt(ingest.startup.median, 3)} | ${fmt(ingest.total.median, 3)} | ${fmt(ingest.wallNs.median, 0)} ns (${spread(ingest.wallNs, 0)}) | ${ingest.cpuNs ? `${fmt(ingest.cpuNs.median, 0)} ns` : '—'} | ${fmt(1e3 / ingest.wallNs.median)} M |`, '');
    targets.push(['Node ingest ≥ 4 M events/s, on its own (recorded records replayed into the CLI: records / (CLI time − its start-up))', `${fmt(1e3 / ingest.wallNs.median)} M/s wall${ingest.cpuNs ? `; ${fmt(ingest.cpuNs.median, 0)} ns of CPU a record (all the CLI's threads and the stand-in's sendfile): ${fmt(1e3 / ingest.cpuNs.median)} M/s` : ''}`, ingest.wallNs.median <= 250]);
  }
  const memory = bySection.memory;
  if (memory) {
    const m = memory.memory;
    out.push(`### ${memory.title}`, '');
    out.push(`${m.events.toLocaleString('en')} events in ${fmt(m.seconds, 1)} s (${m.logged.toLocaleString('en')} storm records in the JSONL log); ${m.samples} samples of VmRSS every 100 ms.`, '');
    out.push(`| ${m.trajectory.map(([f]) => `at ${Math.round(f * 100)}% of the run`).join(' | ')} | steady state (from 10%): median | min | max |`);
    out.push(`| ${m.trajectory.map(() => '---').join(' | ')} | --- | --- | --- |`);
    out.push(`| ${m.trajectory.map(([, kib]) => `${mib(kib)} MiB`).join(' | ')} | ${mib(m.medianKiB)} MiB | ${mib(m.minKiB)} MiB | ${mib(m.maxKiB)} MiB |`, '');
    const below = (m.medianKiB - m.minKiB) / 1024;
    const above = (m.maxKiB - m.medianKiB) / 1024;
    targets.push([`adapter RSS flat (± 20 MB around its steady-state median) over ${m.events.toLocaleString('en')} events`, `−${fmt(below, 1)} / +${fmt(above, 1)} MiB`, below <= 20 && above <= 20]);
    targets.push(['#10: every record streamed to the log, none kept', `${m.logged.toLocaleString('en')} of ${m.events.toLocaleString('en')} logged`, m.logged === m.events]);
  }
  out.push('## Targets', '');
  out.push('| target | measured | verdict |', '| --- | --- | --- |');
  for (const [target, measured, ok] of targets) out.push(`| ${target} | ${measured} | ${verdict(ok)} |`);
  out.push('');
  if (notes.length) out.push('## Notes', '', ...notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

main()
  .catch((err) => {
    console.error(`bench: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(WORK, { recursive: true, force: true }));
