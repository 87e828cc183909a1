// The extension's manifest against the code it describes: every launch attribute the adapter takes is
// contributed (and nothing else), the configurations it offers launch, every command it names exists,
// and the VSIX holds the bundles and the native files, nothing more.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { planLaunch } from '../../adapter/config';
import { REPO_ROOT } from '../helpers/interpreters';

const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
const debuggerContribution = manifest.contributes.debuggers.find((d: { type: string }) => d.type === 'spython');
const properties: Record<string, { default?: unknown; enum?: string[] }> = debuggerContribution.configurationAttributes.launch.properties;

/** The attribute names adapter/config.ts checks (its ATTRIBUTES table). */
function adapterAttributes(): string[] {
  const source = fs.readFileSync(path.join(REPO_ROOT, 'adapter', 'config.ts'), 'utf8');
  const table = /const ATTRIBUTES[^=]*=\s*\{([\s\S]*?)\n\};/.exec(source);
  assert.ok(table, 'ATTRIBUTES not found in adapter/config.ts');
  return [...table[1].matchAll(/^\s+(\w+):/gm)].map((m) => m[1]);
}

/** A snippet body as VS Code inserts it: `^"…"` strings unwrapped, `\${` unescaped. */
function insertedSnippet(body: unknown): unknown {
  const text = JSON.stringify(body).replace(/"\^((?:[^"\\]|\\.)*)"/g, (_, inner: string) => JSON.parse(`"${inner}"`));
  return JSON.parse(text.replace(/\\\$\{/g, '${'));
}

function tempProgram(): { dir: string; file: string } {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'spython-ext-manifest-')));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'app.py');
  fs.writeFileSync(file, 'print("hi")\n');
  return { dir, file };
}

describe('the manifest', () => {
  it('is what scripts/build-contributes.js generates', () => {
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build-contributes.js'), '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('contributes every launch attribute the adapter takes, and only those', () => {
    assert.deepEqual(Object.keys(properties).sort(), adapterAttributes().sort());
    for (const [name, schema] of Object.entries(properties)) {
      assert.ok((schema as { description?: string }).description, `${name} has no description`);
    }
    assert.deepEqual(properties.console.enum, ['internalConsole', 'integratedTerminal', 'externalTerminal']);
    assert.deepEqual(properties.verifyImports.enum, ['off', 'xattr', 'warn', 'manifest']);
  });

  it('offers defaults the adapter accepts', () => {
    const { dir, file } = tempProgram();
    for (const [name, schema] of Object.entries(properties)) {
      if (schema.default === undefined || ['program', 'module', 'cwd', 'envFile'].includes(name)) continue;
      const value = JSON.parse(JSON.stringify(schema.default).replace(/\$\{workspaceFolder\}/g, dir));
      assert.doesNotThrow(() => planLaunch({ program: file, [name]: value }), `default of ${name}`);
    }
  });

  it('suggests event names from the catalogue', () => {
    const item = (properties.denyEvents as unknown as { items: { anyOf: Array<{ examples?: string[] }> } }).items.anyOf[0];
    assert.ok(item.examples?.includes('socket.connect'));
    assert.ok(item.examples?.includes('subprocess.Popen'));
    assert.ok(item.examples?.includes('socket.*'));
  });

  it('has initial configurations and snippets that launch', () => {
    const { dir, file } = tempProgram();
    const resolve = (config: Record<string, unknown>) =>
      JSON.parse(JSON.stringify(config).replace(/\$\{file\}/g, file).replace(/\$\{workspaceFolder\}/g, dir));
    for (const config of debuggerContribution.initialConfigurations) {
      assert.equal(config.program, '${file}');
      assert.doesNotThrow(() => planLaunch(resolve(config)));
    }
    const labels = debuggerContribution.configurationSnippets.map((s: { label: string }) => s.label);
    assert.deepEqual(labels, [
      'SPython: Audit Current File',
      'SPython: StartupControl',
      'SPython: Verified Imports',
      'SPython: No Network',
      'SPython: Prompt on Network',
    ]);
    for (const snippet of debuggerContribution.configurationSnippets) {
      const inserted = insertedSnippet(snippet.body) as Record<string, unknown>;
      assert.equal(inserted.program, '${file}', snippet.label);
      assert.doesNotThrow(() => planLaunch(resolve(inserted)), snippet.label);
    }
  });

  it('names only commands it declares, and the extension registers every one', () => {
    const declared = new Set(manifest.contributes.commands.map((c: { command: string }) => c.command));
    for (const [menu, items] of Object.entries(manifest.contributes.menus) as Array<[string, Array<{ command: string }>]>) {
      for (const item of items) assert.ok(declared.has(item.command), `${menu} names ${item.command}`);
    }
    const sources = fs
      .readdirSync(path.join(REPO_ROOT, 'extension'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => fs.readFileSync(path.join(REPO_ROOT, 'extension', f), 'utf8'))
      .join('\n');
    for (const command of declared) assert.ok(sources.includes(`registerCommand('${command}'`), `${command} is not registered`);
  });

  it('activates on Python, debugging and its view; declares workspace trust and the lens setting', () => {
    for (const event of ['onDebugResolve:spython', 'onLanguage:python', 'onDebugDynamicConfigurations:spython']) {
      assert.ok(manifest.activationEvents.includes(event), event);
    }
    assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
    assert.equal(manifest.contributes.configuration.properties['spython.lens.enabled'].default, true);
    assert.deepEqual(manifest.contributes.breakpoints, [{ language: 'python' }]);
    assert.ok(manifest.contributes.views.debug.some((v: { id: string; name: string }) => v.id === 'spython.auditEvents' && v.name === 'Audit Events'));
    assert.equal(debuggerContribution.label, 'Python (audit hooks)');
    assert.deepEqual(debuggerContribution.languages, ['python']);
    for (const script of ['test:e2e', 'test:electron', 'package']) assert.ok(manifest.scripts[script], script);
    assert.ok(fs.existsSync(path.join(REPO_ROOT, manifest.icon)));
  });

  it('packages the bundles, the native files and the icons, and no sources or node_modules', () => {
    const vsce = require.resolve('@vscode/vsce/vsce', { paths: [REPO_ROOT] });
    const r = spawnSync(process.execPath, [vsce, 'ls'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = r.stdout.trim().split('\n').sort();
    for (const f of ['package.json', 'README.md', 'LICENSE', 'media/icon.png', 'dist/extension.js', 'dist/adapter.js', 'dist/cli.js', 'dist/server.js', 'dist/bin/spython', 'dist/bin/libspython-preload.so', 'dist/bin/spython_trust.node']) {
      assert.ok(files.includes(f), `${f} is not in the VSIX: ${files.join(', ')}`);
    }
    for (const f of files) {
      assert.ok(!/\.(ts|map)$|^node_modules\/|^test\/|^native\/|^out\//.test(f), `${f} should not be in the VSIX`);
    }
  });
});
