// `spython-audit stamp`, `verify` and `keygen`: the trust tooling of adapter/trust.ts (the launcher's
// own checks, through the native addon) on the command line, with a progress bar on a terminal and
// `--json` for scripts. Each failing file is named with the reason the launcher would give.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SingleBar } from 'cli-progress';
import { generateKeyPair, stamp, StampPhase, TrustError, verify, writeManifest } from '../trust';
import { EXIT_FAILED, EXIT_OK } from './exit';
import { UsageError } from './launchjson';
import { colors, Colors, n, useColor } from './render';

export interface StampFlags {
  python?: string;
  xattrName?: string;
  verifyExempt?: string[];
  manifest?: string;
  key?: string;
  threads?: string;
  json?: boolean;
  progress?: boolean;
  color?: boolean;
}

export interface VerifyFlags {
  xattrName?: string;
  maxCodeSize?: string;
  manifest?: string;
  key?: string;
  verifyExempt?: string[];
  threads?: string;
  json?: boolean;
  progress?: boolean;
  color?: boolean;
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
class Progress {
  private bar: SingleBar | undefined;
  private phase = '';

  constructor(private readonly enabled: boolean) {}

  update(done: number, total: number, phase: string): void {
    if (!this.enabled) return;
    if (!this.bar || phase !== this.phase) {
      this.bar?.stop();
      this.phase = phase;
      // Loaded for a terminal only: stamp and verify start without it in CI and pipes.
      const { Presets, SingleBar }: typeof import('cli-progress') = require('cli-progress');
      this.bar = new SingleBar(
        {
          format: `${phase.padEnd(9)} [{bar}] {value}/{total} files  {duration_formatted}`,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: true,
          barsize: 30,
        },
        Presets.shades_classic,
      );
      this.bar.start(total, done);
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(done);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

function progressFor(flags: { progress?: boolean }): Progress {
  return new Progress(flags.progress !== false && process.stderr.isTTY === true);
}

function threads(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`--threads must be a positive integer (got ${value})`);
  return count;
}

function positive(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const size = Number(value);
  if (!Number.isInteger(size) || size <= 0) throw new UsageError(`${option} must be a positive integer (got ${value})`);
  return size;
}

function requirePaths(paths: string[]): void {
  if (paths.length === 0) throw new UsageError('give at least one file or directory');
}

function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** A whole-call failure (a manifest that does not load, a key that cannot be read): said, status 1. */
function failure(c: Colors, json: boolean | undefined, err: unknown): number {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof TrustError ? err.code : undefined;
  const reason = err instanceof TrustError ? err.reason : undefined;
  if (json) printJson({ success: false, error: message, code, reason });
  process.stderr.write(`${c.red('spython-audit:')} ${message}\n`);
  return EXIT_FAILED;
}

// ---------------------------------------------------------------------------------------------

export async function stampCommand(paths: string[], flags: StampFlags): Promise<number> {
  requirePaths(paths);
  const c = colors(useColor(flags.color));
  if (!flags.manifest !== !flags.key) throw new UsageError('--manifest and --key (the private key) go together');
  const progress = progressFor(flags);
  const exempt = flags.verifyExempt?.map((d) => path.resolve(d));

  if (flags.manifest && flags.key) {
    if (flags.python) throw new UsageError('--python recompiles for xattr stamps; a manifest lists the files as they are');
    const workers = threads(flags.threads);
    try {
      const report = await writeManifest(paths, flags.manifest, flags.key, {
        exempt,
        threads: workers,
        onProgress: (done, total) => progress.update(done, total, 'hashing'),
      });
      progress.stop();
      if (flags.json) printJson({ success: true, ...report });
      else process.stdout.write(`Wrote ${report.manifest} (${n(report.files.length)} files) and its signature ${report.signature}\n`);
      return EXIT_OK;
    } catch (err) {
      progress.stop();
      return failure(c, flags.json, err);
    }
  }

  const workers = threads(flags.threads);
  let report;
  try {
    report = await stamp(paths, {
      python: flags.python,
      xattrName: flags.xattrName,
      exempt,
      threads: workers,
      onProgress: (done: number, total: number, phase: StampPhase) =>
        progress.update(done, total, phase === 'check' ? 'checking' : phase === 'compile' ? 'compiling' : 'stamping'),
    });
  } catch (err) {
    progress.stop();
    return failure(c, flags.json, err);
  }
  progress.stop();
  const ok = report.failed.length === 0;
  if (flags.json) {
    printJson({ success: ok, ...report });
  } else {
    for (const entry of report.failed) process.stderr.write(`${c.red('FAIL')} ${entry.path}: ${entry.error}\n`);
    for (const file of report.compileFailed) {
      process.stderr.write(`${c.yellow('WARN')} ${file}: ${flags.python} could not compile it (stamped as it is, without a .pyc)\n`);
    }
    const parts = [`${n(report.written)} written`, `${n(report.current)} already current`];
    if (report.failed.length) parts.push(c.red(`${n(report.failed.length)} failed`));
    if (flags.python) parts.push(`${n(report.recompiled.length)} recompiled`);
    process.stdout.write(`Stamped ${n(report.entries.length)} files: ${parts.join(', ')}\n`);
  }
  return ok ? EXIT_OK : EXIT_FAILED;
}

export async function verifyCommand(paths: string[], flags: VerifyFlags): Promise<number> {
  requirePaths(paths);
  const c = colors(useColor(flags.color));
  if (!flags.manifest !== !flags.key) throw new UsageError('--manifest and --key (the public key) go together');
  const progress = progressFor(flags);
  const maxSize = positive('--max-code-size', flags.maxCodeSize);
  const workers = threads(flags.threads);
  let report;
  try {
    report = await verify(paths, {
      xattrName: flags.xattrName,
      maxSize,
      manifest: flags.manifest,
      manifestKey: flags.key,
      exempt: flags.verifyExempt,
      threads: workers,
      onProgress: (done, total) => progress.update(done, total, 'verifying'),
    });
  } catch (err) {
    progress.stop();
    return failure(c, flags.json, err);
  }
  progress.stop();
  const ok = report.failures.length === 0;
  if (flags.json) {
    printJson({ success: ok, ...report });
  } else {
    for (const f of report.failures) {
      process.stderr.write(`${c.red('FAIL')} ${f.path}: ${f.reason}${f.detail ? ` (${f.detail})` : ''}\n`);
    }
    const parts = [`${n(report.ok)} ok`];
    if (report.exempt) parts.push(`${n(report.exempt)} exempt`);
    parts.push(ok ? '0 failed' : c.red(`${n(report.failures.length)} failed`));
    process.stdout.write(`Verified ${n(report.checked)} files (${report.mode}): ${parts.join(', ')}\n`);
  }
  return ok ? EXIT_OK : EXIT_FAILED;
}

export function keygenCommand(dir: string | undefined, flags: { name?: string; force?: boolean; json?: boolean; color?: boolean }): number {
  const c = colors(useColor(flags.color));
  const target = path.resolve(dir ?? '.');
  const name = flags.name ?? 'spython-manifest';
  const existing = [`${name}.key.pem`, `${name}.pub.pem`].map((f) => path.join(target, f)).filter((f) => fs.existsSync(f));
  if (existing.length > 0 && !flags.force) {
    throw new UsageError(`${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''} (--force replaces them)`);
  }
  let pair;
  try {
    for (const file of existing) fs.rmSync(file);
    pair = generateKeyPair(target, name);
  } catch (err) {
    return failure(c, flags.json, err);
  }
  if (flags.json) printJson({ success: true, ...pair });
  else {
    process.stdout.write(`Private key: ${pair.privateKey} (mode 0600: keep it off the machines that run the code)\n`);
    process.stdout.write(`Public key:  ${pair.publicKey} (the launcher's --key / manifestKey)\n`);
  }
  return EXIT_OK;
}
