// The adapter's resident memory over a long storm: the CLI (which drives the adapter's engine
// in-process) runs the storm, and this samples its VmRSS from /proc while the events stream through.
'use strict';

const fs = require('fs');
const { spawn } = require('child_process');

function residentKiB(pid) {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;   // it has just exited
  }
}

/**
 * Runs `argv` (a Node process) and samples its resident memory every `intervalMs`. Returns the
 * samples as [seconds since start, KiB] and the wall seconds.
 */
function sampleResident(argv, intervalMs = 100) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    const samples = [];
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      if (stderr.length < 4000) stderr += chunk;
    });
    const timer = setInterval(() => {
      const kib = residentKiB(child.pid);
      if (kib !== undefined) samples.push([Number(process.hrtime.bigint() - started) / 1e9, kib]);
    }, intervalMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearInterval(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (status !== 0) reject(new Error(`${argv.join(' ')} failed (status ${status}):\n${stderr.trim()}`));
      else resolve({ samples, seconds });
    });
  });
}

module.exports = { sampleResident };
