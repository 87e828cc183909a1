// The catalogue and what is built on it: event-name globs matched like the launcher's fnmatch, what the
// Debug Console shows by default, the categories' conditions (checked by a real interpreter), the
// breakpoint entries the session sends, and the renumbering of inspection ids.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { BreakpointRegistry } from '../../adapter/breakpoints';
import {
  AUDIT_EVENTS,
  categoryRules,
  EVENT_CATEGORIES,
  EventDisplay,
  eventMatcher,
  mainArgument,
  visibleArguments,
} from '../../adapter/catalog';
import { localizeBody, RemoteReferences } from '../../adapter/inspection';
import { pythonFor } from './common';

describe('the catalogue', () => {
  test('is the shared facts catalogue, converted', () => {
    assert.ok(AUDIT_EVENTS.length >= 190);
    const open = AUDIT_EVENTS.find((e) => e.event === 'open');
    assert.deepEqual(open?.args, ['path', 'mode', 'flags']);
    assert.ok(open?.noise);
    assert.equal(AUDIT_EVENTS.find((e) => e.event === 'socket.connect')?.noise, undefined);
  });

  test('globs match event names as fnmatch does', () => {
    const match = eventMatcher(['socket.*', 'ctypes.*', '?pen', 'os.[lr]*']);
    for (const name of ['socket.connect', 'ctypes.cdata/buffer', 'open', 'os.listdir', 'os.rename']) assert.ok(match(name), name);
    for (const name of ['socketx', 'os.mkdir', 'opens', 'subprocess.Popen']) assert.ok(!match(name), name);
    assert.ok(!eventMatcher([])('open'));
  });

  test('arguments: self and the import state are left out; the main one names the target', () => {
    assert.deepEqual(visibleArguments('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 80]]), [['127.0.0.1', 80]]);
    assert.deepEqual(visibleArguments('import', ['json', null, [], [], []]), ['json', null]);
    assert.deepEqual(visibleArguments('my.custom', [1, 2]), [1, 2]);
    assert.deepEqual(mainArgument('socket.connect', [{ $type: 'socket' }, ['127.0.0.1', 80]]), ['127.0.0.1', 80]);
    assert.equal(mainArgument('open', ['/etc/hosts', 'r', 0]), '/etc/hosts');
    assert.deepEqual(mainArgument('subprocess.Popen', ['/bin/ls', ['ls', '-l'], null, null]), ['ls', '-l']);
    assert.equal(mainArgument('sys.addaudithook', []), undefined);
  });
});

describe('what the Debug Console shows by default', () => {
  const display = new EventDisplay([], []);

  test('machinery is hidden wherever it is raised', () => {
    for (const name of ['object.__getattr__', 'sys._getframe', 'marshal.loads', 'code.__new__']) {
      assert.ok(!display.shows(name, '/home/u/app.py'), name);
    }
  });

  test('noisy but telling events show when the program raises them, not the import system', () => {
    assert.ok(display.shows('open', '/home/u/app.py'));
    assert.ok(!display.shows('open', '<frozen importlib._bootstrap_external>'));
    assert.ok(!display.shows('exec', undefined), 'the main module body');
    assert.ok(display.shows('exec', '/home/u/app.py'));
  });

  test('quiet and unknown events show', () => {
    assert.ok(display.shows('socket.connect', undefined));
    assert.ok(display.shows('my.custom.event', undefined));
  });

  test('showEvents shows; hideEvents hides, and wins', () => {
    const custom = new EventDisplay(['object.*', 'open'], ['object.__setattr__', 'socket.*']);
    assert.ok(custom.shows('object.__getattr__', '<frozen x>'));
    assert.ok(custom.shows('open', '<frozen importlib._bootstrap>'));
    assert.ok(!custom.shows('object.__setattr__', '/a.py'));
    assert.ok(!custom.shows('socket.connect', '/a.py'));
  });
});

describe('event categories', () => {
  const python = pythonFor(13)?.path ?? pythonFor(12)?.path ?? pythonFor(8)?.path;

  test('their conditions hold exactly for the operations they name', { skip: python ? false : 'no interpreter' }, () => {
    const condition = (id: string, event: string) =>
      EVENT_CATEGORIES.find((c) => c.id === id)!.rules.find((r) => r.event === event)!.condition!;
    const cases = {
      fileWrite: {
        condition: condition('fileWrite', 'open'),
        event: 'open',
        holds: ["('/x', 'w', 524865)", "('/x', 'a', 0)", "('/x', 'r+', 0)", "(b'/x', 'xb', 0)", "('/x', None, os.O_WRONLY | os.O_CREAT)"],
        fails: ["('/x', 'r', 524288)", "('/x', 'rb', 0)", "(1, 'w', 524865)", "('/x', None, os.O_RDONLY)"],
      },
      dynamicCode: {
        condition: condition('dynamicCode', 'compile'),
        event: 'compile',
        holds: ["(b'x = 1', '<string>')", "('x = 1', '<generated>')"],
        fails: ["(None, '/app/main.py')", "(b'import os', '/lib/python3/os.py')", "(ast.parse('x'), '<ast>')"],
      },
    };
    const script = [
      'import ast, json, os, sys',
      'cases = json.load(sys.stdin)',
      'for name, c in cases.items():',
      '    code = compile(c["condition"], "<condition>", "eval")',
      '    for expected, key in ((True, "holds"), (False, "fails")):',
      '        for text in c[key]:',
      '            got = bool(eval(code, {"os": os, "ast": ast}, {"event": c["event"], "args": eval(text)}))',
      '            if got != expected: print(name, text, got)',
    ].join('\n');
    const out = execFileSync(python!, ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' });
    assert.equal(out, '');
  });

  test("a user's condition is added to the category's own", () => {
    const fileWrite = EVENT_CATEGORIES.find((c) => c.id === 'fileWrite')!;
    const rules = categoryRules(fileWrite, 'args[0].endswith(".log")');
    const open = rules.find((r) => r.event === 'open')!;
    assert.match(open.condition!, /^\(.+\) and \(args\[0\]\.endswith\("\.log"\)\)$/);
    assert.equal(rules.find((r) => r.event === 'os.remove')!.condition, 'args[0].endswith(".log")');
    assert.deepEqual(categoryRules(fileWrite, '  '), fileWrite.rules);
  });
});

describe('breakpoint entries', () => {
  test('function breakpoints, breakOnEvents and filters, each traced back to its origin', () => {
    const registry = new BreakpointRegistry();
    const states = registry.setFunctionBreakpoints([
      { name: 'socket.connect', condition: 'args[1][1] == 443' },
      { name: 'open', hitCondition: 'every 3' },
      { name: ' ' },
      { name: 'os.listdir', logMessage: 'listing {args[0]}', hitCondition: '%2' },
    ]);
    assert.deepEqual(states.map((s) => s.verified), [true, false, false, true]);
    assert.match(states[1].message!, /hit condition "every 3" must be N, >=N, >N, ==N, <N, <=N or %N/);
    assert.deepEqual(registry.setLaunchBreakpoints([{ event: 'os.system' }, { event: 'x', hitCondition: '?' }]), [
      'breakOnEvents "x": hit condition "?" must be N, >=N, >N, ==N, <N, <=N or %N',
    ]);
    registry.setFilters([{ filterId: 'subprocess', condition: 'True' }, { filterId: 'denied' }]);
    assert.equal(registry.breakOnDenied, true);

    const entries = registry.entries();
    assert.deepEqual(entries.slice(0, 3), [
      { id: states[0].id, event: 'socket.connect', condition: 'args[1][1] == 443', kind: 'function' },
      { id: states[3].id, event: 'os.listdir', hitCondition: '%2', logMessage: 'listing {args[0]}', kind: 'function' },
      { id: entries[2].id, event: 'os.system', kind: 'function' },
    ]);
    const filters = entries.filter((e) => e.kind === 'filter');
    assert.ok(filters.some((e) => e.event === 'subprocess.Popen' && e.condition === 'True'));
    assert.deepEqual(registry.origin(states[3].id), { kind: 'function', event: 'os.listdir', logpoint: true });
    assert.deepEqual(registry.origin(entries[2].id), { kind: 'launch', event: 'os.system', logpoint: false });
    const origin = registry.origin(filters[0].id);
    assert.equal(origin?.kind === 'filter' && origin.category.id, 'subprocess');

    registry.setFunctionBreakpoints([]);
    assert.equal(registry.origin(states[0].id), undefined);
    assert.throws(() => registry.setFilters([{ filterId: 'everything' }]), /unknown breakpoint filter "everything"/);
  });
});

describe('inspection ids', () => {
  test("each process's frame ids and variable references get session numbers until it resumes", () => {
    const references = new RemoteReferences<string>();
    const body = localizeBody(
      'stackTrace',
      { stackFrames: [{ id: 1 }, { id: 2 }] },
      (kind, remote) => references.toLocal('a', kind, remote),
    );
    const local = (body.stackFrames as Array<{ id: number }>).map((f) => f.id);
    const other = references.toLocal('b', 'frame', 1);
    assert.notEqual(other, local[0]);
    assert.deepEqual(references.resolve(local[1], 'frame'), { owner: 'a', remote: 2 });
    assert.equal(references.resolve(local[1], 'variables'), undefined);
    assert.equal(references.toLocal('a', 'variables', 0), 0);
    references.forget('a');
    assert.equal(references.resolve(local[0], 'frame'), undefined);
    assert.deepEqual(references.resolve(other, 'frame'), { owner: 'b', remote: 1 });
  });
});
