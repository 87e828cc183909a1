import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { isAscii } from 'buffer';
import { execFileSync } from 'child_process';

const root = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

test('the manifest contributes the spython debug type', () => {
  assert.equal(manifest.name, 'spython-debug');
  assert.equal(manifest.engines.vscode, '^1.100.0');
  assert.equal(manifest.main, './dist/extension.js');
  assert.ok(manifest.activationEvents.includes('onDebugResolve:spython'));
  assert.ok(manifest.contributes.debuggers.some((d: { type: string }) => d.type === 'spython'));
});

test('the build produced every bundle the manifest points at', () => {
  // adapter.js and cli.js start adapter-main.js and cli-main.js (adapter/start/).
  for (const name of ['extension', 'adapter', 'adapter-main', 'cli', 'cli-main', 'server']) {
    assert.ok(fs.existsSync(path.join(root, 'dist', `${name}.js`)), `dist/${name}.js is missing`);
  }
  for (const bin of Object.values(manifest.bin) as string[]) {
    const text = fs.readFileSync(path.join(root, bin), 'utf8');
    assert.ok(text.startsWith('#!/usr/bin/env node\n'), `${bin} has no #! line`);
  }
});

test("dist/package.json gives the bundles their own package scope: CommonJS, the manifest's name and version", () => {
  const scope = JSON.parse(fs.readFileSync(path.join(root, 'dist', 'package.json'), 'utf8'));
  assert.deepEqual(scope, { name: manifest.name, version: manifest.version, private: true, type: 'commonjs' });
});

test("the Node programs' bundles are plain ASCII (V8 makes strings of them fast) and still say what they said", () => {
  for (const name of ['adapter', 'adapter-main', 'cli', 'cli-main', 'server']) {
    assert.ok(isAscii(fs.readFileSync(path.join(root, 'dist', `${name}.js`))), `dist/${name}.js is not ASCII`);
  }
  // The escapes mean the characters: the help (from a string with an apostrophe) prints them.
  const help = execFileSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'run', '--help'], { encoding: 'utf8' });
  assert.match(help, /with the debug adapter’s engine/);
});

test('the native launcher is in dist/bin', () => {
  const stat = fs.statSync(path.join(root, 'dist', 'bin', 'spython'));
  assert.ok(stat.isFile() && (stat.mode & 0o111) !== 0, 'dist/bin/spython is not an executable file');
});
