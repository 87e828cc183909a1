// Paired measurement: every round runs each contender once, in an order that rotates from round to
// round, so a machine that speeds up or slows down affects all of them alike; a contender's figure is
// the median over rounds of its time divided by the baseline's time *in the same round*.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const GNU_TIME = '/usr/bin/time';
const hasGnuTime = fs.existsSync(GNU_TIME);

/**
 * Runs a command to completion. Returns wall seconds (measured here, from spawn to exit) and, through
 * GNU time when it is installed, the peak resident memory of its largest process in KiB and the CPU
 * seconds (user + system) of all its processes: less disturbed by other tenants than wall time.
 */
function timeProcess(argv, options = {}) {
  const rssFile = hasGnuTime ? path.join(os.tmpdir(), `spython-bench-rss-${process.pid}`) : undefined;
  const full = rssFile ? [GNU_TIME, '-f', '%M %U %S', '-o', rssFile, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(full[0], full.slice(1), {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      if (stderr.length < 4000) stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (status, signal) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      let rssKiB;
      let cpuSeconds;
      if (rssFile) {
        const [rss, user, system] = fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
        rssKiB = rss;
        cpuSeconds = user + system;
        fs.rmSync(rssFile, { force: true });
      }
      if (status !== 0) {
        reject(new Error(`${argv.join(' ')} failed (${signal ?? `status ${status}`}):\n${stderr.trim()}`));
        return;
      }
      resolve({ seconds, rssKiB, cpuSeconds });
    });
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function summary(values) {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
}

/**
 * Runs `rounds` rounds of every contender (after one warm-up round that is not counted). Each
 * contender is `{name, run: () => Promise<{seconds, rssKiB?, cpuSeconds?}>, before?, after?}`;
 * `before`/`after` prepare and clean up outside the timed part. The first contender is the baseline.
 * Returns per contender, round by round: its wall seconds, peak RSS, and its wall and CPU ratios to
 * the baseline.
 */
async function paired(contenders, rounds, progress) {
  const samples = new Map(contenders.map((c) => [c.name, { seconds: [], rssKiB: [], ratio: [], cpuRatio: [] }]));
  for (let round = -1; round < rounds; round++) {
    const times = new Map();
    const shift = Math.max(round, 0) % contenders.length;
    const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
    for (const contender of order) {
      if (contender.before) await contender.before();
      const result = await contender.run();
      if (contender.after) await contender.after();
      times.set(contender.name, result);
      progress?.(`${contender.name} ${result.seconds.toFixed(3)}s`);
    }
    if (round < 0) continue;
    const base = times.get(contenders[0].name);
    for (const [name, result] of times) {
      const s = samples.get(name);
      s.seconds.push(result.seconds);
      s.ratio.push(result.seconds / base.seconds);
      if (result.rssKiB !== undefined) s.rssKiB.push(result.rssKiB);
      if (result.cpuSeconds !== undefined) s.cpuRatio.push(result.cpuSeconds / base.cpuSeconds);
    }
  }
  return samples;
}

module.exports = { timeProcess, paired, median, summary, hasGnuTime };
