// How the command line shows things on a terminal: colours (picocolors, on stderr's terms), event
// lines (`socket.connect ('127.0.0.1', 8080)  examples/demo.py:42`) and the catalogue category an
// event record belongs to (for colours and the summary's grouping).

import * as path from 'node:path';
import picocolors from 'picocolors';
import { DENIED_CATEGORY, EVENT_CATEGORIES, eventMatcher, visibleArguments } from '../catalog';
import { AuditRecord, eventSite, formatValue } from '../records';

export type Colors = ReturnType<typeof picocolors.createColors>;

/**
 * Whether the command line's own output (on stderr) is coloured: `--color` / `--no-color` decide,
 * else NO_COLOR turns colour off and FORCE_COLOR on, else a terminal that is not `dumb` gets colour.
 */
export function useColor(flag: boolean | undefined, stream: NodeJS.WriteStream = process.stderr): boolean {
  if (flag !== undefined) return flag;
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true && process.env.TERM !== 'dumb';
}

export function colors(enabled: boolean): Colors {
  return picocolors.createColors(enabled);
}

// ---------------------------------------------------------------------------------------------
// Categories

/** The id of the summary's catch-all group. */
export const OTHER_CATEGORY = 'other';

/** The summary's groups, in order: the catalogue's categories (less `denied`), then everything else. */
export const SUMMARY_CATEGORIES: ReadonlyArray<{ id: string; label: string }> = [
  ...EVENT_CATEGORIES.filter((c) => c.id !== DENIED_CATEGORY).map((c) => ({ id: c.id, label: c.label })),
  { id: OTHER_CATEGORY, label: 'Other' },
];

/**
 * The launcher evaluates a category's conditions in Python; the summary has only the rendered
 * arguments. These mirror catalog.ts's two conditions (OPEN_FOR_WRITING, COMPILE_FROM_STRING) over
 * the rendered values; a conditional rule without a mirror here matches nothing.
 */
const CONDITION_MIRRORS: Readonly<Record<string, (args: readonly unknown[]) => boolean>> = {
  open: (args) => {
    const [file, mode, flags] = args;
    if (typeof file === 'number') return false;
    if (typeof mode === 'string') return /[wax+]/.test(mode);
    return mode === null && typeof flags === 'number' && (flags & 0o3103) !== 0;
  },
  compile: (args) => {
    const [source, filename] = args;
    const isText =
      typeof source === 'string' || (typeof source === 'object' && source !== null && ('$str' in source || '$bytes' in source));
    const name = typeof filename === 'string' ? filename : formatValue(filename);
    return isText && !name.endsWith('.py');
  },
};

interface CategoryMatcher {
  id: string;
  /** Event names its unconditional rules match. */
  always: (name: string) => boolean;
  /** Event names of its conditional rules, with the mirror of each condition. */
  conditional: Map<string, (args: readonly unknown[]) => boolean>;
}

let matchers: CategoryMatcher[] | undefined;

/**
 * Made on first use: compiling the categories' globs (~1 ms) is then done by a run while the launcher
 * starts, and never by the commands that show no event (stamp, verify).
 */
function categoryMatchers(): CategoryMatcher[] {
  matchers ??= EVENT_CATEGORIES.filter((c) => c.id !== DENIED_CATEGORY).map((category) => {
    const conditional = new Map<string, (args: readonly unknown[]) => boolean>();
    for (const rule of category.rules) {
      if (rule.condition) conditional.set(rule.event, CONDITION_MIRRORS[rule.event] ?? (() => false));
    }
    return {
      id: category.id,
      always: eventMatcher(category.rules.filter((r) => !r.condition).map((r) => r.event)),
      conditional,
    };
  });
  return matchers;
}

/** Decisions per event name: a category id, or undefined when the arguments decide. */
const byName = new Map<string, string | undefined>();

/** The summary group of a record: the first category that takes it, else `other`. */
export function categoryOf(record: Pick<AuditRecord, 'event' | 'args'>): string {
  const name = record.event;
  const decided = categoryByName(name);
  if (decided !== undefined) return decided;
  for (const matcher of categoryMatchers()) {
    const test = matcher.conditional.get(name);
    if (test && Array.isArray(record.args) && test(record.args)) return matcher.id;
  }
  return OTHER_CATEGORY;
}

/** The summary group of every record named `name`; undefined when its arguments decide. */
export function categoryByName(name: string): string | undefined {
  let decided = byName.get(name);
  if (decided === undefined && !byName.has(name)) {
    let conditional = false;
    for (const matcher of categoryMatchers()) {
      if (matcher.always(name)) {
        decided = matcher.id;
        break;
      }
      if (matcher.conditional.has(name)) conditional = true;
    }
    if (decided === undefined && !conditional) decided = OTHER_CATEGORY;
    byName.set(name, decided);
  }
  return decided;
}

export function categoryLabel(id: string): string {
  return SUMMARY_CATEGORIES.find((c) => c.id === id)?.label ?? id;
}

/** The colour of an event name by its category. */
export function categoryColor(c: Colors, id: string): (text: string) => string {
  switch (id) {
    case 'network':
      return c.cyan;
    case 'subprocess':
      return c.magenta;
    case 'fileWrite':
      return c.yellow;
    case 'dynamicCode':
      return c.blue;
    case 'nativeCode':
    case 'hooks':
      return c.red;
    default:
      return (text) => text;
  }
}

// ---------------------------------------------------------------------------------------------
// Lines

/** Longest argument text in a line. */
const MAX_ARGUMENTS_TEXT = 200;

export function truncate(text: string, max = MAX_ARGUMENTS_TEXT): string {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

/** `examples/demo.py:42`: relative to `base` when the file is under it, `<frozen os>` as it is. */
export function location(file: string | undefined, line: number | undefined, base: string = process.cwd()): string {
  if (file === undefined) return '';
  let shown = file;
  if (path.isAbsolute(file)) {
    const relative = path.relative(base, file);
    if (relative && !relative.startsWith('..') && !path.isAbsolute(relative)) shown = relative;
  }
  return line ? `${shown}:${line}` : shown;
}

/** `demo.py:12`: where the program raised the record's event (eventSite), relative to `base`. */
export function siteLocation(record: AuditRecord, base?: string): string {
  const site = eventSite(record);
  return location(site.file, site.line, base);
}

/** The arguments worth showing, as Python would print them: `('127.0.0.1', 8080)`. */
export function argumentsText(record: Pick<AuditRecord, 'event' | 'args'>): string {
  const shown = visibleArguments(record.event, Array.isArray(record.args) ? record.args : []);
  if (shown.length === 0) return '';
  if (shown.length === 1) return truncate(formatValue(shown[0]));
  return truncate(formatValue(shown));
}

/** Prefix of every line the command line prints during a run, telling it from the program's output. */
export function tag(c: Colors): string {
  return c.dim('[audit]');
}

/** `[audit] socket.connect ('127.0.0.1', 8080)  examples/demo.py:42  DENIED by denyEvents`. */
export function eventLine(c: Colors, record: AuditRecord, base?: string, mainPid?: number): string {
  const category = categoryOf(record);
  const name = record.denied ? c.bold(c.red(record.event)) : categoryColor(c, category)(record.event);
  // A process the program started says which it is.
  const origin = mainPid !== undefined && record.pid !== mainPid ? `${c.dim(`[pid ${record.pid}]`)} ` : '';
  let text = `${tag(c)} ${origin}${name}`;
  const args = argumentsText(record);
  if (args) text += ` ${args}`;
  const where = siteLocation(record, base);
  if (where) text += `  ${c.dim(where)}`;
  if (record.denied) text += `  ${c.bold(c.red(`DENIED by ${record.denied}`))}`;
  return text;
}

/** `1,234`. */
export { thousands as n } from '../thousands';
