// `--config NAME`: a configuration of the workspace's .vscode/launch.json (JSON with comments), with
// the platform's section merged in and VS Code's common variables resolved, so that CI runs the very
// policy the team debugs with.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ParseError } from 'jsonc-parser';

/** A problem with the command line or what it names (exit status 2). */
export class UsageError extends Error {}

export interface ResolveContext {
  /** The workspace folder (`--workspace`, default the current directory). */
  workspace: string;
  env: NodeJS.ProcessEnv;
  /** The directory the command line was started in (`${cwd}`). */
  cwd: string;
}

/** Reads a JSON-with-comments file; throws UsageError naming the first syntax error's line. */
export function readJsonc(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  // Loaded only here: every command imports UsageError from this file, few read a launch.json.
  const { parse, printParseErrorCode }: typeof import('jsonc-parser') = require('jsonc-parser');
  const errors: ParseError[] = [];
  const value = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const first = errors[0];
    const line = text.slice(0, first.offset).split('\n').length;
    throw new UsageError(`${file}:${line}: ${printParseErrorCode(first.error)}`);
  }
  return value;
}

/** The `launch.json` of a workspace folder. */
export function launchJsonPath(workspace: string): string {
  return path.join(workspace, '.vscode', 'launch.json');
}

/** The configurations of a workspace's launch.json, as written. */
export function launchConfigurations(workspace: string): Array<Record<string, unknown>> {
  const file = launchJsonPath(workspace);
  if (!fs.existsSync(file)) throw new UsageError(`${file} does not exist (--workspace names the folder that holds .vscode/)`);
  const json = readJsonc(file) as { configurations?: unknown } | undefined;
  if (!json || typeof json !== 'object' || !Array.isArray(json.configurations)) {
    throw new UsageError(`${file} has no "configurations" list`);
  }
  return json.configurations.filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null && !Array.isArray(c));
}

/**
 * The configuration named `name`, with its `linux` section merged over it (as VS Code does on Linux)
 * and the platform sections removed. Variables are not resolved yet: flags replace attributes first,
 * so that a flag can stand in for a variable only the editor knows.
 */
export function findConfiguration(workspace: string, name: string): Record<string, unknown> {
  const all = launchConfigurations(workspace);
  const found = all.find((c) => c.name === name);
  if (!found) {
    const names = all.map((c) => JSON.stringify(c.name)).join(', ');
    throw new UsageError(
      `${launchJsonPath(workspace)} has no configuration named ${JSON.stringify(name)}` +
        (names ? ` (it has ${names})` : ''),
    );
  }
  if (found.type !== 'spython') {
    throw new UsageError(`configuration ${JSON.stringify(name)} is of type ${JSON.stringify(found.type)}, not "spython"`);
  }
  if (found.request !== undefined && found.request !== 'launch') {
    throw new UsageError(`configuration ${JSON.stringify(name)} is a ${JSON.stringify(found.request)} request; only "launch" runs here`);
  }
  const merged: Record<string, unknown> = { ...found };
  const platform = found[process.platform === 'darwin' ? 'osx' : process.platform === 'win32' ? 'windows' : 'linux'];
  if (platform && typeof platform === 'object' && !Array.isArray(platform)) Object.assign(merged, platform);
  delete merged.linux;
  delete merged.osx;
  delete merged.windows;
  return merged;
}

// ---------------------------------------------------------------------------------------------
// Variables

/** Variables about the editor's state, which a terminal does not have. */
const EDITOR_VARIABLES = new Set([
  'file',
  'fileBasename',
  'fileBasenameNoExtension',
  'fileDirname',
  'fileDirnameBasename',
  'fileExtname',
  'fileWorkspaceFolder',
  'relativeFile',
  'relativeFileDirname',
  'lineNumber',
  'selectedText',
  'execPath',
  'defaultBuildTask',
]);

/**
 * Resolves `${workspaceFolder}`, `${workspaceFolderBasename}`, `${workspaceFolder:NAME}` (this folder's
 * name), `${userHome}`, `${cwd}`, `${pathSeparator}`, `${/}`, `${env:NAME}` (empty when unset, as in
 * VS Code) and `${config:SETTING}` (from the workspace's .vscode/settings.json) in every string of
 * `value`. Throws UsageError listing what cannot be resolved outside the editor (`${file}`,
 * `${command:…}`, `${input:…}`…), with the attribute that holds it.
 */
export function resolveVariables<T>(value: T, context: ResolveContext): T {
  const problems: string[] = [];
  let settings: Record<string, unknown> | undefined;
  const setting = (key: string): unknown => {
    if (settings === undefined) {
      const file = path.join(context.workspace, '.vscode', 'settings.json');
      settings = fs.existsSync(file) ? ((readJsonc(file) as Record<string, unknown>) ?? {}) : {};
    }
    if (key in settings) return settings[key];
    // Nested form: {"python": {"defaultInterpreterPath": ...}}.
    let node: unknown = settings;
    for (const part of key.split('.')) {
      if (!node || typeof node !== 'object') return undefined;
      node = (node as Record<string, unknown>)[part];
    }
    return node;
  };
  const folderName = path.basename(context.workspace);

  const resolveString = (text: string, where: string): string =>
    text.replace(/\$\{([^}]+)\}/g, (whole, inner: string) => {
      const [kind, ...rest] = inner.split(':');
      const arg = rest.join(':');
      switch (kind) {
        case 'workspaceFolder':
        case 'workspaceRoot':
          if (arg && arg !== folderName) break;
          return context.workspace;
        case 'workspaceFolderBasename':
          return folderName;
        case 'userHome':
          return os.homedir();
        case 'cwd':
          return context.cwd;
        case 'pathSeparator':
        case '/':
          return path.sep;
        case 'env':
          if (!arg) break;
          return context.env[arg] ?? '';
        case 'config': {
          if (!arg) break;
          const found = setting(arg);
          if (typeof found === 'string' || typeof found === 'number' || typeof found === 'boolean') return String(found);
          problems.push(`${where}: ${whole} (no such setting in .vscode/settings.json)`);
          return whole;
        }
      }
      const why = EDITOR_VARIABLES.has(kind)
        ? 'names the editor’s state'
        : kind === 'workspaceFolder' || kind === 'workspaceRoot'
          ? `names another workspace folder than ${folderName}`
        : kind === 'command' || kind === 'input'
          ? 'needs the editor'
          : 'is not a known variable';
      problems.push(`${where}: ${whole} ${why}`);
      return whole;
    });

  const walk = (node: unknown, where: string): unknown => {
    if (typeof node === 'string') return resolveString(node, where);
    if (Array.isArray(node)) return node.map((item, i) => walk(item, `${where}[${i}]`));
    if (node && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(node)) out[key] = walk(item, where ? `${where}.${key}` : key);
      return out;
    }
    return node;
  };
  const resolved = walk(value, '') as T;
  if (problems.length > 0) {
    throw new UsageError(
      `cannot resolve ${problems.join('; ')} outside the editor: give the attribute as a flag instead ` +
        '(a flag replaces the attribute, variables and all)',
    );
  }
  return resolved;
}
