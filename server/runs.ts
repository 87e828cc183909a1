// Recorded runs: the JSONL event records (docs/protocol.md, "Event records") that the CLI writes with
// --jsonl / the launcher with --log-file, and that the debug adapter keeps for each session, found as
// *.jsonl files in the runs directories (directly inside, or one level down).
//
// Files are read as streams and folded as they go into per (source file, line, event) aggregates: counts,
// a few sample arguments, the processes and threads, the refusals. Nothing keeps the records themselves,
// so a run of a million records costs what its distinct lines cost. A file that grows (a run in
// progress) is read on from where the last read stopped.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditRecord, eventSite } from '../adapter/records';
import { Category, categoryOf, formatArguments, isTelling } from './interest';

/** At most this many distinct sample argument texts per (file, line, event). */
export const MAX_SAMPLES = 3;
/** At most this many pids / thread names remembered per (file, line, event). */
const MAX_MEMBERS = 16;
/** Sample texts tried per aggregate before giving up on finding more distinct ones. */
const MAX_SAMPLE_TRIES = 64;
/** Only the newest runs are read. */
export const MAX_RUNS = 100;
/** A "line" longer than this is not a record (the protocol caps them at 1 MiB). */
const MAX_LINE_BYTES = 4 * 1024 * 1024;
const FINGERPRINT_BYTES = 256;

export interface EventAggregate {
  event: string;
  count: number;
  /** Records that count in the line's inlay hint (see interest.ts). */
  telling: number;
  /** Refusals by policy name. */
  denied: Map<string, number>;
  categories: Set<Category>;
  /** Distinct argument texts, `('127.0.0.1', 9)`, at most MAX_SAMPLES. */
  samples: string[];
  sampleTries: number;
  /** Raw arguments of spython.code_refused / spython.tamper (their messages), at most MAX_SAMPLES. */
  details: unknown[][];
  pids: Set<number>;
  threads: Set<string>;
  firstSeq: number;
}

/** Events of one line, by event name. */
export type LineEvents = Map<string, EventAggregate>;

export interface FileEvents {
  /** 1-based line → its events. */
  lines: Map<number, LineEvents>;
}

export class Run {
  /** Source file key (see sourceKey) → its events. */
  readonly files = new Map<string, FileEvents>();
  records = 0;
  /** Lines that were not records (control messages, junk, unparsable JSON). */
  skipped = 0;
  readonly pids = new Set<number>();
  mtimeMs = 0;
  /** When the run started: the file's birth time where the file system keeps one, else its mtime. */
  startMs = 0;
  size = 0;
  /** Bytes read and folded in (always at a line boundary). */
  offset = 0;
  fingerprint = '';
  /** How many leading bytes `fingerprint` covers. */
  fingerprintLength = 0;
  /** Per pid:tid, the latest `import` raised by program code: where a refused import comes from. */
  readonly importSites = new Map<string, { file: string; line: number }>();

  constructor(readonly file: string) {}

  get name(): string {
    return path.basename(this.file);
  }

  events(key: string): FileEvents | undefined {
    return this.files.get(key);
  }
}

const realpathCache = new Map<string, string>();

/**
 * The key a source file is known by: its real path (symlinks resolved) when it exists, else its
 * normalized path. Records carry co_filename, which may hold `..` (`/app/../lib/helper.py`).
 */
export function sourceKey(file: string): string {
  const normal = path.normalize(file);
  let key = realpathCache.get(normal);
  if (key === undefined) {
    try {
      key = fs.realpathSync.native(normal);
    } catch {
      key = normal;
    }
    if (realpathCache.size > 50_000) realpathCache.clear();
    realpathCache.set(normal, key);
  }
  return key;
}

/** Forgets cached real paths (a file appeared or moved). */
export function clearSourceKeys(): void {
  realpathCache.clear();
}

/** Whether the record line has a `caller` key (before its args, which could hold any text). */
function hasCaller(line: string, from: number): boolean {
  const callerAt = line.indexOf('"caller":{', from);
  return callerAt >= 0 && callerAt < line.indexOf('"args":[', from);
}

function isProgramFile(file: unknown): file is string {
  return typeof file === 'string' && file.length > 0 && !file.startsWith('<') && path.isAbsolute(file);
}

function aggregate(run: Run, file: string, line: number, record: AuditRecord, partOfImport = false): void {
  const key = sourceKey(file);
  let fileEvents = run.files.get(key);
  if (!fileEvents) run.files.set(key, (fileEvents = { lines: new Map() }));
  let lineEvents = fileEvents.lines.get(line);
  if (!lineEvents) fileEvents.lines.set(line, (lineEvents = new Map()));
  let agg = lineEvents.get(record.event);
  if (!agg) {
    agg = {
      event: record.event,
      count: 0,
      telling: 0,
      denied: new Map(),
      categories: new Set(),
      samples: [],
      sampleTries: 0,
      details: [],
      pids: new Set(),
      threads: new Set(),
      firstSeq: typeof record.seq === 'number' ? record.seq : 0,
    };
    lineEvents.set(record.event, agg);
  }
  const args = Array.isArray(record.args) ? record.args : [];
  agg.count++;
  if (isTelling({ event: record.event, args, denied: record.denied }, partOfImport)) agg.telling++;
  if (typeof record.denied === 'string' && record.denied) {
    agg.denied.set(record.denied, (agg.denied.get(record.denied) ?? 0) + 1);
  }
  const category = categoryOf(record.event, args);
  if (category) agg.categories.add(category);
  if (agg.samples.length < MAX_SAMPLES && agg.sampleTries < MAX_SAMPLE_TRIES) {
    agg.sampleTries++;
    const text = formatArguments(record.event, args);
    if (!agg.samples.includes(text)) agg.samples.push(text);
  }
  if (record.event.startsWith('spython.') && agg.details.length < MAX_SAMPLES) {
    const same = agg.details.some((d) => JSON.stringify(d) === JSON.stringify(args));
    if (!same) agg.details.push(args);
  }
  if (typeof record.pid === 'number' && agg.pids.size < MAX_MEMBERS) agg.pids.add(record.pid);
  if (agg.threads.size < MAX_MEMBERS) {
    // A thread without a name yet (threading not imported) is the main thread when its id is the pid.
    const unnamed = record.tid === record.pid ? 'main thread' : `thread ${record.tid}`;
    agg.threads.add(typeof record.thread === 'string' ? record.thread : unnamed);
  }
}

/** Folds one JSONL line into the run. */
export function foldLine(run: Run, line: string): void {
  // Only records matter; control messages start with {"type":".
  if (!line.startsWith('{"event":"')) {
    if (line.trim() !== '') run.skipped++;
    return;
  }
  run.records++;
  const refused = line.startsWith('{"event":"spython.code_refused"');
  // Records raised with no Python frame, or from a frozen module (the import system) or <string> with
  // no program frame calling it (`caller`), have no line in any source file; skip them before parsing
  // (the first "file" key of a record with a frame is its own, and the frame keys come before args).
  const at = line.indexOf('"file":"');
  if (!refused && (at < 0 || (line.charCodeAt(at + 8) === 60 /* < */ && !hasCaller(line, at)))) return;
  let record: AuditRecord;
  try {
    record = JSON.parse(line) as AuditRecord;
  } catch {
    run.skipped++;
    return;
  }
  if (typeof record !== 'object' || record === null || typeof record.event !== 'string') return;
  if (typeof record.pid === 'number') run.pids.add(record.pid);
  const thread = `${record.pid}:${record.tid}`;
  const site = eventSite(record);
  const hasLine = isProgramFile(site.file) && typeof site.line === 'number' && site.line >= 1;

  if (refused && !hasLine) {
    // Refused by the open_code hook, inside the import system, with no caller in the record (a
    // free-threaded build): the line to blame is the import statement that asked for it — the
    // thread's latest import raised by program code. A refused main script (no import) is blamed on
    // its own first line.
    const importSite = run.importSites.get(thread);
    const refusedPath = Array.isArray(record.args) ? record.args[0] : undefined;
    if (importSite) aggregate(run, importSite.file, importSite.line, record);
    else if (isProgramFile(refusedPath)) aggregate(run, refusedPath, 1, record);
    return;
  }
  if (!hasLine) return;
  // Raised in the library on behalf of the thread's latest import statement: part of that import.
  const importSite = run.importSites.get(thread);
  const partOfImport = record.caller !== undefined && importSite?.file === site.file && importSite?.line === site.line;
  if (record.event === 'import') run.importSites.set(thread, { file: site.file!, line: site.line! });
  aggregate(run, site.file!, site.line!, record, partOfImport);
}

/** Reads `run.file` from `run.offset` to its last complete line, folding every line in. */
export async function readRun(run: Run): Promise<void> {
  const stream = fs.createReadStream(run.file, { start: run.offset, highWaterMark: 1 << 20 });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let discarding = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (discarding) {
        discarding = false;
      } else if (pendingBytes > 0) {
        pending.push(piece);
        foldLine(run, Buffer.concat(pending).toString('utf8'));
      } else {
        foldLine(run, piece.toString('utf8'));
      }
      run.offset += pendingBytes + piece.length + 1;
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (discarding || pendingBytes + rest.length > MAX_LINE_BYTES) {
        // Not a record: skip to the next newline.
        if (!discarding) run.skipped++;
        discarding = true;
        run.offset += pendingBytes + rest.length;
        pending = [];
        pendingBytes = 0;
      } else {
        pending.push(Buffer.from(rest));
        pendingBytes += rest.length;
      }
    }
  }
  // An unterminated last line is left for the next read (the writer may be mid-line).
}

/** A hash of the file's first `length` bytes: tells a rewritten file from a grown one. */
async function fingerprint(file: string, length: number): Promise<string> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, 0);
    return crypto.createHash('sha1').update(buf.subarray(0, bytesRead)).digest('hex');
  } finally {
    await handle.close();
  }
}

interface Candidate {
  file: string;
  stat: fs.Stats;
}

async function listRunFiles(dir: string): Promise<Candidate[]> {
  const found: Candidate[] = [];
  const visit = async (folder: string, depth: number): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const p = path.join(folder, entry.name);
      if (entry.isDirectory() && depth === 0) {
        await visit(p, 1);
      } else if ((entry.isFile() || entry.isSymbolicLink()) && entry.name.endsWith('.jsonl')) {
        try {
          const stat = await fs.promises.stat(p);
          if (stat.isFile()) found.push({ file: p, stat });
        } catch {
          // gone meanwhile
        }
      }
    }
  };
  await visit(dir, 0);
  return found;
}

/** The runs found in the runs directories, kept up to date by `scan()`. */
export class RunStore {
  private readonly runs = new Map<string, Run>();
  /** Newest first (by mtime). */
  private ordered: Run[] = [];

  constructor(readonly dirs: readonly string[]) {}

  /** Newest first. */
  all(): readonly Run[] {
    return this.ordered;
  }

  /** The latest run with records for the source file `key`: the newest run file (mtime) that has any. */
  latestFor(key: string): Run | undefined {
    return this.ordered.find((run) => run.files.has(key));
  }

  /** How many runs hold records for `key`. */
  countFor(key: string): number {
    return this.ordered.filter((run) => run.files.has(key)).length;
  }

  /**
   * Brings the store up to date with the directories: new files are read, grown ones read on,
   * rewritten ones read again, deleted ones dropped. Resolves to whether anything changed; calls
   * `progress` after each run file read (newest first) so callers can refresh early.
   */
  async scan(progress?: () => void): Promise<boolean> {
    const candidates = (await Promise.all(this.dirs.map(listRunFiles))).flat();
    candidates.sort((a, b) => b.stat.mtimeMs - a.stat.mtimeMs);
    const kept = candidates.slice(0, MAX_RUNS);
    const keptFiles = new Set(kept.map((c) => c.file));
    let changed = false;
    for (const file of [...this.runs.keys()]) {
      if (!keptFiles.has(file)) {
        this.runs.delete(file);
        changed = true;
      }
    }
    if (changed) this.reorder();
    for (const { file, stat } of kept) {
      let run = this.runs.get(file);
      if (run && run.size === stat.size && run.mtimeMs === stat.mtimeMs) continue;
      try {
        if (
          run &&
          (stat.size < run.offset ||
            (run.fingerprintLength > 0 &&
              (await fingerprint(file, run.fingerprintLength)) !== run.fingerprint))
        ) {
          run = undefined; // rewritten: read it again from the start
        }
        if (!run) {
          run = new Run(file);
          this.runs.set(file, run);
        }
        if (run.fingerprintLength < FINGERPRINT_BYTES && stat.size > run.fingerprintLength) {
          run.fingerprintLength = Math.min(FINGERPRINT_BYTES, stat.size);
          run.fingerprint = await fingerprint(file, run.fingerprintLength);
        }
        const birth = stat.birthtimeMs > 0 ? stat.birthtimeMs : stat.mtimeMs;
        run.startMs = run.startMs > 0 ? run.startMs : Math.min(birth, stat.mtimeMs);
        run.mtimeMs = stat.mtimeMs;
        run.size = stat.size;
        if (run.offset < stat.size) {
          clearSourceKeys();
          await readRun(run);
        }
      } catch {
        this.runs.delete(file); // unreadable or deleted meanwhile
      }
      changed = true;
      this.reorder();
      progress?.();
    }
    return changed;
  }

  private reorder(): void {
    this.ordered = [...this.runs.values()].sort((a, b) => b.mtimeMs - a.mtimeMs || (a.file < b.file ? -1 : 1));
  }
}
