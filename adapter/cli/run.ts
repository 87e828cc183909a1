// `spython-audit run`: the debug adapter's engine (adapter/engine.ts) driven from a terminal. The same
// launch configuration checks (config.ts), breakpoints (breakpoints.ts), display filter and flood
// control, launch and channel code as in the editor; this file only turns flags or a launch.json
// configuration into the launch attributes, prints what the engine reports, asks the terminal where
// the editor would ask the user, and writes the reports.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BreakpointRegistry } from '../breakpoints';
import { EVENT_CATEGORIES, eventInfo } from '../catalog';
import { LaunchConfigError, LaunchPlan, planLaunch } from '../config';
import { Engine, PromptInfo, StopInfo, TerminalStarter } from '../engine';
import { AuditRecord, eventSummary, formatValue } from '../records';
import { Answer, Terminal } from './ask';
import { EXIT_FAIL_ON, EXIT_LAUNCHER } from './exit';
import { findConfiguration, resolveVariables, UsageError } from './launchjson';
import { findLauncher } from './launcher';
import { colors, Colors, eventLine, location, n, siteLocation, tag, useColor } from './render';
import { sarifLog } from './sarif';
import { RunStats, summaryText } from './summary';

/** The options of `run`, as commander gives them. */
export interface RunFlags {
  module?: string;
  config?: string;
  workspace?: string;
  python?: string;
  pythonArg?: string[];
  cwd?: string;
  env?: string[];
  envFile?: string;
  startupControl?: boolean;
  deny?: string[];
  prompt?: string[];
  break?: string[];
  breakCategory?: string[];
  stopOnEntry?: boolean;
  verify?: string;
  verifyExempt?: string[];
  xattrName?: string;
  maxCodeSize?: string;
  manifest?: string;
  key?: string;
  execCheck?: boolean;
  lockHooks?: boolean;
  syslog?: string[];
  journal?: string[];
  logFile?: string;
  show?: string[];
  hide?: string[];
  subProcess?: boolean;
  jsonl?: string;
  sarif?: string;
  failOn?: string[];
  quiet?: boolean;
  summary?: boolean;
  color?: boolean;
}

/** After the program exits, how long the channel may stay open (a process it forked may hold it). */
const CHANNEL_GRACE_MS = 2000;
/** After the launcher exits without having connected, how long its connection may take to be seen. */
const LATE_CONNECTION_MS = 250;
/** Frames shown when a break stops; `s` shows them all. */
const STACK_PREVIEW = 6;

// ---------------------------------------------------------------------------------------------
// Flags → launch attributes

/**
 * The launch attributes of a run: the launch.json configuration named by --config (if any) with the
 * flags replacing the attributes they name (lists too; `env` and `auditLog` key by key), then
 * variables resolved in what came from launch.json.
 */
export function launchAttributes(
  program: string | undefined,
  args: string[],
  flags: RunFlags,
  cwd: string = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): Record<string, unknown> {
  const workspace = path.resolve(cwd, flags.workspace ?? '.');
  const base: Record<string, unknown> = flags.config
    ? findConfiguration(workspace, flags.config)
    : { type: 'spython', request: 'launch', name: 'spython-audit' };
  const here = (p: string) => path.resolve(cwd, p);
  const overlay: Record<string, unknown> = {};

  if (flags.module !== undefined) {
    overlay.module = flags.module;
    overlay.args = program !== undefined ? [program, ...args] : args;
    delete base.program;
  } else if (program !== undefined) {
    overlay.program = here(program);
    overlay.args = args;
    delete base.module;
  }
  if (flags.python !== undefined) overlay.python = flags.python;
  if (flags.pythonArg) overlay.pythonArgs = flags.pythonArg;
  if (flags.cwd !== undefined) overlay.cwd = here(flags.cwd);
  if (flags.envFile !== undefined) overlay.envFile = here(flags.envFile);
  for (const key of ['startupControl', 'lockHooks', 'execCheck', 'subProcess', 'stopOnEntry'] as const) {
    if (flags[key]) overlay[key] = true;
  }
  if (flags.deny) overlay.denyEvents = flags.deny;
  if (flags.prompt) overlay.promptEvents = flags.prompt;
  if (flags.break) overlay.breakOnEvents = flags.break.map(parseBreak);
  if (flags.verify !== undefined) overlay.verifyImports = flags.verify;
  if (flags.verifyExempt) overlay.verifyExempt = flags.verifyExempt.map(here);
  if (flags.xattrName !== undefined) overlay.xattrName = flags.xattrName;
  if (flags.maxCodeSize !== undefined) {
    const size = Number(flags.maxCodeSize);
    if (!Number.isInteger(size) || size <= 0) throw new UsageError(`--max-code-size must be a positive integer (got ${flags.maxCodeSize})`);
    overlay.maxCodeSize = size;
  }
  if (flags.manifest !== undefined) overlay.manifest = here(flags.manifest);
  if (flags.key !== undefined) overlay.manifestKey = here(flags.key);
  if (flags.show) overlay.showEvents = flags.show;
  if (flags.hide) overlay.hideEvents = flags.hide;

  // env and auditLog: key by key.
  const flagEnv: Record<string, string> = {};
  for (const item of flags.env ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env takes NAME=VALUE (got ${JSON.stringify(item)})`);
    flagEnv[item.slice(0, eq)] = item.slice(eq + 1);
  }
  const flagLog: Record<string, unknown> = {};
  if (flags.logFile !== undefined) flagLog.file = here(flags.logFile);
  if (flags.syslog) flagLog.syslog = flags.syslog;
  if (flags.journal) flagLog.journal = flags.journal;

  const fromConfig: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(base)) if (!(key in overlay)) fromConfig[key] = value;
  if (isObject(fromConfig.env)) fromConfig.env = without(fromConfig.env, Object.keys(flagEnv));
  if (isObject(fromConfig.auditLog)) fromConfig.auditLog = without(fromConfig.auditLog, Object.keys(flagLog));
  const resolved = flags.config ? resolveVariables(fromConfig, { workspace, env, cwd }) : fromConfig;

  const attributes: Record<string, unknown> = { ...resolved, ...overlay };
  if (Object.keys(flagEnv).length > 0) attributes.env = { ...(isObject(resolved.env) ? resolved.env : {}), ...flagEnv };
  if (Object.keys(flagLog).length > 0) attributes.auditLog = { ...(isObject(resolved.auditLog) ? resolved.auditLog : {}), ...flagLog };
  return attributes;
}

/** `--break 'open if "w" in args[1]'`: a glob, optionally with a Python condition. */
function parseBreak(spec: string): string | { event: string; condition: string } {
  const m = /^(\S+)\s+if\s+(.+)$/s.exec(spec.trim());
  return m ? { event: m[1], condition: m[2] } : spec;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function without(object: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out = { ...object };
  for (const key of keys) delete out[key];
  return out;
}

// ---------------------------------------------------------------------------------------------
// The run

export interface RunContext {
  version: string;
  /** The command line as typed (for the SARIF invocation). */
  argv: string[];
}

type ChildEnd = { code: number | null; signal: NodeJS.Signals | null } | { error: Error };

/** Runs the program; resolves with the command line's exit status. */
export async function runCommand(program: string | undefined, args: string[], flags: RunFlags, context: RunContext): Promise<number> {
  const startTime = new Date();
  if (program === undefined && flags.module === undefined && flags.config === undefined) {
    throw new UsageError('what should run? Give a program (run [options] [--] program [args...]), --module NAME or --config NAME');
  }
  const attributes = launchAttributes(program, args, flags);
  let plan: LaunchPlan;
  try {
    plan = planLaunch(attributes);
  } catch (err) {
    if (err instanceof LaunchConfigError) throw new UsageError(err.message);
    throw err;
  }
  // The program runs in this terminal, started here (the engine's "terminal" launch).
  plan.console = 'integratedTerminal';

  const c = colors(useColor(flags.color));
  const term = new Terminal();
  const quiet = flags.quiet === true;
  const base = flags.config ? path.resolve(flags.workspace ?? '.') : process.cwd();
  const notes: string[] = [];
  const note = (text: string) => {
    notes.push(text);
    term.print(`${tag(c)} ${c.yellow(text)}`);
  };

  const breakpoints = new BreakpointRegistry();
  for (const problem of breakpoints.setLaunchBreakpoints(plan.breakOnEvents)) note(problem);
  if (flags.breakCategory?.length) {
    try {
      breakpoints.setFilters(flags.breakCategory.map((filterId) => ({ filterId })));
    } catch (err) {
      throw new UsageError(`--break-category: ${(err as Error).message} (one of ${EVENT_CATEGORIES.map((x) => x.id).join(', ')})`);
    }
  }
  const sarifFile = flags.sarif !== undefined ? path.resolve(flags.sarif) : undefined;
  const jsonlFile = flags.jsonl !== undefined ? path.resolve(flags.jsonl) : undefined;
  for (const [option, file] of [['--sarif', sarifFile], ['--jsonl', jsonlFile]] as const) {
    if (file !== undefined) checkWritable(option, file);
  }

  const stats = new RunStats(flags.failOn ?? [], { byCategory: flags.summary !== false });
  let child: ChildProcess | undefined;
  let resolveChild!: (end: ChildEnd) => void;
  const childEnded = new Promise<ChildEnd>((resolve) => (resolveChild = resolve));
  const startInTerminal: TerminalStarter = (request) =>
    new Promise<number | void>((resolve, reject) => {
      const [file, ...rest] = request.args;
      const started = spawn(file, rest, { cwd: request.cwd, env: request.env, stdio: 'inherit' });
      child = started;
      started.once('spawn', () => resolve(started.pid));
      started.once('error', (err) => {
        reject(new Error(`cannot run the launcher ${file}: ${err.message}`));
        resolveChild({ error: err });
      });
      started.once('exit', (code, signal) => resolveChild({ code, signal }));
    });

  const engine = new Engine({
    launcher: findLauncher(),
    startInTerminal,
    runLog: jsonlFile,
    readEach: (name) => stats.readEach(name),
    liveEvents: !quiet,
  });
  engine.on('record', (record) => stats.add(record));
  engine.on('recordsCounted', (counted) => stats.addCounted(counted.pid, counted.ppid, counted.name, counted.count));
  engine.on('processEnded', (end) => stats.processEnded(end.pid, end.exitStatus));
  if (!quiet) {
    engine.on('auditEvent', (record) => term.print(eventLine(c, record, base, engine.mainPid)));
    engine.on('heldBack', (held) => {
      const what = held.kind === 'event' ? `\`${held.name}\` events` : 'logpoint messages';
      term.print(`${tag(c)} ${c.dim(`… ${n(held.count)} more ${what} (all in the JSONL log)`)}`);
    });
    engine.on('logpoint', (message) =>
      term.print(`${tag(c)} ${message.message}  ${c.dim(location(message.file, message.line, base))}`),
    );
  }
  engine.on('breakpointError', (id, message) => {
    const origin = breakpoints.origin(id);
    const what = origin === undefined ? 'a breakpoint' : origin.kind === 'filter' ? origin.category.label : origin.event;
    note(`${what}: ${message} (ignored from now on)`);
  });
  engine.on('notice', (text) => term.print(`${tag(c)} ${c.yellow(text)}`));
  engine.on('stopped', (stop) => void onStopped(stop));
  engine.on('prompt', (prompt) => void onPrompt(prompt));
  const engineEnded = new Promise<void>((resolve) => engine.once('ended', () => resolve()));

  // --- breaks and prompts --------------------------------------------------------------------

  const onStopped = async (stop: StopInfo) => {
    const what = stopWhat(stop, base);
    if (!term.interactive) {
      note(`stopped on ${what}: no terminal to ask, so it continues`);
      safely(() => engine.resume(stop.threadId, 'allow'));
      return;
    }
    await term.converse(async (ask) => {
      term.say(`\n${c.bold(c.yellow(`■ Stopped on ${what}`))}  ${c.dim(`thread ${stop.threadId}, pid ${stop.pid}`)}\n`);
      const frames = await stackFrames(engine, stop.threadId);
      printStack(term, c, frames, STACK_PREVIEW, base);
      await printArguments(term, c, engine, frames[0]?.id, stop.record);
      for (;;) {
        const answer = await ask(`${c.bold('[c]ontinue / [d]eny / [s]tack / [p]rint EXPR')} > `);
        const text = answer.kind === 'line' ? answer.text.trim() : '';
        if (answer.kind === 'end' || text === '' || text === 'c' || text === 'continue') {
          safely(() => engine.resume(stop.threadId, 'allow'));
          return;
        }
        if (answer.kind === 'interrupt' || text === 'q' || text === 'quit') {
          term.say('Ending the program.\n');
          safely(() => engine.resume(stop.threadId, 'allow'));
          void engine.terminate();
          return;
        }
        if (text === 'd' || text === 'deny') {
          if (!stop.record) {
            term.say('Nothing to deny here (no operation is waiting): c continues.\n');
            continue;
          }
          stats.addDenial(stop.record, 'debugger');
          // Said before the program resumes: its own output on the same terminal would race the line.
          term.say(`${c.red(`Denied: ${stop.record.event} raises PermissionError.`)}\n`);
          safely(() => engine.resume(stop.threadId, 'deny'));
          return;
        }
        if (text === 'n' || text === 'next') {
          safely(() => engine.resume(stop.threadId, 'step'));
          return;
        }
        if (text === 's' || text === 'stack') {
          printStack(term, c, await stackFrames(engine, stop.threadId), Infinity, base);
          continue;
        }
        const print = /^(?:p|print)\s+(.+)$/s.exec(text);
        if (print) {
          term.say(`${await evaluate(engine, print[1], frames[0]?.id)}\n`);
          continue;
        }
        term.say(
          'c (or Enter): continue, the operation proceeds; d: deny, it raises PermissionError; ' +
            'n: continue to the thread’s next event; s: the whole stack; p EXPR: evaluate EXPR in the ' +
            'frame that raised the event (event and args are bound); q: end the program\n',
        );
      }
    });
  };

  const onPrompt = async (prompt: PromptInfo) => {
    const what = `${prompt.event} ${prompt.target}`;
    if (!term.interactive) {
      note(`promptEvents: no terminal to ask whether ${what} may proceed, so it is refused`);
      safely(() => engine.answerPrompt(prompt.id, 'deny'));
      return;
    }
    await term.converse(async (ask) => {
      for (;;) {
        const answer: Answer = await ask(`${tag(c)} ${c.bold(`allow ${what}?`)} [Y]es / [a]lways / [n]o > `);
        const text = answer.kind === 'line' ? answer.text.trim().toLowerCase() : 'n';
        const reply = text === '' || text === 'y' || text === 'yes' ? 'allow' : text === 'a' || text === 'always' ? 'allowAlways' : text === 'n' || text === 'no' ? 'deny' : undefined;
        if (reply === undefined) {
          term.say('y (or Enter): allow it once; a: allow this event and target from now on; n: refuse it (PermissionError)\n');
          continue;
        }
        safely(() => engine.answerPrompt(prompt.id, reply));
        return;
      }
    });
  };

  // --- signals -------------------------------------------------------------------------------

  // Ctrl-C reaches the program too (same process group): let it decide, and report when it ends.
  const onInterrupt = () => undefined;
  const forward = (signal: NodeJS.Signals) => () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill(signal);
    else void engine.terminate();
  };
  const onTerm = forward('SIGTERM');
  const onHup = forward('SIGHUP');
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);

  // --- running -------------------------------------------------------------------------------

  engine.setBreakpoints(breakpoints.entries(), breakpoints.breakOnDenied);
  engine.configurationDone();
  let startError: Error | undefined;
  let startSettled = false;
  const started = engine.start(plan).then(
    () => {
      startSettled = true;
    },
    (err: Error) => {
      startSettled = true;
      startError = err;
    },
  );

  let end: ChildEnd;
  try {
    await Promise.race([started, childEnded]);
    // A launch that failed before the launcher ran (the JSONL file, the channel, spawning).
    if (startError && child === undefined) end = { error: startError };
    else end = await childEnded;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onHup);
  }
  // The launch settles once the launcher has connected (the program runs, or a policy refused it, or
  // the connection ended). Unsettled now, the launcher died before connecting (its message is on
  // stderr): nothing more will come. Otherwise the channel ends with the program, unless a process
  // it forked holds it open.
  if (!startSettled) await Promise.race([started, delay(LATE_CONNECTION_MS)]);
  if (!startSettled || (await Promise.race([engineEnded, delay(CHANNEL_GRACE_MS).then(() => 'late' as const)])) === 'late') {
    await engine.terminate();
  }
  process.off('SIGINT', onInterrupt);
  if (startError && !('error' in end) && end.code !== EXIT_LAUNCHER && !/see the terminal/.test(startError.message)) {
    // A policy refused to start the program (startupControl...): the launcher's record says which.
    note(startError.message);
  }

  // --- the end -------------------------------------------------------------------------------

  if (!('error' in end)) {
    const stopped = engine.launcherStopped(end.code ?? undefined);
    if (stopped) note(stopped);
  }

  let status: number;
  let ending: string;
  if ('error' in end) {
    status = EXIT_LAUNCHER;
    ending = 'did not start';
    term.print(`spython-audit: ${end.error.message}`);
  } else if (end.signal) {
    const number = os.constants.signals[end.signal] ?? 0;
    status = 128 + number;
    ending = `was ended by ${end.signal} (status ${status})`;
  } else {
    status = end.code ?? 1;
    ending = status === EXIT_LAUNCHER && stats.total === 0 ? `failed to launch (status ${status})` : `exited with status ${status}`;
  }
  const failOnHit = status === 0 && stats.failed;
  const exitStatus = failOnHit ? EXIT_FAIL_ON : status;

  const reports: Array<[string, string]> = [];
  if (sarifFile !== undefined) {
    const log = sarifLog({
      findings: stats.findings,
      dropped: stats.findingsDropped,
      toolVersion: context.version,
      base,
      commandLine: context.argv,
      exitCode: 'error' in end ? undefined : status,
      ending,
      successful: exitStatus === 0,
      startTime,
      endTime: new Date(),
      notes,
    });
    fs.writeFileSync(sarifFile, JSON.stringify(log, null, 2) + '\n');
    reports.push(['SARIF report', displayPath(sarifFile)]);
  }
  if (flags.summary !== false) {
    const runLog = engine.runLog && fs.existsSync(engine.runLog) ? displayPath(engine.runLog) : undefined;
    process.stderr.write(
      summaryText(stats, {
        c,
        title: plan.title.startsWith('-m ') ? plan.title : displayPath(plan.title),
        ending,
        shown: engine.shownCount,
        runLog,
        reports,
        failOn: flags.failOn ?? [],
        mainPid: child?.pid,
        base,
      }) + '\n',
    );
  }
  if (failOnHit) {
    const names = [...stats.failOnCounts.keys()].join(', ');
    process.stderr.write(c.red(`spython-audit: --fail-on matched ${n(stats.failOnCount)} event(s) (${names}): exit status ${EXIT_FAIL_ON}\n`));
  }
  return exitStatus;
}

// ---------------------------------------------------------------------------------------------

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function checkWritable(option: string, file: string): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.closeSync(fs.openSync(file, 'a', 0o600));
  } catch (err) {
    throw new UsageError(`${option} ${file}: cannot write it (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

function safely(action: () => void): void {
  try {
    action();
  } catch {
    // The process ended meanwhile: nothing waits for the answer any more.
  }
}

function stopWhat(stop: StopInfo, base: string): string {
  if (stop.record) {
    const where = siteLocation(stop.record, base);
    const denied = stop.record.denied ? ` (denied by ${stop.record.denied})` : '';
    return `${eventSummary(stop.record)}${denied}${where ? ` at ${where}` : ''}`;
  }
  if (stop.reason === 'entry') return 'entry, before the program’s first line';
  return stop.description ?? stop.reason;
}

interface Frame {
  id: number;
  name: string;
  line: number;
  source?: { path?: string; name?: string };
}

async function stackFrames(engine: Engine, threadId: number): Promise<Frame[]> {
  try {
    const body = await engine.inspect('stackTrace', { threadId, startFrame: 0 });
    return Array.isArray(body.stackFrames) ? (body.stackFrames as Frame[]) : [];
  } catch {
    return [];
  }
}

function printStack(term: Terminal, c: Colors, frames: Frame[], limit: number, base: string): void {
  if (frames.length === 0) {
    term.say('  (no Python frames)\n');
    return;
  }
  term.say(`${c.bold('Stack')} (innermost first):\n`);
  frames.slice(0, limit).forEach((frame, i) => {
    const where = location(frame.source?.path ?? frame.source?.name, frame.line, base);
    term.say(`  #${i} ${frame.name}  ${c.dim(where)}\n`);
  });
  if (frames.length > limit) term.say(c.dim(`  … ${frames.length - limit} more frames (s shows them all)\n`));
}

/** The event's arguments: the launcher's Audit Event scope (real reprs), else the record's values. */
async function printArguments(term: Terminal, c: Colors, engine: Engine, frameId: number | undefined, record: AuditRecord | undefined): Promise<void> {
  if (!record) return;
  let lines: string[] | undefined;
  if (frameId !== undefined) {
    try {
      const scopes = (await engine.inspect('scopes', { frameId })).scopes as Array<{ name: string; variablesReference: number }>;
      const scope = scopes?.find((s) => s.name === 'Audit Event');
      if (scope) {
        const variables = (await engine.inspect('variables', { variablesReference: scope.variablesReference })).variables as Array<{ name: string; value: string }>;
        lines = variables.map((v) => `  ${v.name} = ${v.value}`);
      }
    } catch {
      lines = undefined;
    }
  }
  if (!lines) {
    const names = eventInfo(record.event)?.args ?? [];
    lines = [`  event = '${record.event}'`, ...record.args.map((value, i) => `  ${names[i] ?? `args[${i}]`} = ${formatValue(value)}`)];
  }
  term.say(`${c.bold('Event arguments')}:\n${lines.join('\n')}\n`);
}

async function evaluate(engine: Engine, expression: string, frameId: number | undefined): Promise<string> {
  try {
    const body = await engine.inspect('evaluate', { expression, frameId, context: 'repl' });
    return String(body.result ?? '');
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}
