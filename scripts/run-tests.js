#!/usr/bin/env node
// Runs the compiled test files (out/test/**/*.test.js, or those under the folders given) with Node's
// built-in test runner. Node 20's `--test DIR` would also load the helper modules as tests.
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'out', 'test');

function testFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(p);
    return entry.name.endsWith('.test.js') ? [p] : [];
  });
}

const folders = process.argv.slice(2);
const files = (folders.length ? folders.map((f) => path.join(out, f)) : [out]).flatMap(testFiles).sort();
if (files.length === 0) {
  console.error(`run-tests: no test files under ${folders.join(', ') || 'out/test'}`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
