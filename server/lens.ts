// The audit lens language server: inlay hints, hovers, diagnostics and code actions from recorded runs
// (runs.ts) and from the event catalogue (calls.ts). Editor-neutral: it speaks LSP only and never
// imports vscode.
//
// initializationOptions: { runsDir?: string | string[], enabled?: boolean, pollIntervalMs?: number }
// settings (workspace/didChangeConfiguration): { spython: { lens: { enabled: boolean } } }

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  CodeAction,
  CodeActionKind,
  CodeActionParams,
  Command,
  Connection,
  Diagnostic,
  DidChangeConfigurationParams,
  DidChangeTextDocumentParams,
  DidCloseTextDocumentParams,
  DidOpenTextDocumentParams,
  Hover,
  HoverParams,
  InitializeParams,
  InitializeResult,
  InlayHint,
  InlayHintParams,
  MarkupKind,
  TextDocumentSyncKind,
  WorkspaceFolder,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { Bindings, chainAt, eventsRaisedBy, resolveChain, scanBindings } from './calls';
import { allowAction, denyAction, LaunchTarget } from './launchjson';
import { LineMap, lineLength } from './linemap';
import {
  byInterest,
  callHover,
  DiagnosticData,
  hintLabel,
  inHint,
  lineDiagnostics,
  lineHover,
} from './present';
import { FileEvents, Run, RunStore, sourceKey } from './runs';

/** The debug adapter's default runs directory (adapter/config.ts, DEFAULT_RUNS_DIR). */
export const DEFAULT_RUNS_DIR = path.join(os.tmpdir(), 'spython-runs');

/** The command the "Break on this event" action runs (implemented by the extension); argument: the event name. */
export const ADD_EVENT_BREAKPOINT_COMMAND = 'spython.addEventBreakpoint';

export interface LensInitializationOptions {
  runsDir?: string | string[];
  enabled?: boolean;
  /** How often the runs directories are polled besides being watched; default 5000 ms. */
  pollIntervalMs?: number;
}

/** How long a request waits for the first reading of the runs before answering without them. */
const FIRST_SCAN_WAIT_MS = 3000;
const WATCH_DEBOUNCE_MS = 150;

interface Tracked {
  run: Run;
  key: string;
  /** The run's lines (as the file was when it ran) → the document's lines now. */
  map: LineMap;
}

interface OpenDocument {
  uri: string;
  /** File path, for file: URIs. */
  path?: string;
  doc: TextDocument;
  /** The latest run of this file, mapped onto the document: absent when there is none or it cannot be. */
  tracked?: Tracked;
  /** Evaluations run one after the other. */
  queue: Promise<void>;
  bindings?: { version: number; value: Bindings };
}

function isFileUri(uri: string): boolean {
  return uri.startsWith('file:');
}

function realFolder(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return path.normalize(p);
  }
}

function within(folder: string, file: string): boolean {
  const rel = path.relative(folder, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export class LensServer {
  private store = new RunStore([]);
  private readonly docs = new Map<string, OpenDocument>();
  private enabled = true;
  private folders: string[] = [];
  private pollIntervalMs = 5000;
  private canRefreshHints = false;
  private canCreateFiles = false;
  private canPullConfiguration = false;
  private firstScan: Promise<void> = Promise.resolve();
  private scanning = false;
  private rescan = false;
  private scanTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly watchers = new Map<string, fs.FSWatcher>();
  /** Closed files we published diagnostics for. */
  private closedWithDiagnostics = new Set<string>();
  /** publishAll() runs one at a time. */
  private publishing: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(private readonly connection: Connection) {}

  listen(): void {
    const c = this.connection;
    c.onInitialize((params) => this.initialize(params));
    c.onInitialized(() => this.start());
    c.onShutdown(() => this.dispose());
    c.onDidOpenTextDocument((params) => this.didOpen(params));
    c.onDidChangeTextDocument((params) => this.didChange(params));
    c.onDidCloseTextDocument((params) => this.didClose(params));
    c.onDidChangeConfiguration((params) => void this.didChangeConfiguration(params));
    c.languages.inlayHint.on((params) => this.inlayHints(params));
    c.onHover((params) => this.hover(params));
    c.onCodeAction((params) => this.codeActions(params));
    c.listen();
  }

  // ---------------------------------------------------------------------------------------------
  // Life cycle

  private initialize(params: InitializeParams): InitializeResult {
    const options = (params.initializationOptions ?? {}) as LensInitializationOptions;
    const base = this.folderPaths(params.workspaceFolders ?? null, params.rootUri ?? null)[0] ?? process.cwd();
    const dirs = options.runsDir === undefined ? [DEFAULT_RUNS_DIR] : [options.runsDir].flat();
    this.store = new RunStore(dirs.filter((d) => typeof d === 'string' && d).map((d) => path.resolve(base, d)));
    if (typeof options.enabled === 'boolean') this.enabled = options.enabled;
    if (typeof options.pollIntervalMs === 'number' && options.pollIntervalMs > 0) {
      this.pollIntervalMs = options.pollIntervalMs;
    }
    this.folders = this.folderPaths(params.workspaceFolders ?? null, params.rootUri ?? null);
    const caps = params.capabilities;
    this.canRefreshHints = caps.workspace?.inlayHint?.refreshSupport === true;
    this.canCreateFiles =
      caps.workspace?.workspaceEdit?.documentChanges === true &&
      (caps.workspace.workspaceEdit.resourceOperations ?? []).includes('create');
    this.canPullConfiguration = caps.workspace?.configuration === true;
    const folderChanges = caps.workspace?.workspaceFolders === true;
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental },
        hoverProvider: true,
        inlayHintProvider: { resolveProvider: false },
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
        workspace: folderChanges ? { workspaceFolders: { supported: true, changeNotifications: true } } : undefined,
      },
      serverInfo: { name: 'spython-audit-lens', version: '0.1.0' },
    };
  }

  private folderPaths(folders: WorkspaceFolder[] | null, rootUri: string | null): string[] {
    const uris = folders ? folders.map((f) => f.uri) : rootUri ? [rootUri] : [];
    return uris.filter(isFileUri).map((u) => realFolder(fileURLToPath(u)));
  }

  private start(): void {
    try {
      this.connection.workspace.onDidChangeWorkspaceFolders((event) => {
        const removed = new Set(this.folderPaths(event.removed, null));
        this.folders = [...this.folders.filter((f) => !removed.has(f)), ...this.folderPaths(event.added, null)];
        void this.publishAll();
      });
    } catch {
      // the client does not announce folder changes (it throws then)
    }
    this.firstScan = this.scanNow();
    this.pollTimer = setInterval(() => this.scheduleScan(0), this.pollIntervalMs);
  }

  private dispose(): void {
    this.disposed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.scanTimer) clearTimeout(this.scanTimer);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private async didChangeConfiguration(params: DidChangeConfigurationParams): Promise<void> {
    let enabled: unknown = (params.settings as { spython?: { lens?: { enabled?: unknown } } } | null)?.spython?.lens
      ?.enabled;
    if (enabled === undefined && this.canPullConfiguration) {
      try {
        const lens = (await this.connection.workspace.getConfiguration('spython.lens')) as { enabled?: unknown } | null;
        enabled = lens?.enabled;
      } catch {
        return;
      }
    }
    if (typeof enabled !== 'boolean' || enabled === this.enabled) return;
    this.enabled = enabled;
    this.refreshHints();
    await this.publishAll();
  }

  // ---------------------------------------------------------------------------------------------
  // Runs: reading and watching

  /** A scan after `delay`; one already pending keeps its (earlier) time, so a run written to every 10 ms is still read. */
  private scheduleScan(delay: number): void {
    if (this.disposed || this.scanTimer) return;
    this.scanTimer = setTimeout(() => {
      this.scanTimer = undefined;
      void this.scanNow();
    }, delay);
  }

  private async scanNow(): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    try {
      do {
        this.rescan = false;
        this.updateWatchers();
        let lastRefresh = Date.now();
        const changed = await this.store.scan(() => {
          // A long first reading: show what is known every second.
          if (Date.now() - lastRefresh > 1000) {
            lastRefresh = Date.now();
            void this.runsChanged();
          }
        });
        if (changed) await this.runsChanged();
      } while (this.rescan && !this.disposed);
    } catch (err) {
      this.connection.console.error(`spython lens: reading runs failed: ${String(err)}`);
    } finally {
      this.scanning = false;
    }
  }

  /** Watches each runs directory and its subdirectories (runs may sit one level down). */
  private updateWatchers(): void {
    const wanted = new Set<string>();
    for (const dir of this.store.dirs) {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue; // not there yet: the poll finds it later
      }
      wanted.add(dir);
      for (const e of entries) if (e.isDirectory()) wanted.add(path.join(dir, e.name));
    }
    for (const [dir, watcher] of this.watchers) {
      if (!wanted.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = fs.watch(dir, { persistent: false }, () => this.scheduleScan(WATCH_DEBOUNCE_MS));
        watcher.on('error', () => {
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // gone meanwhile
      }
    }
  }

  private async runsChanged(): Promise<void> {
    await Promise.all([...this.docs.values()].map((doc) => this.evaluate(doc)));
    this.refreshHints();
    await this.publishAll();
  }

  private refreshHints(): void {
    if (!this.canRefreshHints) return;
    this.connection.languages.inlayHint.refresh().catch(() => undefined);
  }

  /** Waits for the first reading of the runs directories (bounded). */
  private async ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.firstScan,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, FIRST_SCAN_WAIT_MS))),
    ]);
    if (timer) clearTimeout(timer);
  }

  // ---------------------------------------------------------------------------------------------
  // Documents

  private didOpen({ textDocument }: DidOpenTextDocumentParams): void {
    const doc: OpenDocument = {
      uri: textDocument.uri,
      path: isFileUri(textDocument.uri) ? fileURLToPath(textDocument.uri) : undefined,
      doc: TextDocument.create(textDocument.uri, textDocument.languageId, textDocument.version, textDocument.text),
      queue: Promise.resolve(),
    };
    this.docs.set(textDocument.uri, doc);
    void this.evaluate(doc).then(() => this.publishAll());
  }

  private didChange({ textDocument, contentChanges }: DidChangeTextDocumentParams): void {
    const doc = this.docs.get(textDocument.uri);
    if (!doc) return;
    for (const change of contentChanges) {
      doc.tracked?.map.apply(doc.doc, change);
      doc.doc = TextDocument.update(doc.doc, [change], textDocument.version);
    }
    this.publish(doc);
  }

  private didClose({ textDocument }: DidCloseTextDocumentParams): void {
    this.docs.delete(textDocument.uri);
    void this.connection.sendDiagnostics({ uri: textDocument.uri, diagnostics: [] });
    void this.publishAll();
  }

  /**
   * Maps the latest run of the document's file onto it, once the document's text is known to be what
   * ran: the file on disk was last modified before the run started and the editor holds that text.
   * From then on edits move the run's lines (linemap.ts). A newer run replaces it on the same terms;
   * one that cannot be mapped leaves the document without recorded events.
   */
  private evaluate(doc: OpenDocument): Promise<void> {
    doc.queue = doc.queue.then(async () => {
      if (!doc.path || this.docs.get(doc.uri) !== doc) return;
      const key = sourceKey(doc.path);
      const latest = this.store.latestFor(key);
      if (!latest) {
        doc.tracked = undefined;
        return;
      }
      if (doc.tracked?.run === latest) return;
      doc.tracked = undefined;
      const version = doc.doc.version;
      let disk: string;
      let mtimeMs: number;
      try {
        mtimeMs = (await fs.promises.stat(doc.path)).mtimeMs;
        disk = await fs.promises.readFile(doc.path, 'utf8');
      } catch {
        return;
      }
      if (doc.doc.version !== version || mtimeMs > latest.startMs || disk !== doc.doc.getText()) return;
      doc.tracked = { run: latest, key, map: new LineMap(doc.doc.lineCount) };
    });
    return doc.queue;
  }

  // ---------------------------------------------------------------------------------------------
  // Diagnostics

  private diagnosticsFor(events: FileEvents, run: Run, doc: TextDocument, map: (line: number) => number | undefined): Diagnostic[] {
    const out: Diagnostic[] = [];
    for (const [line1, lineEvents] of events.lines) {
      const line = map(line1 - 1);
      if (line === undefined || line >= doc.lineCount) continue;
      const found = lineDiagnostics(lineEvents, run);
      if (found.length === 0) continue;
      const text = doc.getText({ start: { line, character: 0 }, end: { line, character: lineLength(doc, line) } });
      const first = text.length - text.trimStart().length;
      const range = { start: { line, character: first < text.length ? first : 0 }, end: { line, character: text.length } };
      for (const d of found) {
        out.push({ range, severity: d.severity, message: d.message, source: 'spython', code: d.data.kind, data: d.data });
      }
    }
    return out.sort((a, b) => a.range.start.line - b.range.start.line);
  }

  private publish(doc: OpenDocument): void {
    const tracked = doc.tracked;
    const diagnostics =
      this.enabled && tracked
        ? this.diagnosticsFor(tracked.run.events(tracked.key) ?? { lines: new Map() }, tracked.run, doc.doc, (l) =>
            tracked.map.map(l),
          )
        : [];
    void this.connection.sendDiagnostics({ uri: doc.uri, version: doc.doc.version, diagnostics });
  }

  /**
   * Publishes diagnostics for every open document, and for the files of the workspace folders that are
   * not open but whose latest run holds refusals — when the file has not changed since that run.
   */
  private publishAll(): Promise<void> {
    this.publishing = this.publishing.then(() => this.publishAllNow());
    return this.publishing;
  }

  private async publishAllNow(): Promise<void> {
    for (const doc of this.docs.values()) this.publish(doc);
    const openKeys = new Set([...this.docs.values()].flatMap((d) => (d.path ? [sourceKey(d.path)] : [])));
    const next = new Set<string>();
    if (this.enabled && this.folders.length > 0) {
      const seen = new Set<string>();
      for (const run of this.store.all()) {
        for (const [key, events] of run.files) {
          if (seen.has(key)) continue;
          seen.add(key); // the newest run with this file decides
          if (openKeys.has(key) || !this.folders.some((f) => within(f, key))) continue;
          const hasDiagnostics = [...events.lines.values()].some((l) => lineDiagnostics(l, run).length > 0);
          if (!hasDiagnostics) continue;
          let text: string;
          try {
            if ((await fs.promises.stat(key)).mtimeMs > run.startMs) continue;
            text = await fs.promises.readFile(key, 'utf8');
          } catch {
            continue;
          }
          const uri = pathToFileURL(key).href;
          const doc = TextDocument.create(uri, 'python', 0, text);
          const diagnostics = this.diagnosticsFor(events, run, doc, (l) => l);
          if (diagnostics.length === 0) continue;
          next.add(uri);
          void this.connection.sendDiagnostics({ uri, diagnostics });
        }
      }
    }
    for (const uri of this.closedWithDiagnostics) {
      if (!next.has(uri) && !this.docs.has(uri)) void this.connection.sendDiagnostics({ uri, diagnostics: [] });
    }
    this.closedWithDiagnostics = next;
  }

  // ---------------------------------------------------------------------------------------------
  // Inlay hints and hovers

  private async inlayHints(params: InlayHintParams): Promise<InlayHint[]> {
    if (!this.enabled) return [];
    await this.ready();
    const doc = this.docs.get(params.textDocument.uri);
    if (!doc) return [];
    await doc.queue;
    const tracked = doc.tracked;
    const events = tracked?.run.events(tracked.key);
    if (!tracked || !events) return [];
    const hints: InlayHint[] = [];
    for (const [line1, lineEvents] of events.lines) {
      const line = tracked.map.map(line1 - 1);
      if (line === undefined || line >= doc.doc.lineCount) continue;
      if (line < params.range.start.line || line > params.range.end.line) continue;
      const label = hintLabel(lineEvents);
      if (!label) continue;
      hints.push({ position: { line, character: lineLength(doc.doc, line) }, label, paddingLeft: true });
    }
    return hints.sort((a, b) => a.position.line - b.position.line);
  }

  private bindings(doc: OpenDocument): Bindings {
    if (doc.bindings?.version !== doc.doc.version) {
      doc.bindings = { version: doc.doc.version, value: scanBindings(doc.doc.getText()) };
    }
    return doc.bindings.value;
  }

  private async hover(params: HoverParams): Promise<Hover | null> {
    if (!this.enabled) return null;
    await this.ready();
    const doc = this.docs.get(params.textDocument.uri);
    if (!doc) return null;
    await doc.queue;
    const { line } = params.position;
    const sections: string[] = [];
    let range: Hover['range'];

    const text = doc.doc.getText({ start: { line, character: 0 }, end: { line, character: lineLength(doc.doc, line) } });
    const chain = chainAt(text, params.position.character);
    if (chain) {
      const call = resolveChain(chain.parts, this.bindings(doc));
      const events = call ? eventsRaisedBy(call) : [];
      if (call && events.length > 0) {
        sections.push(callHover(call, events));
        range = { start: { line, character: chain.start }, end: { line, character: chain.end } };
      }
    }

    const tracked = doc.tracked;
    if (tracked) {
      const base = tracked.map.baseOf(line);
      const lineEvents = base === undefined ? undefined : tracked.run.events(tracked.key)?.lines.get(base + 1);
      if (lineEvents && lineEvents.size > 0) {
        sections.push(lineHover(lineEvents, tracked.run, this.store.countFor(tracked.key)));
      }
    }
    if (sections.length === 0) return null;
    return { contents: { kind: MarkupKind.Markdown, value: sections.join('\n\n---\n\n') }, range };
  }

  // ---------------------------------------------------------------------------------------------
  // Code actions

  private launchTarget(file: string | undefined): LaunchTarget | undefined {
    if (this.folders.length === 0) return undefined;
    const key = file ? sourceKey(file) : undefined;
    const containing = key
      ? this.folders.filter((f) => within(f, key)).sort((a, b) => b.length - a.length)[0]
      : undefined;
    return { folder: containing ?? this.folders[0], canCreateFiles: this.canCreateFiles };
  }

  private async codeActions(params: CodeActionParams): Promise<CodeAction[]> {
    if (!this.enabled) return [];
    const only = params.context.only;
    if (only && !only.some((kind) => kind === CodeActionKind.QuickFix || kind === CodeActionKind.Empty)) {
      return [];
    }
    await this.ready();
    const doc = this.docs.get(params.textDocument.uri);
    if (!doc) return [];
    await doc.queue;
    const target = this.launchTarget(doc.path);
    const actions: CodeAction[] = [];
    const titles = new Set<string>();
    const add = (action: CodeAction) => {
      if (titles.has(action.title)) return;
      titles.add(action.title);
      actions.push(action);
    };
    const breakOn = (event: string, diagnostics?: Diagnostic[]): CodeAction => ({
      title: `Break on ${event}`,
      kind: CodeActionKind.QuickFix,
      diagnostics,
      command: Command.create(`Break on ${event}`, ADD_EVENT_BREAKPOINT_COMMAND, event),
    });

    for (const diagnostic of params.context.diagnostics) {
      const data = diagnostic.data as DiagnosticData | undefined;
      if (diagnostic.source !== 'spython' || !data || typeof data.event !== 'string') continue;
      add({ ...breakOn(data.event, [diagnostic]), isPreferred: true });
      if (data.kind === 'denied' && data.policies.includes('denyEvents') && target) {
        const allow = allowAction(target, data.event);
        if (allow) add({ title: allow.title, kind: CodeActionKind.QuickFix, diagnostics: [diagnostic], edit: allow.edit });
      }
    }

    // Lines with recorded events: break on them, or deny them next time.
    const tracked = doc.tracked;
    const events = tracked?.run.events(tracked.key);
    if (tracked && events) {
      for (let line = params.range.start.line; line <= params.range.end.line; line++) {
        const base = tracked.map.baseOf(line);
        const lineEvents = base === undefined ? undefined : events.lines.get(base + 1);
        if (!lineEvents) continue;
        for (const agg of byInterest([...lineEvents.values()].filter(inHint), (a) => a.telling)) {
          if (agg.event.startsWith('spython.')) continue;
          add(breakOn(agg.event));
          if (agg.denied.size === 0 && target) {
            const deny = denyAction(target, agg.event);
            if (deny) add({ title: deny.title, kind: CodeActionKind.QuickFix, edit: deny.edit });
          }
        }
      }
    }
    return actions;
  }
}
