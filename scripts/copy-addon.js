#!/usr/bin/env node
// Copies the trust addon node-gyp built (build/Release/spython_trust.node) to dist/bin/, where
// adapter/trust.ts loads it at run time. Written aside and renamed, like native/Makefile does, so a
// process that has the old one loaded (or is loading it) never sees half a file.
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const from = path.join(root, 'build', 'Release', 'spython_trust.node');
const dir = path.join(root, 'dist', 'bin');
const to = path.join(dir, 'spython_trust.node');

if (!fs.existsSync(from)) {
  console.error(`copy-addon: ${path.relative(root, from)} is missing; run \`node-gyp rebuild\` first`);
  process.exit(1);
}
fs.mkdirSync(dir, { recursive: true });
const tmp = `${to}.tmp-${process.pid}`;
fs.copyFileSync(from, tmp);
fs.chmodSync(tmp, 0o755);
fs.renameSync(tmp, to);
