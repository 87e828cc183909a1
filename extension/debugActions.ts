// What a developer does with a running session beyond standard DAP: add an event breakpoint from the
// catalogue, deny the operation a thread is stopped on, answer a promptEvents question.

import * as vscode from 'vscode';
import { DEBUG_TYPE } from './configuration';
import { catalogueEntries, isEventPattern, PROMPT_CHOICES, promptAnswer, promptQuestion } from './present';
import { SessionManager } from './sessions';

/** Adds a function breakpoint on an event name or glob, unless there is one already. */
export function addEventBreakpoint(name: string): boolean {
  const event = name.trim();
  const exists = vscode.debug.breakpoints.some((b) => b instanceof vscode.FunctionBreakpoint && b.functionName === event);
  if (!exists) vscode.debug.addBreakpoints([new vscode.FunctionBreakpoint(event)]);
  void vscode.window.setStatusBarMessage(
    exists ? `A breakpoint on ${event} is already set.` : `Breaks on the audit event ${event}.`,
    4000,
  );
  return !exists;
}

/** "Add Audit Event Breakpoint…": the catalogue in a quick pick (what it takes, what raises it); a glob typed in goes too. */
async function pickEventBreakpoint(): Promise<void> {
  type Item = vscode.QuickPickItem & { event?: string };
  const entries: Item[] = catalogueEntries().map((e) => ({ ...e, event: e.label }));
  const pick = vscode.window.createQuickPick<Item>();
  pick.title = 'Add Audit Event Breakpoint';
  pick.placeholder = 'An audit event, or a glob such as socket.* or subprocess.*';
  pick.matchOnDescription = true;
  pick.matchOnDetail = true;
  pick.items = entries;
  const typed = (value: string): Item | undefined =>
    value.trim() && isEventPattern(value) && !entries.some((e) => e.event === value.trim())
      ? { label: value.trim(), description: 'event name or glob', detail: 'Break on every audit event matching this', event: value.trim(), alwaysShow: true }
      : undefined;
  pick.onDidChangeValue((value) => {
    const extra = typed(value);
    pick.items = extra ? [extra, ...entries] : entries;
  });
  const chosen = await new Promise<string | undefined>((resolve) => {
    pick.onDidAccept(() => {
      const item = pick.selectedItems[0] ?? typed(pick.value);
      resolve(item?.event);
      pick.hide();
    });
    pick.onDidHide(() => resolve(undefined));
    pick.show();
  });
  pick.dispose();
  if (chosen) addEventBreakpoint(chosen);
}

/** Which session and thread a Deny applies to: the Call Stack item it was invoked on, the focused item, or the last stop. */
function denyTarget(
  sessions: SessionManager,
  arg: unknown,
): { session: vscode.DebugSession; threadId: number } | undefined {
  // The Call Stack's context menu passes a thread's id (a frame's source URI for a frame).
  if (typeof arg === 'number') {
    const owner = sessions.withStoppedThread(arg) ?? vscode.debug.activeDebugSession;
    if (owner?.type === DEBUG_TYPE) return { session: owner, threadId: arg };
  }
  const a = arg as { sessionId?: string; threadId?: number } | undefined;
  if (a && typeof a === 'object' && typeof a.threadId === 'number') {
    const session =
      (a.sessionId !== undefined ? sessions.get(a.sessionId)?.session : undefined) ?? vscode.debug.activeDebugSession;
    if (session?.type === DEBUG_TYPE) return { session, threadId: a.threadId };
  }
  const item = vscode.debug.activeStackItem;
  if (item && item.session.type === DEBUG_TYPE) {
    const tracked = sessions.get(item.session.id);
    const threadId = tracked?.stoppedOnEvent ?? item.threadId;
    return { session: item.session, threadId };
  }
  const session = vscode.debug.activeDebugSession;
  const tracked = session ? sessions.get(session.id) : undefined;
  const threadId = tracked?.stoppedOnEvent ?? tracked?.lastStoppedThread;
  if (session && threadId !== undefined) return { session, threadId };
  return undefined;
}

async function denyOperation(sessions: SessionManager, arg: unknown): Promise<void> {
  const target = denyTarget(sessions, arg);
  if (!target) {
    void vscode.window.showInformationMessage('Nothing to deny: no thread is stopped on an audit event.');
    return;
  }
  try {
    await target.session.customRequest('deny', { threadId: target.threadId });
  } catch (err) {
    void vscode.window.showErrorMessage(`Cannot deny the operation: ${(err as Error).message}`);
  }
}

/** promptEvents questions, one modal at a time (several threads may ask at once). */
class PromptQueue {
  private queue: Promise<void> = Promise.resolve();

  ask(session: vscode.DebugSession, body: { id: number; event: string; target: string; pid: number; tid: number }): void {
    this.queue = this.queue.then(() => this.show(session, body)).catch(() => undefined);
  }

  private async show(
    session: vscode.DebugSession,
    body: { id: number; event: string; target: string; pid: number; tid: number },
  ): Promise<void> {
    const choice = await vscode.window.showWarningMessage<vscode.MessageItem>(
      promptQuestion(body.event, body.target),
      {
        modal: true,
        detail:
          `${session.name} (process ${body.pid}, thread ${body.tid}) is waiting. ` +
          `"${PROMPT_CHOICES.allowAlways}" lets the same ${body.event} through for the rest of the process; ` +
          `"${PROMPT_CHOICES.deny}" (or Escape) raises PermissionError in the program.`,
      },
      { title: PROMPT_CHOICES.allow },
      { title: PROMPT_CHOICES.allowAlways },
      // The dialog's close affordance: no extra Cancel button, and Escape denies.
      { title: PROMPT_CHOICES.deny, isCloseAffordance: true },
    );
    try {
      await session.customRequest('spythonPromptReply', { id: body.id, answer: promptAnswer(choice?.title) });
    } catch {
      // The session ended meanwhile: nobody is waiting any more.
    }
  }
}

export function registerDebugActions(context: vscode.ExtensionContext, sessions: SessionManager): void {
  const prompts = new PromptQueue();
  context.subscriptions.push(
    vscode.commands.registerCommand('spython.addEventBreakpoint', async (name?: unknown) => {
      if (typeof name === 'string' && name.trim() !== '') addEventBreakpoint(name);
      else if (name && typeof name === 'object' && 'group' in name) {
        // From the Audit Events view's context menu: the event node.
        addEventBreakpoint((name as { group: { event: string } }).group.event);
      } else await pickEventBreakpoint();
    }),
    vscode.commands.registerCommand('spython.denyOperation', (arg?: unknown) => denyOperation(sessions, arg)),
    vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => {
      if (e.session.type !== DEBUG_TYPE || e.event !== 'spythonPrompt') return;
      prompts.ask(e.session, e.body);
    }),
    sessions.onDidChange(() => updateStoppedContext(sessions)),
    vscode.debug.onDidChangeActiveStackItem(() => updateStoppedContext(sessions)),
  );
}

/** `spython.stoppedOnEvent`: the focused session has a thread stopped on an audit event (the Deny action shows). */
function updateStoppedContext(sessions: SessionManager): void {
  const session = vscode.debug.activeDebugSession;
  const stopped = session !== undefined && sessions.get(session.id)?.stoppedOnEvent !== undefined;
  void vscode.commands.executeCommand('setContext', 'spython.stoppedOnEvent', stopped);
}
