#!/usr/bin/env node
// The README that goes into the VSIX (package.json "vsce.readmePath"): README.md without its
// screenshots. vsce only takes images from https URLs (it would rewrite relative ones against the
// repository's, which package.json does not name yet); the repository's README keeps them.
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const text = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const withoutImages = text.replace(/^!\[[^\]]*\]\([^)\s]+\)[ \t]*\r?\n(\r?\n)?/gm, '');
fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
fs.writeFileSync(path.join(root, 'dist', 'README.md'), withoutImages);
