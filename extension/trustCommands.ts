// "Stamp Trusted Hashes…" and "Verify Imports…": the trust tooling (adapter/trust.ts, the launcher's own
// checks in a native addon) behind folder pickers and a cancellable progress notification. Verification
// failures go to the Problems panel on the files themselves.

import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { stamp, StampPhase, verify, VerifyFailure } from '../adapter/trust';
import { thousands } from '../adapter/thousands';
import { chooseInterpreter, DEBUG_TYPE } from './configuration';
import { InterpreterFacts, libraryFolders, probeInterpreter } from './python';

const codeFiles = (count: number) => `${thousands(count)} code ${count === 1 ? 'file' : 'files'}`;

interface TrustSettings {
  xattrName?: string;
  maxCodeSize?: number;
  verifyExempt?: string[];
  manifest?: string;
  manifestKey?: string;
  verifyImports?: string;
}

/** The first spython launch configuration's trust attributes, ${workspaceFolder} and ~ resolved. */
function launchTrustSettings(folder: vscode.WorkspaceFolder | undefined): TrustSettings {
  const configs = vscode.workspace.getConfiguration('launch', folder?.uri).get<unknown[]>('configurations') ?? [];
  const config = configs.find(
    (c): c is Record<string, unknown> =>
      typeof c === 'object' && c !== null && (c as { type?: unknown }).type === DEBUG_TYPE && 'verifyImports' in c,
  );
  if (!config) return {};
  const resolve = (value: unknown): string | undefined => {
    if (typeof value !== 'string') return undefined;
    let p = value.replace(/\$\{workspaceFolder\}/g, folder?.uri.fsPath ?? '').replace(/^~(?=\/|$)/, os.homedir());
    if (!path.isAbsolute(p) && folder) p = path.join(folder.uri.fsPath, p);
    return p;
  };
  return {
    xattrName: typeof config.xattrName === 'string' ? config.xattrName : undefined,
    maxCodeSize: typeof config.maxCodeSize === 'number' ? config.maxCodeSize : undefined,
    verifyExempt: Array.isArray(config.verifyExempt) ? config.verifyExempt.map(resolve).filter((p): p is string => !!p) : undefined,
    manifest: resolve(config.manifest),
    manifestKey: resolve(config.manifestKey),
    verifyImports: typeof config.verifyImports === 'string' ? config.verifyImports : undefined,
  };
}

async function interpreterQuietly(folder: vscode.WorkspaceFolder | undefined): Promise<InterpreterFacts | undefined> {
  const { python, how } = await chooseInterpreter(folder?.uri);
  try {
    return await probeInterpreter(python, how);
  } catch {
    return undefined;
  }
}

/** The folders to work on: the workspace (picked), the interpreter's stdlib and site-packages, or others. */
async function pickFolders(title: string, facts: InterpreterFacts | undefined): Promise<string[] | undefined> {
  type Item = vscode.QuickPickItem & { folder?: string; browse?: boolean };
  const items: Item[] = [];
  for (const wf of vscode.workspace.workspaceFolders ?? []) {
    if (wf.uri.scheme !== 'file') continue;
    items.push({ label: `$(root-folder) ${wf.name}`, description: wf.uri.fsPath, detail: 'Workspace folder', folder: wf.uri.fsPath, picked: true });
  }
  if (facts) {
    for (const lib of libraryFolders(facts)) {
      items.push({
        label: `$(library) ${lib.label}`,
        description: lib.path,
        detail: `Python ${facts.version.join('.')} (${facts.executable})`,
        folder: lib.path,
      });
    }
  }
  items.push({ label: '$(folder-opened) Other Folders…', detail: 'Choose folders or files on disk', browse: true, alwaysShow: true });
  const chosen = await vscode.window.showQuickPick(items, {
    title,
    canPickMany: true,
    placeHolder: facts ? 'Folders to include' : 'Folders to include (no usable Python interpreter found for its library)',
    ignoreFocusOut: true,
  });
  if (!chosen) return undefined;
  const folders = chosen.filter((i) => i.folder).map((i) => i.folder!);
  if (chosen.some((i) => i.browse)) {
    const uris = await vscode.window.showOpenDialog({
      title,
      canSelectFolders: true,
      canSelectFiles: true,
      canSelectMany: true,
      openLabel: 'Include',
    });
    if (!uris) return folders.length ? folders : undefined;
    folders.push(...uris.filter((u) => u.scheme === 'file').map((u) => u.fsPath));
  }
  return folders.length ? [...new Set(folders)] : undefined;
}

const PHASE_WORDS: Record<StampPhase, string> = {
  check: 'Checking',
  compile: 'Compiling stale .pyc files for',
  stamp: 'Stamping',
};

async function stampCommand(output: vscode.OutputChannel): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  const facts = await interpreterQuietly(folder);
  const folders = await pickFolders('Stamp Trusted Hashes', facts);
  if (!folders) return;
  const settings = launchTrustSettings(folder);
  try {
    const report = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Stamping trusted hashes', cancellable: true },
      (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let last = '';
        let reported = 0;
        return stamp(folders, {
          python: facts?.executable,
          xattrName: settings.xattrName,
          exempt: settings.verifyExempt,
          signal: abort.signal,
          onProgress: (done, total, phase) => {
            const key = `${phase}`;
            if (key !== last) {
              last = key;
              reported = 0;
            }
            const pct = total > 0 ? (done / total) * 100 : 100;
            progress.report({ message: `${PHASE_WORDS[phase]} ${thousands(done)} of ${thousands(total)} files`, increment: phase === 'stamp' ? pct - reported : undefined });
            reported = pct;
          },
        });
      },
    );
    output.appendLine(`[${new Date().toISOString()}] Stamped ${folders.join(', ')}`);
    for (const f of report.failed) output.appendLine(`  failed: ${f.path}: ${f.error}`);
    for (const f of report.compileFailed) output.appendLine(`  could not compile: ${f}`);
    const summary =
      `Stamped ${codeFiles(report.entries.length)}: ${thousands(report.written)} written, ${thousands(report.current)} already current` +
      (report.recompiled.length ? `, ${thousands(report.recompiled.length)} recompiled` : '') +
      (report.failed.length ? `, ${thousands(report.failed.length)} failed` : '') +
      '.';
    if (report.failed.length || report.compileFailed.length) {
      const choice = await vscode.window.showWarningMessage(summary, 'Show Details');
      if (choice) output.show();
    } else {
      void vscode.window.showInformationMessage(summary);
    }
  } catch (err) {
    if ((err as Error).name === 'AbortError') {
      void vscode.window.showInformationMessage('Stamping cancelled: files already stamped keep their hashes.');
      return;
    }
    void vscode.window.showErrorMessage(`Stamping failed: ${(err as Error).message}`);
  }
}

function failureDiagnostic(failure: VerifyFailure): vscode.Diagnostic {
  const d = new vscode.Diagnostic(
    new vscode.Range(0, 0, 0, 0),
    `verifyImports would refuse this file: ${failure.reason}${failure.detail ? `: ${failure.detail}` : ''}`,
    vscode.DiagnosticSeverity.Error,
  );
  d.source = 'SPython Debug';
  d.code = failure.reason;
  return d;
}

async function verifyCommand(diagnostics: vscode.DiagnosticCollection): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  const facts = await interpreterQuietly(folder);
  const folders = await pickFolders('Verify Imports', facts);
  if (!folders) return;
  const settings = launchTrustSettings(folder);
  const manifestMode = settings.verifyImports === 'manifest' && !!settings.manifest && !!settings.manifestKey;
  try {
    const report = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: manifestMode ? `Verifying imports against ${path.basename(settings.manifest!)}` : 'Verifying imports',
        cancellable: true,
      },
      (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let reported = 0;
        return verify(folders, {
          xattrName: settings.xattrName,
          maxSize: settings.maxCodeSize,
          exempt: settings.verifyExempt,
          manifest: manifestMode ? settings.manifest : undefined,
          manifestKey: manifestMode ? settings.manifestKey : undefined,
          signal: abort.signal,
          onProgress: (done, total) => {
            const pct = total > 0 ? (done / total) * 100 : 100;
            progress.report({ message: `${thousands(done)} of ${thousands(total)} files`, increment: pct - reported });
            reported = pct;
          },
        });
      },
    );
    diagnostics.clear();
    const byFile = new Map<string, vscode.Diagnostic[]>();
    for (const failure of report.failures) {
      const list = byFile.get(failure.path) ?? [];
      list.push(failureDiagnostic(failure));
      byFile.set(failure.path, list);
    }
    diagnostics.set([...byFile].map(([file, list]) => [vscode.Uri.file(file), list]));
    const summary =
      `Verified ${codeFiles(report.checked)} (${report.mode}): ${thousands(report.ok)} pass` +
      (report.exempt ? `, ${thousands(report.exempt)} exempt` : '') +
      (report.failures.length ? `, ${thousands(report.failures.length)} would be refused.` : '.');
    if (report.failures.length) {
      const choice = await vscode.window.showWarningMessage(summary, 'Show Problems', 'Stamp Trusted Hashes…');
      if (choice === 'Show Problems') await vscode.commands.executeCommand('workbench.actions.view.problems');
      else if (choice) await vscode.commands.executeCommand('spython.stampTrustedHashes');
    } else {
      void vscode.window.showInformationMessage(summary);
    }
  } catch (err) {
    if ((err as Error).name === 'AbortError') return;
    void vscode.window.showErrorMessage(`Verification failed: ${(err as Error).message}`);
  }
}

export function registerTrustCommands(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('SPython Debug: Trust');
  const diagnostics = vscode.languages.createDiagnosticCollection('spython-verify');
  context.subscriptions.push(
    output,
    diagnostics,
    vscode.commands.registerCommand('spython.stampTrustedHashes', () => stampCommand(output)),
    vscode.commands.registerCommand('spython.verifyImports', () => verifyCommand(diagnostics)),
  );
}
