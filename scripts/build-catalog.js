#!/usr/bin/env node
// Builds adapter/audit-events.json, the product's own catalogue of CPython audit events, from the shared
// facts catalogue (../shared/audit-events.jsonl by default, or the file given as the first argument).
// Run it by hand when the shared catalogue changes and commit the output: nothing reads the shared file
// at run time.
//
// Each entry keeps what the product uses: event, args (argument names), since, removedIn, platform,
// raisedBy and noise (how often it fires in ordinary programs, when the catalogue knows).
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const source = path.resolve(process.argv[2] || path.join(root, '..', 'shared', 'audit-events.jsonl'));
const target = path.join(root, 'adapter', 'audit-events.json');
const KEPT = ['event', 'args', 'since', 'removedIn', 'platform', 'raisedBy', 'noise'];

const entries = fs
  .readFileSync(source, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line, index) => {
    let fact;
    try {
      fact = JSON.parse(line);
    } catch (err) {
      throw new Error(`${source}:${index + 1}: ${err.message}`);
    }
    if (typeof fact.event !== 'string' || !Array.isArray(fact.args)) {
      throw new Error(`${source}:${index + 1}: an entry needs a string "event" and an array "args"`);
    }
    const entry = {};
    for (const key of KEPT) if (fact[key] !== undefined) entry[key] = fact[key];
    return entry;
  })
  .sort((a, b) => (a.event < b.event ? -1 : a.event > b.event ? 1 : 0));

const names = new Set();
for (const entry of entries) {
  if (names.has(entry.event)) throw new Error(`${source}: ${entry.event} appears twice`);
  names.add(entry.event);
}

// One entry per line: reviewable diffs when the shared catalogue changes.
fs.writeFileSync(target, '[\n' + entries.map((e) => '  ' + JSON.stringify(e)).join(',\n') + '\n]\n');
console.log(`build-catalog: ${entries.length} events -> ${path.relative(root, target)}`);
