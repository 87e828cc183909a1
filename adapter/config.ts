// The launch configuration (launch.json, type `spython`, request `launch`): validation with messages
// that say what to fix, and its conversion into the launcher's command line and the `welcome`
// configuration of docs/protocol.md ("Configuration").

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { closest } from 'fastest-levenshtein';
import { EventRule } from './catalog';
import type { ViewPlan } from './engine';
import type { ChildTarget } from './relay';

export type ConsoleKind = 'internalConsole' | 'integratedTerminal' | 'externalTerminal';

/** A breakOnEvents entry: a function breakpoint given in launch.json. */
export interface EventBreakpoint {
  event: string;
  condition?: string;
  hitCondition?: string;
  logMessage?: string;
}

/** A policy rule as the launcher takes it: a glob, `"GLOB if EXPR"`, or `{event, condition}`. */
export type PolicyRule = string | EventRule;

/** The `welcome` configuration, less what the session adds (breakpoints, breakOnDenied). */
export interface LauncherConfig {
  startupControl?: boolean;
  denyEvents?: PolicyRule[];
  promptEvents?: PolicyRule[];
  lockHooks?: boolean;
  verifyImports?: 'xattr' | 'warn' | 'manifest' | 'off';
  verifyExempt?: string[];
  xattrName?: string;
  maxCodeSize?: number;
  manifest?: string;
  manifestKey?: string;
  execCheck?: boolean;
  subProcess?: boolean;
  auditLog?: { file?: string; syslog?: PolicyRule[]; journal?: PolicyRule[] };
  stopOnEntry?: boolean;
}

/** Everything a session needs to start the program, derived from a valid launch configuration. */
export interface LaunchPlan {
  /** The launcher's arguments: `[--python P] -- [pythonArgs] program|-m module [args]`. */
  launcherArgs: string[];
  cwd: string;
  /** The program's whole environment (the channel's variables are added when it starts). */
  env: Record<string, string>;
  console: ConsoleKind;
  launcherConfig: LauncherConfig;
  breakOnEvents: EventBreakpoint[];
  /** Globs over event names: what the Debug Console shows or hides besides its defaults. */
  showEvents: string[];
  hideEvents: string[];
  /** Where the session's JSONL copy of every record goes. */
  runsDir: string;
  /** What runs, for messages and file names: the program's path or `-m module`. */
  title: string;
}

/** A launch configuration that cannot be used; the message says what to fix. */
export class LaunchConfigError extends Error {}

export const DEFAULT_RUNS_DIR = path.join(os.tmpdir(), 'spython-runs');

// ---------------------------------------------------------------------------------------------
// Attribute checks: each returns an error message or undefined.

type Check = (value: unknown, name: string) => string | undefined;

const isString: Check = (v, name) =>
  typeof v === 'string' && v.trim() !== '' ? undefined : `"${name}" must be a non-empty string`;

const isBoolean: Check = (v, name) => (typeof v === 'boolean' ? undefined : `"${name}" must be true or false`);

const isStringList: Check = (v, name) =>
  Array.isArray(v) && v.every((item) => typeof item === 'string')
    ? undefined
    : `"${name}" must be a list of strings`;

const oneOf =
  (...choices: string[]): Check =>
  (v, name) =>
    typeof v === 'string' && choices.includes(v)
      ? undefined
      : `"${name}" must be one of ${choices.map((c) => `"${c}"`).join(', ')} (got ${JSON.stringify(v)})`;

const isPositiveInteger: Check = (v, name) =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 ? undefined : `"${name}" must be a positive integer`;

const isEnvironment: Check = (v, name) =>
  isPlainObject(v) && Object.values(v).every((value) => typeof value === 'string' || value === null)
    ? undefined
    : `"${name}" must be an object of strings (null removes a variable)`;

/** A list of globs or `{event, condition}` objects (and, with `extra`, more optional string keys). */
function ruleList(...extra: string[]): Check {
  const allowed = ['event', 'condition', ...extra];
  return (v, name) => {
    if (!Array.isArray(v)) return `"${name}" must be a list of event globs or {"event", "condition"} objects`;
    for (const [i, item] of v.entries()) {
      if (typeof item === 'string') {
        if (item.trim() === '') return `"${name}[${i}]" is an empty event glob`;
        continue;
      }
      if (!isPlainObject(item) || typeof item.event !== 'string' || item.event.trim() === '') {
        return `"${name}[${i}]" must be an event glob or an object with a string "event"`;
      }
      for (const [key, value] of Object.entries(item)) {
        if (!allowed.includes(key)) return `"${name}[${i}]" has an unknown key "${key}" (${suggest(key, allowed)})`;
        if (typeof value !== 'string') return `"${name}[${i}].${key}" must be a string`;
      }
    }
    return undefined;
  };
}

const isAuditLog: Check = (v, name) => {
  if (!isPlainObject(v)) return `"${name}" must be an object with "file", "syslog" and/or "journal"`;
  const keys: Record<string, Check> = { file: isString, syslog: ruleList(), journal: ruleList() };
  for (const [key, value] of Object.entries(v)) {
    const check = keys[key];
    if (!check) return `"${name}" has an unknown key "${key}" (${suggest(key, Object.keys(keys))})`;
    const error = check(value, `${name}.${key}`);
    if (error) return error;
  }
  return undefined;
};

const ATTRIBUTES: Readonly<Record<string, Check>> = {
  program: isString,
  module: isString,
  args: isStringList,
  cwd: isString,
  env: isEnvironment,
  envFile: isString,
  python: isString,
  pythonArgs: isStringList,
  console: oneOf('internalConsole', 'integratedTerminal', 'externalTerminal'),
  stopOnEntry: isBoolean,
  subProcess: isBoolean,
  startupControl: isBoolean,
  denyEvents: ruleList(),
  promptEvents: ruleList(),
  breakOnEvents: ruleList('hitCondition', 'logMessage'),
  verifyImports: oneOf('xattr', 'warn', 'manifest', 'off'),
  verifyExempt: isStringList,
  xattrName: isString,
  maxCodeSize: isPositiveInteger,
  manifest: isString,
  manifestKey: isString,
  execCheck: isBoolean,
  lockHooks: isBoolean,
  auditLog: isAuditLog,
  showEvents: isStringList,
  hideEvents: isStringList,
  runsDir: isString,
};

/** The attributes of a child session's `attach` configuration besides `__spythonChild` (which it sends). */
const ATTACH_ATTRIBUTES: Readonly<Record<string, Check>> = {
  breakOnEvents: ATTRIBUTES.breakOnEvents,
  showEvents: isStringList,
  hideEvents: isStringList,
  runsDir: isString,
};

/** Attributes every VS Code launch configuration may carry; the adapter ignores them. */
const EDITOR_ATTRIBUTES = new Set([
  'type',
  'request',
  'name',
  'preLaunchTask',
  'postDebugTask',
  'internalConsoleOptions',
  'debugServer',
  'presentation',
  'noDebug',
  'suppressMultipleSessionWarning',
  'suppressDebugToolbar',
  'suppressDebugStatusbar',
  'suppressDebugView',
  'windows',
  'osx',
  'linux',
  'lifecycleManagedByParent',
]);

/** The attribute names the adapter understands. */
const LAUNCH_ATTRIBUTES: readonly string[] = Object.keys(ATTRIBUTES);

// ---------------------------------------------------------------------------------------------

/**
 * Checks a launch configuration and turns it into a plan. Throws LaunchConfigError naming every
 * problem found. `baseEnv` is the environment the program inherits (default: the adapter's own).
 */
export function planLaunch(attributes: unknown, baseEnv: NodeJS.ProcessEnv = process.env): LaunchPlan {
  if (!isPlainObject(attributes)) throw new LaunchConfigError('The launch configuration must be an object.');
  const a = attributes as Record<string, any>;

  const problems: string[] = [];
  for (const [name, value] of Object.entries(a)) {
    if (name.startsWith('__') || EDITOR_ATTRIBUTES.has(name) || value === undefined) continue;
    const check = ATTRIBUTES[name];
    if (!check) {
      problems.push(`unknown attribute "${name}" (${suggest(name, LAUNCH_ATTRIBUTES)})`);
      continue;
    }
    const error = check(value, name);
    if (error) problems.push(error);
  }
  if (a.program === undefined && a.module === undefined) {
    problems.push('"program" (the Python file to run) or "module" (to run with -m) is missing');
  } else if (a.program !== undefined && a.module !== undefined) {
    problems.push('give either "program" or "module", not both');
  }
  if (problems.length > 0) throw invalid(problems);

  const cwd = path.resolve(a.cwd ?? process.cwd());
  if (!isDirectory(cwd)) throw invalid([`"cwd" ${JSON.stringify(cwd)} is not a directory`]);

  let program: string | undefined;
  if (a.program !== undefined) {
    program = path.resolve(cwd, a.program);
    if (!isFile(program)) throw invalid([`"program" ${JSON.stringify(program)} does not exist or is not a file`]);
  }

  const launcherArgs: string[] = [];
  if (a.python !== undefined) launcherArgs.push('--python', a.python);
  launcherArgs.push('--', ...(a.pythonArgs ?? []));
  launcherArgs.push(...(program !== undefined ? [program] : ['-m', a.module as string]), ...(a.args ?? []));

  const launcherConfig: LauncherConfig = {};
  for (const key of ['startupControl', 'lockHooks', 'execCheck', 'subProcess', 'stopOnEntry'] as const) {
    if (a[key] === true) launcherConfig[key] = true;
  }
  for (const key of [
    'denyEvents',
    'promptEvents',
    'verifyImports',
    'verifyExempt',
    'xattrName',
    'maxCodeSize',
    'manifest',
    'manifestKey',
    'auditLog',
  ] as const) {
    if (a[key] !== undefined) launcherConfig[key] = a[key];
  }

  const consoleKind: ConsoleKind = a.console ?? 'internalConsole';
  const env = programEnvironment(baseEnv, a.envFile === undefined ? undefined : path.resolve(cwd, a.envFile), a.env);
  // In the Debug Console the program writes to a pipe, where Python would buffer its output until
  // exit: unbuffered, prints interleave with the audit events they belong with (as under debugpy).
  if (consoleKind === 'internalConsole' && !('PYTHONUNBUFFERED' in env)) env.PYTHONUNBUFFERED = '1';

  return {
    launcherArgs,
    cwd,
    env,
    console: consoleKind,
    launcherConfig,
    breakOnEvents: eventBreakpoints(a.breakOnEvents),
    showEvents: a.showEvents ?? [],
    hideEvents: a.hideEvents ?? [],
    runsDir: path.resolve(cwd, a.runsDir ?? DEFAULT_RUNS_DIR),
    title: program ?? `-m ${a.module}`,
  };
}

/** A child session's plan: the process to attach to, what to show, and launch.json's event breakpoints. */
export interface AttachPlan {
  target: ChildTarget;
  view: ViewPlan;
  breakOnEvents: EventBreakpoint[];
}

/**
 * Checks an `attach` configuration. Only child sessions attach: the parent session's adapter sends the
 * configuration (startDebugging) with `__spythonChild`, the process's relay, and the display attributes
 * of its own launch configuration.
 */
export function planAttach(attributes: unknown): AttachPlan {
  if (!isPlainObject(attributes)) throw new LaunchConfigError('The attach configuration must be an object.');
  const a = attributes as Record<string, any>;
  const child = a.__spythonChild as Record<string, unknown> | undefined;
  if (
    !isPlainObject(child) ||
    typeof child.address !== 'string' ||
    typeof child.token !== 'string' ||
    !Number.isInteger(child.pid) ||
    !Number.isInteger(child.ppid)
  ) {
    throw new LaunchConfigError(
      '"attach" is how child processes (subProcess) get their own session, started by the adapter itself; ' +
        'to audit a program, use "request": "launch".',
    );
  }
  const problems: string[] = [];
  for (const [name, value] of Object.entries(a)) {
    // Launch attributes an editor may have added (the interpreter, cwd) mean nothing here.
    const ignored = name in ATTRIBUTES && !(name in ATTACH_ATTRIBUTES);
    if (name.startsWith('__') || EDITOR_ATTRIBUTES.has(name) || value === undefined || ignored) continue;
    const check = ATTACH_ATTRIBUTES[name];
    const error = check ? check(value, name) : `unknown attribute "${name}" for "attach"`;
    if (error) problems.push(error);
  }
  if (problems.length > 0) throw invalid(problems);
  const target = child as unknown as ChildTarget;
  return {
    target: { address: target.address, token: target.token, pid: target.pid, ppid: target.ppid },
    view: {
      showEvents: a.showEvents ?? [],
      hideEvents: a.hideEvents ?? [],
      runsDir: path.resolve(a.runsDir ?? DEFAULT_RUNS_DIR),
      title: `python-${target.pid}`,
    },
    breakOnEvents: eventBreakpoints(a.breakOnEvents),
  };
}

function eventBreakpoints(rules: PolicyRule[] | undefined): EventBreakpoint[] {
  return (rules ?? []).map((rule) => (typeof rule === 'string' ? { event: rule } : (rule as EventBreakpoint)));
}

/**
 * The inherited environment, then the envFile's variables (parsed by dotenv), then `env` (where null
 * removes a variable). The channel's variables are never inherited.
 */
function programEnvironment(
  baseEnv: NodeJS.ProcessEnv,
  envFile: string | undefined,
  env: Record<string, string | null> | undefined,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(baseEnv)) {
    if (value !== undefined && key !== 'SPYTHON_CHANNEL' && key !== 'SPYTHON_TOKEN') result[key] = value;
  }
  if (envFile !== undefined) {
    let text: Buffer;
    try {
      text = fs.readFileSync(envFile);
    } catch (err) {
      throw invalid([`"envFile" ${JSON.stringify(envFile)} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`]);
    }
    Object.assign(result, parseDotenv(text));
  }
  for (const [key, value] of Object.entries(env ?? {})) {
    if (value === null) delete result[key];
    else result[key] = value;
  }
  return result;
}

function invalid(problems: string[]): LaunchConfigError {
  return new LaunchConfigError(`Invalid launch configuration: ${problems.join('; ')}.`);
}

function suggest(name: string, candidates: readonly string[]): string {
  return `did you mean "${closest(name, [...candidates])}"?`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
