// What the end-to-end tests need on the machine, set up on first use: Debian packages (Chromium to drive
// the UI, ripgrep and the build tools code-server's native modules need), and code-server itself,
// installed from npm into a cache (~/.cache/spython-e2e/code-server-<version>) that later runs reuse.
// VS Code cannot be downloaded here, code-server (VS Code 1.100 in a browser) can.
//
// Run alone (`node out/test/e2e/setup.js`) it prepares everything and prints where code-server is.

import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CODE_SERVER_VERSION = '4.100.3';
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const RESULTS_DIR = path.join(REPO_ROOT, 'test-results', 'e2e');

/** Debian packages: the browser, ripgrep (VS Code's search), and what node-gyp needs to rebuild code-server's modules. */
export const APT_PACKAGES = ['chromium', 'ripgrep', 'libkrb5-dev', 'build-essential', 'python3', 'pkg-config'];
export const CHROMIUM = process.env.SPYTHON_E2E_CHROMIUM ?? '/usr/bin/chromium';

/** Native modules of VS Code (in lib/vscode) rebuilt for this Node; [package, file the build leaves]. */
const VSCODE_NATIVE: ReadonlyArray<[string, string]> = [
  ['@parcel/watcher', ''],
  ['@vscode/spdlog', 'build/Release/spdlog.node'],
  ['kerberos', 'build/Release/kerberos.node'],
  ['native-watchdog', 'build/Release/watchdog.node'],
];

/** Marker of a complete cache entry; anything else in the directory is a broken or partial install. */
const MARKER = 'spython-e2e-complete.json';

export type Log = (line: string) => void;

const defaultLog: Log = (line) => process.stderr.write(`[e2e setup] ${line}\n`);

export function cacheRoot(): string {
  if (process.env.SPYTHON_E2E_CACHE) return path.resolve(process.env.SPYTHON_E2E_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'spython-e2e');
}

export function codeServerDir(version = CODE_SERVER_VERSION): string {
  return path.join(cacheRoot(), `code-server-${version}`);
}

function run(command: string, args: string[], options: SpawnSyncOptions & { logFile: string; what: string }): void {
  const result = spawnSync(command, args, {
    ...options,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  fs.appendFileSync(options.logFile, `\n$ ${command} ${args.join(' ')}  (in ${options.cwd ?? process.cwd()})\n${output}`);
  if (result.error || result.status !== 0) {
    const why = result.error ? result.error.message : `exit status ${result.status}${result.signal ? `, ${result.signal}` : ''}`;
    const tail = output.trim().split('\n').slice(-25).join('\n');
    throw new Error(`${options.what} failed (${why}): ${command} ${args.join(' ')}\n${tail}\n(full log: ${options.logFile})`);
  }
}

/** The Debian packages missing from APT_PACKAGES. */
export function missingPackages(): string[] {
  return APT_PACKAGES.filter((pkg) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
}

/** Installs missing Debian packages when running as root; otherwise says what to install. */
export function ensureSystemPackages(log: Log = defaultLog): void {
  if (process.platform !== 'linux') throw new Error('The end-to-end tests run on Linux only (Debian packages, the native launcher).');
  const missing = missingPackages();
  if (missing.length === 0) return;
  const command = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(
      `The end-to-end tests need these Debian packages: ${missing.join(', ')}. Install them with\n  sudo sh -c '${command}'\n` +
        'and run the tests again (.ci/run installs them on CI).',
    );
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const logFile = path.join(RESULTS_DIR, 'setup.log');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update'], { env, logFile, what: 'apt-get update' });
  run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, logFile, what: 'apt-get install' });
}

interface Marker {
  version: string;
  /** Node's ABI: the native modules were built for it. */
  modules: string;
  node: string;
  builtAt: string;
}

/** The files a complete install has; a missing one means the cache entry is broken. */
function requiredFiles(dir: string): string[] {
  const cs = path.join(dir, 'node_modules', 'code-server');
  const vscode = path.join(cs, 'lib', 'vscode');
  return [
    path.join(cs, 'out', 'node', 'entry.js'),
    path.join(vscode, 'out', 'server-main.js'),
    path.join(vscode, 'node_modules', 'node-pty', 'build', 'Release', 'pty.node'),
    path.join(vscode, 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg'),
    path.join(vscode, 'node_modules.asar'),
    ...VSCODE_NATIVE.filter(([, file]) => file).map(([pkg, file]) => path.join(vscode, 'node_modules', pkg, file)),
  ];
}

/** Why the cache entry at `dir` cannot be used, or undefined when it can. */
export function cacheProblem(dir: string, version = CODE_SERVER_VERSION): string | undefined {
  let marker: Marker;
  try {
    marker = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return fs.existsSync(dir) ? 'the install is incomplete (no completion marker)' : 'not installed yet';
  }
  if (marker.version !== version) return `it holds code-server ${marker.version}`;
  if (marker.modules !== process.versions.modules) return `its native modules were built for Node ${marker.node}`;
  const missing = requiredFiles(dir).find((f) => !fs.existsSync(f));
  if (missing) return `${path.relative(dir, missing)} is missing`;
  return undefined;
}

/** Node's own headers, when the distribution ships them (node-gyp would download them otherwise). */
function nodeDir(): string | undefined {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node.h')) ? prefix : undefined;
}

function nodeGyp(): string {
  return require.resolve('node-gyp/bin/node-gyp.js', { paths: [REPO_ROOT] });
}

/**
 * code-server, installed and ready to run: the path of its entry point. Reuses the cache entry when it
 * is complete and built for this Node; otherwise installs into a fresh directory beside it and renames
 * it into place (a concurrent run that finished first wins; its install is as good).
 */
export function ensureCodeServer(log: Log = defaultLog, version = CODE_SERVER_VERSION): string {
  const dir = codeServerDir(version);
  const entry = path.join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const problem = cacheProblem(dir, version);
  if (!problem) return entry;
  log(`setting up code-server ${version} in ${dir} (${problem}); this takes a few minutes once`);

  fs.mkdirSync(cacheRoot(), { recursive: true });
  const work = fs.mkdtempSync(path.join(cacheRoot(), `.code-server-${version}-partial-`));
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const logFile = path.join(RESULTS_DIR, 'code-server-setup.log');
  fs.writeFileSync(logFile, `code-server ${version} set-up, ${new Date().toISOString()}\n`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    npm_config_loglevel: 'warn',
  };
  const headers = nodeDir();
  if (headers) env.npm_config_nodedir = headers;
  try {
    fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'spython-e2e-code-server', private: true }) + '\n');
    // Its postinstall would do the rest with downloads that cannot happen here: do it step by step.
    log('npm install code-server (scripts off)');
    run('npm', ['install', '--ignore-scripts', '--no-save', `code-server@${version}`], { cwd: work, env, logFile, what: 'installing code-server' });
    const cs = path.join(work, 'node_modules', 'code-server');
    const vscode = path.join(cs, 'lib', 'vscode');
    log("npm install VS Code's dependencies");
    run('npm', ['install', '--omit=dev', '--ignore-scripts'], { cwd: vscode, env, logFile, what: "installing VS Code's dependencies" });
    log('rebuilding native modules');
    run('npm', ['rebuild', ...VSCODE_NATIVE.map(([pkg]) => pkg)], { cwd: vscode, env, logFile, what: 'rebuilding native modules' });
    // node-pty's own install step fails here; node-gyp directly does not.
    const gypArgs = [nodeGyp(), 'rebuild', ...(headers ? [`--nodedir=${headers}`] : [])];
    run(process.execPath, gypArgs, { cwd: path.join(vscode, 'node_modules', 'node-pty'), env, logFile, what: 'building node-pty' });
    run('npm', ['rebuild', 'argon2'], { cwd: work, env, logFile, what: 'rebuilding argon2' });
    // @vscode/ripgrep would download rg from GitHub: Debian's does the same job.
    const rgDir = path.join(vscode, 'node_modules', '@vscode', 'ripgrep', 'bin');
    fs.mkdirSync(rgDir, { recursive: true });
    const rg = ['/usr/bin/rg', '/bin/rg'].find((p) => fs.existsSync(p));
    if (!rg) throw new Error('ripgrep is not installed (Debian package ripgrep)');
    fs.copyFileSync(rg, path.join(rgDir, 'rg'));
    fs.chmodSync(path.join(rgDir, 'rg'), 0o755);
    // What code-server's postinstall does: VS Code looks for some files under node_modules.asar.
    fs.rmSync(path.join(vscode, 'node_modules.asar'), { force: true, recursive: true });
    fs.symlinkSync('node_modules', path.join(vscode, 'node_modules.asar'));
    const marker: Marker = { version, modules: process.versions.modules, node: process.version, builtAt: new Date().toISOString() };
    fs.writeFileSync(path.join(work, MARKER), JSON.stringify(marker, null, 2) + '\n');
    const stillMissing = cacheProblem(work, version);
    if (stillMissing) throw new Error(`the code-server install is not complete: ${stillMissing}`);
    const check = spawnSync(process.execPath, [path.join(cs, 'out', 'node', 'entry.js'), '--version'], {
      encoding: 'utf8',
      env: { ...process.env, XDG_CONFIG_HOME: path.join(work, '.config') },
    });
    if (check.status !== 0 || !check.stdout.includes(version)) {
      throw new Error(`code-server --version did not answer ${version}: ${check.stdout}${check.stderr}`);
    }
    fs.rmSync(path.join(work, '.config'), { recursive: true, force: true });
  } catch (err) {
    fs.rmSync(work, { recursive: true, force: true });
    throw err;
  }
  // Swap it in: a broken entry goes, a complete one a concurrent run left is kept.
  if (cacheProblem(dir, version)) {
    const old = `${dir}.old-${process.pid}`;
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    try {
      fs.renameSync(work, dir);
    } catch (err) {
      if (cacheProblem(dir, version)) throw err;
    }
    fs.rmSync(old, { recursive: true, force: true });
  }
  fs.rmSync(work, { recursive: true, force: true });
  log(`code-server ${version} is ready`);
  return entry;
}

if (require.main === module) {
  try {
    ensureSystemPackages();
    console.log(ensureCodeServer());
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
