// The starters' code cache (adapter/start/codecache.ts): a bundle runs exactly as Node would run it,
// the cache is made on first use and taken after, made again when the bundle changes, when V8 rejects
// it or when another kind of run comes (at the exit, or a second into a long run), one that others
// could have written is never taken, and a cache that cannot be read or written never fails a run.
// Then the real starter: `node dist/cli.js` with a fresh, and with an unwritable, cache directory.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheFile } from '../../adapter/start/codecache';
import { runProcess } from '../helpers/run';
import { NOT_BUILT, runCli, show, tempDir, writeFile } from './common';

const CODECACHE = path.join(__dirname, '..', '..', 'adapter', 'start', 'codecache.js');

/** A bundle that reports what it was run with, and a line to tell versions apart. */
function bundle(dir: string, marker = 'one'): string {
  return writeFile(
    dir,
    'bundle.js',
    `const fs = require('node:fs');\n` +
      `function report() {\n` +
      `  return { marker: ${JSON.stringify(marker)}, filename: __filename, dirname: __dirname,\n` +
      `    thisIsExports: this === module.exports, moduleFile: module.filename, fs: typeof fs.readFileSync,\n` +
      `    relative: require.resolve('./bundle.js') };\n` +
      `}\n` +
      `process.stdout.write(JSON.stringify(report.call(this)));\n` +
      `process.exitCode = Number(process.env.BUNDLE_EXIT ?? 0);\n`,
  );
}

/**
 * Runs `file` through runBundle with cache directory `cacheDir` (`kind` null: none), the run counting
 * as done unless it exits with status 2: what it printed, and the cache's status.
 */
async function runThrough(
  file: string,
  kind: string | null,
  cacheDir: string,
  exitStatus = 0,
): Promise<{ output: Record<string, unknown>; status: string }> {
  const script =
    `const status = require(${JSON.stringify(CODECACHE)}).runBundle(${JSON.stringify(file)}, ${JSON.stringify(kind ?? undefined)}, ` +
    `${JSON.stringify(cacheDir)}, (status) => status !== 2);\nprocess.stderr.write(status);`;
  const result = await runProcess(process.execPath, ['-e', script], { env: { BUNDLE_EXIT: String(exitStatus) } });
  assert.equal(result.status, exitStatus, show(result));
  return { output: JSON.parse(result.stdoutText) as Record<string, unknown>, status: result.stderrText };
}

function header(file: string): { kinds: string[]; length: number; size: number } {
  const bytes = fs.readFileSync(file);
  return JSON.parse(bytes.toString('utf8', 0, bytes.indexOf(10))) as { kinds: string[]; length: number; size: number };
}

/** A bundle in a fresh folder, run once through the starter so its cache exists; the cache's bytes. */
async function cachedBundle(): Promise<{ dir: string; file: string; cacheDir: string; cached: string; good: Buffer }> {
  const dir = tempDir('spython-codecache-');
  const file = bundle(dir);
  const cacheDir = path.join(dir, 'cache');
  const cached = cacheFile(cacheDir, file);
  await runThrough(file, 'run', cacheDir);
  return { dir, file, cacheDir, cached, good: fs.readFileSync(cached) };
}

describe('code cache', { concurrency: 4 }, () => {
  test('a bundle runs as a CommonJS module: __filename, __dirname, this, module, require', async () => {
    const dir = tempDir('spython-codecache-');
    const file = bundle(dir);
    const { output } = await runThrough(file, 'run', path.join(dir, 'cache'));
    assert.deepEqual(output, {
      marker: 'one',
      filename: file,
      dirname: dir,
      thisIsExports: true,
      moduleFile: file,
      fs: 'function',
      relative: file,
    });
  });

  test('made on first use and taken after; another kind of run adds to it, the same kind leaves it', async () => {
    const dir = tempDir('spython-codecache-');
    const file = bundle(dir);
    const cacheDir = path.join(dir, 'cache', 'nested');
    const cached = cacheFile(cacheDir, file);

    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'absent');
    assert.deepEqual(header(cached).kinds, ['run']);
    assert.equal(fs.statSync(cached).mode & 0o777, 0o600);
    assert.equal(fs.statSync(cacheDir).mode & 0o777, 0o700);

    const before = fs.readFileSync(cached);
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'used');
    assert.deepEqual(fs.readFileSync(cached), before, 'a kind already seen does not rewrite the cache');

    assert.equal((await runThrough(file, 'stamp', cacheDir)).status, 'used');
    assert.deepEqual(header(cached).kinds, ['run', 'stamp']);
    assert.equal((await runThrough(file, 'stamp', cacheDir)).status, 'used');
    assert.deepEqual(fs.readdirSync(cacheDir), [path.basename(cached)], 'no temporary file is left behind');
  });

  test('help (no kind) and a run that stopped short (a usage error) add no kind; without a cache, they make one', async () => {
    const dir = tempDir('spython-codecache-');
    const file = bundle(dir);
    const cacheDir = path.join(dir, 'cache');
    const cached = cacheFile(cacheDir, file);

    assert.equal((await runThrough(file, 'run', cacheDir, 2)).status, 'absent');
    assert.deepEqual(header(cached).kinds, [], 'a cache, but no kind learned');
    assert.equal((await runThrough(file, null, cacheDir)).status, 'used');
    assert.deepEqual(header(cached).kinds, []);
    assert.equal((await runThrough(file, 'run', cacheDir, 2)).status, 'used');
    assert.deepEqual(header(cached).kinds, []);
    assert.equal((await runThrough(file, 'run', cacheDir, 1)).status, 'used');
    assert.deepEqual(header(cached).kinds, ['run'], 'any other status counts as the work done');
  });

  test('a changed bundle is run as it is now, and its cache made again', async () => {
    const dir = tempDir('spython-codecache-');
    const file = bundle(dir, 'one');
    const cacheDir = path.join(dir, 'cache');
    await runThrough(file, 'run', cacheDir);

    // The same length (V8's own check), another inode and modification time.
    fs.rmSync(file);
    bundle(dir, 'two');
    const changed = await runThrough(file, 'run', cacheDir);
    assert.equal(changed.status, 'stale');
    assert.equal(changed.output.marker, 'two');
    assert.equal(header(cacheFile(cacheDir, file)).size, fs.statSync(file).size);
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'used');
  });

  test('a damaged cache is not taken: the run goes on and the cache is made again', async () => {
    const { file, cacheDir, cached, good } = await cachedBundle();
    const newline = good.indexOf(10);

    // Cut short: the header's length no longer matches.
    fs.writeFileSync(cached, good.subarray(0, good.length - 10));
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'stale');
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'used');

    // Whole, but not V8's: V8 refuses it.
    fs.writeFileSync(cached, Buffer.concat([good.subarray(0, newline + 1), Buffer.alloc(good.length - newline - 1, 0x5a)]));
    const rejected = await runThrough(file, 'run', cacheDir);
    assert.equal(rejected.status, 'rejected');
    assert.equal(rejected.output.marker, 'one');
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'used');

    // Not even a header.
    fs.writeFileSync(cached, 'garbage');
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'stale');
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'used');
  });

  test("a cache others could have written is not taken (V8 would run its bytecode): it is replaced by the user's own", async () => {
    const { dir, file, cacheDir, cached, good } = await cachedBundle();

    fs.chmodSync(cached, 0o664);
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'untrusted');
    assert.equal(fs.statSync(cached).mode & 0o777, 0o600, 'made again, as the user’s own');
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'used');

    const elsewhere = writeFile(dir, 'elsewhere', good);
    fs.chmodSync(elsewhere, 0o600);
    fs.rmSync(cached);
    fs.symlinkSync(elsewhere, cached);
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'untrusted');
    assert.ok(!fs.lstatSync(cached).isSymbolicLink(), 'the link is replaced by a file');
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'used');
  });

  test('a long run writes the cache a second in, before V8 could drop its start-up code', async () => {
    const dir = tempDir('spython-codecache-');
    const cacheDir = path.join(dir, 'cache');
    const file = writeFile(
      dir,
      'long.js',
      `const fs = require('node:fs');\n` +
        `const seen = () => fs.existsSync(${JSON.stringify(cacheDir)});\n` +
        `const early = seen();\n` +
        `setTimeout(() => process.stdout.write(JSON.stringify({ early, later: seen() })), 1500);\n`,
    );
    const { output, status } = await runThrough(file, 'run', cacheDir);
    assert.equal(status, 'absent');
    assert.deepEqual(output, { early: false, later: true });
    assert.deepEqual(header(cacheFile(cacheDir, file)).kinds, ['run']);
    assert.equal((await runThrough(file, 'run', cacheDir)).status, 'used');
  });

  test("with --enable-source-maps the bundle is left to Node's loader, which maps stack traces", async () => {
    const dir = tempDir('spython-codecache-');
    const file = bundle(dir);
    const cacheDir = path.join(dir, 'cache');
    const script = `process.stderr.write(require(${JSON.stringify(CODECACHE)}).runBundle(${JSON.stringify(file)}, 'run', ${JSON.stringify(cacheDir)}));`;
    const result = await runProcess(process.execPath, ['--enable-source-maps', '-e', script]);
    assert.equal(result.status, 0, show(result));
    assert.equal(result.stderrText, 'off');
    assert.equal(JSON.parse(result.stdoutText).filename, file);
    assert.equal(fs.existsSync(cacheDir), false);
  });

  test('a cache directory that cannot be made changes nothing but the time', async () => {
    const dir = tempDir('spython-codecache-');
    const file = bundle(dir);
    const notADirectory = writeFile(dir, 'file', 'a file, not a directory\n');
    for (let i = 0; i < 2; i++) {
      const { output, status } = await runThrough(file, 'run', path.join(notADirectory, 'cache'));
      assert.equal(status, 'absent');
      assert.equal(output.marker, 'one');
    }
    assert.deepEqual(fs.readdirSync(dir).sort(), ['bundle.js', 'file']);
  });
});

describe('dist/cli.js with its code cache', NOT_BUILT, () => {
  test('the first run makes the cache, later runs take it; help teaches no kind; an unwritable cache directory is no error', async () => {
    const cacheDir = path.join(tempDir('spython-codecache-'), 'cache');
    const help = await runCli(['run', '--help'], { env: { SPYTHON_CACHE_DIR: cacheDir } });
    assert.equal(help.status, 0, show(help));
    for (let i = 0; i < 2; i++) {
      const result = await runCli(['--version'], { env: { SPYTHON_CACHE_DIR: cacheDir } });
      assert.equal(result.status, 0, show(result));
      assert.match(result.stdoutText, /^\d+\.\d+\.\d+\n$/);
      const files = fs.readdirSync(cacheDir).filter((name) => name.startsWith('code-cli-main-'));
      assert.equal(files.length, 1, `one cache file: ${files.join(', ')}`);
      assert.deepEqual(header(path.join(cacheDir, files[0])).kinds, ['--version']);
    }

    const unwritable = path.join(writeFile(tempDir('spython-codecache-'), 'file', ''), 'cache');
    const result = await runCli(['--version'], { env: { SPYTHON_CACHE_DIR: unwritable } });
    assert.equal(result.status, 0, show(result));
    assert.match(result.stdoutText, /^\d+\.\d+\.\d+\n$/);
    assert.equal(result.stderrText, '');
  });
});
