// Trust tooling: stamping code files for verifyImports "xattr", signing manifests for "manifest", and
// verifying either way, through the native addon dist/bin/spython_trust.node. The addon compiles the
// launcher's own checks (native/core/verify.c, sha256.c), so what verify() accepts is exactly what the
// launcher's open_code hook accepts on the same files; nothing here re-implements a check.
//
// A plain module: the CLI and the extension both import it, so it must never import 'vscode'.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

// ---------------------------------------------------------------------------------------------------
// The addon

/** The phrases of native/core/verify.c's spy_verify_reason(), which the launcher also prints. */
export type VerifyReason =
  | 'no xattr'
  | 'hash mismatch'
  | 'too large'
  | 'not a regular file'
  | 'on a noexec mount'
  | 'not in manifest'
  | 'bad signature'
  | 'I/O error'
  | 'malformed manifest';

/** The same results as enum names (spy_verify_result without the SPY_VERIFY_ prefix). */
export type VerifyResultCode =
  | 'NO_XATTR'
  | 'MISMATCH'
  | 'TOO_LARGE'
  | 'NOT_REGULAR'
  | 'NOEXEC_MOUNT'
  | 'NOT_IN_MANIFEST'
  | 'BAD_SIGNATURE'
  | 'IO_ERROR'
  | 'BAD_MANIFEST';

/** One file of a stamp call: its hash and whether the xattr had to be (re)written, or why it failed. */
export interface StampEntry {
  path: string;
  hash?: string;
  written?: boolean;
  error?: string;
}

/** One file verify() refused, with the reason the launcher would give. */
export interface VerifyFailure {
  path: string;
  reason: VerifyReason;
  result: VerifyResultCode;
  /** e.g. "xattr user.org.python.x-spython-hash is <hex> but the file hashes to <hex>". */
  detail: string;
}

export interface HashEntry {
  path: string;
  hash?: string;
  error?: string;
}

/**
 * The addon's stamp results by column, in the order of the paths it was given: each file's 64 hex
 * digits end to end (spaces for a failed one), 1 written / 0 already current / -1 failed, and the
 * failures' messages.
 */
interface AddonStampColumns {
  hashes: string;
  written: Int8Array;
  errors: Array<[index: number, message: string]>;
}

interface AddonVerifyReport {
  checked: number;
  ok: number;
  exempt: number;
  failed: number;
  failures: VerifyFailure[];
  mode: 'xattr' | 'manifest';
  manifestHashes?: number;
}

interface AddonJobOptions {
  xattrName?: string;
  maxSize?: number;
  threads?: number;
  token?: CancelToken;
  manifest?: string;
  manifestKey?: string;
  exempt?: string[];
}

interface WalkOptions {
  exempt?: string[];
  extensions?: string[];
}

type ProgressCallback = (done: number, total: number) => void;

interface CancelToken {
  cancel(): void;
  readonly cancelled: boolean;
}

/** What dist/bin/spython_trust.node exports (native/addon/trust.cc). */
export interface TrustAddon {
  stamp(paths: string[], options?: AddonJobOptions, onProgress?: ProgressCallback): Promise<AddonStampColumns>;
  verify(paths: string[], options?: AddonJobOptions, onProgress?: ProgressCallback): Promise<AddonVerifyReport>;
  hashFiles(paths: string[], options?: AddonJobOptions, onProgress?: ProgressCallback): Promise<HashEntry[]>;
  sha256File(path: string): Promise<string>;
  /** The files found, separated by NUL (which no path holds). */
  walk(paths: string[], options?: WalkOptions & { token?: CancelToken }): Promise<string>;
  keygen(privatePem: string, publicPem: string): void;
  signManifest(manifestPath: string, privatePem: string): void;
  CancelToken: new () => CancelToken;
  info(): {
    xattrName: string;
    maxSize: number;
    sha256: string;
    defaultThreads: number;
    reasons: Record<string, string>;
  };
}

export const ADDON_FILE = 'spython_trust.node';

let loaded: TrustAddon | undefined;

/**
 * Where the addon is: $SPYTHON_TRUST_ADDON, else the first dist/bin/spython_trust.node found walking up
 * from this file (dist/ when bundled, out/adapter/ when compiled by tsc), also looking in bin/ beside
 * each directory (a bundle in dist/ has it in dist/bin/).
 */
export function addonPath(): string {
  const override = process.env.SPYTHON_TRUST_ADDON;
  if (override) return path.resolve(override);
  const tried: string[] = [];
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    for (const candidate of [path.join(dir, 'dist', 'bin', ADDON_FILE), path.join(dir, 'bin', ADDON_FILE)]) {
      tried.push(candidate);
      if (fs.existsSync(candidate)) return candidate;
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(
    `the trust addon ${ADDON_FILE} was not found (looked in ${tried.slice(0, 4).join(', ')}, ...); ` +
      'build it with `npm run build` (node-gyp rebuild && node scripts/copy-addon.js)',
  );
}

/**
 * Loads the addon once. process.dlopen is what require() does for a .node file, minus the module
 * resolution a bundler would try to follow: webpack leaves it alone, so the bundle needs no loader for
 * .node files and the addon always comes from dist/bin/ at run time.
 */
export function loadTrustAddon(): TrustAddon {
  if (!loaded) {
    const file = addonPath();
    const mod = { exports: {} as TrustAddon };
    process.dlopen(mod, file);
    loaded = mod.exports;
  }
  return loaded;
}

// ---------------------------------------------------------------------------------------------------
// Errors

/** Rejections for an aborted call: name 'AbortError', code 'ABORT_ERR', cause the signal's reason. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** A call that failed as a whole, e.g. a manifest whose signature does not check out. */
export class TrustError extends Error {
  constructor(
    message: string,
    /** 'ERR_SPY_BAD_SIGNATURE', 'ERR_SPY_IO_ERROR', 'ERR_SPY_BAD_MANIFEST', 'ERR_SPY_EXEMPT', ... */
    readonly code: string,
    /** The launcher's phrase when there is one ('bad signature', 'malformed manifest', 'I/O error'). */
    readonly reason?: VerifyReason,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'TrustError';
  }
}

interface NativeError extends Error {
  code?: string;
  reason?: VerifyReason;
  detail?: string;
}

function translate(err: unknown, signal: AbortSignal | undefined): unknown {
  const e = err as NativeError;
  if (e && e.code === 'ABORT_ERR') return new AbortError(undefined, { cause: signal?.reason });
  if (e && typeof e.code === 'string' && e.code.startsWith('ERR_SPY')) {
    return new TrustError(e.message, e.code, e.reason, e.detail);
  }
  return err;
}

/** Runs one addon job with the signal wired to a CancelToken. */
async function withCancel<T>(signal: AbortSignal | undefined, run: (token: CancelToken) => Promise<T>): Promise<T> {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
  const token = new (loadTrustAddon().CancelToken)();
  const onAbort = () => token.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await run(token);
    // Aborted after the last file: the caller asked to stop, so it does not get a result either.
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    return result;
  } catch (err) {
    throw translate(err, signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------------------------------------------
// Walking trees

export interface ExpandOptions {
  /** Directories whose code is trusted unverified (verifyExempt): not walked, their files not listed. */
  exempt?: string[];
  /** Extensions kept from walked directories (default .py and .pyc); files named explicitly are kept. */
  extensions?: string[];
}

/**
 * The code files under `paths`, walked natively off the main thread: directories are walked (symlinks
 * to directories followed, each directory entered once, so a link loop ends), keeping files ending in
 * .py or .pyc whatever their type (a FIFO named x.py is listed, and verify refuses it). Files named
 * explicitly are kept whatever their name, even when missing (stamp and verify then say why).
 * Directories under an exempt one (after resolving symlinks) are not walked. Absolute paths, sorted,
 * without duplicates.
 */
export async function expandTree(paths: string[], options: ExpandOptions & { signal?: AbortSignal } = {}): Promise<string[]> {
  const walk: WalkOptions = {};
  if (options.exempt?.length) walk.exempt = options.exempt.map((d) => path.resolve(d));
  if (options.extensions) walk.extensions = options.extensions;
  const roots = paths.map((p) => path.resolve(p));
  const listed = await withCancel(options.signal, (token) => loadTrustAddon().walk(roots, { ...walk, token }));
  return listed === '' ? [] : listed.split('\0');
}

// ---------------------------------------------------------------------------------------------------
// Stamping

export interface CommonOptions {
  /** The hash attribute (default user.org.python.x-spython-hash), as xattrName in launch.json. */
  xattrName?: string;
  /** Worker threads (default min(4, cores)). */
  threads?: number;
  /** Aborting rejects the call with an AbortError and stops the workers at the next file. */
  signal?: AbortSignal;
}

export type StampPhase = 'check' | 'compile' | 'stamp';

export interface StampOptions extends CommonOptions {
  /**
   * The interpreter whose .pyc files to bring up to date, as mkxattr.py does: each .py file whose
   * xattr is missing or differs from its content is compiled (compileall.compile_file; forced when
   * it had a hash that no longer matches, since the .pyc header's mtime and size cannot tell a
   * same-second, same-size edit), and the .pyc written is stamped too. Without it, nothing is compiled.
   */
  python?: string;
  /** Directories not to walk (verifyExempt). */
  exempt?: string[];
  /** Progress: (done, total, phase), at most every 50 ms per phase, and (total, total, 'stamp') last. */
  onProgress?: (done: number, total: number, phase: StampPhase) => void;
}

export interface StampReport {
  /** Every file stamped or tried, in path order. */
  entries: StampEntry[];
  /** How many xattrs were written, and how many already held the right hash. */
  written: number;
  current: number;
  /** The files that could not be stamped (entries with `error`). */
  failed: StampEntry[];
  /** The .py files recompiled, and the .pyc files that produced. */
  recompiled: string[];
  compiled: string[];
  /** .py files the interpreter could not compile (a syntax error, an unwritable __pycache__). */
  compileFailed: string[];
}

/** The script the interpreter runs: [[file, force], ...] on stdin, [[file, ok, pyc|null], ...] out. */
const COMPILE_SCRIPT = [
  'import compileall, importlib.util, json, os, sys',
  'out = []',
  'for name, force in json.load(sys.stdin):',
  '    try:',
  '        ok = bool(compileall.compile_file(name, quiet=2, force=force))',
  '    except Exception:',
  '        ok = False',
  '    pyc = importlib.util.cache_from_source(name)',
  '    out.append([name, ok, pyc if ok and os.path.isfile(pyc) else None])',
  'sys.stdout.write(json.dumps(out))',
].join('\n');

interface CompileResult {
  recompiled: string[];
  compiled: string[];
  failed: string[];
}

function compileWith(python: string, files: Array<[string, boolean]>, signal?: AbortSignal): Promise<CompileResult> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError(undefined, { cause: signal.reason }));
    const child = spawn(python, ['-c', COMPILE_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // a child that died early; 'close' reports it
    child.on('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new Error(`cannot run ${python} to compile: ${e.message}`));
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) return reject(new AbortError(undefined, { cause: signal.reason }));
      if (code !== 0) {
        const text = Buffer.concat(err).toString('utf8').trim();
        return reject(new Error(`${python} failed to compile (${sig ?? `status ${code}`}): ${text}`));
      }
      try {
        const rows = JSON.parse(Buffer.concat(out).toString('utf8')) as Array<[string, boolean, string | null]>;
        resolve({
          recompiled: rows.filter((r) => r[1]).map((r) => r[0]),
          compiled: rows.flatMap((r) => (r[2] ? [r[2]] : [])),
          failed: rows.filter((r) => !r[1]).map((r) => r[0]),
        });
      } catch (e) {
        reject(new Error(`${python} printed no compile report: ${(e as Error).message}`));
      }
    });
    child.stdin.end(JSON.stringify(files));
  });
}

/** One entry per file stamped, from the addon's columns. */
function stampEntries(paths: string[], columns: AddonStampColumns): StampEntry[] {
  const errors = new Map(columns.errors);
  const digits = 64;
  return paths.map((file, i) => {
    const written = columns.written[i];
    if (written < 0) return { path: file, error: errors.get(i) };
    return { path: file, hash: columns.hashes.slice(i * digits, (i + 1) * digits), written: written === 1 };
  });
}

/**
 * Stamps the code files under `paths` for verifyImports "xattr": the SHA-256 of each, as 64 lowercase
 * hex digits, in the xattr (mkxattr.py's contract), rewriting it only when it differs. With `python`,
 * out-of-date .pyc files are recompiled first and stamped with their .py.
 */
export async function stamp(paths: string[], options: StampOptions = {}): Promise<StampReport> {
  const { signal, python, onProgress } = options;
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
  const addon = loadTrustAddon();
  const files = await expandTree(paths, { exempt: options.exempt, signal });
  const job: AddonJobOptions = { threads: options.threads };
  if (options.xattrName) job.xattrName = options.xattrName;
  const progress = (phase: StampPhase) => (onProgress ? (d: number, t: number) => onProgress(d, t, phase) : undefined);

  let compiled: CompileResult = { recompiled: [], compiled: [], failed: [] };
  if (python) {
    const sources = files.filter((f) => f.endsWith('.py'));
    // Out of date = what verify would call "no xattr" or "hash mismatch" (size is no concern here).
    const report = await withCancel(signal, (token) =>
      addon.verify(sources, { ...job, maxSize: Number.MAX_SAFE_INTEGER, token }, progress('check')),
    );
    const stale: Array<[string, boolean]> = report.failures
      .filter((f) => f.result === 'NO_XATTR' || f.result === 'MISMATCH')
      .map((f) => [f.path, f.result === 'MISMATCH']);
    if (stale.length) {
      onProgress?.(0, stale.length, 'compile');
      compiled = await compileWith(python, stale, signal);
      onProgress?.(stale.length, stale.length, 'compile');
    }
  }

  const all = compiled.compiled.length ? [...new Set([...files, ...compiled.compiled])].sort() : files;
  const columns = await withCancel(signal, (token) => addon.stamp(all, { ...job, token }, progress('stamp')));
  const entries = stampEntries(all, columns);
  const failed = entries.filter((e) => e.error !== undefined);
  return {
    entries,
    written: entries.filter((e) => e.written === true).length,
    current: entries.filter((e) => e.written === false).length,
    failed,
    recompiled: compiled.recompiled,
    compiled: compiled.compiled,
    compileFailed: compiled.failed,
  };
}

// ---------------------------------------------------------------------------------------------------
// Verifying

export interface VerifyOptions extends CommonOptions {
  /** The largest code file in bytes (maxCodeSize; default 2 MiB). */
  maxSize?: number;
  /** Manifest mode (verifyImports "manifest"): the signed manifest and its Ed25519 public key (PEM). */
  manifest?: string;
  manifestKey?: string;
  /** verifyExempt: files under these directories (after resolving symlinks) are trusted unverified. */
  exempt?: string[];
  onProgress?: (done: number, total: number) => void;
}

export interface VerifyReport {
  mode: 'xattr' | 'manifest';
  /** Files looked at (after expanding directories), how many passed, how many were exempt. */
  checked: number;
  ok: number;
  exempt: number;
  /** One entry per refused file, in path order. */
  failures: VerifyFailure[];
  /** Distinct hashes in the manifest (manifest mode). */
  manifestHashes?: number;
}

/**
 * Verifies the code files under `paths` as the launcher's open_code hook would, with the same checks
 * in the same order: regular file, size, noexec mount, then the xattr or the signed manifest. A
 * manifest that does not load (a bad signature, a malformed line, an unreadable key) rejects the whole
 * call with a TrustError whose reason is the launcher's ('bad signature', ...).
 */
export async function verify(paths: string[], options: VerifyOptions = {}): Promise<VerifyReport> {
  const { signal } = options;
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
  if (!options.manifest !== !options.manifestKey) {
    throw new TypeError('manifest and manifestKey go together');
  }
  const addon = loadTrustAddon();
  const files = await expandTree(paths, { exempt: options.exempt, signal });
  const job: AddonJobOptions = { threads: options.threads };
  if (options.xattrName) job.xattrName = options.xattrName;
  if (options.maxSize) job.maxSize = options.maxSize;
  if (options.manifest && options.manifestKey) {
    job.manifest = path.resolve(options.manifest);
    job.manifestKey = path.resolve(options.manifestKey);
  }
  if (options.exempt?.length) job.exempt = options.exempt.map((d) => path.resolve(d));
  const r = await withCancel(signal, (token) => addon.verify(files, { ...job, token }, options.onProgress));
  const report: VerifyReport = { mode: r.mode, checked: r.checked, ok: r.ok, exempt: r.exempt, failures: r.failures };
  if (r.manifestHashes !== undefined) report.manifestHashes = r.manifestHashes;
  return report;
}

// ---------------------------------------------------------------------------------------------------
// Manifests and keys

export interface KeyPair {
  /** Unencrypted PKCS#8 PEM, mode 0600: keep it off the machines that run the code. */
  privateKey: string;
  /** The PEM public key the launcher takes as manifestKey / --key. */
  publicKey: string;
}

/**
 * Generates an Ed25519 key pair in `dir` (created if needed): <name>.key.pem and <name>.pub.pem,
 * the files `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write.
 */
export function generateKeyPair(dir: string, name = 'spython-manifest'): KeyPair {
  fs.mkdirSync(dir, { recursive: true });
  const pair = {
    privateKey: path.resolve(dir, `${name}.key.pem`),
    publicKey: path.resolve(dir, `${name}.pub.pem`),
  };
  try {
    loadTrustAddon().keygen(pair.privateKey, pair.publicKey);
  } catch (err) {
    throw translate(err, undefined);
  }
  return pair;
}

/** sha256sum's line for a file name: names with '\\' or a newline are escaped, the line marked '\\'. */
function manifestLine(hash: string, file: string): string {
  if (!/[\\\n\r]/.test(file)) return `${hash}  ${file}`;
  const escaped = file.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
  return `\\${hash}  ${escaped}`;
}

export interface ManifestOptions extends CommonOptions {
  exempt?: string[];
  onProgress?: (done: number, total: number) => void;
}

export interface ManifestReport {
  manifest: string;
  signature: string;
  /** The files listed, in order. */
  files: string[];
}

/** Signs an existing manifest: writes the raw 64-byte Ed25519 signature to <manifest>.sig. */
export function signManifest(manifestPath: string, privateKeyPem: string): string {
  try {
    loadTrustAddon().signManifest(path.resolve(manifestPath), path.resolve(privateKeyPem));
  } catch (err) {
    throw translate(err, undefined);
  }
  return path.resolve(manifestPath) + '.sig';
}

/**
 * Writes a manifest for verifyImports "manifest": `sha256sum` lines ("<hex>  <absolute path>") for the
 * code files under `paths`, sorted by path, written atomically, then signed to <manifest>.sig.
 * Throws when any file cannot be hashed (a manifest silently missing a file would only fail later).
 */
export async function writeManifest(
  paths: string[],
  manifestPath: string,
  privateKeyPem: string,
  options: ManifestOptions = {},
): Promise<ManifestReport> {
  const { signal } = options;
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
  const addon = loadTrustAddon();
  const files = await expandTree(paths, { exempt: options.exempt, signal });
  const job: AddonJobOptions = { threads: options.threads };
  const entries = await withCancel(signal, (token) => addon.hashFiles(files, { ...job, token }, options.onProgress));
  const bad = entries.filter((e) => e.error !== undefined);
  if (bad.length) {
    throw new TrustError(
      `cannot hash ${bad.length} file(s) for the manifest: ${bad
        .slice(0, 5)
        .map((e) => e.error)
        .join('; ')}`,
      'ERR_SPY_IO_ERROR',
      'I/O error',
    );
  }
  const target = path.resolve(manifestPath);
  const text = entries.map((e) => manifestLine(e.hash!, e.path) + '\n').join('');
  const tmp = `${target}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, target);
  const signature = signManifest(target, privateKeyPem);
  return { manifest: target, signature, files: entries.map((e) => e.path) };
}

/** The SHA-256 of one file, as 64 lowercase hex digits (what sha256sum prints), off the main thread. */
export async function sha256File(file: string): Promise<string> {
  try {
    return await loadTrustAddon().sha256File(path.resolve(file));
  } catch (err) {
    throw translate(err, undefined);
  }
}

/** SHA-256 of many files on the addon's pool: one entry per file, with `hash` or `error`. */
export async function hashFiles(
  files: string[],
  options: CommonOptions & { onProgress?: (done: number, total: number) => void } = {},
): Promise<HashEntry[]> {
  const addon = loadTrustAddon();
  const job: AddonJobOptions = { threads: options.threads };
  return withCancel(options.signal, (token) =>
    addon.hashFiles(
      files.map((f) => path.resolve(f)),
      { ...job, token },
      options.onProgress,
    ),
  );
}

/** The defaults compiled into the addon (the launcher's), and its SHA-256 block function. */
export function trustInfo(): ReturnType<TrustAddon['info']> {
  return loadTrustAddon().info();
}
