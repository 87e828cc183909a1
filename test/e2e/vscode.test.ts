// End to end, in a real VS Code (code-server 4.100.3 = VS Code 1.100.3, driven through headless
// Chromium): the extension as a user installs it (the VSIX), a fresh profile and a fresh workspace.
// Each step saves a screenshot under test-results/e2e/.
//
// The first run on a machine sets up code-server (Debian packages when root, then an npm install cached
// under ~/.cache/spython-e2e); later runs take about two minutes.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitUntil } from '../helpers/fixtures';
import { Session, startSession } from './harness';
import { REPO_ROOT } from './setup';
import { Workbench } from './workbench';

/** The program the tests audit (shared with the @vscode/test-electron suite). */
const DEMO = fs.readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'net_demo.py'), 'utf8');

/** 1-based line of the connect call: where the event is raised and the breakpoint stops. */
const CONNECT_LINE = DEMO.split('\n').findIndex((l) => l.includes('client.connect((')) + 1;

const PROMPT_LAUNCH_JSON = JSON.stringify(
  {
    version: '0.2.0',
    configurations: [
      {
        type: 'spython',
        request: 'launch',
        name: 'Prompt on network',
        program: '${workspaceFolder}/net_demo.py',
        promptEvents: ['socket.connect'],
      },
    ],
  },
  null,
  2,
);

/** subProcess: the program starts a child through sys.executable; the child raises its own event. */
const PARENT = `import os, subprocess, sys
HERE = os.path.dirname(os.path.abspath(__file__))
status = subprocess.run([sys.executable, os.path.join(HERE, "child.py")]).returncode
with open(os.path.join(HERE, "parent-done.txt"), "w") as f:
    f.write("child exited %d" % status)
`;
const CHILD = `import os, sys
sys.audit("demo.child", os.getpid())
print("child done")
`;

const CHILD_LAUNCH_JSON = JSON.stringify(
  {
    version: '0.2.0',
    configurations: [
      { type: 'spython', request: 'launch', name: 'Sub-processes', program: '${workspaceFolder}/parent.py', subProcess: true },
    ],
  },
  null,
  2,
);

/** Generous: a noisy 2-core machine, a browser and a VS Code server on it. */
const STEP_TIMEOUT = 10 * 60_000;

describe('the extension in VS Code (code-server)', { timeout: 60 * 60_000 }, () => {
  let session: Session;
  let wb: Workbench;
  let failed = false;

  before(async () => {
    session = await startSession({ files: { 'net_demo.py': DEMO, 'parent.py': PARENT, 'child.py': CHILD } });
    wb = new Workbench(session.page);
    await wb.ready();
  }, { timeout: 40 * 60_000 });

  after(async () => {
    if (failed && session) process.stderr.write(`\n--- code-server and extension host logs ---\n${session.logs()}\n`);
    await session?.close();
  });

  /** A step: its screenshot is taken whatever happens, and a failure carries the logs. */
  async function step(name: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
      await session.screenshot(name);
    } catch (err) {
      failed = true;
      await session.screenshot(`${name}-FAILED`).catch(() => undefined);
      throw err;
    }
  }

  it('F5 with no launch.json audits the current file; the Debug Console shows an event with its location', { timeout: STEP_TIMEOUT }, async () => {
    await step('01-f5-debug-console', async () => {
      assert.ok(!fs.existsSync(path.join(session.workspace, '.vscode', 'launch.json')));
      await wb.openFile('net_demo.py');
      await wb.focusEditor();
      await wb.pressKey('F5');
      const line = await wb.waitForConsoleLine(new RegExp(`socket\\.connect \\('127\\.0\\.0\\.1', \\d+\\)\\s+net_demo\\.py:${CONNECT_LINE}`), 'socket.connect');
      assert.match(line, new RegExp(`net_demo\\.py:${CONNECT_LINE}`));
      await wb.waitForConsoleLine(/^done/m, 'done');
      await wb.waitForSessionEnd();
      await wb.resizePanel(330);
      await wb.filterConsole('');
      await waitUntil('the whole output to show', async () => (await wb.consoleLines()).some((l) => l.includes('Audit events:')), 30_000);
    });
  });

  it('"Add Audit Event Breakpoint…" on socket.connect stops on the right line; Variables shows the address', { timeout: STEP_TIMEOUT }, async () => {
    await step('02-breakpoint-variables', async () => {
      await wb.resizePanel(515);
      await wb.runCommand('SPython: Add Audit Event Breakpoint…');
      await session.page.locator('.quick-input-widget input').fill('socket.connect');
      const row = wb.quickPickRow('socket.connect', true);
      await row.waitFor({ state: 'visible' });
      await row.click();
      await session.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });

      await wb.openFile('net_demo.py');
      await wb.focusEditor();
      await wb.pressKey('F5');
      await wb.waitForSessionStart();
      const callStack = wb.pane('Call Stack');
      await waitUntil('the Call Stack to show the stop on socket.connect', async () => (await callStack.innerText()).includes('Paused on socket.connect'), 90_000);
      await waitUntil(`the top frame at net_demo.py:${CONNECT_LINE}`, async () => {
        const frames = await callStack.locator('.monaco-list-row').allInnerTexts();
        const top = frames.findIndex((t) => /net_demo\.py/.test(t));
        return top >= 0 && /\bconnect\b/.test(frames[top]) && frames[top].includes(`${CONNECT_LINE}:1`);
      }, 60_000);
      const variables = wb.pane('Variables');
      const argsRow = variables.locator('.monaco-list-row', { hasText: /^\s*args\b/ }).first();
      await argsRow.waitFor({ state: 'visible', timeout: 60_000 });
      assert.match(await argsRow.innerText(), /\('127\.0\.0\.1', \d+\)/);
      await argsRow.click();
      await waitUntil('the address among the event arguments', async () =>
        (await variables.locator('.monaco-list-row').allInnerTexts()).find((t) => /^\s*\[1\]\s*=?\s*\('127\.0\.0\.1', \d+\)/.test(t)),
      30_000);
      // The Breakpoints view lists the function breakpoint, and the status bar counts events.
      assert.ok((await wb.paneRows('Breakpoints')).some((t) => t.includes('socket.connect')));
      await waitUntil('the status bar item', async () => session.page.locator('.statusbar-item', { hasText: /\d+ events/ }).first().isVisible(), 30_000);
    });
  });

  it('Deny Operation makes the program print PermissionError', { timeout: STEP_TIMEOUT }, async () => {
    await step('03-deny-permissionerror', async () => {
      await wb.debugAction('Deny Operation').click();
      const line = await wb.waitForConsoleLine(/PermissionError: \[spython\] debugger refused socket\.connect/, 'PermissionError');
      assert.match(line, /127\.0\.0\.1/);
      await wb.waitForSessionEnd();
    });
  });

  it('a promptEvents question is answered through the modal', { timeout: STEP_TIMEOUT }, async () => {
    await step('04b-prompt-answered', async () => {
      await wb.runCommand('Remove All Breakpoints');
      fs.mkdirSync(path.join(session.workspace, '.vscode'), { recursive: true });
      fs.writeFileSync(path.join(session.workspace, '.vscode', 'launch.json'), PROMPT_LAUNCH_JSON);
      await wb.showRunAndDebug();
      await waitUntil('the launch configuration to be picked up', async () =>
        (await session.page.locator('.debug-pane .monaco-select-box, .start-debug-action-item .monaco-select-box, .debug-viewlet select').allInnerTexts()).some((t) =>
          t.includes('Prompt on network'),
        ),
      60_000);
      await wb.filterConsole('');
      await wb.openFile('net_demo.py');
      await wb.focusEditor();
      await wb.pressKey('F5');
      const dialog = wb.dialog();
      await dialog.waitFor({ state: 'visible', timeout: 90_000 });
      await waitUntil('the question', async () => /Allow socket\.connect to 127\.0\.0\.1:\d+\?/.test(await dialog.innerText()), 30_000);
      await session.screenshot('04a-prompt-modal');
      await wb.clickDialogButton('Allow');
      await wb.waitForConsoleLine(/connected to 127\.0\.0\.1:\d+/, 'connected');
      await wb.waitForSessionEnd();
    });
  });

  it('the Audit Events view shows the run by category and event, with counts; an occurrence reveals its line', { timeout: STEP_TIMEOUT }, async () => {
    await step('05-audit-events-view', async () => {
      await wb.showRunAndDebug();
      for (const pane of ['Variables', 'Watch', 'Call Stack', 'Breakpoints']) await wb.collapsePane(pane);
      await wb.closePanel();
      await wb.widenSideBar();
      const view = await wb.expandPane('Audit Events');
      const rows = () => view.locator('.monaco-list-row').allInnerTexts();
      await waitUntil('Network and socket.connect (1)', async () => {
        const texts = await rows();
        return texts.some((t) => /^Network/.test(t)) && texts.some((t) => /socket\.connect\s*\(1\)/.test(t));
      }, 60_000);
      assert.ok((await rows()).some((t) => /^File writes/.test(t)), 'a File writes group (the report it saved)');
      await view.locator('.monaco-list-row', { hasText: /socket\.connect\s*\(1\)/ }).first().click();
      const occurrence = view.locator('.monaco-list-row', { hasText: /^\s*\('127\.0\.0\.1', \d+\)/ }).first();
      await occurrence.waitFor({ state: 'visible', timeout: 30_000 });
      assert.match(await occurrence.innerText(), new RegExp(`net_demo\\.py:${CONNECT_LINE} · pid \\d+ · MainThread`));
      await occurrence.click();
      await session.page.locator('.statusbar-item', { hasText: `Ln ${CONNECT_LINE}, Col 1` }).first().waitFor({ state: 'visible', timeout: 30_000 });
    });
  });

  it('the Audit Events view filters, shows hidden (noisy) events on demand, and exports', { timeout: STEP_TIMEOUT }, async () => {
    await step('06b-audit-events-exported', async () => {
      const view = wb.pane('Audit Events');
      const rows = () => view.locator('.monaco-list-row').allInnerTexts();
      await wb.runCommand('SPython: Filter Audit Events…');
      await session.page.locator('.quick-input-widget input').fill('marshal');
      await session.page.keyboard.press('Enter');
      await waitUntil('the filter to apply', async () => (await view.innerText()).includes('Filtered by "marshal"'), 30_000);
      assert.ok(!(await rows()).some((t) => t.includes('marshal.loads')), 'marshal.loads is hidden by default');
      await wb.runCommand('SPython: Show Hidden (Noisy) Audit Events');
      await waitUntil('marshal.loads among the hidden events', async () => (await rows()).some((t) => /marshal\.loads\s*\(\d+\)/.test(t)), 30_000);
      await session.screenshot('06a-audit-events-hidden-filter');

      const csv = path.join(session.workspace, 'audit.csv');
      await wb.runCommand('SPython: Clear Audit Events Filter');
      await wb.runCommand('SPython: Hide Hidden (Noisy) Audit Events');
      await wb.runCommand('SPython: Export Audit Events (JSONL/CSV)…');
      // VS Code's own save dialog (a quick input): ready once it proposes the default name.
      const input = session.page.locator('.quick-input-widget input');
      await waitUntil('the save dialog', async () => (await input.isVisible()) && (await input.inputValue()).endsWith('.jsonl'), 30_000);
      await input.fill(csv);
      await waitUntil('the path to be taken as typed', async () => (await input.inputValue()) === csv, 15_000);
      await session.page.keyboard.press('Enter');
      await waitUntil('the export', async () => fs.existsSync(csv) && fs.readFileSync(csv, 'utf8').includes('socket.connect'), 60_000);
      const lines = fs.readFileSync(csv, 'utf8').trim().split('\n');
      assert.equal(lines[0], 'seq,ts,pid,ppid,tid,thread,event,category,arguments,file,line,func,denied');
      assert.ok(lines.some((l) => l.includes(',socket.connect,Network,') && l.includes(`,${CONNECT_LINE},connect,`)), lines.join('\n'));
      assert.ok(!lines.some((l) => l.includes(',marshal.loads,')), 'hidden events are not exported while hidden');
    });
  });

  it('"Verify Imports…" shows refusals in the Problems panel; "Stamp Trusted Hashes…" clears them', { timeout: STEP_TIMEOUT }, async () => {
    await step('07b-stamped-and-verified', async () => {
      const problems = session.page.locator('.markers-panel');
      await wb.runCommand('SPython: Verify Imports…');
      await wb.quickPickRow('workspace').waitFor({ state: 'visible' });
      await session.page.keyboard.press('Enter');
      await wb.runCommand('View: Focus Problems (Errors, Warnings, Infos)');
      await waitUntil('the refusal in Problems', async () => /verifyImports would refuse this file: no xattr/.test(await problems.innerText()), 90_000);
      assert.match(await problems.innerText(), /net_demo\.py/);
      await session.screenshot('07a-verify-imports-problems');

      await wb.runCommand('SPython: Stamp Trusted Hashes…');
      await wb.quickPickRow('workspace').waitFor({ state: 'visible' });
      await session.page.keyboard.press('Enter');
      await wb.waitForNotification(/Stamped \d+ code files?:/);
      await wb.runCommand('SPython: Verify Imports…');
      await wb.quickPickRow('workspace').waitFor({ state: 'visible' });
      await session.page.keyboard.press('Enter');
      // Only a new verification clears the Problems panel (stamping does not touch it).
      await waitUntil('Problems to be empty again', async () => !/would refuse/.test(await problems.innerText()), 90_000);
    });
  });
  it('subProcess: the child runs in a child session of its own, where its event breakpoint stops it', { timeout: STEP_TIMEOUT }, async () => {
    await step('08-child-session', async () => {
      await wb.clearNotifications();
      await wb.runCommand('Remove All Breakpoints');
      await wb.runCommand('SPython: Add Audit Event Breakpoint…');
      await session.page.locator('.quick-input-widget input').fill('demo.child');
      const row = wb.quickPickRow('demo.child', true);
      await row.waitFor({ state: 'visible' });
      await row.click();
      await session.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });

      fs.writeFileSync(path.join(session.workspace, '.vscode', 'launch.json'), CHILD_LAUNCH_JSON);
      await wb.showRunAndDebug();
      await wb.expandPane('Call Stack');
      await waitUntil('the Sub-processes configuration to be picked up', async () =>
        (await session.page.locator('.debug-pane .monaco-select-box, .start-debug-action-item .monaco-select-box, .debug-viewlet select').allInnerTexts()).some((t) =>
          t.includes('Sub-processes'),
        ),
      60_000);
      await wb.openFile('parent.py');
      await wb.focusEditor();
      await wb.pressKey('F5');
      const callStack = wb.pane('Call Stack');
      // The child's own session, under the program's, stopped on the child's event.
      await waitUntil('the child session paused on demo.child', async () => {
        const text = await callStack.innerText();
        // (The workbench shows the state upper-cased.)
        return /python-\d+ \(child of \d+\)/.test(text) && /paused on demo\.child/i.test(text);
      }, 90_000);
      await session.screenshot('08a-child-session-paused');
      const frames = await callStack.locator('.monaco-list-row').allInnerTexts();
      assert.ok(frames.some((t) => /child\.py/.test(t) && t.includes('2:1')), frames.join('\n'));
      // The child's frame selected first, so Continue acts on its session and not on the program's
      // (running, where F5 would start another session), which may have been focused last.
      await callStack.locator('.monaco-list-row', { hasText: 'child.py' }).first().click();
      await wb.debugAction('Continue').click();
      const done = path.join(session.workspace, 'parent-done.txt');
      await waitUntil('the program to finish after its child', async () => fs.existsSync(done) && fs.readFileSync(done, 'utf8') === 'child exited 0', 90_000);
      await wb.waitForSessionEnd();
    });
  });
});
