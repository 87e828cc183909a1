// Runs a webpack bundle (dist/cli-main.js, dist/adapter-main.js) with V8's code cache. Node compiles
// a bundle of several hundred KB on every start — after Node's own start-up, most of a short command's
// time. V8 can hand back what it compiled (the top level and every function that ran), and take it
// again next time in place of parsing and compiling.
//
// The cache is kept per user beside the launcher's interpreter cache (README, "Launcher"): one file
// per bundle and Node version. It is made on first use and made again when the bundle changes (its
// size, inode or modification time), when V8 rejects it, and when a kind of run it has not seen yet
// (another subcommand) has compiled other functions: at the process's exit, or a second into it. A
// cache that cannot be read or written (a fresh machine, a read-only home) costs nothing but the time
// it would have saved.

import * as fs from 'node:fs';
import { Module } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

const FORMAT = 'spython-code-cache 1';
/** Kinds of run (subcommands) recorded in one cache; past this many, new ones no longer rewrite it. */
const MAX_KINDS = 16;
/**
 * A run still going after this long writes the cache then, not at its exit: V8 drops the bytecode of
 * functions idle through several collections (the start-up's, in a long run) before the exit comes.
 */
const WRITE_AFTER_MS = 1000;

/** What became of the cache in one run: taken by V8, or why not ('off': no cache directory, or source maps on). */
export type CacheStatus = 'used' | 'absent' | 'stale' | 'untrusted' | 'rejected' | 'off';

/** The first line of a cache file; the code cache follows it. */
interface Header {
  format: string;
  /** The bundle as it was when the cache was made. */
  bundle: string;
  size: number;
  ino: number;
  mtimeMs: number;
  node: string;
  /** The kinds of run whose functions it holds. */
  kinds: string[];
  /** The code cache's length, so that a short file is never handed to V8. */
  length: number;
}

/**
 * The directory for caches: $SPYTHON_CACHE_DIR, else $XDG_CACHE_HOME/spython, else ~/.cache/spython
 * (native/launcher/interp.c's cache_dir()); undefined when there is no home to put it in.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SPYTHON_CACHE_DIR) return env.SPYTHON_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'spython');
  const home = env.HOME || os.homedir();
  return home ? path.join(home, '.cache', 'spython') : undefined;
}

/** The cache file of a bundle: its name and a hash of its path and of Node's version. */
export function cacheFile(dir: string, bundle: string): string {
  return path.join(dir, `code-${path.basename(bundle, '.js')}-${fnv1a(`${bundle}\0${process.version}\0${process.arch}`)}`);
}

/**
 * Compiles and runs `bundle` as Node would run it as a CommonJS module (same wrapper, `require`,
 * `module`, `__filename` and `__dirname`), with its code cache from `dir`. `kind` names what this run
 * does (the subcommand; undefined for a run that shows little of it, such as help): a kind the cache
 * has not seen has it rewritten, unless the process exits with a status for which `didItsWork` says
 * it stopped short (a usage error), having compiled little of that kind's code.
 */
export function runBundle(
  bundle: string,
  kind: string | undefined,
  dir: string | undefined = cacheDir(),
  didItsWork: (exitStatus: number) => boolean = () => true,
): CacheStatus {
  // Node maps stack traces through source maps (--enable-source-maps) only in code its loader compiled.
  if (process.sourceMapsEnabled) {
    Module.createRequire(bundle)(bundle);
    return 'off';
  }
  const fd = fs.openSync(bundle, 'r');
  let source: string;
  let stat: fs.Stats;
  try {
    stat = fs.fstatSync(fd);
    source = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  const identity = { bundle, size: stat.size, ino: stat.ino, mtimeMs: stat.mtimeMs, node: process.version };
  const file = dir !== undefined ? cacheFile(dir, bundle) : undefined;
  const cached = file !== undefined ? readCache(file, identity) : undefined;

  const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData: cached?.data });
  const status: CacheStatus =
    file === undefined ? 'off' : !cached ? 'absent' : cached.problem ?? (script.cachedDataRejected ? 'rejected' : 'used');
  const kinds = status === 'used' ? cached!.header.kinds : [];
  const learns = kind !== undefined && !kinds.includes(kind) && kinds.length < MAX_KINDS;
  if (file !== undefined && (status !== 'used' || learns)) {
    const write = (exitStatus?: number) => {
      clearTimeout(timer);
      process.off('exit', write);
      const learned = learns && (exitStatus === undefined || didItsWork(exitStatus));
      // Without a usable cache, any is better than none; with one, only a new kind's work adds to it.
      if (status === 'used' && !learned) return;
      writeCache(file, { format: FORMAT, ...identity, kinds: learned ? [...kinds, kind!] : kinds, length: 0 }, script);
    };
    const timer = setTimeout(() => write(), WRITE_AFTER_MS).unref();
    process.once('exit', write);
  }

  const module = new Module(bundle);
  module.filename = bundle;
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, Module.createRequire(bundle), module, bundle, path.dirname(bundle));
  module.loaded = true;
  return status;
}

/** The cache for this bundle, `stale` when it was made for another; undefined when there is none. */
function readCache(
  file: string,
  identity: Omit<Header, 'format' | 'kinds' | 'length'>,
): { header: Header; data?: Buffer; problem?: 'stale' | 'untrusted' } | undefined {
  let bytes: Buffer;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      // V8 runs the bytecode it is handed: only a file of this user's, which no one else may write.
      const stat = fs.fstatSync(fd);
      if (!stat.isFile() || stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) {
        return { header: {} as Header, problem: 'untrusted' };
      }
      bytes = fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    // A symbolic link (ELOOP) is no cache of ours either.
    return (err as NodeJS.ErrnoException).code === 'ELOOP' ? { header: {} as Header, problem: 'untrusted' } : undefined;
  }
  const newline = bytes.indexOf(10);
  let header: Header;
  try {
    header = JSON.parse(bytes.toString('utf8', 0, newline)) as Header;
  } catch {
    return { header: {} as Header, problem: 'stale' };
  }
  const data = bytes.subarray(newline + 1);
  const stale =
    newline < 0 ||
    header.format !== FORMAT ||
    header.length !== data.length ||
    !Array.isArray(header.kinds) ||
    (Object.keys(identity) as Array<keyof typeof identity>).some((key) => header[key] !== identity[key]);
  return stale ? { header, problem: 'stale' } : { header, data };
}

/** Writes the cache (to a temporary file renamed into place: a reader never sees half of one). */
function writeCache(file: string, header: Header, script: vm.Script): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    const data = script.createCachedData();
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(temporary, Buffer.concat([Buffer.from(JSON.stringify({ ...header, length: data.length }) + '\n'), data]), {
      mode: 0o600,
    });
    fs.renameSync(temporary, file);
  } catch {
    // No cache this time (read-only, full, no such directory): the next run compiles again.
    try {
      fs.unlinkSync(temporary);
    } catch {
      // never written
    }
  }
}

/** 64-bit FNV-1a of a string's UTF-16 code units, as 16 hex digits. */
function fnv1a(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) hash = BigInt.asUintN(64, (hash ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n);
  return hash.toString(16).padStart(16, '0');
}
