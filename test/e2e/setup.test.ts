// The code-server cache's checks: an entry is reused only when complete and built for this Node.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { cacheProblem, CODE_SERVER_VERSION } from './setup';

/** A fake complete install: the marker and every file the check looks for. */
function fakeInstall(dir: string, marker: Record<string, unknown>): void {
  const vscode = path.join(dir, 'node_modules', 'code-server', 'lib', 'vscode');
  const files = [
    path.join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    path.join(vscode, 'out', 'server-main.js'),
    path.join(vscode, 'node_modules', 'node-pty', 'build', 'Release', 'pty.node'),
    path.join(vscode, 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg'),
    path.join(vscode, 'node_modules', '@vscode', 'spdlog', 'build', 'Release', 'spdlog.node'),
    path.join(vscode, 'node_modules', 'kerberos', 'build', 'Release', 'kerberos.node'),
    path.join(vscode, 'node_modules', 'native-watchdog', 'build', 'Release', 'watchdog.node'),
  ];
  for (const f of files) {
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, '');
  }
  fs.symlinkSync('node_modules', path.join(vscode, 'node_modules.asar'));
  fs.writeFileSync(path.join(dir, 'spython-e2e-complete.json'), JSON.stringify(marker));
}

describe('the code-server cache', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-e2e-cache-'));
  process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  const good = { version: CODE_SERVER_VERSION, modules: process.versions.modules, node: process.version, builtAt: '' };

  it('is used when complete and built for this Node', () => {
    const dir = path.join(root, 'good');
    fakeInstall(dir, good);
    assert.equal(cacheProblem(dir), undefined);
  });

  it('is rebuilt when missing, partial, of another version or Node, or missing a file', () => {
    assert.equal(cacheProblem(path.join(root, 'absent')), 'not installed yet');

    const partial = path.join(root, 'partial');
    fs.mkdirSync(path.join(partial, 'node_modules'), { recursive: true });
    assert.match(cacheProblem(partial)!, /incomplete/);

    const other = path.join(root, 'other-version');
    fakeInstall(other, { ...good, version: '4.0.0' });
    assert.match(cacheProblem(other)!, /4\.0\.0/);

    const otherNode = path.join(root, 'other-node');
    fakeInstall(otherNode, { ...good, modules: '1', node: 'v1.0.0' });
    assert.match(cacheProblem(otherNode)!, /built for Node v1\.0\.0/);

    const broken = path.join(root, 'broken');
    fakeInstall(broken, good);
    fs.rmSync(path.join(broken, 'node_modules', 'code-server', 'lib', 'vscode', 'node_modules', 'node-pty', 'build'), { recursive: true });
    assert.match(cacheProblem(broken)!, /pty\.node is missing/);
  });
});
