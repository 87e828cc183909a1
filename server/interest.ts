// What a recorded event tells the reader of the source: whether it belongs in the inlay hint of its
// line (noisy machinery does not; the hover keeps everything), which category of interest it falls in,
// and the order the hint lists events in.

import { AuditRecord, formatValue } from '../adapter/records';
import { defaultVisibility, EVENT_CATEGORIES, eventMatcher, visibleArguments } from '../adapter/catalog';

/** Categories in hint order (after denied operations); `other` ranks last. */
export const INTEREST_ORDER = ['network', 'subprocess', 'fileWrite', 'dynamicCode', 'nativeCode', 'hooks'] as const;
export type Category = (typeof INTEREST_ORDER)[number];

/**
 * Events left out of hints even when the catalogue (whose `noise` field decides the rest) says
 * nothing: the import system's and the interpreter's machinery.
 */
const ALWAYS_QUIET: ReadonlySet<string> = new Set([
  'import',
  'marshal.loads',
  'marshal.load',
  'code.__new__',
  'object.__getattr__',
  'object.__setattr__',
  'object.__delattr__',
  'sys._getframe',
  'sys._getframemodulename',
  'builtins.id',
]);

/** Source and byte-code files the interpreter itself reads (import, linecache, tracebacks). */
const CODE_FILE = /\.(py|pyc|pyo|pyw|pth)$/i;

/** `open` for writing: mode with w, a, x or +; or os.open (mode None) with O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND. */
export function isOpenForWriting(args: readonly unknown[]): boolean {
  if (typeof args[0] === 'number') return false;
  const mode = args[1];
  if (typeof mode === 'string') return /[wax+]/.test(mode);
  return mode === null && typeof args[2] === 'number' && (args[2] & 0o3103) !== 0;
}

function isSourceText(value: unknown): boolean {
  if (typeof value === 'string') return true;
  return typeof value === 'object' && value !== null && ('$bytes' in value || '$str' in value);
}

/** `compile` of a string (exec/eval of text), not the import system compiling a .py file. */
export function isCompileFromString(args: readonly unknown[]): boolean {
  return isSourceText(args[0]) && !String(args[1]).endsWith('.py');
}

/** `exec` of code that does not come from a .py file (`exec("...")`, `eval(...)`). */
function isExecOfDynamicCode(args: readonly unknown[]): boolean {
  const code = args[0];
  if (typeof code !== 'object' || code === null || !('$code' in code)) return false;
  const file = (code as { file?: unknown }).file;
  return typeof file === 'string' && !file.endsWith('.py');
}

/** Python conditions of the catalogue's category rules, as JavaScript over the rendered arguments. */
const CONDITIONS: Readonly<Record<string, (args: readonly unknown[]) => boolean>> = {
  open: isOpenForWriting,
  compile: isCompileFromString,
};

interface CategoryTest {
  id: Category;
  matches: (name: string) => boolean;
  conditional: Map<string, (args: readonly unknown[]) => boolean>;
}

const CATEGORY_TESTS: CategoryTest[] = INTEREST_ORDER.map((id) => {
  const category = EVENT_CATEGORIES.find((c) => c.id === id);
  const plain = (category?.rules ?? []).filter((r) => !r.condition).map((r) => r.event);
  const conditional = new Map<string, (args: readonly unknown[]) => boolean>();
  for (const rule of category?.rules ?? []) {
    // A condition the lens cannot evaluate counts as not matching: never a wrong category.
    if (rule.condition) conditional.set(rule.event, CONDITIONS[rule.event] ?? (() => false));
  }
  return { id, matches: eventMatcher(plain), conditional };
});

/** The category of one record, if any (the first in INTEREST_ORDER). */
export function categoryOf(event: string, args: readonly unknown[]): Category | undefined {
  for (const test of CATEGORY_TESTS) {
    const condition = test.conditional.get(event);
    if (condition ? condition(args) : test.matches(event)) return test.id;
  }
  return undefined;
}

/**
 * Whether a record counts in its line's inlay hint. Denied records and spython.* always do; what an
 * import statement sets off in the library (directories listed, files read, the imported modules'
 * own code running) does not: the hover has it, beside the statement's `import` events.
 */
export function isTelling(record: Pick<AuditRecord, 'event' | 'args' | 'denied'>, partOfImport = false): boolean {
  const { event, args } = record;
  if (record.denied || event.startsWith('spython.')) return true;
  if (partOfImport) return false;
  if (ALWAYS_QUIET.has(event)) return false;
  switch (defaultVisibility(event)) {
    case 'shown':
      return true;
    case 'hidden':
      return false;
    default:
      break;
  }
  // Noisy events that still tell something when the program raises them itself.
  switch (event) {
    case 'open':
      return !(typeof args[0] === 'string' && CODE_FILE.test(args[0]) && !isOpenForWriting(args));
    case 'compile':
      return isCompileFromString(args);
    case 'exec':
      return isExecOfDynamicCode(args);
    default:
      return true;
  }
}

/** Rank for sorting: denied first, then the categories in order, then the rest. */
export function interestRank(denied: boolean, categories: ReadonlySet<Category>): number {
  if (denied) return 0;
  for (let i = 0; i < INTEREST_ORDER.length; i++) if (categories.has(INTEREST_ORDER[i])) return i + 1;
  return INTEREST_ORDER.length + 1;
}

const MAX_SAMPLE = 160;

/** The arguments worth showing (all but `self`), as Python-like text: `('127.0.0.1', 9)`. */
export function formatArguments(event: string, args: readonly unknown[]): string {
  const shown = visibleArguments(event, args);
  const text = `(${shown.map(formatValue).join(', ')})`;
  return text.length > MAX_SAMPLE ? text.slice(0, MAX_SAMPLE - 1) + '…' : text;
}
