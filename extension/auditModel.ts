// The Audit Events view's model, without `vscode` (so plain Node tests cover it): the session's JSONL
// copy of every record (adapter: runsDir) is read as it grows and folded into category → event name →
// occurrences. A run of millions of records costs what its distinct event names cost: each line is
// classified from its first bytes (the protocol puts `event` first and the frame keys before `args`), a
// record is parsed only when its category depends on its arguments (`open` for writing, `compile` of a
// string), and each (category, event) keeps only its latest occurrences, as raw lines parsed on demand.

import * as fs from 'node:fs';
import { EventDisplay, eventInfo, EVENT_CATEGORIES, visibleArguments } from '../adapter/catalog';
import { AuditRecord, eventSite, formatValue, SourceSite } from '../adapter/records';
import { categoryOf, INTEREST_ORDER } from '../server/interest';

/** Occurrences kept per (category, event name), the latest ones; counts cover all. */
export const MAX_OCCURRENCES = 200;
/** A "line" longer than this is not a record (the protocol caps lines at 1 MiB). */
const MAX_LINE_BYTES = 4 * 1024 * 1024;

export const DENIED_GROUP = 'denied';
export const OTHER_GROUP = 'other';

/** The view's top level: refused operations, the Breakpoints view's categories, then everything else. */
export const GROUPS: ReadonlyArray<{ id: string; label: string }> = [
  { id: DENIED_GROUP, label: 'Denied operations' },
  ...INTEREST_ORDER.map((id) => ({ id, label: EVENT_CATEGORIES.find((c) => c.id === id)?.label ?? id })),
  { id: OTHER_GROUP, label: 'Other events' },
];

export function groupLabel(id: string): string {
  return GROUPS.find((g) => g.id === id)?.label ?? id;
}

/** Events whose category depends on their arguments (the catalogue's conditional category rules). */
const CONDITIONAL = new Set(
  EVENT_CATEGORIES.flatMap((c) => c.rules.filter((r) => r.condition).map((r) => r.event)),
);

const EVENT_PREFIX = Buffer.from('{"event":"');
const FILE_KEY = Buffer.from(',"file":"');
const ARGS_KEY = Buffer.from(',"args":');
const DENIED_KEY = Buffer.from(',"denied":"');
const FROZEN = Buffer.from('<frozen ');

/** One kept occurrence: the record's line, parsed when the view shows it. */
export class Occurrence {
  private parsed: AuditRecord | undefined;
  constructor(
    readonly line: Buffer,
    /** Hidden by default (noisy machinery, or raised by the import system). */
    readonly hidden: boolean,
    /** Order of arrival in the model. */
    readonly order: number,
  ) {}

  get record(): AuditRecord {
    if (!this.parsed) {
      try {
        this.parsed = JSON.parse(this.line.toString('utf8')) as AuditRecord;
      } catch {
        this.parsed = { event: '?', seq: 0, ts: 0, pid: 0, ppid: 0, tid: 0, thread: null, args: [] };
      }
      if (!Array.isArray(this.parsed.args)) this.parsed.args = [];
    }
    return this.parsed;
  }

  /** `('127.0.0.1', 8080)` for socket.connect, `('/tmp/x', 'w', 524865)` for open. */
  get argumentsText(): string {
    return argumentsText(this.record.event, this.record.args);
  }

  /** Where the program raised the event (the caller of library code, see eventSite). */
  get site(): SourceSite {
    return eventSite(this.record);
  }

  /** `demo.py:12`, or '' without a Python frame. */
  get location(): string {
    const { file, line } = this.site;
    if (file === undefined) return '';
    const base = file.split('/').pop() ?? file;
    return line ? `${base}:${line}` : base;
  }

  matches(filter: string): boolean {
    const r = this.record;
    return (
      this.argumentsText.toLowerCase().includes(filter) ||
      (r.file ?? '').toLowerCase().includes(filter) ||
      (r.caller?.file ?? '').toLowerCase().includes(filter) ||
      (r.func ?? '').toLowerCase().includes(filter)
    );
  }
}

const MAX_ARGUMENTS_TEXT = 200;

/** The arguments worth showing (not `self`), as the Debug Console shows them: one alone as itself, several as a tuple. */
export function argumentsText(event: string, args: readonly unknown[]): string {
  const shown = visibleArguments(event, args);
  const text = shown.length === 1 ? formatValue(shown[0]) : `(${shown.map(formatValue).join(', ')})`;
  return text.length > MAX_ARGUMENTS_TEXT ? text.slice(0, MAX_ARGUMENTS_TEXT - 1) + '…' : text;
}

/** The latest MAX_OCCURRENCES occurrences, in a ring. */
class Ring {
  private items: Occurrence[] = [];
  private next = 0;
  constructor(private readonly capacity: number) {}
  push(item: Occurrence): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.next] = item;
      this.next = (this.next + 1) % this.capacity;
    }
  }
  /** Oldest first. */
  list(): Occurrence[] {
    return this.items.length < this.capacity ? [...this.items] : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

/** One event name within one group. */
export class EventGroup {
  /** Every record, hidden or not. */
  count = 0;
  /** Records shown when hidden events are hidden. */
  visibleCount = 0;
  private readonly shown = new Ring(MAX_OCCURRENCES);
  private readonly hiddenOnes = new Ring(MAX_OCCURRENCES);

  constructor(
    readonly group: string,
    readonly event: string,
  ) {}

  add(occurrence: Occurrence): void {
    this.count++;
    if (occurrence.hidden) this.hiddenOnes.push(occurrence);
    else {
      this.visibleCount++;
      this.shown.push(occurrence);
    }
  }

  countFor(showHidden: boolean): number {
    return showHidden ? this.count : this.visibleCount;
  }

  /** The kept occurrences, newest first. */
  occurrences(showHidden: boolean): Occurrence[] {
    const all = showHidden ? [...this.shown.list(), ...this.hiddenOnes.list()] : this.shown.list();
    return all.sort((a, b) => b.order - a.order);
  }
}

/** What classifying one line found. */
export interface LineFacts {
  event: string;
  group: string;
  hidden: boolean;
  denied: boolean;
}

export interface ModelOptions {
  /** The launch configuration's showEvents / hideEvents: the view hides what the Debug Console hides. */
  showEvents?: readonly string[];
  hideEvents?: readonly string[];
}

/** Decides a line's event, group and visibility; shared by the model and the exports. */
export class LineClassifier {
  private readonly display: EventDisplay;
  private readonly plainGroup = new Map<string, string>();

  constructor(options: ModelOptions = {}) {
    this.display = new EventDisplay(options.showEvents ?? [], options.hideEvents ?? []);
  }

  /** Undefined for a line that is not an event record (control messages, junk). */
  classify(line: Buffer): LineFacts | undefined {
    if (line.length < EVENT_PREFIX.length + 2 || line.compare(EVENT_PREFIX, 0, EVENT_PREFIX.length, 0, EVENT_PREFIX.length) !== 0) {
      return undefined;
    }
    const nameEnd = line.indexOf(0x22 /* " */, EVENT_PREFIX.length);
    if (nameEnd < 0) return undefined;
    const event = line.toString('utf8', EVENT_PREFIX.length, nameEnd);
    // The record's own keys come before "args"; anything after it may be an argument's (a code object
    // renders with a "file" key of its own).
    let argsAt = line.indexOf(ARGS_KEY, nameEnd);
    if (argsAt < 0) argsAt = line.length;
    const fileAt = line.indexOf(FILE_KEY, nameEnd);
    let file: string | undefined;
    if (fileAt >= 0 && fileAt < argsAt) {
      const start = fileAt + FILE_KEY.length;
      file = line.compare(FROZEN, 0, FROZEN.length, start, start + FROZEN.length) === 0 ? '<frozen module>' : 'file';
    }
    const denied = line.indexOf(DENIED_KEY, nameEnd) >= 0;
    const hidden = !denied && !this.display.shows(event, file);
    let group: string;
    if (denied) group = DENIED_GROUP;
    else if (CONDITIONAL.has(event)) {
      let args: unknown[] = [];
      try {
        const record = JSON.parse(line.toString('utf8')) as AuditRecord;
        if (Array.isArray(record.args)) args = record.args;
      } catch {
        // A malformed record: it still counts, under Other.
      }
      group = categoryOf(event, args) ?? OTHER_GROUP;
    } else {
      let known = this.plainGroup.get(event);
      if (known === undefined) {
        known = categoryOf(event, []) ?? OTHER_GROUP;
        this.plainGroup.set(event, known);
      }
      group = known;
    }
    return { event, group, hidden, denied };
  }
}

/** Splits a growing byte stream into lines; a partial last line waits for the rest. */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Calls `onLine` for each complete line of `chunk` (without its newline). */
  push(chunk: Buffer, onLine: (line: Buffer) => void): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      let line = chunk.subarray(start, nl);
      if (this.pending.length > 0) {
        line = Buffer.concat([...this.pending, line]);
        this.pending = [];
        this.pendingBytes = 0;
      }
      if (line.length <= MAX_LINE_BYTES) onLine(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.pendingBytes += rest.length;
      // A runaway "line" is junk: drop it rather than hold it.
      if (this.pendingBytes > MAX_LINE_BYTES) {
        this.pending = [];
        this.pendingBytes = 0;
      } else {
        // Copied: the chunk's buffer is reused by the reader.
        this.pending.push(Buffer.from(rest));
      }
    }
  }
}

/** The counts and kept occurrences of one session's records. */
export class AuditModel {
  /** Records seen (since the last clear). */
  records = 0;
  /** Records a policy refused. */
  denied = 0;
  /** Imports or code files refused by verifyImports / execCheck (spython.code_refused). */
  codeRefused = 0;
  /** Bumped on every change: the view refreshes when it moved. */
  version = 0;
  private readonly groups = new Map<string, Map<string, EventGroup>>();
  private readonly classifier: LineClassifier;
  private order = 0;

  constructor(readonly options: ModelOptions = {}) {
    this.classifier = new LineClassifier(options);
  }

  /** Folds one JSONL line in. The buffer may be reused by the caller afterwards. */
  addLine(line: Buffer): void {
    const facts = this.classifier.classify(line);
    if (!facts) return;
    this.records++;
    if (facts.denied) this.denied++;
    if (facts.event === 'spython.code_refused') this.codeRefused++;
    let byName = this.groups.get(facts.group);
    if (!byName) this.groups.set(facts.group, (byName = new Map()));
    let group = byName.get(facts.event);
    if (!group) byName.set(facts.event, (group = new EventGroup(facts.group, facts.event)));
    group.add(new Occurrence(Buffer.from(line), facts.hidden, this.order++));
    this.version++;
  }

  clear(): void {
    this.groups.clear();
    this.records = 0;
    this.denied = 0;
    this.codeRefused = 0;
    this.version++;
  }

  /** Groups in view order, with their event groups sorted by count (then name). */
  tree(showHidden: boolean, filter = ''): Array<{ id: string; label: string; count: number; events: EventGroup[] }> {
    const f = filter.trim().toLowerCase();
    const out: Array<{ id: string; label: string; count: number; events: EventGroup[] }> = [];
    for (const { id, label } of GROUPS) {
      const byName = this.groups.get(id);
      if (!byName) continue;
      const groupMatches = f !== '' && label.toLowerCase().includes(f);
      const events = [...byName.values()]
        .filter((g) => g.countFor(showHidden) > 0)
        .filter((g) => f === '' || groupMatches || eventMatchesFilter(g, f, showHidden))
        .sort((a, b) => b.countFor(showHidden) - a.countFor(showHidden) || a.event.localeCompare(b.event));
      if (events.length === 0) continue;
      out.push({ id, label, count: events.reduce((n, g) => n + g.countFor(showHidden), 0), events });
    }
    return out;
  }

  /** The kept occurrences of an event group that the filter lets through, newest first. */
  occurrences(group: EventGroup, showHidden: boolean, filter = ''): Occurrence[] {
    const f = filter.trim().toLowerCase();
    const all = group.occurrences(showHidden);
    if (f === '' || nameMatches(group, f)) return all;
    return all.filter((o) => o.matches(f));
  }

  /** Every event name seen, with its count: the status bar's tooltip. */
  topEvents(n: number): Array<[string, number]> {
    const counts = new Map<string, number>();
    for (const byName of this.groups.values()) {
      for (const g of byName.values()) counts.set(g.event, (counts.get(g.event) ?? 0) + g.count);
    }
    return [...counts].sort((a, b) => b[1] - a[1]).slice(0, n);
  }
}

function nameMatches(group: EventGroup, f: string): boolean {
  return group.event.toLowerCase().includes(f) || groupLabel(group.group).toLowerCase().includes(f);
}

function eventMatchesFilter(group: EventGroup, f: string, showHidden: boolean): boolean {
  return nameMatches(group, f) || group.occurrences(showHidden).some((o) => o.matches(f));
}

// ---------------------------------------------------------------------------------------------------
// Reading a run log as it grows

/**
 * Reads a JSONL file from where it stopped last time, in chunks, handing each complete line over.
 * `read()` returns when it reaches the end of what is written so far; call it again when more may be
 * there (the file grows while the program runs).
 */
export class RunLogReader {
  private offset = 0;
  private readonly splitter = new LineSplitter();
  private readonly buffer: Buffer;
  private handle: fs.promises.FileHandle | undefined;
  private reading: Promise<void> | undefined;
  private closed = false;

  constructor(
    readonly file: string,
    private readonly onLine: (line: Buffer) => void,
    chunkBytes = 1 << 20,
  ) {
    this.buffer = Buffer.allocUnsafe(chunkBytes);
  }

  get bytesRead(): number {
    return this.offset;
  }

  /** Reads what is new; concurrent calls share one pass. Resolves false when the file is not there. */
  read(): Promise<void> {
    if (!this.reading) {
      this.reading = this.readNew().finally(() => {
        this.reading = undefined;
      });
    }
    return this.reading;
  }

  private async readNew(): Promise<void> {
    if (this.closed) return;
    if (!this.handle) {
      try {
        this.handle = await fs.promises.open(this.file, 'r');
      } catch {
        return;
      }
    }
    for (;;) {
      if (this.closed) return;
      const { bytesRead } = await this.handle.read(this.buffer, 0, this.buffer.length, this.offset);
      if (bytesRead <= 0) return;
      this.offset += bytesRead;
      this.splitter.push(this.buffer.subarray(0, bytesRead), this.onLine);
      // Let the extension host breathe between chunks of a big file.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async close(): Promise<void> {
    await this.reading;
    this.closed = true;
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// Exports

export type ExportFormat = 'jsonl' | 'csv';

export interface ExportOptions extends ModelOptions {
  format: ExportFormat;
  showHidden: boolean;
  filter?: string;
  signal?: AbortSignal;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

export const CSV_COLUMNS = ['seq', 'ts', 'pid', 'ppid', 'tid', 'thread', 'event', 'category', 'arguments', 'file', 'line', 'func', 'denied'];

/** A CSV field: quoted when it holds a comma, quote, or line break; formulas defused for spreadsheets. */
export function csvField(value: unknown): string {
  let text = value === undefined || value === null ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvRow(record: AuditRecord, group: string): string {
  const args = Array.isArray(record.args) ? record.args : [];
  return [
    record.seq,
    record.ts,
    record.pid,
    record.ppid,
    record.tid,
    record.thread,
    record.event,
    groupLabel(group),
    argumentsText(record.event, args),
    record.file,
    record.line,
    record.func,
    record.denied,
  ]
    .map(csvField)
    .join(',');
}

/**
 * Writes the records of `runLog` that the view shows (hidden ones only with showHidden; the filter as
 * in the view) to `target`, every one of them, not just the kept occurrences. Returns how many.
 */
export async function exportRunLog(runLog: string, target: string, options: ExportOptions): Promise<number> {
  const classifier = new LineClassifier(options);
  const f = (options.filter ?? '').trim().toLowerCase();
  const total = (await fs.promises.stat(runLog)).size;
  const tmp = `${target}.tmp-${process.pid}`;
  const out = fs.createWriteStream(tmp, { mode: 0o600 });
  const outDone = new Promise<void>((resolve, reject) => {
    out.on('error', reject);
    out.on('finish', resolve);
  });
  let written = 0;
  let pending: string[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
  };
  if (options.format === 'csv') pending.push(CSV_COLUMNS.join(',') + '\n');
  const splitter = new LineSplitter();
  const stream = fs.createReadStream(runLog, { highWaterMark: 1 << 20 });
  let done = 0;
  let lastProgress = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (options.signal?.aborted) throw abortError();
      done += chunk.length;
      splitter.push(chunk, (line) => {
        const facts = classifier.classify(line);
        if (!facts || (facts.hidden && !options.showHidden)) return;
        let record: AuditRecord | undefined;
        if (f !== '') {
          const nameHit = facts.event.toLowerCase().includes(f) || groupLabel(facts.group).toLowerCase().includes(f);
          if (!nameHit) {
            record = parse(line);
            if (!record) return;
            const args = Array.isArray(record.args) ? record.args : [];
            const text = `${argumentsText(record.event, args)}\n${record.file ?? ''}\n${record.func ?? ''}`.toLowerCase();
            if (!text.includes(f)) return;
          }
        }
        if (options.format === 'jsonl') pending.push(line.toString('utf8') + '\n');
        else {
          record ??= parse(line);
          if (!record) return;
          pending.push(csvRow(record, facts.group) + '\n');
        }
        written++;
      });
      await flush();
      if (options.onProgress && Date.now() - lastProgress > 100) {
        lastProgress = Date.now();
        options.onProgress(done, total);
      }
    }
    await flush();
    out.end();
    await outDone;
    await fs.promises.rename(tmp, target);
  } catch (err) {
    stream.destroy();
    out.destroy();
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  options.onProgress?.(total, total);
  return written;
}

function parse(line: Buffer): AuditRecord | undefined {
  try {
    return JSON.parse(line.toString('utf8')) as AuditRecord;
  } catch {
    return undefined;
  }
}

function abortError(): Error {
  const err = new Error('The export was cancelled');
  err.name = 'AbortError';
  return err;
}

/** `open(path, mode, flags)`: the catalogue's signature of an event. */
export function eventSignature(event: string): string {
  const info = eventInfo(event);
  return info ? `${event}(${info.args.join(', ')})` : event;
}
