// Driving VS Code's workbench (in code-server) the way a person does: the command palette, Quick Open,
// F5, the Debug Console, the Run and Debug views, dialogs. Every step waits for what the UI shows; the
// only retries are around opening the palette and Quick Open, whose first keystrokes can be lost while
// the workbench is still wiring up its keybindings.

import { Locator, Page } from 'playwright-core';
import { waitUntil } from '../helpers/fixtures';

export class Workbench {
  constructor(readonly page: Page) {}

  /** The workbench is up, the folder is open, and extensions have started. */
  async ready(): Promise<void> {
    await this.page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 180_000 });
    await this.page.locator('.explorer-folders-view, .explorer-viewlet').first().waitFor({ state: 'visible', timeout: 180_000 });
    // The extension host is up once the status bar's language/extension items have rendered.
    await this.page.locator('.statusbar').waitFor({ state: 'visible', timeout: 60_000 });
  }

  /** Opens the command palette and runs a command by its title. */
  async runCommand(title: string): Promise<void> {
    await this.openQuickInput('F1', '>');
    await this.typeInQuickInput(`>${title}`);
    const row = this.quickPickRow(title, true);
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    await row.click();
    await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 30_000 }).catch(() => undefined);
  }

  /** Quick Open: opens a workspace file in the editor. */
  async openFile(name: string): Promise<void> {
    await this.openQuickInput('Control+P', '');
    await this.typeInQuickInput(name);
    await this.quickPickRow(name).waitFor({ state: 'visible', timeout: 30_000 });
    await this.page.keyboard.press('Enter');
    await this.page.locator(`.tabs-container .tab.active[aria-label*="${name}"]`).waitFor({ state: 'visible', timeout: 30_000 });
    await this.page.locator('.editor-instance .monaco-editor .view-lines').first().waitFor({ state: 'visible' });
  }

  quickPickRow(text: string, exact = false): Locator {
    const rows = this.page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
    return exact ? rows.filter({ has: this.page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(text)}$`) }) }).first() : rows.filter({ hasText: text }).first();
  }

  private async openQuickInput(key: string, prefix: string): Promise<void> {
    // Retried: a key pressed before the workbench's keybindings are wired is lost (UI plumbing).
    await waitUntil(
      `the quick input to open with ${key}`,
      async () => {
        if (!(await this.page.locator('.quick-input-widget').isVisible())) await this.page.keyboard.press(key);
        const widget = this.page.locator('.quick-input-widget');
        await widget.waitFor({ state: 'visible', timeout: 3000 });
        const value = await widget.locator('input').inputValue();
        return value.startsWith(prefix) || prefix === '';
      },
      60_000,
      500,
    );
  }

  private async typeInQuickInput(text: string): Promise<void> {
    const input = this.page.locator('.quick-input-widget input');
    await input.fill(text);
  }

  async pressKey(key: string): Promise<void> {
    await this.page.keyboard.press(key);
  }

  /**
   * Gives the editor focus (so F5 starts the file shown), from the keyboard: a click in the text can
   * land as a double click and a drag on a busy machine, and move text around.
   */
  async focusEditor(): Promise<void> {
    await this.runCommand('View: Focus Active Editor Group');
    await this.page.locator('.editor-instance .monaco-editor.focused').first().waitFor({ state: 'visible', timeout: 30_000 });
  }

  /** Fails at once when VS Code shows an error dialog (a launch that failed), with its text. */
  async failOnErrorDialog(): Promise<void> {
    const dialog = this.dialog();
    if ((await dialog.isVisible()) && (await dialog.locator('.codicon-error, .dialog-message-row .codicon-error').count()) > 0) {
      throw new Error(`VS Code showed an error: ${(await dialog.innerText()).trim()}`);
    }
  }

  // --- debugging ----------------------------------------------------------------------------------

  debugToolbar(): Locator {
    return this.page.locator('.debug-toolbar');
  }

  /** A debug toolbar action by its title (aria-label starts with it; a keybinding may follow). */
  debugAction(title: string): Locator {
    return this.debugToolbar().locator(`.action-item a[aria-label^="${title}"], .action-item .action-label[aria-label^="${title}"]`).first();
  }

  async waitForSessionStart(timeoutMs = 90_000): Promise<void> {
    await this.debugToolbar().waitFor({ state: 'visible', timeout: timeoutMs });
  }

  async waitForSessionEnd(timeoutMs = 90_000): Promise<void> {
    await this.debugToolbar().waitFor({ state: 'hidden', timeout: timeoutMs });
  }

  /** The Debug Console's lines currently rendered (after its filter). */
  async consoleLines(): Promise<string[]> {
    return this.page.locator('.repl .monaco-list-row').allInnerTexts();
  }

  /** Sets the Debug Console's filter (so the lines asked about are rendered however long the output). */
  async filterConsole(text: string): Promise<void> {
    const input = this.page.locator('.panel .repl-filter input, .panel .viewpane-filter input').first();
    await input.waitFor({ state: 'visible', timeout: 30_000 });
    await input.fill(text);
  }

  /** Waits for a Debug Console line matching `pattern` (with the console filtered by `filter`). */
  async waitForConsoleLine(pattern: RegExp, filter: string, timeoutMs = 90_000): Promise<string> {
    await this.filterConsole(filter);
    let fatal: Error | undefined;
    const found = await waitUntil(
      `a Debug Console line matching ${pattern}`,
      async () => {
        const line = (await this.consoleLines()).find((l) => pattern.test(l));
        if (line) return line;
        await this.failOnErrorDialog().catch((err) => {
          fatal = err;
        });
        return fatal ? '' : undefined;
      },
      timeoutMs,
    );
    if (fatal) throw fatal;
    return found;
  }

  async showRunAndDebug(): Promise<void> {
    await this.runCommand('View: Show Run and Debug');
    await this.page.locator('.debug-pane, .debug-viewlet, .pane-header').first().waitFor({ state: 'visible' });
  }

  /** A view pane of the side bar by its title. */
  pane(title: string): Locator {
    return this.page.locator('.split-view-view', { has: this.page.locator(`.pane-header[aria-label^="${title}"]`) }).first();
  }

  /** Expands a side bar view pane if it is collapsed. */
  async expandPane(title: string): Promise<Locator> {
    const header = this.page.locator(`.pane-header[aria-label^="${title}"]`).first();
    await header.waitFor({ state: 'visible', timeout: 30_000 });
    if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
    await waitUntil(`the ${title} view to expand`, async () => (await header.getAttribute('aria-expanded')) === 'true', 15_000);
    return this.pane(title);
  }

  /** Collapses a side bar view pane if it is expanded (to give the others room). */
  async collapsePane(title: string): Promise<void> {
    const header = this.page.locator(`.pane-header[aria-label^="${title}"]`).first();
    if (!(await header.isVisible())) return;
    if ((await header.getAttribute('aria-expanded')) === 'true') await header.click();
    await waitUntil(`the ${title} view to collapse`, async () => (await header.getAttribute('aria-expanded')) !== 'true', 15_000);
  }

  async paneRows(title: string): Promise<string[]> {
    return this.pane(title).locator('.monaco-list-row').allInnerTexts();
  }

  /** Makes the side bar wider (for screenshots; best effort: a layout that resists stays as it is). */
  async widenSideBar(to = 520): Promise<void> {
    const box = await this.page.locator('.part.sidebar').boundingBox();
    if (!box || box.width >= to) return;
    const edge = box.x + box.width;
    await this.page.mouse.move(edge, box.y + box.height / 2);
    await this.page.mouse.down();
    await this.page.mouse.move(to, box.y + box.height / 2, { steps: 8 });
    await this.page.mouse.up();
  }

  /** Moves the bottom panel's top edge to `top` (for screenshots; best effort, like widenSideBar). */
  async resizePanel(top: number): Promise<void> {
    const box = await this.page.locator('.part.panel').boundingBox();
    if (!box || Math.abs(box.y - top) < 4) return;
    const x = box.x + box.width / 2;
    await this.page.mouse.move(x, box.y);
    await this.page.mouse.down();
    await this.page.mouse.move(x, top, { steps: 8 });
    await this.page.mouse.up();
  }

  /** Hides the bottom panel (Debug Console, Problems…) when it shows. */
  async closePanel(): Promise<void> {
    const panel = this.page.locator('.part.panel');
    if (!(await panel.isVisible())) return;
    await this.runCommand('View: Toggle Panel Visibility');
    await panel.waitFor({ state: 'hidden', timeout: 15_000 });
  }

  // --- notifications and dialogs ------------------------------------------------------------------

  dialog(): Locator {
    return this.page.locator('.monaco-dialog-box');
  }

  async clickDialogButton(label: string): Promise<void> {
    await this.dialog().locator('.dialog-buttons .monaco-button', { hasText: new RegExp(`^${escapeRegExp(label)}$`) }).first().click();
    await this.dialog().waitFor({ state: 'hidden', timeout: 30_000 });
  }

  async clearNotifications(): Promise<void> {
    await this.runCommand('Notifications: Clear All Notifications');
  }

  /**
   * Waits for a notification whose text matches: as a toast or, since a toast can come and go while a
   * loaded machine keeps the page busy, in the notifications centre, opened for the purpose.
   */
  async waitForNotification(pattern: RegExp, timeoutMs = 90_000): Promise<void> {
    try {
      await this.page.locator('.notification-toast', { hasText: pattern }).first().waitFor({ state: 'visible', timeout: 20_000 });
    } catch {
      await this.runCommand('Notifications: Show Notifications');
      await this.page.locator('.notifications-center .notification-list-item', { hasText: pattern }).first()
        .waitFor({ state: 'visible', timeout: timeoutMs });
      await this.runCommand('Notifications: Hide Notifications');
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
