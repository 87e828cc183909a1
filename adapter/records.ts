// Event records (docs/protocol.md, "Event records") and how they read in the Debug Console: argument
// values rendered back into Python-like text, `socket.connect ('127.0.0.1', 8080)  demo.py:12`.

import * as path from 'node:path';
import { BytePattern, ChunkView } from './bytes';
import { mainArgument, visibleArguments } from './catalog';

/** A parsed event record. */
export interface AuditRecord {
  event: string;
  seq: number;
  ts: number;
  pid: number;
  ppid: number;
  tid: number;
  thread: string | null;
  file?: string;
  line?: number;
  func?: string;
  /** Set when file/line is the interpreter's library code: the program's frame that called into it. */
  caller?: SourceSite;
  args: unknown[];
  /** The policy that refused the operation. */
  denied?: string;
}

export interface SourceSite {
  file?: string;
  line?: number;
  func?: string;
}

/**
 * Where the program raised the event: the line that called into the library when the record names
 * one (`subprocess.run(…)` rather than subprocess.py), else the innermost frame.
 */
export function eventSite(record: AuditRecord): SourceSite {
  return record.caller ?? record;
}

/** pid, ppid, tid and thread name: the same on every record of a thread until it is renamed. */
export interface RecordIdentity {
  pid: number;
  ppid: number;
  tid: number;
  thread: string | null;
}

const QUOTE = 0x22;
const COMMA = 0x2c;

/**
 * Whether the record whose bytes end at `end` (newline excluded) was refused: only a refused record
 * ends in a string (`"denied":"…"}`), so this needs no parsing.
 */
export function endsRefused(bytes: Buffer, end: number): boolean {
  return bytes[end - 2] === QUOTE;
}
const LETTER_F = 0x66;
/** A record's keys up to `args` come in a fixed order (docs/protocol.md, "Event records"). */
const PID_KEY = Buffer.from(',"pid":');
const FILE_KEY = Buffer.from(',"file":"');
const AFTER_FILE = Buffer.from('","line":');
const ARGS_KEY = Buffer.from(',"args":');
const TID_KEY = Buffer.from(',"tid":');

/** `,"seq":` and `,"ts":`, skipped rather than scanned. */
const SEQ_KEY_BYTES = ',"seq":'.length;
const TS_KEY_BYTES = ',"ts":'.length;
/** After `{"event":"`: where the name starts. */
const NAME_OFFSET = 10;

/**
 * An event record as received: its name and exact bytes, parsed in full only when something needs
 * more than its name, identity, location or whether it was denied. No JSON string holds a bare `"`,
 * so a key found by its bytes outside the arguments is that key.
 */
export class ReceivedRecord {
  private parsed: AuditRecord | undefined;

  constructor(
    readonly event: string,
    /** The record's exact bytes, without the newline: its own copy, not a view of a read buffer. */
    readonly line: Buffer,
    private readonly identity: RecordIdentity,
    /** Where `,"file":"` starts in the record, or -1 (no Python frame was running). */
    private readonly fileAt: number,
  ) {}

  get pid(): number {
    return this.identity.pid;
  }

  get ppid(): number {
    return this.identity.ppid;
  }

  get tid(): number {
    return this.identity.tid;
  }

  get thread(): string | null {
    return this.identity.thread;
  }

  /** The policy that refused the operation. */
  get denied(): string | undefined {
    return endsRefused(this.line, this.line.length) ? this.record.denied : undefined;
  }

  get file(): string | undefined {
    if (this.fileAt < 0) return undefined;
    const line = this.line;
    const start = this.fileAt + FILE_KEY.length;
    const text = line.toString('utf8', start, line.indexOf(AFTER_FILE, start));
    return text.includes('\\') ? (JSON.parse(`"${text}"`) as string) : text;
  }

  get args(): unknown[] {
    return this.record.args;
  }

  /** The whole record, parsed on first use; a record that is not valid JSON keeps only its identity. */
  get record(): AuditRecord {
    if (this.parsed === undefined) {
      try {
        this.parsed = JSON.parse(this.line.toString('utf8')) as AuditRecord;
      } catch {
        this.parsed = { event: this.event, seq: 0, ts: 0, ...this.identity, args: [] };
      }
    }
    return this.parsed;
  }
}

/** A record, parsed or as received, in full. */
export function fullRecord(record: AuditRecord | ReceivedRecord): AuditRecord {
  return record instanceof ReceivedRecord ? record.record : record;
}

/**
 * Turns one connection's record lines into `ReceivedRecord`s. The identity (`,"pid":` up to the
 * location or the arguments) is parsed only when its bytes differ from the previous record's: a new
 * thread, or a renamed one. Short scans are plain loops: a native `indexOf` costs more to call.
 */
export class RecordReader {
  private identityBytes = Buffer.alloc(0);
  private identity: RecordIdentity | undefined;
  /** Where `,"tid":` starts in the identity. */
  private threadOffset = 0;
  /** From the quote closing the latest record's name to its identity: `","seq":N,"ts":N`. */
  private headerBytes = -1;
  /** The identity's thread part. */
  private threadPattern = PID_KEY_PATTERN;
  private readonly view = new ChunkView();

  /**
   * Reads the record in `chunk` from `start` to `end` (its newline excluded; by default, all of it)
   * into a record holding a copy of those bytes. Throws when it does not have a record's keys.
   */
  read(event: string, chunk: Buffer, start = 0, end = chunk.length): ReceivedRecord {
    // `{"event":"NAME","seq":N,"ts":N,"pid":`: the identity starts at the comma after the timestamp.
    // The name's bytes are usually its characters; the keys' bytes are skipped, only digits scanned.
    let nameEnd = start + NAME_OFFSET + event.length;
    if (chunk[nameEnd] !== QUOTE) {
      nameEnd = start + NAME_OFFSET;
      while (nameEnd < end && chunk[nameEnd] !== QUOTE) nameEnd++;
    }
    let at = nameEnd + 1 + SEQ_KEY_BYTES;
    while (at < end && chunk[at] !== COMMA) at++;
    at += TS_KEY_BYTES;
    while (at < end && chunk[at] !== COMMA) at++;
    let after = at + this.identityBytes.length;
    if (this.identity === undefined || after >= end || chunk[after] !== COMMA || !this.sameThread(chunk, at)) {
      after = this.readIdentity(chunk, at, end);
    }
    this.headerBytes = at - nameEnd;
    // The identity is followed by `,"file":"` or by `,"args":`.
    const fileAt = chunk[after + 2] === LETTER_F ? after - start : -1;
    return new ReceivedRecord(event, Buffer.from(chunk.subarray(start, end)), this.identity!, fileAt);
  }

  /**
   * Whether the record named `event` in `chunk` from `start` to `end` comes from the thread of the
   * latest record read, under the same thread name: a look at the bytes where its identity would be,
   * reading nothing. False means "read it to know" (a new thread, a renamed one, a sequence number or
   * timestamp that grew a digit, a name of other than ASCII characters).
   */
  sameAsLatest(event: string, chunk: Buffer, start: number, end: number): boolean {
    // `,"pid":` occurs once in a record (no JSON string holds a bare `"`, and no tagged value has a
    // `pid` key): found where the latest record had it, it is the identity's start.
    const at = start + NAME_OFFSET + event.length + this.headerBytes;
    const after = at + this.identityBytes.length;
    if (this.headerBytes < 0 || after >= end || chunk[after] !== COMMA) return false;
    const view = this.view.of(chunk);
    return PID_KEY_PATTERN.isAt(view, at) && this.threadPattern.isAt(view, at + this.threadOffset);
  }

  /**
   * For a record `sameAsLatest` holds for: whether it was raised by program code (catalog.ts,
   * raisedByProgramCode) — it has a file, and no frozen module's — read from the bytes past its
   * identity, where `,"file":"` comes when the record has a location.
   */
  raisedByProgramCode(event: string, chunk: Buffer, start: number, end: number): boolean {
    const at = start + NAME_OFFSET + event.length + this.headerBytes + this.identityBytes.length;
    if (at + FILE_KEY.length + FROZEN_FILE.length > end) return false;
    const view = this.view.of(chunk);
    return FILE_KEY_PATTERN.isAt(view, at) && !FROZEN_FILE_PATTERN.isAt(view, at + FILE_KEY.length);
  }

  /**
   * Whether the identity is the previous record's. Only the thread's part is compared: a connection
   * carries one process (a forked child opens its own), so its pid and ppid never change.
   */
  private sameThread(chunk: Buffer, at: number): boolean {
    return this.threadPattern.isAt(this.view.of(chunk), at + this.threadOffset);
  }

  /** Parses a new identity starting at `at`; returns where it ends. */
  private readIdentity(chunk: Buffer, at: number, end: number): number {
    if (at + PID_KEY.length > end || chunk.compare(PID_KEY, 0, PID_KEY.length, at, at + PID_KEY.length) !== 0) {
      throw new Error('no "pid" key where it belongs');
    }
    const args = chunk.indexOf(ARGS_KEY, at);
    if (args < 0 || args >= end) throw new Error('no "args" key');
    const file = chunk.indexOf(FILE_KEY, at);
    const identityEnd = file >= 0 && file < args ? file : args;
    this.identity = JSON.parse(`{${chunk.toString('utf8', at + 1, identityEnd)}}`) as RecordIdentity;
    this.identityBytes = Buffer.from(chunk.subarray(at, identityEnd));
    this.threadOffset = Math.max(this.identityBytes.indexOf(TID_KEY), 0);
    this.threadPattern = new BytePattern(this.identityBytes.subarray(this.threadOffset));
    return identityEnd;
  }
}

const PID_KEY_PATTERN = new BytePattern(PID_KEY);
const FILE_KEY_PATTERN = new BytePattern(FILE_KEY);
/** How a frozen module's file name starts (`<frozen importlib._bootstrap>`). */
const FROZEN_FILE = Buffer.from('<frozen ');
const FROZEN_FILE_PATTERN = new BytePattern(FROZEN_FILE);

/** Longest argument text in an event line or a stop description. */
const MAX_ARGUMENTS_TEXT = 240;

/** `socket.connect ('127.0.0.1', 8080)  demo.py:12`, with `  [denied by denyEvents]` when refused. */
export function eventLine(record: AuditRecord): string {
  const shown = visibleArguments(record.event, record.args);
  let text = record.event;
  if (shown.length === 1) text += ' ' + truncate(formatValue(shown[0]));
  else if (shown.length > 1) text += ' ' + truncate(formatTuple(shown));
  const site = eventSite(record);
  if (site.file !== undefined) text += `  ${path.basename(site.file)}${site.line ? `:${site.line}` : ''}`;
  if (record.denied) text += `  [denied by ${record.denied}]`;
  return text;
}

/** `socket.connect ('127.0.0.1', 8080)`: the event and its main argument. */
export function eventSummary(record: AuditRecord): string {
  const main = mainArgument(record.event, record.args);
  return main === undefined ? record.event : `${record.event} ${truncate(formatValue(main))}`;
}

/** Renders one argument value (docs/protocol.md, "Rendering of arguments") as Python would show it. */
export function formatValue(value: unknown): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return pythonString(value);
  if (Array.isArray(value)) return formatTuple(value);
  if (typeof value !== 'object') return String(value);
  const tagged = value as Record<string, unknown>;
  if ('$str' in tagged) return `${pythonString(String(tagged.$str))}… (${tagged.len} characters)`;
  if ('$bytes' in tagged) {
    const body = String(tagged.$bytes);
    const more = typeof tagged.len === 'number' && tagged.len > 256 ? `… (${tagged.len} bytes)` : '';
    return `b'${body}'${more}`;
  }
  if ('$int' in tagged) return tagged.$int === null ? `<int of ${tagged.bits} bits>` : String(tagged.$int);
  if ('$float' in tagged) return String(tagged.$float);
  if ('$more' in tagged) return `…${tagged.$more} more`;
  if ('$dict' in tagged && Array.isArray(tagged.$dict)) {
    const items = tagged.$dict.map((pair) =>
      Array.isArray(pair) ? `${formatValue(pair[0])}: ${formatValue(pair[1])}` : formatValue(pair),
    );
    return `{${items.join(', ')}}`;
  }
  if ('$code' in tagged) return `<code object ${tagged.$code} at ${tagged.file}:${tagged.line}>`;
  if ('$cycle' in tagged) return `<${tagged.$cycle} ...>`;
  if ('$type' in tagged) return tagged.depth ? `<${tagged.$type} ...>` : `<${tagged.$type}>`;
  return JSON.stringify(value);
}

/** Tuples and lists arrive alike, as arrays; both are shown as tuples. */
function formatTuple(items: readonly unknown[]): string {
  const parts = items.map(formatValue);
  return parts.length === 1 ? `(${parts[0]},)` : `(${parts.join(', ')})`;
}

/** Python's repr of a str: single quotes unless the text holds one and no double quote. */
function pythonString(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else if (code >= 0xd800 && code <= 0xdfff) out += '\\u' + code.toString(16); // a lone surrogate
    else out += ch;
  }
  return out + quote;
}

function truncate(text: string): string {
  return text.length > MAX_ARGUMENTS_TEXT ? text.slice(0, MAX_ARGUMENTS_TEXT - 1) + '…' : text;
}
