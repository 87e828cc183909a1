// The DebugConfigurationProvider for `spython`: F5 on a Python file with no launch.json audits that
// file; every launch gets an interpreter (the Python extension's active environment when it is
// installed, else python3 on PATH), checked before the adapter starts, a working directory, and the
// runs directory the audit lens watches.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { PythonExtension } from '@vscode/python-extension';
import { InterpreterError, InterpreterFacts, isUntestedVersion, MAX_TESTED_PYTHON, probeInterpreter } from './python';

export const DEBUG_TYPE = 'spython';
const PYTHON_EXTENSION_ID = 'ms-python.python';

/** The configuration F5 uses when there is no launch.json (also the first of initialConfigurations). */
export function currentFileConfiguration(): vscode.DebugConfiguration {
  return {
    type: DEBUG_TYPE,
    request: 'launch',
    name: 'Python (audit hooks): Current File',
    program: '${file}',
    console: 'internalConsole',
  };
}

/** The interpreter the Python extension has selected for `resource`, if that extension is installed. */
export async function pythonExtensionInterpreter(resource: vscode.Uri | undefined): Promise<string | undefined> {
  if (!vscode.extensions.getExtension(PYTHON_EXTENSION_ID)) return undefined;
  try {
    const api = await PythonExtension.api();
    await api.ready;
    const active = api.environments.getActiveEnvironmentPath(resource);
    const resolved = await api.environments.resolveEnvironment(active);
    return resolved?.executable.uri?.fsPath ?? active.path;
  } catch {
    return undefined;
  }
}

/** Where the interpreter comes from, and the interpreter: for launches, stamping and verifying. */
export async function chooseInterpreter(
  resource: vscode.Uri | undefined,
  explicit?: string,
): Promise<{ python: string; how: string }> {
  if (explicit) return { python: explicit, how: '"python" in the launch configuration' };
  const selected = await pythonExtensionInterpreter(resource);
  if (selected) return { python: selected, how: "the Python extension's selected interpreter" };
  return { python: 'python3', how: 'python3 on PATH; install the Python extension to choose another' };
}

/** Probes the interpreter; on failure shows the error with what can be done about it, and returns undefined. */
export async function checkedInterpreter(
  resource: vscode.Uri | undefined,
  explicit?: string,
): Promise<InterpreterFacts | undefined> {
  const { python, how } = await chooseInterpreter(resource, explicit);
  try {
    return await probeInterpreter(python, how);
  } catch (err) {
    await showInterpreterError(err, explicit !== undefined);
    return undefined;
  }
}

async function showInterpreterError(err: unknown, fromLaunchJson: boolean): Promise<void> {
  const message = err instanceof Error ? err.message : String(err);
  const hasPythonExtension = vscode.extensions.getExtension(PYTHON_EXTENSION_ID) !== undefined;
  const actions: string[] = [];
  if (hasPythonExtension) actions.push('Select Interpreter');
  if (fromLaunchJson) actions.push('Open launch.json');
  if (err instanceof InterpreterError && err.kind !== 'notCPython') actions.push('Get Python');
  const advice =
    err instanceof InterpreterError && err.kind === 'missing'
      ? ' Install Python 3.8 or later, or set "python" in launch.json to an interpreter.'
      : '';
  const choice = await vscode.window.showErrorMessage(message + advice, ...actions);
  if (choice === 'Select Interpreter') await vscode.commands.executeCommand('python.setInterpreter');
  else if (choice === 'Open launch.json') await vscode.commands.executeCommand('workbench.action.debug.configure');
  else if (choice === 'Get Python') await vscode.env.openExternal(vscode.Uri.parse('https://www.python.org/downloads/'));
}

export class SPythonConfigurationProvider implements vscode.DebugConfigurationProvider {
  constructor(private readonly runsDir: string) {}

  provideDebugConfigurations(): vscode.DebugConfiguration[] {
    return [currentFileConfiguration()];
  }

  /** Before variables are substituted: an empty configuration (F5, no launch.json) audits the current file. */
  async resolveDebugConfiguration(
    _folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): Promise<vscode.DebugConfiguration | undefined | null> {
    if (!vscode.workspace.isTrusted) {
      const choice = await vscode.window.showErrorMessage(
        'SPython Debug runs the program, so it needs a trusted workspace. Trust this workspace to audit it.',
        'Manage Workspace Trust',
      );
      if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
      return undefined;
    }
    if (!config.type && !config.request && !config.name) {
      const editor = vscode.window.activeTextEditor;
      if (!editor || editor.document.languageId !== 'python') {
        await vscode.window.showErrorMessage(
          'Open a Python file to audit it, or add a launch configuration ("Run: Add Configuration…").',
        );
        return undefined;
      }
      if (editor.document.isUntitled) {
        await vscode.window.showErrorMessage('Save the Python file first: the launcher runs files from disk.');
        return undefined;
      }
      return currentFileConfiguration();
    }
    if (config.request === undefined) config.request = 'launch';
    return config;
  }

  /** After substitution: the interpreter (checked), the working directory and the runs directory. */
  async resolveDebugConfigurationWithSubstitutedVariables(
    folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): Promise<vscode.DebugConfiguration | undefined> {
    // A child session (subProcess): the adapter wrote the configuration and the process runs already.
    if (config.request === 'attach') return config;
    const program = typeof config.program === 'string' ? config.program : undefined;
    if (program === '') {
      await vscode.window.showErrorMessage('"program" is empty: open the Python file to audit (it uses ${file}).');
      return undefined;
    }
    const resource = program && path.isAbsolute(program) ? vscode.Uri.file(program) : folder?.uri;
    const explicit = typeof config.python === 'string' && config.python.trim() !== '' ? config.python : undefined;
    const facts = await checkedInterpreter(resource, explicit);
    if (!facts) return undefined;
    if (isUntestedVersion(facts)) {
      void vscode.window.showWarningMessage(
        `${facts.executable} is Python ${facts.version.join('.')}; SPython Debug is tested up to ` +
          `${MAX_TESTED_PYTHON.join('.')}. If the launch fails, select an older interpreter.`,
      );
    }
    config.python = facts.executable;
    if (config.cwd === undefined) {
      const dir = folder?.uri.scheme === 'file' ? folder.uri.fsPath : program && path.isAbsolute(program) ? path.dirname(program) : undefined;
      if (dir) config.cwd = dir;
    }
    if (config.runsDir === undefined) {
      fs.mkdirSync(this.runsDir, { recursive: true, mode: 0o700 });
      config.runsDir = this.runsDir;
    }
    return config;
  }
}
