#!/usr/bin/env node
// First-run set-up for `npm start` / `npm test` (prestart, pretest): installs dependencies and builds
// whatever is missing or stale. Uses only Node built-ins: it runs before node_modules exists.
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return undefined;
  }
}

// Newest modification time among the files under `dir` (recursively), or 0.
function newest(dir) {
  let max = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      max = Math.max(max, newest(p));
    } else if (e.isFile()) {
      max = Math.max(max, mtime(p) ?? 0);
    }
  }
  return max;
}

function run(reason, args) {
  console.log(`setup: ${reason}: running npm ${args.join(' ')}`);
  const r = spawnSync(npm, args, { cwd: root, stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
    console.error(`setup: npm ${args.join(' ')} failed (${why}); fix the error above and run it again`);
    process.exit(1);
  }
}

// 1. Dependencies.
const lock = mtime(path.join(root, 'package-lock.json'));
const installed = mtime(path.join(root, 'node_modules', '.package-lock.json'));
if (!fs.existsSync(path.join(root, 'node_modules'))) {
  run('node_modules is missing', ['ci']);
} else if (installed === undefined || (lock !== undefined && lock > installed)) {
  run('package-lock.json is newer than node_modules', ['ci']);
}

// 2. Build (native launcher + bundles).
const outputs = ['dist/bin/spython', 'dist/adapter.js'].map((p) => path.join(root, p));
const sources = Math.max(
  ...['native', 'adapter', 'extension', 'server'].map((d) => newest(path.join(root, d))),
  ...['webpack.config.js', 'tsconfig.json'].map((f) => mtime(path.join(root, f)) ?? 0),
);
const missing = outputs.filter((p) => mtime(p) === undefined);
let reason;
if (missing.length > 0) {
  reason = `${path.relative(root, missing[0])} is missing`;
} else if (outputs.some((p) => mtime(p) < sources)) {
  reason = 'sources are newer than dist/';
}
if (reason !== undefined) {
  run(reason, ['run', 'build']);
  // make and webpack leave an output untouched when it is already current (webpack compares before it
  // writes), so mark the build as done now or a source make does not track would rebuild every run.
  const now = new Date();
  for (const p of outputs) {
    if (mtime(p) === undefined) {
      console.error(`setup: npm run build did not produce ${path.relative(root, p)}`);
      process.exit(1);
    }
    fs.utimesSync(p, now, now);
  }
}
