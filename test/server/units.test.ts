// The audit lens's parts on their own: line maps over edits, reading runs, noise and interest, call
// resolution for catalogue hovers, launch.json edits.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { applyEdits, parse } from 'jsonc-parser';
import { TextDocumentContentChangeEvent, TextEdit } from 'vscode-languageserver-protocol/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { chainAt, eventsRaisedBy, resolveChain, scanBindings } from '../../server/calls';
import { isTelling } from '../../server/interest';
import { allowAction, denyAction } from '../../server/launchjson';
import { LineMap } from '../../server/linemap';
import { hintLabel, lineDiagnostics } from '../../server/present';
import { foldLine, MAX_SAMPLES, readRun, Run, RunStore } from '../../server/runs';

function tmp(prefix: string): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Applies `changes` one by one to a document and a map; returns both. */
function edit(text: string, changes: TextDocumentContentChangeEvent[]): { map: LineMap; doc: TextDocument } {
  let doc = TextDocument.create('file:///x.py', 'python', 1, text);
  const map = new LineMap(doc.lineCount);
  for (const change of changes) {
    map.apply(doc, change);
    doc = TextDocument.update(doc, [change], doc.version + 1);
  }
  return { map, doc };
}

const at = (line: number, character: number) => ({ line, character });
const range = (l1: number, c1: number, l2: number, c2: number) => ({ start: at(l1, c1), end: at(l2, c2) });

/** Every base line's text must equal the current line's text where the map keeps it. */
function assertNeverWrong(before: string, map: LineMap, doc: TextDocument): void {
  const old = before.split('\n');
  const now = doc.getText().split('\n');
  for (const [base, current] of map.entries()) assert.equal(now[current], old[base], `base ${base} → ${current}`);
}

describe('LineMap', () => {
  const text = 'a = 1\nb = 2\nc = 3\nd = 4\n';

  it('shifts lines after inserted lines and keeps the line inserted above', () => {
    const { map, doc } = edit(text, [{ range: range(1, 0, 1, 0), text: 'x\ny\n' }]);
    assert.deepEqual([0, 1, 2, 3].map((l) => map.map(l)), [0, 3, 4, 5]);
    assertNeverWrong(text, map, doc);
  });

  it('drops a changed line and keeps the others', () => {
    const { map, doc } = edit(text, [{ range: range(2, 4, 2, 5), text: '30' }]);
    assert.deepEqual([0, 1, 2, 3].map((l) => map.map(l)), [0, 1, undefined, 3]);
    assertNeverWrong(text, map, doc);
  });

  it('keeps a line after Enter at its end, and moves the rest', () => {
    const { map, doc } = edit(text, [{ range: range(1, 5, 1, 5), text: '\n    ' }]);
    assert.deepEqual([0, 1, 2, 3].map((l) => map.map(l)), [0, 1, 3, 4]);
    assertNeverWrong(text, map, doc);
  });

  it('follows deleted lines, and drops lines joined by a backspace', () => {
    let r = edit(text, [{ range: range(0, 0, 2, 0), text: '' }]);
    assert.deepEqual([0, 1, 2, 3].map((l) => r.map.map(l)), [undefined, undefined, 0, 1]);
    assertNeverWrong(text, r.map, r.doc);
    r = edit(text, [{ range: range(1, 5, 2, 0), text: '' }]);
    assert.deepEqual([0, 1, 2, 3].map((l) => r.map.map(l)), [0, undefined, undefined, 2]);
    assertNeverWrong(text, r.map, r.doc);
  });

  it('drops everything on a whole-text replacement that changes it', () => {
    const same = edit(text, [{ text }]);
    assert.equal(same.map.map(2), 2);
    const other = edit(text, [{ text: text + '#\n' }]);
    assert.equal(other.map.map(0), undefined);
  });

  it('is never wrong over random edits', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pieces = ['', 'x', '\n', 'x\n', '\ny', '\n\n', 'a = 1\n'];
    for (let round = 0; round < 300; round++) {
      const base = Array.from({ length: 8 }, (_, i) => `line ${i}`).join('\n') + '\n';
      let doc = TextDocument.create('file:///r.py', 'python', 1, base);
      const map = new LineMap(doc.lineCount);
      for (let step = 0; step < 6; step++) {
        const lines = doc.getText().split('\n');
        const l1 = random(lines.length);
        const c1 = random(lines[l1].length + 1);
        const l2 = Math.min(lines.length - 1, l1 + random(3));
        const c2 = l2 === l1 ? c1 + random(lines[l1].length - c1 + 1) : random(lines[l2].length + 1);
        const change = { range: range(l1, c1, l2, c2), text: pieces[random(pieces.length)] };
        map.apply(doc, change);
        doc = TextDocument.update(doc, [change], doc.version + 1);
      }
      assertNeverWrong(base, map, doc);
    }
  });
});

function record(fields: Record<string, unknown>): string {
  return JSON.stringify({ event: 'open', seq: 1, ts: 1, pid: 10, ppid: 1, tid: 10, thread: null, ...fields });
}

describe('reading runs', () => {
  it('aggregates counts, distinct samples, pids and threads per (file, line, event)', () => {
    const run = new Run('/runs/r.jsonl');
    for (let i = 0; i < 10; i++) {
      foldLine(run, record({ event: 'os.listdir', file: '/w/a.py', line: 3, args: [`/d${i % 5}`], pid: 10 + (i % 2) }));
    }
    foldLine(run, '{"type":"exit","status":0}');
    foldLine(run, 'not json');
    foldLine(run, record({ file: '<frozen importlib._bootstrap>', line: 1, args: ['/w/a.py', 'r', 0] }));
    foldLine(run, record({ args: ['/x', 'r', 0] })); // no frame
    const agg = run.events('/w/a.py')!.lines.get(3)!.get('os.listdir')!;
    assert.equal(agg.count, 10);
    assert.equal(agg.telling, 10);
    assert.equal(agg.samples.length, MAX_SAMPLES);
    assert.deepEqual([...agg.pids], [10, 11]);
    assert.deepEqual([...agg.threads], ['main thread', 'thread 10']);
    assert.equal(run.records, 12);
    assert.equal(run.files.size, 1);
  });

  it('blames a refused import on the import statement of the same thread', () => {
    const run = new Run('/runs/r.jsonl');
    foldLine(run, record({ event: 'import', file: '/w/app/main.py', line: 6, args: ['helper', null, [], [], []] }));
    foldLine(run, record({ event: 'import', file: '/w/app/other.py', line: 2, tid: 99, args: ['x', null, [], [], []] }));
    foldLine(
      run,
      record({
        event: 'spython.code_refused',
        file: '<frozen importlib._bootstrap_external>',
        line: 1185,
        args: ['/w/app/../lib/helper.py', 'verifyImports', '/w/lib/helper.py: no xattr'],
        denied: 'verifyImports',
      }),
    );
    const line = run.events('/w/app/main.py')!.lines.get(6)!;
    assert.ok(line.get('spython.code_refused'));
    assert.deepEqual(
      lineDiagnostics(line, run).map((d) => d.message),
      ['verifyImports refused /w/lib/helper.py: no xattr'],
    );
  });

  it('reads a growing file on from where it stopped, leaving an unfinished line for later', async () => {
    const dir = tmp('spython-lens-runs-');
    const file = path.join(dir, 'r.jsonl');
    const line = (n: number) => record({ event: 'os.remove', file: '/w/a.py', line: 1, seq: n, args: [`/f${n}`] }) + '\n';
    fs.writeFileSync(file, line(1) + line(2) + line(3).slice(0, 20));
    const store = new RunStore([dir]);
    assert.equal(await store.scan(), true);
    const run = store.all()[0];
    assert.equal(run.events('/w/a.py')!.lines.get(1)!.get('os.remove')!.count, 2);
    fs.appendFileSync(file, line(3).slice(20) + line(4));
    assert.equal(await store.scan(), true);
    assert.equal(store.all()[0], run, 'the same run, read on');
    assert.equal(run.events('/w/a.py')!.lines.get(1)!.get('os.remove')!.count, 4);
    assert.equal(await store.scan(), false);
    // Rewritten: read again from the start.
    fs.writeFileSync(file, line(9));
    await store.scan();
    assert.equal(store.all()[0].events('/w/a.py')!.lines.get(1)!.get('os.remove')!.count, 1);
    // Deleted: gone.
    fs.rmSync(file);
    await store.scan();
    assert.equal(store.all().length, 0);
  });

  it('streams a large run without keeping its records', async () => {
    const dir = tmp('spython-lens-big-');
    const file = path.join(dir, 'big.jsonl');
    const chunk: string[] = [];
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < 200_000; i++) {
      chunk.push(record({ event: i % 2 ? 'open' : 'os.listdir', file: '/w/big.py', line: (i % 100) + 1, seq: i, args: [`/p${i}`, 'r', 0] }));
      if (chunk.length === 10_000) {
        fs.writeSync(fd, chunk.join('\n') + '\n');
        chunk.length = 0;
      }
    }
    fs.closeSync(fd);
    const run = new Run(file);
    await readRun(run);
    assert.equal(run.records, 200_000);
    assert.equal(run.offset, fs.statSync(file).size);
    const lines = run.events('/w/big.py')!.lines;
    assert.equal(lines.size, 100);
    for (const events of lines.values()) for (const agg of events.values()) assert.ok(agg.samples.length <= MAX_SAMPLES);
  });
});

describe('noise and interest', () => {
  it('leaves machinery out of hints but keeps what the program does', () => {
    assert.equal(isTelling({ event: 'import', args: ['json'] }), false);
    assert.equal(isTelling({ event: 'object.__getattr__', args: [] }), false);
    assert.equal(isTelling({ event: 'marshal.loads', args: [] }), false);
    assert.equal(isTelling({ event: 'open', args: ['/x/mod.py', 'rb', 0] }), false);
    assert.equal(isTelling({ event: 'open', args: ['/x/mod.py', 'w', 0] }), true);
    assert.equal(isTelling({ event: 'open', args: ['/etc/passwd', 'r', 0] }), true);
    assert.equal(isTelling({ event: 'compile', args: [null, '/x/mod.py'] }), false);
    assert.equal(isTelling({ event: 'compile', args: [{ $bytes: 'y = 1', len: 5 }, '<string>'] }), true);
    assert.equal(isTelling({ event: 'exec', args: [{ $code: '<module>', file: '/x/mod.py', line: 1 }] }), false);
    assert.equal(isTelling({ event: 'socket.connect', args: [] }), true);
    assert.equal(isTelling({ event: 'import', args: ['x'], denied: 'denyEvents' }), true);
  });

  it('orders a hint by interest: denied, network, subprocess, file writes, dynamic code, then by count', () => {
    const run = new Run('/r.jsonl');
    const add = (event: string, n: number, extra: Record<string, unknown> = {}) => {
      for (let i = 0; i < n; i++) foldLine(run, record({ event, file: '/w/a.py', line: 1, args: [], ...extra }));
    };
    add('os.listdir', 50, { args: ['/'] });
    add('open', 2, { args: ['/tmp/out', 'w', 0] });
    add('subprocess.Popen', 1, { args: ['ls', ['ls'], null, null] });
    add('socket.connect', 3, { args: [{ $type: 'socket' }, ['h', 1]] });
    add('os.system', 2, { args: ['rm -rf /'], denied: 'denyEvents' });
    add('import', 9, { args: ['json'] });
    assert.equal(
      hintLabel(run.events('/w/a.py')!.lines.get(1)!),
      '⟵ os.system ×2 (denied), socket.connect ×3, subprocess.Popen, open ×2, +1 more',
    );
  });
});

describe('catalogue hovers: resolving calls', () => {
  const source = [
    'import subprocess as sp',
    'from subprocess import run, check_output as co',
    'import os, socket',
    'from pathlib import Path',
    's = socket.socket()',
    'conn = socket.create_connection(("h", 1))',
    'with open("x") as fh, socket.socket() as t:',
    '    pass',
    'def system(): pass',
  ].join('\n');
  const bindings = scanBindings(source);
  const resolve = (line: string, word: string) => {
    const chain = chainAt(line, line.indexOf(word) + 1);
    return chain && resolveChain(chain.parts, bindings);
  };

  it('reads the dotted chain under the cursor through imports and assignments', () => {
    assert.equal(resolve('sp.run(["ls"])', 'run'), 'subprocess.run');
    assert.equal(resolve('sp.run(["ls"])', 'sp'), 'subprocess');
    assert.equal(resolve('run("ls")', 'run'), 'subprocess.run');
    assert.equal(resolve('x = co("ls")', 'co'), 'subprocess.check_output');
    assert.equal(resolve('s.connect(addr)', 'connect'), 'socket.socket.connect');
    assert.equal(resolve('conn.sendto(b"", a)', 'sendto'), 'socket.socket.sendto');
    assert.equal(resolve('t.bind(a)', 'bind'), 'socket.socket.bind');
    assert.equal(resolve('Path(p).read_text()', 'read_text'), 'pathlib.Path.read_text');
    assert.equal(resolve('Path(p) .write_bytes(b)', 'write_bytes'), 'pathlib.Path.write_bytes');
    assert.equal(resolve('open(p)', 'open'), 'builtins.open');
    assert.equal(resolve('os.system("x")', 'system'), 'os.system');
    assert.equal(resolve('system()', 'system'), undefined, 'defined in the file');
    assert.equal(resolve('x = "open(p)"', 'open'), undefined, 'in a string');
    assert.equal(resolve('# open(p)', 'open'), undefined, 'in a comment');
    assert.equal(resolve('xs[0].connect()', 'connect'), undefined);
  });

  it('knows the events of the common entry points', () => {
    const events = (call: string) => eventsRaisedBy(call).map((e) => e.event);
    assert.deepEqual(events('subprocess.run'), ['subprocess.Popen']);
    assert.deepEqual(events('subprocess.Popen'), ['subprocess.Popen']);
    assert.deepEqual(events('os.system'), ['os.system']);
    assert.deepEqual(events('builtins.open'), ['open']);
    assert.deepEqual(events('io.open'), ['open']);
    assert.deepEqual(events('pathlib.Path.read_text'), ['open']);
    assert.deepEqual(events('pathlib.PosixPath.write_text'), ['open']);
    assert.ok(events('socket.create_connection').includes('socket.connect'));
    assert.deepEqual(events('urllib.request.urlopen')[0], 'urllib.Request');
    assert.deepEqual(events('shutil.rmtree'), ['shutil.rmtree']);
    assert.deepEqual(events('os.unlink'), ['os.remove']);
    assert.deepEqual(events('builtins.exec'), ['compile', 'exec']);
    assert.deepEqual(events('pickle.loads'), ['pickle.find_class']);
    assert.deepEqual(events('ctypes.CDLL'), ['ctypes.dlopen']);
    assert.deepEqual(events('importlib.import_module'), ['import']);
    assert.deepEqual(events('os.execv'), ['os.exec']);
    assert.deepEqual(events('os.fork'), ['os.fork']);
    assert.deepEqual(events('no.such.call'), []);
  });
});

describe('launch.json edits', () => {
  const apply = (text: string, edits: TextEdit[]) => {
    const doc = TextDocument.create('file:///l.json', 'jsonc', 1, text);
    return applyEdits(
      text,
      edits.map((e) => ({
        offset: doc.offsetAt(e.range.start),
        length: doc.offsetAt(e.range.end) - doc.offsetAt(e.range.start),
        content: e.newText,
      })),
    );
  };
  const folderWith = (text: string | undefined) => {
    const folder = tmp('spython-lens-launch-');
    if (text !== undefined) {
      fs.mkdirSync(path.join(folder, '.vscode'));
      fs.writeFileSync(path.join(folder, '.vscode', 'launch.json'), text);
    }
    return folder;
  };
  const edited = (folder: string, action: ReturnType<typeof denyAction>) => {
    const file = path.join(folder, '.vscode', 'launch.json');
    const edits = Object.values(action!.edit.changes!)[0];
    return apply(fs.readFileSync(file, 'utf8'), edits);
  };

  it('adds the event to denyEvents of every spython configuration, keeping comments', () => {
    const folder = folderWith(
      '{\n  // mine\n  "configurations": [\n    {"type": "spython", "name": "a"},\n    {"type": "spython", "name": "b", "denyEvents": ["os.system"]},\n    {"type": "node"}\n  ]\n}\n',
    );
    const action = denyAction({ folder, canCreateFiles: true }, 'socket.connect');
    assert.equal(action?.title, 'Deny socket.connect in launch.json');
    const text = edited(folder, action);
    assert.match(text, /\/\/ mine/);
    const configs = parse(text).configurations;
    assert.deepEqual(configs[0].denyEvents, ['socket.connect']);
    assert.deepEqual(configs[1].denyEvents, ['os.system', 'socket.connect']);
    assert.equal(configs[2].denyEvents, undefined);
  });

  it('is not offered when every configuration denies it already (a glob counts)', () => {
    const folder = folderWith('{"configurations": [{"type": "spython", "denyEvents": ["socket.*"]}]}');
    assert.equal(denyAction({ folder, canCreateFiles: true }, 'socket.connect'), undefined);
  });

  it('adds a spython configuration when there is none', () => {
    const folder = folderWith('{"version": "0.2.0", "configurations": [{"type": "node"}]}');
    const configs = parse(edited(folder, denyAction({ folder, canCreateFiles: true }, 'os.system'))).configurations;
    assert.equal(configs.length, 2);
    assert.deepEqual(configs[1], {
      type: 'spython',
      request: 'launch',
      name: 'Python (audit hooks)',
      program: '${file}',
      denyEvents: ['os.system'],
    });
  });

  it('creates launch.json when there is none, if the client can create files', () => {
    const folder = folderWith(undefined);
    assert.equal(denyAction({ folder, canCreateFiles: false }, 'os.system'), undefined);
    const action = denyAction({ folder, canCreateFiles: true }, 'os.system')!;
    const [create, change] = action.edit.documentChanges as [{ kind: string; uri: string }, { edits: TextEdit[] }];
    assert.equal(create.kind, 'create');
    assert.ok(create.uri.endsWith('/.vscode/launch.json'));
    assert.deepEqual(parse(change.edits[0].newText).configurations[0].denyEvents, ['os.system']);
  });

  it('allows an event by removing the entries that deny it, naming wider globs', () => {
    const folder = folderWith(
      '{"configurations": [{"type": "spython", "denyEvents": ["socket.*", "os.system", {"event": "socket.connect", "condition": "True"}]}]}',
    );
    const action = allowAction({ folder, canCreateFiles: true }, 'socket.connect');
    assert.equal(action?.title, 'Allow socket.connect in launch.json (removes "socket.*" from denyEvents)');
    assert.deepEqual(parse(edited(folder, action)).configurations[0].denyEvents, ['os.system']);
    assert.equal(allowAction({ folder, canCreateFiles: true }, 'open'), undefined);
  });
});
