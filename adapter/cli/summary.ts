// What a run did, gathered from every record (hidden and held-back ones included), and the summary
// tables printed when it ends: counts per event grouped by category, denied operations, verification
// failures and processes.

import type Table from 'cli-table3';
import { eventMatcher, mainArgument } from '../catalog';
import { AuditRecord, formatValue, fullRecord, ReceivedRecord } from '../records';
import { categoryByName, categoryLabel, categoryOf, Colors, location, n, OTHER_CATEGORY, siteLocation, SUMMARY_CATEGORIES, truncate } from './render';

/** Records kept for the reports (denied and --fail-on ones); past this, they are counted only. */
const MAX_FINDINGS = 100_000;
/** Rows of the denied-operations and verification tables; the rest are counted. */
const MAX_ROWS = 20;
/** Event names listed under "Other"; the rest are summed up. */
const MAX_OTHER_EVENTS = 10;

export interface ProcessInfo {
  pid: number;
  ppid: number;
  events: number;
  /** What it ran (`cpython.run_*`), in order: a process that exec'd Python again ran several. */
  programs: string[];
  /** Its exit status, when it said (the `exit` message; none after os._exit, a signal or a crash). */
  exitStatus?: number;
}

/** Longest program text in the processes table. */
const MAX_PROGRAM_TEXT = 60;

/** A record the reports name: refused by a policy, or matching --fail-on (or both). */
export interface Finding {
  record: AuditRecord;
  /** The --fail-on glob it matched, if any. */
  failOn?: string;
}

export class RunStats {
  /** Records received in all. */
  total = 0;
  /** Per summary category, per event name (without `byCategory`, some under OTHER_CATEGORY). */
  readonly counts = new Map<string, Map<string, number>>();
  /** Refused operations (records with `denied`), the first MAX_FINDINGS of them. */
  readonly denied: AuditRecord[] = [];
  deniedCount = 0;
  /** spython.code_refused records: code files verifyImports or execCheck refused. */
  readonly refusedCode: AuditRecord[] = [];
  refusedCodeCount = 0;
  /** Records matching --fail-on, per event name. */
  readonly failOnCounts = new Map<string, number>();
  failOnCount = 0;
  /** Denied or --fail-on records, in arrival order, for SARIF. */
  readonly findings: Finding[] = [];
  findingsDropped = 0;
  /** Every process that sent records, in order of its first record. */
  readonly processes = new Map<number, ProcessInfo>();

  private readonly failOnGlobs: string[];
  private readonly failOnAny: (name: string) => boolean;
  private readonly failOnEach: Array<{ glob: string; test: (name: string) => boolean }>;

  /**
   * `byCategory`: whether `counts` must group every record by its category (the summary's tables).
   * Without it, records whose category depends on their arguments (an open's mode) are not read for it.
   */
  constructor(
    failOn: readonly string[] = [],
    private readonly options: { byCategory: boolean } = { byCategory: true },
  ) {
    this.failOnGlobs = [...failOn];
    this.failOnAny = eventMatcher(this.failOnGlobs);
    this.failOnEach = this.failOnGlobs.map((glob) => ({ glob, test: eventMatcher([glob]) }));
  }

  /**
   * Whether every record named `name` must be given to `add`: its category depends on its arguments,
   * or it is kept (refused code, --fail-on, what a process runs). The others may come counted
   * (`addCounted`), refused ones excepted.
   */
  readEach(name: string): boolean {
    return (
      name.startsWith('cpython.run_') ||
      name === 'spython.code_refused' ||
      (this.failOnGlobs.length > 0 && this.failOnAny(name)) ||
      (this.options.byCategory && categoryByName(name) === undefined)
    );
  }

  /** Counts one record; a received one is parsed only when it is kept (denied, refused code, a finding). */
  add(record: AuditRecord | ReceivedRecord): void {
    const process = this.count(record.pid, record.ppid, record.event, categoryOf(record), 1);
    if (record.event.startsWith('cpython.run_')) {
      const program = programOf(fullRecord(record));
      if (program !== undefined) process.programs.push(program);
    }

    let failOn: string | undefined;
    if (this.failOnGlobs.length > 0 && this.failOnAny(record.event)) {
      failOn = this.failOnEach.find((f) => f.test(record.event))?.glob;
      this.failOnCount++;
      this.failOnCounts.set(record.event, (this.failOnCounts.get(record.event) ?? 0) + 1);
    }
    const denied = record.denied;
    if (denied) {
      this.deniedCount++;
      if (this.denied.length < MAX_FINDINGS) this.denied.push(fullRecord(record));
    }
    if (record.event === 'spython.code_refused') {
      this.refusedCodeCount++;
      if (this.refusedCode.length < MAX_ROWS) this.refusedCode.push(fullRecord(record));
    }
    if (denied || failOn !== undefined) {
      if (this.findings.length < MAX_FINDINGS) this.findings.push({ record: fullRecord(record), failOn });
      else this.findingsDropped++;
    }
  }

  /** Counts `count` records named `name` of process `pid`, none refused, none that `readEach` names. */
  addCounted(pid: number, ppid: number, name: string, count: number): void {
    this.count(pid, ppid, name, categoryByName(name) ?? OTHER_CATEGORY, count);
  }

  private count(pid: number, ppid: number, name: string, category: string, count: number): ProcessInfo {
    this.total += count;
    let names = this.counts.get(category);
    if (!names) {
      names = new Map();
      this.counts.set(category, names);
    }
    names.set(name, (names.get(name) ?? 0) + count);

    let process = this.processes.get(pid);
    if (!process) {
      process = { pid, ppid, events: 0, programs: [] };
      this.processes.set(pid, process);
    }
    process.events += count;
    return process;
  }

  /**
   * An operation refused after its record was sent (denied at a break: policy `debugger`). The record
   * stays as the launcher sent it; the refusal is counted and reported.
   */
  addDenial(record: AuditRecord, policy: string): void {
    const denied = { ...record, denied: policy };
    this.deniedCount++;
    if (this.denied.length < MAX_FINDINGS) this.denied.push(denied);
    if (this.findings.length < MAX_FINDINGS) this.findings.push({ record: denied });
    else this.findingsDropped++;
  }

  /** A connected process is over; its status, when it said. */
  processEnded(pid: number, exitStatus: number | undefined): void {
    const process = this.processes.get(pid);
    if (process && exitStatus !== undefined) process.exitStatus = exitStatus;
  }

  /** True when an event matched --fail-on. */
  get failed(): boolean {
    return this.failOnCount > 0;
  }
}

// ---------------------------------------------------------------------------------------------

export interface SummaryContext {
  c: Colors;
  /** What ran: the program's path (relative to the current directory) or `-m module`. */
  title: string;
  /** The program's exit status, or a description of how it ended. */
  ending: string;
  /** Lines shown live. */
  shown: number;
  /** The JSONL copy of every record. */
  runLog?: string;
  /** Reports written: [what, file]. */
  reports: Array<[string, string]>;
  /** The --fail-on globs. */
  failOn: readonly string[];
  /** The main process's pid and exit description, for the processes table. */
  mainPid?: number;
  base: string;
}

/** The summary printed at exit, as lines (no trailing newline). */
export function summaryText(stats: RunStats, ctx: SummaryContext): string {
  const { c } = ctx;
  const out: string[] = [];
  const heading = (text: string) => out.push('', c.bold(text));
  out.push('', c.bold(`spython-audit: ${ctx.title} ${ctx.ending}`));
  const parts = [
    `${n(stats.total)} audit event${stats.total === 1 ? '' : 's'} (${n(ctx.shown)} shown)`,
    stats.deniedCount ? c.red(`${n(stats.deniedCount)} denied`) : '0 denied',
    stats.refusedCodeCount ? c.red(`${n(stats.refusedCodeCount)} verification failure${stats.refusedCodeCount === 1 ? '' : 's'}`) : '0 verification failures',
    `${n(stats.processes.size)} process${stats.processes.size === 1 ? '' : 'es'}`,
  ];
  out.push(parts.join(', '));

  // Events per category.
  heading('Events by category');
  const events = table(['Category', 'Event', 'Count'], ['left', 'left', 'right']);
  for (const category of SUMMARY_CATEGORIES) {
    const names = stats.counts.get(category.id);
    if (!names || names.size === 0) continue;
    const sorted = [...names].sort((a, b) => b[1] - a[1] || compareNames(a[0], b[0]));
    const limit = category.id === OTHER_CATEGORY ? MAX_OTHER_EVENTS : sorted.length;
    const listed = sorted.slice(0, limit);
    const rest = sorted.slice(limit);
    const rows: string[][] = listed.map(([name, count]) => [name, n(count)]);
    if (rest.length > 0) {
      const sum = rest.reduce((total, [, count]) => total + count, 0);
      rows.push([c.dim(`… ${n(rest.length)} more event names`), n(sum)]);
    }
    rows.forEach((row, i) => events.push([i === 0 ? categoryLabel(category.id) : '', ...row]));
  }
  if (events.length === 0) out.push('  none');
  else out.push(events.toString());

  // Denied operations.
  heading('Denied operations');
  if (stats.deniedCount === 0) {
    out.push('  none');
  } else {
    const denied = table(['Event', 'Target', 'Policy', 'Location'], ['left', 'left', 'left', 'left']);
    for (const record of stats.denied.slice(0, MAX_ROWS)) {
      denied.push([
        c.red(record.event),
        truncate(targetText(record), 50),
        record.denied ?? '',
        shorten(siteLocation(record, ctx.base), 50) + (stats.processes.size > 1 ? ` (pid ${record.pid})` : ''),
      ]);
    }
    out.push(denied.toString());
    if (stats.deniedCount > MAX_ROWS) out.push(c.dim(`  … and ${n(stats.deniedCount - MAX_ROWS)} more (all in the JSONL log)`));
  }

  // Verification failures.
  heading('Verification failures');
  if (stats.refusedCodeCount === 0) {
    out.push('  none');
  } else {
    const refused = table(['Code file', 'Policy', 'Reason'], ['left', 'left', 'left']);
    for (const record of stats.refusedCode) {
      const [file, policy, why] = record.args;
      refused.push([shorten(String(file), 60), String(policy ?? record.denied ?? ''), truncate(refusalReason(String(file), String(why ?? '')), 70)]);
    }
    out.push(refused.toString());
    if (stats.refusedCodeCount > stats.refusedCode.length) {
      out.push(c.dim(`  … and ${n(stats.refusedCodeCount - stats.refusedCode.length)} more (all in the JSONL log)`));
    }
  }

  // --fail-on.
  if (ctx.failOn.length > 0) {
    heading(`--fail-on ${ctx.failOn.join(' ')}`);
    if (stats.failOnCount === 0) out.push('  no matching event');
    else out.push(c.red(`  ${[...stats.failOnCounts].map(([name, count]) => `${name} ${n(count)}`).join(', ')}`));
  }

  // Processes, as a tree: each under the process that started it.
  heading('Processes');
  const processes = table(['PID', 'Parent', 'Program', 'Events', 'Exit'], ['left', 'right', 'left', 'right', 'left']);
  for (const { info, depth } of processTree(stats.processes)) {
    const exit =
      info.pid === ctx.mainPid ? ctx.ending : info.exitStatus !== undefined ? `exited with status ${info.exitStatus}` : '';
    const program =
      info.programs.length > 0
        ? info.programs
            .map((p) => (p.startsWith('-') || p === '<stdin>' ? truncate(p, MAX_PROGRAM_TEXT) : shorten(location(p, undefined, ctx.base), MAX_PROGRAM_TEXT)))
            .join(' → ')
        : stats.processes.has(info.ppid)
          ? c.dim(`(fork of ${info.ppid})`)
          : '';
    processes.push([depth === 0 ? String(info.pid) : `${'  '.repeat(depth - 1)}└ ${info.pid}`, String(info.ppid), program, n(info.events), exit]);
  }
  if (processes.length === 0) out.push('  none connected');
  else out.push(processes.toString());

  out.push('');
  if (ctx.runLog) out.push(`Every record: ${ctx.runLog}`);
  for (const [what, file] of ctx.reports) out.push(`${what}: ${file}`);
  return out.join('\n');
}

/** Every process after its parent (depth-first, each level in order of first record). */
export function processTree(processes: ReadonlyMap<number, ProcessInfo>): Array<{ info: ProcessInfo; depth: number }> {
  const children = new Map<number, ProcessInfo[]>();
  const roots: ProcessInfo[] = [];
  for (const info of processes.values()) {
    if (info.ppid !== info.pid && processes.has(info.ppid)) {
      const siblings = children.get(info.ppid) ?? [];
      siblings.push(info);
      children.set(info.ppid, siblings);
    } else {
      roots.push(info);
    }
  }
  const out: Array<{ info: ProcessInfo; depth: number }> = [];
  const visit = (info: ProcessInfo, depth: number) => {
    out.push({ info, depth });
    for (const child of children.get(info.pid) ?? []) visit(child, depth + 1);
  };
  for (const root of roots) visit(root, 0);
  return out;
}

/** What a `cpython.run_*` record says the process runs: the script, `-c CODE` or `-m MODULE`. */
function programOf(record: AuditRecord): string | undefined {
  const first = Array.isArray(record.args) ? record.args[0] : undefined;
  const text = typeof first === 'string' ? first : first !== undefined ? formatValue(first) : '';
  switch (record.event) {
    case 'cpython.run_file':
      return text;
    case 'cpython.run_command':
      return `-c ${text.replace(/\s+/g, ' ').trim()}`;
    case 'cpython.run_module':
      return `-m ${text}`;
    case 'cpython.run_stdin':
      return '<stdin>';
    default:
      return undefined;
  }
}

/** The operation's target: its main argument as Python shows it. */
export function targetText(record: AuditRecord): string {
  const main = mainArgument(record.event, Array.isArray(record.args) ? record.args : []);
  return main === undefined ? '' : formatValue(main);
}

/** A long path with its middle left out: `/root/…/lib/python3.11/subprocess.py:1821`. */
function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  return '…' + text.slice(text.length - max + 1);
}

/** "PATH: REASON: DETAIL" (as verifyImports words it) without the path. */
function refusalReason(file: string, why: string): string {
  const text = why.replace(/^cpython\.run_file /, '');
  return text.startsWith(`${file}: `) ? text.slice(file.length + 2) : text;
}

/**
 * Printable ASCII in the order of Unicode's root collation, which localeCompare follows: punctuation,
 * then digits, then letters (a letter's case only breaks ties).
 */
const COLLATION_ORDER = ` _-,;:!?.'"()[]{}@*/\\&#%\`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz`;
const PRIMARY_WEIGHT = new Uint8Array(128);
for (let i = 0; i < COLLATION_ORDER.length; i++) {
  const code = COLLATION_ORDER.charCodeAt(i);
  PRIMARY_WEIGHT[code] = i + 1;
  if (code >= 0x61 && code <= 0x7a) PRIMARY_WEIGHT[code - 0x20] = i + 1;
}
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * a.localeCompare(b) for event names, without it: its first call starts ICU's collator, ~8 ms of a
 * run. Names of printable ASCII are compared letter by letter ignoring case, then lowercase first at
 * the first difference of case; any other name is left to localeCompare.
 */
export function compareNames(a: string, b: string): number {
  if (!PRINTABLE_ASCII.test(a) || !PRINTABLE_ASCII.test(b)) return a.localeCompare(b);
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = PRIMARY_WEIGHT[a.charCodeAt(i)] - PRIMARY_WEIGHT[b.charCodeAt(i)];
    if (difference !== 0) return Math.sign(difference);
  }
  if (a.length !== b.length) return Math.sign(a.length - b.length);
  for (let i = 0; i < length; i++) {
    // The same letter in another case: lowercase (the higher code) first.
    const difference = b.charCodeAt(i) - a.charCodeAt(i);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

function table(head: string[], colAligns: Array<'left' | 'right'>): Table.Table {
  // Loaded when a summary is drawn: `run --no-summary` and the other subcommands start without it.
  const TableClass: typeof Table = require('cli-table3');
  // Colours are ours (picocolors); cli-table3's own would ignore --no-color.
  return new TableClass({ head, colAligns, style: { head: [], border: [], compact: true } });
}
