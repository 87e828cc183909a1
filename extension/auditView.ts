// The Audit Events view (Run and Debug): the current session's records by category → event name
// (count) → occurrences (arguments, pid/thread, file:line; selecting one reveals the line), with
// hidden (noisy) events toggled, a text filter, clear and export; and the status bar item that counts
// events, refusals and verification failures while a session runs. Both refresh on a timer, never per
// record: a program raising millions of events costs the window a few repaints a second.

import * as path from 'node:path';
import * as vscode from 'vscode';
import { AuditModel, EventGroup, exportRunLog, ExportFormat, groupLabel, MAX_OCCURRENCES, Occurrence } from './auditModel';
import { SourceSite } from '../adapter/records';
import { thousands } from '../adapter/thousands';
import { SessionManager, TrackedSession } from './sessions';
import { statusText } from './present';

export const VIEW_ID = 'spython.auditEvents';
/** How often the view and the status bar look for news while a session runs. */
const REFRESH_INTERVAL_MS = 500;

const GROUP_ICONS: Record<string, string> = {
  denied: 'circle-slash',
  network: 'globe',
  subprocess: 'terminal',
  fileWrite: 'save',
  dynamicCode: 'code',
  nativeCode: 'chip',
  hooks: 'plug',
  other: 'list-unordered',
};

type Node =
  | { kind: 'group'; id: string; label: string; count: number; events: EventGroup[] }
  | { kind: 'event'; group: EventGroup }
  | { kind: 'occurrence'; occurrence: Occurrence; group: EventGroup }
  | { kind: 'more'; group: EventGroup; hidden: number };


export class AuditEventsView implements vscode.TreeDataProvider<Node> {
  private readonly emitter = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly view: vscode.TreeView<Node>;
  private readonly status: vscode.StatusBarItem;
  private showHidden = false;
  private filter = '';
  private shownSession: TrackedSession | undefined;
  private shownVersion = -1;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    context: vscode.ExtensionContext,
    private readonly sessions: SessionManager,
  ) {
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: true });
    this.status = vscode.window.createStatusBarItem('spython.status', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'SPython Debug';
    this.status.command = `${VIEW_ID}.focus`;
    context.subscriptions.push(
      this.view,
      this.status,
      this.emitter,
      { dispose: () => clearInterval(this.timer) },
      sessions.onDidChange(() => this.onSessionsChanged()),
      this.view.onDidChangeVisibility(() => this.refresh()),
      vscode.commands.registerCommand('spython.auditEvents.showHidden', () => this.setShowHidden(true)),
      vscode.commands.registerCommand('spython.auditEvents.hideHidden', () => this.setShowHidden(false)),
      vscode.commands.registerCommand('spython.auditEvents.filter', () => this.askFilter()),
      vscode.commands.registerCommand('spython.auditEvents.clearFilter', () => this.setFilter('')),
      vscode.commands.registerCommand('spython.auditEvents.clear', () => this.clear()),
      vscode.commands.registerCommand('spython.auditEvents.export', () => this.export()),
      vscode.commands.registerCommand('spython.auditEvents.reveal', (node?: Node) => this.reveal(node)),
    );
    void vscode.commands.executeCommand('setContext', 'spython.auditEvents.showHidden', false);
    void vscode.commands.executeCommand('setContext', 'spython.auditEvents.filtered', false);
    this.updateMessage();
  }

  // --- TreeDataProvider ---------------------------------------------------------------------------

  getChildren(node?: Node): Node[] {
    const model = this.model;
    if (!model) return [];
    if (!node) return model.tree(this.showHidden, this.filter).map((g) => ({ kind: 'group', ...g }) as Node);
    switch (node.kind) {
      case 'group':
        return node.events.map((group) => ({ kind: 'event', group }) as Node);
      case 'event': {
        const occurrences = model.occurrences(node.group, this.showHidden, this.filter);
        const out: Node[] = occurrences.map((occurrence) => ({ kind: 'occurrence', occurrence, group: node.group }));
        const notKept = node.group.countFor(this.showHidden) - node.group.occurrences(this.showHidden).length;
        if (notKept > 0) out.push({ kind: 'more', group: node.group, hidden: notKept });
        return out;
      }
      default:
        return [];
    }
  }

  getTreeItem(node: Node): vscode.TreeItem {
    switch (node.kind) {
      case 'group': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
        item.id = `group:${node.id}`;
        item.description = thousands(node.count);
        item.iconPath = new vscode.ThemeIcon(GROUP_ICONS[node.id] ?? 'symbol-event');
        item.contextValue = 'group';
        item.tooltip = `${node.label}: ${thousands(node.count)} ${node.count === 1 ? 'event' : 'events'}`;
        return item;
      }
      case 'event': {
        const g = node.group;
        const count = g.countFor(this.showHidden);
        const item = new vscode.TreeItem(g.event, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `event:${g.group}:${g.event}`;
        item.description = `(${thousands(count)})`;
        item.contextValue = 'event';
        const hidden = g.count - g.visibleCount;
        item.tooltip = new vscode.MarkdownString(
          `**${g.event}** in ${groupLabel(g.group)}: ${thousands(count)} ${count === 1 ? 'occurrence' : 'occurrences'}` +
            (hidden > 0 && !this.showHidden ? `, and ${thousands(hidden)} hidden (noisy machinery or the import system)` : ''),
        );
        return item;
      }
      case 'occurrence': {
        const o = node.occurrence;
        const r = o.record;
        const item = new vscode.TreeItem(o.argumentsText, vscode.TreeItemCollapsibleState.None);
        item.id = `occurrence:${o.order}`;
        const where = o.location;
        const thread = r.thread ?? (r.tid === r.pid ? 'MainThread' : `thread ${r.tid}`);
        item.description = [where, `pid ${r.pid}`, thread].filter(Boolean).join(' · ');
        item.contextValue = 'occurrence';
        item.iconPath = new vscode.ThemeIcon(r.denied ? 'circle-slash' : o.hidden ? 'eye-closed' : 'debug-stackframe-dot');
        const md = new vscode.MarkdownString();
        md.appendMarkdown(`**${r.event}** \`${o.argumentsText.replace(/`/g, "'")}\`\n\n`);
        if (o.site.file) md.appendMarkdown(`${frameText(o.site)}\n\n`);
        if (r.caller && r.file) md.appendMarkdown(`raised in ${frameText(r)}\n\n`);
        md.appendMarkdown(`pid ${r.pid} (parent ${r.ppid}), ${thread} (tid ${r.tid}), record #${r.seq}`);
        if (r.denied) md.appendMarkdown(`\n\n**Denied** by ${r.denied}`);
        item.tooltip = md;
        if (o.site.file && path.isAbsolute(o.site.file)) {
          item.command = { command: 'spython.auditEvents.reveal', title: 'Reveal Line', arguments: [node] };
          item.resourceUri = vscode.Uri.file(o.site.file);
        }
        return item;
      }
      case 'more': {
        const item = new vscode.TreeItem(
          `… ${thousands(node.hidden)} earlier (the latest ${MAX_OCCURRENCES} are listed; Export has all)`,
          vscode.TreeItemCollapsibleState.None,
        );
        item.id = `more:${node.group.group}:${node.group.event}`;
        item.contextValue = 'more';
        return item;
      }
    }
  }

  getParent(): undefined {
    return undefined;
  }

  // --- state --------------------------------------------------------------------------------------

  private get model(): AuditModel | undefined {
    return this.sessions.current?.model;
  }

  private onSessionsChanged(): void {
    const running = this.sessions.anyRunning;
    if (running) {
      void vscode.commands.executeCommand('setContext', 'spython.auditEvents.available', true);
      this.timer ??= setInterval(() => this.tick(), REFRESH_INTERVAL_MS);
    } else if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.tick();
  }

  /** Repaints the view and the status bar when the current session's model moved. */
  private tick(): void {
    const current = this.sessions.current;
    const version = current?.model.version ?? -1;
    if (current !== this.shownSession || version !== this.shownVersion) {
      this.shownSession = current;
      this.shownVersion = version;
      this.refresh();
    }
    this.updateStatus();
  }

  private refresh(): void {
    this.shownVersion = this.sessions.current?.model.version ?? -1;
    this.emitter.fire(undefined);
    const current = this.sessions.current;
    this.view.description = current ? `${current.session.name}${current.ended ? ' (ended)' : ''}` : undefined;
    this.updateMessage();
  }

  private updateStatus(): void {
    const current = this.sessions.current;
    if (!current || current.ended) {
      this.status.hide();
      return;
    }
    const counts = {
      records: current.model.records,
      denied: current.model.denied,
      verificationFailures: current.verificationFailures,
    };
    this.status.text = statusText(counts);
    const top = current.model
      .topEvents(5)
      .map(([name, count]) => `${name} ${thousands(count)}`)
      .join(', ');
    this.status.tooltip = `SPython Debug: ${current.session.name}${top ? `\nMost frequent: ${top}` : ''}\nClick to show the Audit Events view.`;
    this.status.backgroundColor = counts.denied > 0 || counts.verificationFailures > 0 ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.status.show();
  }

  private updateMessage(): void {
    const parts: string[] = [];
    if (this.filter) parts.push(`Filtered by "${this.filter}"`);
    if (this.showHidden) parts.push('hidden (noisy) events shown');
    this.view.message = parts.length ? parts.join('; ') + '.' : undefined;
  }

  private setShowHidden(value: boolean): void {
    this.showHidden = value;
    void vscode.commands.executeCommand('setContext', 'spython.auditEvents.showHidden', value);
    this.refresh();
  }

  private setFilter(value: string): void {
    this.filter = value.trim();
    void vscode.commands.executeCommand('setContext', 'spython.auditEvents.filtered', this.filter !== '');
    this.refresh();
  }

  private async askFilter(): Promise<void> {
    const value = await vscode.window.showInputBox({
      title: 'Filter Audit Events',
      prompt: 'Text to look for in event names, categories, arguments and file names (empty: no filter)',
      value: this.filter,
      placeHolder: 'socket, /etc/, subprocess',
    });
    if (value !== undefined) this.setFilter(value);
  }

  private clear(): void {
    this.sessions.current?.model.clear();
    this.refresh();
  }

  private async reveal(node?: Node): Promise<void> {
    if (!node || node.kind !== 'occurrence') return;
    const site = node.occurrence.site;
    if (!site.file || !path.isAbsolute(site.file)) return;
    const line = Math.max(0, (site.line ?? 1) - 1);
    try {
      const editor = await vscode.window.showTextDocument(vscode.Uri.file(site.file), {
        preview: true,
        preserveFocus: true,
        selection: new vscode.Range(line, 0, line, 0),
      });
      editor.revealRange(new vscode.Range(line, 0, line, 0), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    } catch (err) {
      void vscode.window.showWarningMessage(`Cannot open ${site.file}: ${(err as Error).message}`);
    }
  }

  private async export(): Promise<void> {
    const current = this.sessions.current;
    if (!current?.runLog) {
      void vscode.window.showInformationMessage('No audit events to export: run a program with F5 first.');
      return;
    }
    const runLog = current.runLog;
    const base = path.basename(runLog, '.jsonl');
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = await vscode.window.showSaveDialog({
      title: 'Export Audit Events',
      defaultUri: folder ? vscode.Uri.joinPath(folder, `${base}.jsonl`) : vscode.Uri.file(path.join(path.dirname(runLog), `${base}.jsonl`)),
      filters: { 'JSON Lines': ['jsonl'], CSV: ['csv'] },
      saveLabel: 'Export',
    });
    if (!target) return;
    const format: ExportFormat = target.fsPath.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl';
    try {
      const count = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Exporting audit events to ${path.basename(target.fsPath)}`, cancellable: true },
        async (progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          let reported = 0;
          return exportRunLog(runLog, target.fsPath, {
            ...current.model.options,
            format,
            showHidden: this.showHidden,
            filter: this.filter,
            signal: abort.signal,
            onProgress: (done, total) => {
              const pct = total > 0 ? (done / total) * 100 : 100;
              progress.report({ increment: pct - reported });
              reported = pct;
            },
          });
        },
      );
      const open = await vscode.window.showInformationMessage(
        `Exported ${thousands(count)} audit ${count === 1 ? 'event' : 'events'} to ${target.fsPath}.`,
        'Open',
      );
      if (open) await vscode.commands.executeCommand('vscode.open', target);
    } catch (err) {
      if ((err as Error).name === 'AbortError') return;
      void vscode.window.showErrorMessage(`The export failed: ${(err as Error).message}`);
    }
  }
}

/** `/app/demo.py:12 in \`main\``. */
function frameText(frame: SourceSite): string {
  return `${frame.file}${frame.line ? `:${frame.line}` : ''}${frame.func ? ` in \`${frame.func}\`` : ''}`;
}
