// What the Debug Console gets: one line per shown event, carrying the record and pointing at the Python
// line that raised it; the program's own stdout and stderr; the real exit code; noisy machinery hidden
// but logged; flood control that keeps a 200,000-event program's console bounded while the session's
// JSONL copy (and the launcher's audit log) hold every record.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { needs, Program, Session, TARGETS, TEST_TIMEOUT_MS } from './common';

after(() => Session.closeAll());

/** Noisy machinery the console hides by default (the catalogue's noise notes). */
const HIDDEN_BY_DEFAULT = ['object.__getattr__', 'object.__setattr__', 'sys._getframe', 'marshal.loads', 'code.__new__'];

for (const { label, python } of TARGETS) {
  describe(`Debug Console output on Python ${label}`, { ...needs(python), concurrency: 2, timeout: TEST_TIMEOUT_MS }, () => {
    test('an event line carries its record and points at the line that raised it; stdout, stderr, exit code', async () => {
      const program = new Program(
        [
          'print("to stdout", flush=True)',
          'print("PYTHONUNBUFFERED =", os.environ.get("PYTHONUNBUFFERED"), flush=True)',
          'print("to stderr", file=sys.stderr, flush=True)',
          'with open(os.path.join(HERE, "out.txt"), "w") as f:  # OPEN',
          '    f.write("x")',
          'sys.exit(3)',
        ].join('\n'),
      );
      const out = path.join(program.dir, 'out.txt');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python));
        await s.ended();

        const open = s.records().find((r) => r.data.event === 'open' && r.data.args[0] === out);
        assert.ok(open, `no console line for the open of ${out}:\n${s.consoleLines().join('\n')}`);
        assert.equal(open.output.category, 'console');
        assert.match(open.output.output, new RegExp(`^open \\('${out}', 'w', \\d+\\)  prog\\.py:${program.lineOf('OPEN')}\\n$`));
        assert.equal(open.output.source?.path, program.file);
        assert.equal(open.output.line, program.lineOf('OPEN'));
        for (const key of ['seq', 'pid', 'tid']) assert.equal(typeof open.data[key], 'number', key);
        assert.equal(open.data.file, program.file);

        assert.match(s.text('stdout'), /to stdout\n/);
        // Output to the Debug Console goes through a pipe: unbuffered unless the configuration says otherwise.
        assert.match(s.text('stdout'), /^PYTHONUNBUFFERED = 1$/m);
        // The session names its JSONL copy of every record.
        const runLogEvents = s.events.filter((e) => e.event === 'spythonRunLog');
        assert.equal(runLogEvents.length, 1);
        assert.equal(path.dirname(runLogEvents[0].body.path), path.join(program.dir, 'runs'));
        assert.equal(fs.readFileSync(runLogEvents[0].body.path, 'utf8'), program.runLog());
        assert.match(s.text('stderr'), /to stderr\n/);
        assert.equal(s.exitCode, 3);
        const mainThread = s.events.find((e) => e.event === 'thread' && e.body.threadId === open.data.pid);
        assert.equal(mainThread?.body.reason, 'started');
      });
    });

    test('noisy machinery is hidden by default but counted and in the JSONL copy', async () => {
      const program = new Program('import json, enum\nprint(json.dumps({"a": 1}))\n');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python));
        await s.ended();
        const shown = new Set(s.records().map((r) => r.data.event));
        for (const name of HIDDEN_BY_DEFAULT) assert.ok(!shown.has(name), `${name} was shown`);
        // The import system's own opens and execs (module bodies) are hidden too.
        for (const { data } of s.records()) {
          if (data.event === 'open' || data.event === 'exec') {
            assert.ok(data.file && !data.file.startsWith('<frozen '), `shown: ${JSON.stringify(data)}`);
          }
        }
        const logged = program.runRecords();
        const hiddenLogged = logged.filter((r) => HIDDEN_BY_DEFAULT.includes(r.event));
        assert.ok(hiddenLogged.length > 0, 'no hidden event in the JSONL copy');
        const summary = s.consoleLines().find((line) => line.startsWith('Audit events: '));
        assert.ok(summary?.startsWith(`Audit events: ${logged.length.toLocaleString('en-US')} `), summary);
      });
    });

    test('showEvents and hideEvents choose what the console shows', async () => {
      const program = new Program('import json\nos.listdir(HERE)  # LIST\nopen(__file__).close()\n');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python, { showEvents: ['object.*'], hideEvents: ['os.list*'] }));
        await s.ended();
        const shown = new Set(s.records().map((r) => r.data.event));
        assert.ok(shown.has('object.__getattr__') || shown.has('object.__setattr__'), [...shown].join(' '));
        assert.ok(!shown.has('os.listdir'));
        assert.ok(shown.has('open'));
      });
    });

    test('200,000 events: the console stays bounded, the JSONL copy and the audit log hold them all', async () => {
      const program = new Program('for i in range(200000):\n    sys.audit("spython.flood", i)\nprint("done")\n');
      const auditLog = path.join(program.dir, 'audit.jsonl');
      await Session.with(async (s) => {
        await s.launch(program.launchArgs(python, { auditLog: { file: auditLog } }));
        await s.ended();
        assert.equal(s.exitCode, 0);
        assert.ok(s.outputs.length < 2000, `${s.outputs.length} output events`);
        const held = s.consoleLines().filter((line) => /^… [\d,]+ more `spython\.flood` events/.test(line));
        assert.ok(held.length > 0, 'no summary of held-back events');
        const shownFlood = s.records().filter((r) => r.data.event === 'spython.flood').length;
        const heldCount = held.reduce((sum, line) => sum + Number(/[\d,]+/.exec(line)![0].replace(/,/g, '')), 0);
        assert.equal(shownFlood + heldCount, 200000);

        const copy = program.runLog();
        assert.equal(copy.split('\n').filter((line) => line.startsWith('{"event":"spython.flood"')).length, 200000);
        assert.equal(copy, fs.readFileSync(auditLog, 'utf8'), 'the JSONL copy differs from the launcher audit log');
      });
    });
  });
}
