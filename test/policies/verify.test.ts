// --verify xattr (verifyImports; the linux_xattr sample): every code file read through io.open_code
// (modules and their .pyc) and the main script must be a regular file of at most --max-code-size
// bytes (default 2 MiB), not on a noexec mount, whose SHA-256 (lowercase hex) is the value of the
// xattr user.org.python.x-spython-hash (--xattr-name). Failures raise PermissionError; --verify warn
// only logs. While verification is on, os.setxattr/fsetxattr/lsetxattr fail with EPERM (seccomp).
//
// Files are stamped with os.setxattr from a plain python3 (never through the launcher). The
// interpreter's own library is trusted with --verify-exempt, and Python runs with -E -S -B so that
// only the standard library and the test's files are imported.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runProcess } from '../helpers/run';
import {
  allTargets,
  baseEnv,
  describeResult,
  exemptInterpreter,
  LAUNCHER,
  mainTargets,
  needs,
  PY_FLAGS,
  pyStr,
  readXattr,
  run,
  runWithChannel,
  setXattr,
  stamp,
  Target,
  tempDir,
  tryMountNoexecTmpfs,
  umount,
  writeFile,
} from './common';

function verifyArgs(t: Target, mode = 'xattr'): string[] {
  return ['--verify', mode, ...exemptInterpreter(t)];
}

/**
 * A stamped main script in `dir` that imports `module` and prints 'imported <X>' or
 * 'PermissionError: <message>' (or another error's type). `pathDir` goes first on sys.path.
 */
function importer(dir: string, module = 'mod', pathDir?: string): string {
  const script = writeFile(
    dir,
    'main.py',
    [
      'import sys',
      pathDir ? `sys.path.insert(0, ${pyStr(pathDir)})` : '',
      'try:',
      `    import ${module}`,
      `    print("imported", ${module}.X)`,
      'except PermissionError as e:',
      '    print("PermissionError:", e)',
      'except Exception as e:',
      '    print("error:", type(e).__name__, e)',
      '',
    ].join('\n'),
  );
  stamp([script]);
  return script;
}

const refusedLine = (file: string, reason: string) =>
  new RegExp(`^PermissionError: \\[spython\\] verifyImports refused ${escape(file)}: ${escape(reason)}`, 'm');

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Compiles `source` to mod's cached .pyc with the target's own interpreter (a plain run). */
function compileToCache(t: Target, dir: string, name: string): string {
  return execFileSync(
    t.interp!.path,
    [
      '-E',
      '-S',
      '-c',
      'import importlib.util, py_compile, sys\n' +
        'c = importlib.util.cache_from_source(sys.argv[1])\n' +
        'py_compile.compile(sys.argv[1], cfile=c, doraise=True)\n' +
        'print(c)',
      path.join(dir, name),
    ],
    { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
  ).trim();
}

for (const t of allTargets()) {
  describe(`--verify xattr on Python ${t.label}`, needs(t), () => {
    test('stamped files run', async () => {
      const dir = tempDir();
      const main = importer(dir);
      stamp([writeFile(dir, 'mod.py', 'X = "stamped"\n')]);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stdoutText, 'imported stamped\n', describeResult(r));
      assert.equal(r.stderrText, '', describeResult(r));
    });

    test('an unstamped module is refused', async () => {
      const dir = tempDir();
      const main = importer(dir);
      const mod = writeFile(dir, 'mod.py', 'X = "unstamped"\n');
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(r.status, 0, describeResult(r));
      assert.match(r.stdoutText, refusedLine(mod, 'no xattr'), describeResult(r));
    });

    test('a tampered module (stamped, then modified) is refused', async () => {
      const dir = tempDir();
      const main = importer(dir);
      const mod = writeFile(dir, 'mod.py', 'X = "original"\n');
      stamp([mod]);
      fs.appendFileSync(mod, 'X = "tampered"\n');
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.match(r.stdoutText, refusedLine(mod, 'hash mismatch'), describeResult(r));
      assert.doesNotMatch(r.stdoutText, /imported/, describeResult(r));
    });

    test('a module over --max-code-size is refused; one at the limit is not', async () => {
      const dir = tempDir();
      const main = writeFile(dir, 'main.py', 'import big\nimport fits\nprint(fits.X)\n');
      const big = writeFile(dir, 'big.py', `X = ${pyStr('b'.repeat(200))}\n`);
      const fitsText = 'X = "fits"\n' + '#'.repeat(100 - 12) + '\n';
      assert.equal(fitsText.length, 100);
      const fits = writeFile(dir, 'fits.py', fitsText);
      stamp([main, big, fits]);
      const r = await run(t, [...verifyArgs(t), '--max-code-size', '100', ...PY_FLAGS, main]);
      assert.notEqual(r.status, 0, describeResult(r));
      assert.match(r.stderrText, refusedLine(big, 'too large'), describeResult(r));
      // Now without the oversized import.
      fs.writeFileSync(main, 'import fits\nprint(fits.X)\n');
      stamp([main]);
      const ok = await run(t, [...verifyArgs(t), '--max-code-size', '100', ...PY_FLAGS, main]);
      assert.equal(ok.status, 0, describeResult(ok));
      assert.equal(ok.stdoutText, 'fits\n', describeResult(ok));
    });

    test('the default limit is 2 MiB', async () => {
      const dir = tempDir();
      const main = importer(dir, 'huge');
      const limit = 2 * 1024 * 1024;
      const head = 'X = "huge"\n';
      const at = writeFile(dir, 'huge.py', head + '#'.repeat(limit - head.length - 1) + '\n');
      assert.equal(fs.statSync(at).size, limit);
      stamp([at]);
      const ok = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(ok.stdoutText, 'imported huge\n', describeResult(ok));
      fs.appendFileSync(at, '#');
      stamp([at]);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.match(r.stdoutText, refusedLine(at, 'too large'), describeResult(r));
    });

    test('a FIFO opened through io.open_code (and runpy.run_path) is refused as not a regular file', async () => {
      const dir = tempDir();
      const fifo = path.join(dir, 'fifo.py');
      execFileSync('mkfifo', [fifo]);
      const main = writeFile(
        dir,
        'main.py',
        [
          'import io, os, runpy',
          `FIFO = ${pyStr(fifo)}`,
          '# A writer is there, with code waiting in the pipe: opening it for reading does not block.',
          'keep = os.open(FIFO, os.O_RDWR | os.O_NONBLOCK)',
          'os.write(keep, b"X = 1\\n")',
          'for name, fn in (("open_code", lambda: io.open_code(FIFO).read()),',
          '                 ("run_path", lambda: runpy.run_path(FIFO))):',
          '    try:',
          '        fn()',
          '        print(name, "read it")',
          '    except PermissionError as e:',
          '        print(name, "PermissionError:", e)',
          '',
        ].join('\n'),
      );
      stamp([main]);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      const reason = `verifyImports refused ${fifo}: not a regular file`;
      assert.match(r.stdoutText, new RegExp(`^open_code PermissionError: \\[spython\\] ${escape(reason)}`, 'm'), d);
      assert.match(r.stdoutText, new RegExp(`^run_path PermissionError: \\[spython\\] ${escape(reason)}`, 'm'), d);
    });

    test('a main script read from a pipe (/dev/stdin) is refused before it runs', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const r = await runProcess(
        '/bin/sh',
        ['-c', 'printf "%s\\n" "$CODE" | "$@"', 'sh', LAUNCHER, ...t.args, ...verifyArgs(t), ...PY_FLAGS, '/dev/stdin'],
        { env: baseEnv({ CODE: `open(${pyStr(marker)}, "w").close()` }) },
      );
      const d = describeResult(r);
      assert.notEqual(r.status, 0, d);
      assert.match(r.stderrText, /PermissionError: \[spython\] verifyImports refused cpython\.run_file .*not a regular file/, d);
      assert.ok(!fs.existsSync(marker), `the piped script ran\n${d}`);
    });

    test('an unstamped main script is refused before it runs', async () => {
      const dir = tempDir();
      const marker = path.join(dir, 'ran');
      const main = writeFile(dir, 'main.py', `open(${pyStr(marker)}, "w").close()\n`);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.notEqual(r.status, 0, d);
      assert.match(
        r.stderrText,
        new RegExp(`PermissionError: \\[spython\\] verifyImports refused cpython\\.run_file ${escape(main)}: no xattr`),
        d,
      );
      assert.ok(!fs.existsSync(marker), `the unstamped script ran\n${d}`);
    });

    test('a symlink swap (mod.py -> stamped a.py, then -> unstamped b.py) is refused', async () => {
      const dir = tempDir();
      const main = importer(dir);
      const a = writeFile(dir, 'a.py', 'X = "A"\n');
      const b = writeFile(dir, 'b.py', 'X = "B"\n');
      stamp([a]);
      const link = path.join(dir, 'mod.py');
      fs.symlinkSync(a, link);
      const first = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(first.stdoutText, 'imported A\n', describeResult(first));
      fs.unlinkSync(link);
      fs.symlinkSync(b, link);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.match(r.stdoutText, refusedLine(b, 'no xattr'), describeResult(r));
    });

    test('a symlink inside an exempt tree to an unstamped file outside it is refused', async () => {
      const dir = tempDir();
      const trusted = path.join(dir, 'trusted');
      fs.mkdirSync(trusted);
      const outside = writeFile(dir, 'outside.py', 'X = "outside"\n');
      fs.symlinkSync(outside, path.join(trusted, 'mod.py'));
      writeFile(trusted, 'ok.py', 'X = "exempt"\n');
      const main = writeFile(
        dir,
        'main.py',
        [
          'import sys',
          `sys.path.insert(0, ${pyStr(trusted)})`,
          'import ok',
          'print("imported", ok.X)',
          'try:',
          '    import mod',
          '    print("imported", mod.X)',
          'except PermissionError as e:',
          '    print("PermissionError:", e)',
          '',
        ].join('\n'),
      );
      stamp([main]);
      const r = await run(t, [...verifyArgs(t), '--verify-exempt', trusted, ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.match(r.stdoutText, /^imported exempt$/m, `an unstamped file in an exempt tree is trusted\n${d}`);
      assert.match(r.stdoutText, refusedLine(outside, 'no xattr'), d);
    });

    test('a stamp in uppercase hex, or with a trailing newline, is not the hash', async () => {
      const dir = tempDir();
      const main = importer(dir);
      const mod = writeFile(dir, 'mod.py', 'X = "case"\n');
      const hex = crypto.createHash('sha256').update(fs.readFileSync(mod)).digest('hex');
      setXattr(mod, hex.toUpperCase());
      const upper = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.match(upper.stdoutText, refusedLine(mod, 'hash mismatch'), describeResult(upper));
      setXattr(mod, hex + '\n');
      const newline = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.match(newline.stdoutText, refusedLine(mod, 'hash mismatch'), describeResult(newline));
      setXattr(mod, hex);
      const ok = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(ok.stdoutText, 'imported case\n', describeResult(ok));
    });

    test('an exempt tree does not cover a sibling whose name merely starts the same', async () => {
      const dir = tempDir();
      const trusted = path.join(dir, 'lib');
      const sibling = path.join(dir, 'lib-evil');
      fs.mkdirSync(trusted);
      const mod = writeFile(sibling, 'mod.py', 'X = "evil"\n');
      const main = importer(dir, 'mod', sibling);
      const r = await run(t, [...verifyArgs(t), '--verify-exempt', trusted, ...PY_FLAGS, main]);
      assert.match(r.stdoutText, refusedLine(mod, 'no xattr'), describeResult(r));
    });

    test('a zip archive on sys.path is verified as a whole', async () => {
      const dir = tempDir();
      const zip = path.join(dir, 'lib.zip');
      execFileSync(
        t.interp!.path,
        ['-E', '-S', '-c', 'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w") as z:\n    z.writestr("mod.py", "X = \'zipped\'\\n")', zip],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
      );
      const main = importer(dir, 'mod', zip);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.doesNotMatch(r.stdoutText, /imported/, `an unstamped archive must not be imported from\n${describeResult(r)}`);
      stamp([zip]);
      const ok = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(ok.stdoutText, 'imported zipped\n', describeResult(ok));
    });

    test('a sourceless .pyc (compileall -b) is refused unstamped and accepted stamped', async () => {
      const dir = tempDir();
      const main = importer(dir);
      const src = writeFile(dir, 'mod.py', 'X = "sourceless"\n');
      execFileSync(t.interp!.path, ['-E', '-S', '-m', 'compileall', '-q', '-b', src], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
      fs.unlinkSync(src);
      const pyc = path.join(dir, 'mod.pyc');
      assert.ok(fs.existsSync(pyc));
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.match(r.stdoutText, refusedLine(pyc, 'no xattr'), `an unstamped .pyc must not run\n${describeResult(r)}`);
      stamp([pyc]);
      const ok = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(ok.stdoutText, 'imported sourceless\n', describeResult(ok));
    });

    test('a stamped .py whose cached .pyc is unstamped imports from the verified source', async () => {
      const dir = tempDir();
      const main = importer(dir);
      // A cached .pyc that matches the source's mtime and size but holds other code: if it were
      // used unverified, X would be "pyc".
      const mod = writeFile(dir, 'mod.py', 'X = "pyc"\n');
      const before = fs.statSync(mod);
      const pyc = compileToCache(t, dir, 'mod.py');
      fs.writeFileSync(mod, 'X = "src"\n');
      fs.utimesSync(mod, before.atime, before.mtime);
      stamp([mod]);
      const plain = await run(t, [...PY_FLAGS, main]);
      assert.equal(plain.stdoutText, 'imported pyc\n', `set-up: without verification the cached .pyc is used\n${describeResult(plain)}`);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stdoutText, 'imported src\n', describeResult(r));
      // Stamped, the cached .pyc is trusted and used: .pyc files do go through the check.
      stamp([pyc]);
      const cached = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.equal(cached.stdoutText, 'imported pyc\n', describeResult(cached));
    });

    test('--xattr-name chooses the attribute', async () => {
      const dir = tempDir();
      const main = writeFile(dir, 'main.py', 'import mod\nprint("imported", mod.X)\n');
      const mod = writeFile(dir, 'mod.py', 'X = "custom"\n');
      stamp([main, mod], 'user.policytest.hash');
      const r = await run(t, [...verifyArgs(t), '--xattr-name', 'user.policytest.hash', ...PY_FLAGS, main]);
      assert.equal(r.status, 0, describeResult(r));
      assert.equal(r.stdoutText, 'imported custom\n', describeResult(r));
      const other = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.notEqual(other.status, 0, describeResult(other));
      assert.match(other.stderrText, /verifyImports refused cpython\.run_file .*no xattr user\.org\.python\.x-spython-hash/, describeResult(other));
    });

    test('--verify warn logs instead of refusing', async () => {
      const dir = tempDir();
      const main = writeFile(dir, 'main.py', 'import mod\nprint("imported", mod.X)\n');
      const mod = writeFile(dir, 'mod.py', 'X = "warned"\n');
      const r = await run(t, [...verifyArgs(t, 'warn'), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.equal(r.stdoutText, 'imported warned\n', d);
      assert.ok(r.stderrText.includes(`spython: verifyImports (warn): ${main}: no xattr`), d);
      assert.ok(r.stderrText.includes(`spython: verifyImports (warn): ${mod}: no xattr`), d);
    });

    test('--verify warn: a FIFO read through io.open_code is warned about and still read, as without the launcher', async () => {
      const dir = tempDir();
      const fifo = path.join(dir, 'fifo.py');
      execFileSync('mkfifo', [fifo]);
      // The script holds the writing end with code in the pipe; a thread closes it (end of input)
      // as soon as a second descriptor, the reader's, is open on the FIFO.
      const main = writeFile(
        dir,
        'main.py',
        [
          'import io, os, threading, time',
          `FIFO = ${pyStr(fifo)}`,
          'keep = os.open(FIFO, os.O_RDWR | os.O_NONBLOCK)',
          'os.write(keep, b"X = 1\\n")',
          'def readers():',
          '    n = 0',
          '    for fd in os.listdir("/proc/self/fd"):',
          '        try:',
          '            n += os.readlink("/proc/self/fd/" + fd) == FIFO',
          '        except OSError:',
          '            pass',
          '    return n',
          'def close_when_read():',
          '    while readers() < 2:',
          '        time.sleep(0.001)',
          '    os.close(keep)',
          'threading.Thread(target=close_when_read, daemon=True).start()',
          'print(io.open_code(FIFO).read())',
          '',
        ].join('\n'),
      );
      stamp([main]);
      const plain = await run(t, [...PY_FLAGS, main]);
      assert.equal(plain.stdoutText, "b'X = 1\\n'\n", `set-up: plain run\n${describeResult(plain)}`);
      const r = await run(t, [...verifyArgs(t, 'warn'), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.ok(r.stderrText.includes(`spython: verifyImports (warn): ${fifo}: not a regular file`), d);
      assert.equal(r.status, 0, d);
      assert.equal(r.stdoutText, "b'X = 1\\n'\n", d);
    });

    test('os.setxattr, fsetxattr (fd) and lsetxattr (follow_symlinks=False) fail with EPERM', async () => {
      const dir = tempDir();
      const victim = writeFile(dir, 'victim.py', 'X = 1\n');
      stamp([victim]);
      const original = readXattr(victim);
      assert.ok(original);
      const main = writeFile(
        dir,
        'main.py',
        [
          'import errno, os',
          `V = ${pyStr(victim)}`,
          'N = "user.org.python.x-spython-hash"',
          'fd = os.open(V, os.O_RDONLY)',
          'for name, fn in (("setxattr", lambda: os.setxattr(V, N, b"0" * 64)),',
          '                 ("fsetxattr", lambda: os.setxattr(fd, N, b"0" * 64)),',
          '                 ("lsetxattr", lambda: os.setxattr(V, N, b"0" * 64, follow_symlinks=False)),',
          '                 ("other", lambda: os.setxattr(V, "user.other", b"x"))):',
          '    try:',
          '        fn()',
          '        print(name, "set")',
          '    except OSError as e:',
          '        print(name, errno.errorcode.get(e.errno, e.errno))',
          '',
        ].join('\n'),
      );
      stamp([main]);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      const d = describeResult(r);
      assert.equal(r.status, 0, d);
      assert.equal(r.stdoutText, 'setxattr EPERM\nfsetxattr EPERM\nlsetxattr EPERM\nother EPERM\n', d);
      assert.equal(readXattr(victim), original, 'the stamp is unchanged');
      assert.equal(readXattr(victim, 'user.other'), undefined);
      // The same script without verification can stamp (so the EPERM came from the launcher).
      const plain = await run(t, [...PY_FLAGS, main]);
      assert.equal(plain.stdoutText, 'setxattr set\nfsetxattr set\nlsetxattr set\nother set\n', describeResult(plain));
    });
  });
}

/** Python that stamps a file behind the seccomp filter's back: through the 32-bit syscall ABI
 * (int 0x80, i386 setxattr = 226) and through io_uring (IORING_OP_FSETXATTR = 41). Prints
 * '<way> <result>' per way, or '<way> setup-failed <why>' when the way cannot be tried here. */
const SIDESTEP_SCRIPT = String.raw`
import ctypes, mmap, os, struct, sys
V = sys.argv[1]
N = b"user.org.python.x-spython-hash"
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
MAP_FAILED = ctypes.c_void_p(-1).value

def int80():
    page = libc.mmap(None, 4096, 7, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40, -1, 0)  # RWX, MAP_32BIT
    if not page or page == MAP_FAILED or page >= 2**32:
        return "setup-failed mmap"
    data = page + 2048
    path, name, value = V.encode() + b"\0", N + b"\0", b"1" * 64
    ctypes.memmove(data, path + name + value, len(path + name + value))
    p, n, v = data, data + len(path), data + len(path) + len(name)
    code = (b"\x53\xb8" + struct.pack("<I", 226) + b"\xbb" + struct.pack("<I", p) + b"\xb9" + struct.pack("<I", n)
            + b"\xba" + struct.pack("<I", v) + b"\xbe" + struct.pack("<I", 64) + b"\xbf" + struct.pack("<I", 0)
            + b"\xcd\x80\x5b\xc3")
    ctypes.memmove(page, code, len(code))
    return ctypes.CFUNCTYPE(ctypes.c_int)(page)()

def uring():
    params = ctypes.create_string_buffer(120)
    ring = libc.syscall(425, 4, params)
    if ring < 0:
        return -ctypes.get_errno()
    p = params.raw
    sq_entries, cq_entries, flags, _, _, features = struct.unpack_from("<6I", p, 0)
    sq_head, sq_tail, sq_mask, _, _, _, sq_array = struct.unpack_from("<7I", p, 40)
    cq_head, cq_tail, cq_mask, _, _, cqes = struct.unpack_from("<6I", p, 80)
    size = max(sq_array + sq_entries * 4, cqes + cq_entries * 16)
    sq = libc.mmap(None, size, 3, 1 | 0x8000, ring, 0)
    cq = sq if features & 1 else libc.mmap(None, cqes + cq_entries * 16, 3, 1 | 0x8000, ring, 0x8000000)
    sqes = libc.mmap(None, sq_entries * 64, 3, 1 | 0x8000, ring, 0x10000000)
    if MAP_FAILED in (sq, cq, sqes):
        return "setup-failed mmap"
    fd = os.open(V, os.O_RDONLY)
    name = ctypes.create_string_buffer(N)
    value = ctypes.create_string_buffer(b"2" * 64)
    sqe = struct.pack("<BBHiQQIIQHHiQQ", 41, 0, 0, fd, ctypes.addressof(value), ctypes.addressof(name),
                      64, 0, 7, 0, 0, 0, 0, 0)
    ctypes.memmove(sqes, sqe, 64)
    tail = ctypes.c_uint32.from_address(sq + sq_tail).value
    mask = ctypes.c_uint32.from_address(sq + sq_mask).value
    ctypes.c_uint32.from_address(sq + sq_array + 4 * (tail & mask)).value = 0
    ctypes.c_uint32.from_address(sq + sq_tail).value = tail + 1
    if libc.syscall(426, ring, 1, 1, 1, None, 0) < 0:
        return -ctypes.get_errno()
    head = ctypes.c_uint32.from_address(cq + cq_head).value
    cmask = ctypes.c_uint32.from_address(cq + cq_mask).value
    return struct.unpack("<QiI", ctypes.string_at(cq + cqes + 16 * (head & cmask), 16))[1]

def libc_setxattr():
    r = libc.setxattr(V.encode(), N, b"3" * 64, ctypes.c_size_t(64), 0)
    return r if r == 0 else -ctypes.get_errno()

for way, fn in (("libc", libc_setxattr), ("int80", int80), ("io_uring", uring)):
    try:
        print(way, fn(), flush=True)
    except Exception as e:
        print(way, "setup-failed", type(e).__name__, e, flush=True)
`;

describe('the setxattr filter cannot be sidestepped (x86-64)', () => {
  for (const t of allTargets()) {
    const skip = needs(t).skip ?? (process.arch !== 'x64' ? 'x86-64 only' : undefined);
    test(`Python ${t.label}: libc setxattr, the 32-bit syscall ABI and io_uring all leave the stamp alone`, { skip }, async (ctx) => {
      const dir = tempDir();
      const victim = writeFile(dir, 'victim.py', 'X = 1\n');
      stamp([victim]);
      const original = readXattr(victim);
      const main = writeFile(dir, 'main.py', SIDESTEP_SCRIPT);
      stamp([main]);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main, victim]);
      const d = describeResult(r) + `\nxattr now: ${readXattr(victim)}`;
      assert.equal(r.status, 0, d);
      const results = new Map(
        r.stdoutText
          .trim()
          .split('\n')
          .map((l) => [l.split(' ')[0], l.slice(l.indexOf(' ') + 1)] as [string, string]),
      );
      assert.equal(results.get('libc'), '-1', `libc setxattr gets EPERM\n${d}`);
      const tried = ['int80', 'io_uring'].filter((way) => !(results.get(way) ?? 'setup-failed').startsWith('setup-failed'));
      if (tried.length === 0) return ctx.skip(`neither way can be tried here\n${d}`);
      const succeeded = tried.filter((way) => results.get(way) === '0');
      assert.deepEqual(succeeded, [], `setxattr succeeded through ${succeeded.join(' and ')}\n${d}`);
      assert.equal(readXattr(victim), original, `the stamp changed\n${d}`);
    });
  }
});

describe('--verify xattr and noexec mounts', () => {
  let mnt = '';
  let skip: string | undefined;
  before(() => {
    mnt = tempDir('spython-policy-noexec-');
    skip = tryMountNoexecTmpfs(mnt);
  });
  after(() => {
    if (!skip) umount(mnt);
  });

  for (const t of allTargets()) {
    test(`Python ${t.label}: a stamped module or main script on a noexec mount is refused`, needs(t), async (ctx) => {
      if (skip) {
        ctx.skip(skip);
        return;
      }
      const sub = fs.mkdtempSync(path.join(mnt, 'm-'));
      const mod = writeFile(sub, 'mod.py', 'X = "noexec"\n');
      const marker = path.join(sub, 'ran');
      const mainOnMount = writeFile(sub, 'main.py', `open(${pyStr(marker)}, "w").close()\n`);
      stamp([mod, mainOnMount]);
      const dir = tempDir();
      const main = importer(dir, 'mod', sub);
      const r = await run(t, [...verifyArgs(t), ...PY_FLAGS, main]);
      assert.match(r.stdoutText, refusedLine(mod, 'on a noexec mount'), describeResult(r));
      const m = await run(t, [...verifyArgs(t), ...PY_FLAGS, mainOnMount]);
      assert.notEqual(m.status, 0, describeResult(m));
      assert.match(m.stderrText, /verifyImports refused cpython\.run_file .*on a noexec mount/, describeResult(m));
      assert.ok(!fs.existsSync(marker), 'the script on the noexec mount ran');
    });
  }
});

for (const t of mainTargets()) {
  describe(`verifyImports in the record stream, Python ${t.label}`, needs(t), () => {
    test('a refused module and a refused main script are marked "denied":"verifyImports"', async () => {
      const dir = tempDir();
      const main = importer(dir);
      const mod = writeFile(dir, 'mod.py', 'X = 1\n');
      const { result, records } = await runWithChannel(t, [...PY_FLAGS, main], {
        config: { verifyImports: 'xattr', verifyExempt: [t.stdlib, t.dynload] },
      });
      assert.match(result.stdoutText, refusedLine(mod, 'no xattr'), describeResult(result));
      const refused = records.filter((r) => r.denied);
      assert.ok(refused.length >= 1, JSON.stringify(records.slice(-10)));
      assert.ok(
        refused.every((r) => r.denied === 'verifyImports'),
        JSON.stringify(refused),
      );
      assert.ok(
        refused.some((r) => JSON.stringify(r.args).includes(mod)),
        `a denied record names ${mod}: ${JSON.stringify(refused)}`,
      );

      const dir2 = tempDir();
      const marker = path.join(dir2, 'ran');
      const unstamped = writeFile(dir2, 'main.py', `open(${pyStr(marker)}, "w").close()\n`);
      const second = await runWithChannel(t, [...PY_FLAGS, unstamped], {
        config: { verifyImports: 'xattr', verifyExempt: [t.stdlib, t.dynload] },
      });
      assert.notEqual(second.result.status, 0, describeResult(second.result));
      assert.ok(!fs.existsSync(marker));
      const runFile = second.records.find((r) => r.event === 'cpython.run_file');
      assert.ok(runFile, second.records.map((r) => r.event).join(' '));
      assert.equal(runFile.denied, 'verifyImports', JSON.stringify(runFile));
    });
  });
}
