// A minimal LSP client for the language server tests: starts the server as its own process
// (`node dist/server.js --stdio`) and talks JSON-RPC over its stdio with vscode-languageserver-protocol.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CodeAction,
  CodeActionRequest,
  Command,
  createProtocolConnection,
  Diagnostic,
  DidChangeConfigurationNotification,
  DidChangeTextDocumentNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  Hover,
  HoverRequest,
  InitializedNotification,
  InitializeRequest,
  InitializeResult,
  InlayHint,
  InlayHintRefreshRequest,
  InlayHintRequest,
  MarkupContent,
  ProtocolConnection,
  PublishDiagnosticsNotification,
  PublishDiagnosticsParams,
  Range,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  TextDocumentContentChangeEvent,
} from 'vscode-languageserver-protocol/node';
import { REPO_ROOT } from '../helpers/interpreters';

function newestMtime(paths: string[]): number {
  let max = 0;
  for (const p of paths) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch {
      continue;
    }
    if (stat.isDirectory()) {
      max = Math.max(max, newestMtime(fs.readdirSync(p).map((n) => path.join(p, n))));
    } else {
      max = Math.max(max, stat.mtimeMs);
    }
  }
  return max;
}

/**
 * The server under test: dist/server.js (the webpack bundle) when it is at least as new as its
 * sources, else out/server/main.js (the same sources compiled by `tsc -p .` with these tests).
 * SPYTHON_LENS_SERVER names another.
 */
export function serverModule(): string {
  if (process.env.SPYTHON_LENS_SERVER) return path.resolve(process.env.SPYTHON_LENS_SERVER);
  const bundle = path.join(REPO_ROOT, 'dist', 'server.js');
  const sources = newestMtime(
    ['server', 'adapter/catalog.ts', 'adapter/records.ts', 'adapter/audit-events.json'].map((p) => path.join(REPO_ROOT, p)),
  );
  try {
    if (fs.statSync(bundle).mtimeMs >= sources) return bundle;
  } catch {
    // not built
  }
  return path.join(REPO_ROOT, 'out', 'server', 'main.js');
}

export interface StartOptions {
  rootDir: string;
  runsDir: string | string[];
  enabled?: boolean;
  pollIntervalMs?: number;
}

export class LspClient {
  readonly diagnostics = new Map<string, PublishDiagnosticsParams>();
  refreshes = 0;
  stderr = '';
  private listeners: (() => void)[] = [];

  initializeResult: InitializeResult | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly connection: ProtocolConnection,
  ) {
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    connection.onNotification(PublishDiagnosticsNotification.type, (params) => {
      this.diagnostics.set(params.uri, params);
      this.notify();
    });
    connection.onRequest(InlayHintRefreshRequest.type, () => {
      this.refreshes++;
      this.notify();
    });
    connection.listen();
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  static async start(options: StartOptions): Promise<LspClient> {
    const child = spawn(process.execPath, [serverModule(), '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const connection = createProtocolConnection(
      new StreamMessageReader(child.stdout!),
      new StreamMessageWriter(child.stdin!),
    );
    const client = new LspClient(child, connection);
    const rootUri = pathToFileURL(options.rootDir).href;
    client.initializeResult = await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: path.basename(options.rootDir) }],
      capabilities: {
        workspace: {
          inlayHint: { refreshSupport: true },
          workspaceEdit: { documentChanges: true, resourceOperations: ['create'] },
          configuration: false,
        },
        textDocument: {
          hover: { contentFormat: ['markdown', 'plaintext'] },
          inlayHint: {},
          publishDiagnostics: {},
          codeAction: {},
        },
      },
      initializationOptions: {
        runsDir: options.runsDir,
        enabled: options.enabled,
        pollIntervalMs: options.pollIntervalMs,
      },
    });
    await connection.sendNotification(InitializedNotification.type, {});
    return client;
  }

  /** Resolves when `check` returns a value (checked now and after each notification or refresh). */
  waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error, value?: T) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners = this.listeners.filter((l) => l !== listener);
        if (err) reject(err);
        else resolve(value as T);
      };
      const attempt = async () => {
        try {
          const value = await check();
          if (value !== undefined) finish(undefined, value);
        } catch (err) {
          finish(err as Error);
        }
      };
      const listener = () => void attempt();
      this.listeners.push(listener);
      const poll = setInterval(listener, 250);
      const timer = setTimeout(
        () => finish(new Error(`timed out waiting for ${what}${this.stderr ? `\nserver stderr:\n${this.stderr}` : ''}`)),
        timeoutMs,
      );
      void attempt();
    });
  }

  async open(uri: string, text: string, version = 1): Promise<void> {
    await this.connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: 'python', version, text },
    });
  }

  async change(uri: string, version: number, changes: TextDocumentContentChangeEvent[]): Promise<void> {
    await this.connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri, version },
      contentChanges: changes,
    });
  }

  async close(uri: string): Promise<void> {
    await this.connection.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
  }

  async configure(settings: unknown): Promise<void> {
    await this.connection.sendNotification(DidChangeConfigurationNotification.type, { settings });
  }

  async hints(uri: string, range: Range = { start: { line: 0, character: 0 }, end: { line: 10_000, character: 0 } }): Promise<InlayHint[]> {
    return (await this.connection.sendRequest(InlayHintRequest.type, { textDocument: { uri }, range })) ?? [];
  }

  /** Hints as `line: label` (0-based lines), for readable assertions. */
  async hintLines(uri: string): Promise<Record<number, string>> {
    const out: Record<number, string> = {};
    for (const hint of await this.hints(uri)) {
      out[hint.position.line] = typeof hint.label === 'string' ? hint.label : hint.label.map((p) => p.value).join('');
    }
    return out;
  }

  async hover(uri: string, line: number, character: number): Promise<Hover | null> {
    return this.connection.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line, character } });
  }

  async hoverText(uri: string, line: number, character: number): Promise<string | undefined> {
    const hover = await this.hover(uri, line, character);
    return hover ? (hover.contents as MarkupContent).value : undefined;
  }

  async codeActions(uri: string, range: Range, diagnostics: Diagnostic[]): Promise<(Command | CodeAction)[]> {
    return (
      (await this.connection.sendRequest(CodeActionRequest.type, {
        textDocument: { uri },
        range,
        context: { diagnostics },
      })) ?? []
    );
  }

  diagnosticsOf(uri: string): Diagnostic[] {
    return this.diagnostics.get(uri)?.diagnostics ?? [];
  }

  async stop(): Promise<void> {
    try {
      await Promise.race([
        this.connection.sendRequest(ShutdownRequest.type),
        new Promise((resolve) => setTimeout(resolve, 2000)),
      ]);
      await this.connection.sendNotification(ExitNotification.type);
    } catch {
      // already gone
    }
    this.connection.dispose();
    await new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      const timer = setTimeout(() => {
        this.child.kill('SIGKILL');
      }, 2000);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
