// The extension's words and its interpreter checks, without VS Code.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { AUDIT_EVENTS } from '../../adapter/catalog';
import {
  catalogueEntries,
  isEventPattern,
  parseCodeRefusal,
  parseVerifyWarning,
  prettyTarget,
  promptAnswer,
  promptQuestion,
  statusText,
} from '../../extension/present';
import { findOnPath, InterpreterError, interpreterProblem, isUntestedVersion, libraryFolders, probeInterpreter } from '../../extension/python';
import { interpreters } from '../helpers/interpreters';

describe('prompt words', () => {
  it('asks "Allow socket.connect to 93.184.216.34:443?"', () => {
    assert.equal(promptQuestion('socket.connect', "('93.184.216.34', 443)"), 'Allow socket.connect to 93.184.216.34:443?');
    assert.equal(promptQuestion('socket.connect', "('::1', 8080, 0, 0)"), 'Allow socket.connect to [::1]:8080?');
    assert.equal(promptQuestion('subprocess.Popen', "['ls', '-l']"), "Allow subprocess.Popen of ['ls', '-l']?");
    assert.equal(promptQuestion('os.system', ''), 'Allow os.system?');
    assert.equal(prettyTarget("'/etc/passwd'"), "'/etc/passwd'");
  });

  it('maps buttons to answers; closing the dialog denies', () => {
    assert.equal(promptAnswer('Allow'), 'allow');
    assert.equal(promptAnswer('Always Allow'), 'allowAlways');
    assert.equal(promptAnswer('Deny'), 'deny');
    assert.equal(promptAnswer(undefined), 'deny');
  });
});

describe('status bar and catalogue words', () => {
  it('counts events, refusals and verification failures', () => {
    assert.equal(
      statusText({ records: 12345, denied: 2, verificationFailures: 1 }),
      '$(shield) 12,345 events  $(circle-slash) 2 denied  $(warning) 1 verification failure',
    );
    assert.equal(statusText({ records: 1, denied: 0, verificationFailures: 0 }), '$(shield) 1 event  $(circle-slash) 0 denied  $(warning) 0 verification failures');
  });

  it('lists every catalogue event with its arguments and what raises it', () => {
    const entries = catalogueEntries();
    assert.equal(entries.length, AUDIT_EVENTS.length);
    const connect = entries.find((e) => e.label === 'socket.connect')!;
    assert.equal(connect.description, '(self, address)');
    assert.match(connect.detail, /Raised by .*socket/);
    assert.match(connect.detail, /Python 3\.\d+\+/);
    // Events CPython raises everywhere come before the Windows-only ones.
    const firstWindows = entries.findIndex((e) => /windows only/.test(e.detail));
    assert.ok(firstWindows > 0 && entries.slice(firstWindows).every((e) => /only/.test(e.detail)));
  });

  it('accepts event names and globs as breakpoint names', () => {
    for (const ok of ['socket.connect', 'subprocess.*', 'os.exec', 'ctypes.dlsym/handle', 'sys._getframe', '_winapi.CreateFile']) assert.ok(isEventPattern(ok), ok);
    for (const bad of ['', ' ', 'open if x', 'a b']) assert.ok(!isEventPattern(bad), bad);
  });

  it("reads the launcher's verifyImports warnings", () => {
    assert.deepEqual(parseVerifyWarning('spython: verifyImports (warn): /app/a b.py: hash mismatch: xattr 00 but the file hashes to 11'), {
      file: '/app/a b.py',
      reason: 'hash mismatch',
      detail: 'xattr 00 but the file hashes to 11',
    });
    assert.deepEqual(parseVerifyWarning('spython: verifyImports (warn): /app/x.py: no xattr'), { file: '/app/x.py', reason: 'no xattr', detail: undefined });
    assert.equal(parseVerifyWarning('Traceback (most recent call last):'), undefined);
  });

  it('finds the refused file of a spython.code_refused record, and nothing in other records', () => {
    const record = (event: string, args: unknown[]) => Buffer.from(JSON.stringify({ event, seq: 1, pid: 1, args }));
    assert.deepEqual(parseCodeRefusal(record('spython.code_refused', ['/app/x.py', 'verifyImports', 'hash mismatch'])), {
      file: '/app/x.py',
      message: 'verifyImports refused this file: hash mismatch',
    });
    assert.equal(parseCodeRefusal(record('open', ['/app/x.py', 'r', 0])), undefined);
    assert.equal(parseCodeRefusal(Buffer.from('{"event":"spython.code_refused","args":')), undefined);
  });
});

/** An installed CPython older than 3.8 (pyenv), if any. */
function oldInterpreter(): string | undefined {
  const root = '/root/.pyenv/versions';
  let names: string[] = [];
  try {
    names = fs.readdirSync(root);
  } catch {
    return undefined;
  }
  return names
    .filter((n) => /^3\.[67]\./.test(n))
    .map((n) => path.join(root, n, 'bin', 'python3'))
    .find((p) => fs.existsSync(p));
}

describe('interpreters', () => {
  const all = interpreters();
  const supported = all.find((i) => /^3\.(8|9|1\d)\./.test(i.version));

  it('finds commands on PATH as a shell does', () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'spython-ext-path-')));
    try {
      const exe = path.join(dir, 'py');
      fs.writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
      fs.writeFileSync(path.join(dir, 'notexec'), '', { mode: 0o644 });
      assert.equal(findOnPath('py', `/nonexistent:${dir}`), exe);
      assert.equal(findOnPath('notexec', dir), undefined);
      assert.equal(findOnPath('missing-python-xyz', dir), undefined);
      assert.equal(findOnPath(exe), exe);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says what to do when the interpreter is missing', async () => {
    await assert.rejects(probeInterpreter('python-does-not-exist-xyz', 'python3 on PATH'), (err: InterpreterError) => {
      assert.equal(err.kind, 'missing');
      assert.match(err.message, /not on PATH/);
      return true;
    });
    await assert.rejects(probeInterpreter('/nonexistent/bin/python3', '"python" in the launch configuration'), { kind: 'missing' });
  });

  it('describes a supported interpreter: version, stdlib, site-packages', { skip: supported ? undefined : 'no CPython 3.8+ installed' }, async () => {
    const facts = await probeInterpreter(supported!.path, 'test');
    assert.equal(facts.implementation, 'CPython');
    assert.equal(facts.version.join('.'), supported!.version);
    const folders = libraryFolders(facts);
    assert.equal(folders[0].label, 'Standard library');
    assert.ok(fs.existsSync(path.join(folders[0].path, 'os.py')));
  });

  it('refuses interpreters older than 3.8 with an actionable message', async () => {
    const old = oldInterpreter();
    const facts = { requested: 'x', executable: '/usr/bin/python3.7', version: [3, 7, 16] as [number, number, number], implementation: 'CPython', stdlib: '', purelib: '', platlib: '' };
    const problem = interpreterProblem(facts, 'test');
    assert.equal(problem?.kind, 'tooOld');
    assert.match(problem!.message, /Python 3\.7\.16; SPython Debug needs Python 3\.8 or later/);
    assert.equal(interpreterProblem({ ...facts, implementation: 'PyPy', version: [3, 10, 0] }, 'test')?.kind, 'notCPython');
    assert.equal(interpreterProblem({ ...facts, version: [3, 8, 0] }, 'test'), undefined);
    assert.ok(isUntestedVersion({ ...facts, version: [3, 14, 0] }));
    assert.ok(!isUntestedVersion({ ...facts, version: [3, 13, 0] }));
    if (old) await assert.rejects(probeInterpreter(old, 'test'), { kind: 'tooOld' });
  });
});
