// Where the hooked launcher is, and `spython-audit launcher --python PATH`: which launcher mode runs for
// an interpreter and why (for users whose interpreter has no shared libpython). The mode is the
// launcher's own answer (its channel `hello`, refused before any Python code runs); the why comes
// from the same sysconfig facts the launcher reads (native/launcher/interp.c).

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChannelServer, HelloMessage } from '../channel';
import { EXIT_LAUNCHER } from './exit';
import { UsageError } from './launchjson';
import { colors, useColor } from './render';

const LAUNCHER_NAME = 'spython';

/**
 * The launcher: $SPYTHON_LAUNCHER, else bin/spython beside the bundle (dist/cli.js → dist/bin/spython),
 * else the first dist/bin/spython walking up from here (out/adapter/cli/ when compiled by tsc).
 */
export function findLauncher(): string {
  const override = process.env.SPYTHON_LAUNCHER;
  if (override) return path.resolve(override);
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    for (const candidate of [path.join(dir, 'bin', LAUNCHER_NAME), path.join(dir, 'dist', 'bin', LAUNCHER_NAME)]) {
      if (fs.existsSync(candidate)) return candidate;
    }
    if (path.dirname(dir) === dir) break;
  }
  return path.join(__dirname, 'bin', LAUNCHER_NAME);
}

/** What the interpreter says about itself under -I -S (the launcher's probe, as JSON). */
const PROBE = `
import json, sys, sysconfig
v = sysconfig.get_config_var
print(json.dumps({
    "implementation": sys.implementation.name,
    "executable": sys.executable,
    "version": "%d.%d.%d" % sys.version_info[:3],
    "basePrefix": sys.base_prefix,
    "instsoname": v("INSTSONAME") or "",
    "ldlibrary": v("LDLIBRARY") or "",
    "libdir": v("LIBDIR") or "",
    "multiarch": v("MULTIARCH") or "",
    "enableShared": bool(v("Py_ENABLE_SHARED")),
    "freeThreaded": bool(v("Py_GIL_DISABLED")),
}))
`;

interface Facts {
  implementation: string;
  executable: string;
  version: string;
  basePrefix: string;
  instsoname: string;
  ldlibrary: string;
  libdir: string;
  multiarch: string;
  enableShared: boolean;
  freeThreaded: boolean;
}

export interface LauncherReport {
  launcher: string;
  launcherVersion?: string;
  python: string;
  /** The launcher's answer; absent when it cannot run the interpreter. */
  mode?: 'dlopen' | 'preload';
  requestedMode: 'auto' | 'dlopen' | 'preload';
  version?: string;
  executable?: string;
  freeThreaded?: boolean;
  /** The shared libpython the launcher would load, if one is found. */
  libpython?: string;
  /** Where it looked. */
  searched: string[];
  why: string;
  /** What the launcher said when it refused. */
  error?: string;
}

/** The launcher's diagnosis for one interpreter. */
export async function diagnose(python: string, mode: 'auto' | 'dlopen' | 'preload' = 'auto'): Promise<LauncherReport> {
  const launcher = findLauncher();
  if (!fs.existsSync(launcher)) {
    throw new UsageError(`the launcher ${launcher} does not exist: build it with \`npm run build\` (or set SPYTHON_LAUNCHER)`);
  }
  const report: LauncherReport = { launcher, python, requestedMode: mode, searched: [], why: '' };
  report.launcherVersion = (await capture(launcher, ['--version'])).stdout.trim() || undefined;

  const asked = await askLauncher(launcher, python, mode);
  if (asked.hello) {
    report.mode = asked.hello.mode;
    report.version = asked.hello.python;
    report.executable = asked.hello.executable;
    report.freeThreaded = asked.hello.freeThreaded;
  } else {
    report.error = asked.stderr.trim().replace(/^spython: /, '') || `the launcher exited with status ${asked.status}`;
  }

  // The launcher asks the program it was given (a shim's answer is what counts), and so do we.
  const facts = await probe(python);
  if (facts) {
    const found = findLibpython(facts);
    report.searched = found.searched;
    report.libpython = found.libpython;
  }
  report.why = explain(report, facts);
  return report;
}

function explain(report: LauncherReport, facts: Facts | undefined): string {
  if (report.error) return `the launcher cannot run it: ${report.error}`;
  const shared = facts
    ? `Py_ENABLE_SHARED is ${facts.enableShared ? 1 : 0}, LDLIBRARY is ${facts.ldlibrary || '(none)'}`
    : 'its build facts are unknown';
  if (report.mode === 'dlopen') {
    return (
      `${report.requestedMode === 'dlopen' ? '--mode dlopen, and ' : ''}it has a shared libpython` +
      `${report.libpython ? ` (${report.libpython})` : ''}: the launcher loads it into its own process and ` +
      'installs the audit hook before the interpreter starts'
    );
  }
  if (report.requestedMode === 'preload') {
    return (
      '--mode preload asks for it: the launcher runs the interpreter itself with libspython-preload.so in ' +
      'LD_PRELOAD (the same hook code)' +
      (report.libpython ? `; without it, dlopen mode would load ${report.libpython}` : '')
    );
  }
  const advice = facts
    ? ` For dlopen mode, install the shared library (Debian: apt install libpython${facts.version.split('.').slice(0, 2).join('.')}) ` +
      'or use a Python built with --enable-shared.'
    : '';
  return (
    `no shared libpython was found (${shared}${report.searched.length ? `; looked for ${report.searched.join(', ')}` : ''}): ` +
    'the launcher runs the interpreter itself with libspython-preload.so in LD_PRELOAD, which installs the same ' +
    `hook.${advice} Preload mode has no \`exit\` message: the exit status comes from the process itself.`
  );
}

/** native/launcher/interp.c's find_libpython(): INSTSONAME, then LDLIBRARY, in four directories. */
function findLibpython(facts: Facts): { libpython?: string; searched: string[] } {
  const dirs = [facts.libdir, path.join(facts.basePrefix, 'lib'), path.join(facts.basePrefix, 'lib', facts.multiarch), '/usr/lib'];
  const searched: string[] = [];
  for (const name of [facts.instsoname, facts.ldlibrary]) {
    if (!name.includes('.so')) continue; // a static libpythonX.Y.a
    for (const dir of dirs) {
      if (!dir) continue;
      const candidate = path.join(dir, name);
      if (searched.includes(candidate)) continue;
      searched.push(candidate);
      try {
        if (fs.statSync(candidate).isFile()) return { libpython: candidate, searched };
      } catch {
        // not there
      }
    }
  }
  return { searched };
}

async function probe(python: string): Promise<Facts | undefined> {
  const r = await capture(python, ['-I', '-S', '-c', PROBE]);
  if (r.status !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as Facts;
  } catch {
    return undefined;
  }
}

/** Starts the launcher on a channel and refuses its hello: the hello tells the mode; no Python code runs. */
async function askLauncher(
  launcher: string,
  python: string,
  mode: string,
): Promise<{ hello?: HelloMessage; stderr: string; status: number | null }> {
  let hello: HelloMessage | undefined;
  const server = await ChannelServer.create({
    config: (h) => {
      hello = h;
      throw new Error('spython-audit launcher only asks which mode runs');
    },
  });
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ...server.env };
    const args = ['--python', python, ...(mode !== 'auto' ? ['--mode', mode] : []), '--', '-c', 'pass'];
    const r = await capture(launcher, args, env);
    return { hello, stderr: r.stderr, status: r.status };
  } finally {
    await server.close();
  }
}

function capture(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, encoding: 'utf8', timeout: 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ status, stdout: stdout ?? '', stderr: stderr ?? (err ? err.message : '') });
    });
  });
}

/** `spython-audit launcher`: prints the diagnosis; 0 when the launcher can run the interpreter, else 125. */
export async function launcherCommand(options: { python?: string; mode?: string; json?: boolean; color?: boolean }): Promise<number> {
  const mode = (options.mode ?? 'auto') as 'auto' | 'dlopen' | 'preload';
  if (!['auto', 'dlopen', 'preload'].includes(mode)) throw new UsageError(`--mode is auto, dlopen or preload (got ${options.mode})`);
  const python = options.python ?? process.env.SPYTHON_PYTHON ?? 'python3';
  const report = await diagnose(python, mode);
  if (options.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    const c = colors(useColor(options.color, process.stdout));
    const rows: Array<[string, string]> = [
      ['Launcher', `${report.launcher}${report.launcherVersion ? `: ${report.launcherVersion}` : ''}`],
      ['Interpreter', report.executable && report.executable !== python ? `${python} → ${report.executable}` : python],
    ];
    if (report.version) rows.push(['Python', `${report.version}${report.freeThreaded ? ' (free-threaded)' : ''}`]);
    rows.push(['Mode', report.mode ? c.bold(report.mode) : c.red('cannot run')]);
    if (report.libpython) rows.push(['libpython', report.libpython]);
    rows.push(['Why', report.why]);
    for (const [label, text] of rows) process.stdout.write(`${c.dim(label.padEnd(12))}${text}\n`);
  }
  return report.mode ? 0 : EXIT_LAUNCHER;
}
