// `npm run test:electron`: the extension tests in a desktop VS Code that @vscode/test-electron downloads
// (into .vscode-test/). For machines that can download VS Code; this project's CI cannot, and runs the
// same ground end to end in code-server instead (test/e2e, part of `npm test`).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

async function main(): Promise<void> {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-electron-'));
  fs.copyFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'net_demo.py'), path.join(workspace, 'net_demo.py'));
  try {
    await runTests({
      // The oldest VS Code the manifest allows (engines.vscode).
      version: process.env.SPYTHON_VSCODE_VERSION ?? '1.100.3',
      extensionDevelopmentPath: REPO_ROOT,
      extensionTestsPath: path.join(__dirname, 'suite.js'),
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes'],
      extensionTestsEnv: { SPYTHON_ELECTRON_WORKSPACE: workspace },
    });
  } finally {
    fs.rmSync(workspace, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`test:electron failed: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
