// One end-to-end session: the extension packaged as a VSIX, installed into a code-server with a fresh
// user-data-dir and extensions-dir, a fresh workspace in a temporary directory, and headless Chromium
// (Debian's, driven by playwright-core) on it. Everything the run leaves behind goes when it stops,
// except the screenshots and logs under test-results/e2e/.

import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { waitUntil } from '../helpers/fixtures';
import { CHROMIUM, ensureCodeServer, ensureSystemPackages, REPO_ROOT, RESULTS_DIR } from './setup';

export const VIEWPORT = { width: 1280, height: 800 };

/** Settings of the fresh profile: no welcome pages, tips, telemetry, trust prompt or update checks. */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'security.workspace.trust.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'git.enabled': false,
  'editor.minimap.enabled': false,
  'window.commandCenter': false,
  'workbench.colorTheme': 'Default Light Modern',
  'workbench.layoutControl.enabled': false,
  'debug.toolBarLocation': 'floating',
  'debug.internalConsoleOptions': 'openOnSessionStart',
  'debug.openDebug': 'openOnDebugBreak',
  'files.autoSave': 'off',
  'editor.fontSize': 13,
  'chat.commandCenter.enabled': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Packages the extension the way a user gets it (`vsce package`). */
export function packageExtension(outDir: string): string {
  const vsix = path.join(outDir, 'spython-debug-e2e.vsix');
  const vsce = require.resolve('@vscode/vsce/vsce', { paths: [REPO_ROOT] });
  const r = spawnSync(process.execPath, [vsce, 'package', '--out', vsix], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  fs.writeFileSync(path.join(RESULTS_DIR, 'vsce-package.log'), `${r.stdout}\n${r.stderr}`);
  if (r.status !== 0 || !fs.existsSync(vsix)) {
    throw new Error(`vsce package failed (status ${r.status}):\n${(r.stdout + r.stderr).trim().split('\n').slice(-30).join('\n')}`);
  }
  return vsix;
}

export interface Session {
  page: Page;
  workspace: string;
  userDataDir: string;
  url: string;
  /** Saves a screenshot under test-results/e2e/. */
  screenshot(name: string): Promise<string>;
  /** Extension host and code-server logs, for a failure's message. */
  logs(): string;
  close(): Promise<void>;
}

export interface SessionOptions {
  /** Files of the workspace: relative path → content. */
  files: Record<string, string>;
  log?: (line: string) => void;
}

export async function startSession(options: SessionOptions): Promise<Session> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[e2e] ${line}\n`));
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  ensureSystemPackages(log);
  const entry = ensureCodeServer(log);

  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-e2e-'));
  const workspace = path.join(temp, 'workspace');
  const userDataDir = path.join(temp, 'user-data');
  const extensionsDir = path.join(temp, 'extensions');
  const configHome = path.join(temp, 'config');
  for (const dir of [workspace, userDataDir, extensionsDir, configHome, path.join(userDataDir, 'User')]) fs.mkdirSync(dir, { recursive: true });
  for (const [rel, content] of Object.entries(options.files)) {
    fs.mkdirSync(path.dirname(path.join(workspace, rel)), { recursive: true });
    fs.writeFileSync(path.join(workspace, rel), content);
  }
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
  const config = path.join(configHome, 'config.yaml');
  fs.writeFileSync(config, 'auth: none\ncert: false\n');

  let child: ChildProcess | undefined;
  let browser: Browser | undefined;
  const serverLog = path.join(RESULTS_DIR, 'code-server.log');
  const cleanup = async () => {
    await browser?.close().catch(() => undefined);
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(temp, { recursive: true, force: true });
  };

  try {
    log('packaging the extension');
    const vsix = packageExtension(temp);
    const baseArgs = ['--config', config, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
    const env = { ...process.env, XDG_CONFIG_HOME: configHome, XDG_DATA_HOME: path.join(temp, 'data') };
    log('installing the VSIX into code-server');
    const install = spawnSync(process.execPath, [entry, ...baseArgs, '--install-extension', vsix, '--force'], { encoding: 'utf8', env });
    fs.writeFileSync(path.join(RESULTS_DIR, 'install-extension.log'), `${install.stdout}\n${install.stderr}`);
    if (install.status !== 0 || !/successfully installed/i.test(install.stdout + install.stderr)) {
      throw new Error(`code-server --install-extension failed (status ${install.status}): ${install.stdout}${install.stderr}`);
    }

    const port = await freePort();
    const out = fs.openSync(serverLog, 'w');
    child = spawn(
      process.execPath,
      [entry, ...baseArgs, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override', '--ignore-last-opened'],
      { env, stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
    await waitUntil(
      'code-server to listen',
      async () => {
        if (child?.exitCode !== null) throw new Error(`code-server exited (status ${child?.exitCode}): ${fs.readFileSync(serverLog, 'utf8')}`);
        const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        return res?.ok;
      },
      60_000,
    );

    log('starting Chromium');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
      timeout: 120_000,
    });
    const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.setDefaultTimeout(60_000);
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 120_000 });

    return {
      page,
      workspace,
      userDataDir,
      url,
      async screenshot(name: string) {
        const file = path.join(RESULTS_DIR, `${name}.png`);
        await page.screenshot({ path: file });
        return file;
      },
      logs() {
        return collectLogs(userDataDir, serverLog);
      },
      close: cleanup,
    };
  } catch (err) {
    const logs = collectLogs(userDataDir, serverLog);
    await cleanup();
    if (logs) (err as Error).message += `\n--- logs ---\n${logs}`;
    throw err;
  }
}

/** The tails of the extension host's and code-server's logs. */
function collectLogs(userDataDir: string, serverLog: string): string {
  const parts: string[] = [];
  const tail = (file: string, lines = 60) => {
    try {
      const text = fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
      if (text) parts.push(`== ${path.basename(path.dirname(file))}/${path.basename(file)}\n${text}`);
    } catch {
      // not there
    }
  };
  const walk = (dir: string): string[] => {
    try {
      return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
    } catch {
      return [];
    }
  };
  for (const file of walk(path.join(userDataDir, 'logs'))) {
    if (/exthost|SPython|spython|remoteagent/i.test(file) && file.endsWith('.log')) tail(file);
  }
  tail(serverLog, 30);
  // Copy them next to the screenshots too.
  try {
    fs.writeFileSync(path.join(RESULTS_DIR, 'logs.txt'), parts.join('\n\n'));
  } catch {
    // best effort
  }
  return parts.join('\n\n');
}
