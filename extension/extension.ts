// The VS Code extension: the glue between the editor and the debug adapter (run inline), the Audit
// Events view, event breakpoints, Deny and prompts, the trust commands, and the audit lens.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AuditEventsView } from './auditView';
import { currentFileConfiguration, DEBUG_TYPE, SPythonConfigurationProvider } from './configuration';
import { registerDebugActions } from './debugActions';
import { startLens } from './lens';
import { SessionManager } from './sessions';
import { registerTrustCommands } from './trustCommands';

/** Where sessions keep their run logs and the lens reads them: this workspace's storage (or the global one). */
export function runsDirectory(context: vscode.ExtensionContext): string {
  return path.join((context.storageUri ?? context.globalStorageUri).fsPath, 'runs');
}

/**
 * The native files must be executable. A VSIX normally keeps their modes; an unpacker that did not
 * (or a copy made by hand) would otherwise fail every launch with EACCES.
 */
function ensureExecutable(context: vscode.ExtensionContext): void {
  for (const name of ['spython']) {
    const file = context.asAbsolutePath(path.join('dist', 'bin', name));
    try {
      const mode = fs.statSync(file).mode;
      if ((mode & 0o111) === 0) fs.chmodSync(file, mode | 0o755);
    } catch {
      // Missing: the adapter says so when it tries to run it.
    }
  }
}

export function activate(context: vscode.ExtensionContext): void {
  ensureExecutable(context);
  const runsDir = runsDirectory(context);
  fs.mkdirSync(runsDir, { recursive: true, mode: 0o700 });

  const sessions = new SessionManager(context);
  context.subscriptions.push(
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new SPythonConfigurationProvider(runsDir)),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, sessions),
    vscode.debug.registerDebugAdapterTrackerFactory(DEBUG_TYPE, sessions),
  );
  context.subscriptions.push(
    vscode.commands.registerCommand('spython.auditCurrentFile', async (uri?: vscode.Uri) => {
      // From the editor's run menu the file comes as an argument; make it the active editor so ${file} is it.
      if (uri instanceof vscode.Uri && vscode.window.activeTextEditor?.document.uri.toString() !== uri.toString()) {
        await vscode.window.showTextDocument(uri);
      }
      const document = vscode.window.activeTextEditor?.document;
      if (!document || document.languageId !== 'python') {
        void vscode.window.showErrorMessage('Open a Python file to audit it.');
        return;
      }
      if (document.isDirty) await document.save();
      await vscode.debug.startDebugging(vscode.workspace.getWorkspaceFolder(document.uri), currentFileConfiguration());
    }),
  );
  new AuditEventsView(context, sessions);
  registerDebugActions(context, sessions);
  registerTrustCommands(context);

  startLens(context, runsDir).catch((err) => {
    void vscode.window.showWarningMessage(`The SPython audit lens did not start: ${(err as Error).message}`);
  });
}

export function deactivate(): void {}
