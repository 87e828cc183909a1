// A bad configuration fails clearly: the launcher exits with status 125, names what is wrong, and
// runs no Python code (the script would create a marker file first thing).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeResult, mainTargets, needs, pyStr, run, runWithChannel, tempDir, writeFile } from './common';

function markerScript() {
  const dir = tempDir();
  const marker = path.join(dir, 'ran');
  const script = writeFile(dir, 'main.py', `open(${pyStr(marker)}, "w").close()\nprint("ran")\n`);
  return { dir, marker, script };
}

const BAD_WELCOME: Array<[string, Record<string, unknown>, RegExp]> = [
  ['denyEvents: 5', { denyEvents: 5 }, /denyEvents/],
  ['denyEvents: [5]', { denyEvents: [5] }, /denyEvents/],
  ['promptEvents: "socket.*"', { promptEvents: 'socket.*' }, /promptEvents/],
  ['startupControl: "yes"', { startupControl: 'yes' }, /startupControl/],
  ['lockHooks: 1', { lockHooks: 1 }, /lockHooks/],
  ['verifyImports: "bogus"', { verifyImports: 'bogus' }, /verifyImports/],
  ['maxCodeSize: -1', { maxCodeSize: -1 }, /maxCodeSize/],
  ['maxCodeSize: "abc"', { maxCodeSize: 'abc' }, /maxCodeSize/],
  ['verifyExempt: "/usr"', { verifyExempt: '/usr' }, /verifyExempt/],
  ['auditLog: []', { auditLog: [] }, /auditLog/],
  ['auditLog.file: 3', { auditLog: { file: 3 } }, /auditLog\.file/],
  ['auditLog.syslog: {}', { auditLog: { syslog: {} } }, /auditLog\.syslog/],
];

const BAD_FLAGS: Array<[string, string[], RegExp]> = [
  ['--max-code-size abc', ['--max-code-size', 'abc'], /max-?[cC]ode-?[sS]ize/],
  ['--max-code-size 0', ['--max-code-size', '0'], /max-?[cC]ode-?[sS]ize/],
  ['--verify bogus', ['--verify', 'bogus'], /verify/],
  ['--deny without a value', ['--deny'], /--deny/],
  ['--verify-exempt of a missing directory', ['--verify', 'warn', '--verify-exempt', '/nonexistent/policytest'], /verifyExempt .*\/nonexistent\/policytest/],
  ['--verify manifest without --manifest/--key', ['--verify', 'manifest'], /manifest/],
  ['--log-file in a missing directory', ['--log-file', '/nonexistent/policytest/audit.jsonl'], /\/nonexistent\/policytest\/audit\.jsonl/],
];

for (const t of mainTargets()) {
  describe(`bad welcome configurations, Python ${t.label}`, needs(t), () => {
    for (const [label, config, names] of BAD_WELCOME) {
      test(`{${label}} ends the launch with 125, naming the key`, async () => {
        const { marker, script } = markerScript();
        const { result } = await runWithChannel(t, [script], { config });
        const d = describeResult(result);
        assert.equal(result.status, 125, d);
        assert.match(result.stderrText, /^spython: /m, d);
        assert.match(result.stderrText, names, d);
        assert.equal(result.stdoutText, '', d);
        assert.ok(!fs.existsSync(marker), `Python ran\n${d}`);
      });
    }
  });

  describe(`bad policy flags, Python ${t.label}`, needs(t), () => {
    for (const [label, flags, names] of BAD_FLAGS) {
      test(`${label} ends the launch with 125, saying what is wrong`, async () => {
        const { marker, script } = markerScript();
        const args = flags[flags.length - 1] === '--deny' ? flags : [...flags, script];
        const r = await run(t, args);
        const d = describeResult(r);
        assert.equal(r.status, 125, d);
        assert.match(r.stderrText, /^spython: /m, d);
        assert.match(r.stderrText, names, d);
        assert.equal(r.stdoutText, '', d);
        assert.ok(!fs.existsSync(marker), `Python ran\n${d}`);
      });
    }
  });
}
