// The audit lens language server over a real LSP connection (node dist/server.js --stdio), fed with runs
// recorded by the launcher: inlay hints, hovers, diagnostics and code actions; catalogue hovers on a
// file never run; edits that move or drop hints; a new run appearing in the runs directory.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyEdits, parse } from 'jsonc-parser';
import { CodeAction, Command, Diagnostic, DiagnosticSeverity, TextEdit } from 'vscode-languageserver-protocol/node';
import {
  cannotRecord,
  IMPORTER,
  IMPORTER_LINE,
  makeWorkspace,
  NEVER_RUN,
  PROG,
  PROG_LINES,
  record,
  TAMPER_LINE,
  tempDir,
  uri,
  WATCHED,
  WATCHED_LINE,
  Workspace,
} from './fixture';
import { LspClient, serverModule } from './lsp';

const skip = cannotRecord();

function isAction(item: Command | CodeAction): item is CodeAction {
  return typeof item.command !== 'string';
}

/** Applies LSP text edits (non-overlapping) to a string. */
function applyTextEdits(text: string, edits: TextEdit[]): string {
  const offset = (line: number, character: number) => {
    const lines = text.split('\n');
    let at = 0;
    for (let i = 0; i < line; i++) at += lines[i].length + 1;
    return at + character;
  };
  return applyEdits(
    text,
    edits.map((e) => {
      const start = offset(e.range.start.line, e.range.start.character);
      return { offset: start, length: offset(e.range.end.line, e.range.end.character) - start, content: e.newText };
    }),
  );
}

describe('audit lens language server', { skip }, () => {
  let ws: Workspace;
  let client: LspClient;

  before(async () => {
    ws = await makeWorkspace();
    client = await LspClient.start({ rootDir: ws.root, runsDir: ws.runs, pollIntervalMs: 60_000 });
  });

  after(async () => {
    await client?.stop();
  });

  it('runs as node <server> --stdio and announces its features', (t) => {
    t.diagnostic(`server: ${serverModule()}`);
    const caps = client.initializeResult!.capabilities;
    assert.ok(caps.hoverProvider);
    assert.ok(caps.inlayHintProvider);
    assert.ok(caps.codeActionProvider);
  });

  it('shows inlay hints at the end of each line that raised events, noise left out', async () => {
    const u = uri(ws.prog);
    await client.open(u, PROG);
    const hints = await client.hints(u);
    const byLine = await client.hintLines(u);
    assert.deepEqual(Object.keys(byLine).map(Number), [PROG_LINES.connect, PROG_LINES.open, PROG_LINES.listdir, PROG_LINES.exec]);
    // socket.__new__ is raised inside socket.py: the record's caller places it on the program's line.
    assert.equal(byLine[PROG_LINES.connect], '⟵ socket.connect ×3 (denied), socket.__new__ ×3');
    assert.equal(byLine[PROG_LINES.open], '⟵ open');
    assert.equal(byLine[PROG_LINES.listdir], '⟵ os.listdir');
    // Dynamic code ranks before the uncategorized exec.
    assert.equal(byLine[PROG_LINES.exec], '⟵ compile, exec');
    // At the end of the line.
    const lines = PROG.split('\n');
    for (const hint of hints) assert.equal(hint.position.character, lines[hint.position.line].length);
  });

  it('hovers a line with its events, counts, sample arguments, pid/thread and run', async () => {
    const u = uri(ws.prog);
    const text = await client.hoverText(u, PROG_LINES.connect, 2);
    assert.ok(text, 'a hover');
    assert.match(text, /socket\.connect/);
    assert.match(text, /×3/);
    assert.match(text, /refused by denyEvents ×3/);
    assert.match(text, /\('127\.0\.0\.1', 9\)/);
    assert.match(text, /pid \d+/);
    assert.match(text, /main thread/);
    assert.match(text, /prog\.jsonl/);
    // The hover keeps what the hint leaves out: the import statements' events.
    const imports = await client.hoverText(u, 1, 3);
    assert.ok(imports && /`import`/.test(imports) && /noisy/.test(imports), imports);
    assert.equal(await client.hoverText(u, 3, 0), undefined);
  });

  it('reports denied operations as warnings, with break / allow actions', async () => {
    const u = uri(ws.prog);
    const diags = await client.waitFor('prog.py diagnostics', () => {
      const d = client.diagnosticsOf(u);
      return d.length > 0 ? d : undefined;
    });
    assert.equal(diags.length, 1);
    const [d] = diags;
    assert.equal(d.severity, DiagnosticSeverity.Warning);
    assert.equal(d.message, 'socket.connect refused by denyEvents (×3)');
    assert.equal(d.range.start.line, PROG_LINES.connect);
    assert.equal(d.range.start.character, PROG.split('\n')[PROG_LINES.connect].indexOf('socket'));

    const actions = (await client.codeActions(u, d.range, [d])).filter(isAction);
    const breakOn = actions.find((a) => a.title === 'Break on socket.connect');
    assert.ok(breakOn, JSON.stringify(actions.map((a) => a.title)));
    assert.deepEqual(breakOn.command, {
      title: 'Break on socket.connect',
      command: 'spython.addEventBreakpoint',
      arguments: ['socket.connect'],
    });
    const allow = actions.find((a) => a.title === 'Allow socket.connect in launch.json');
    assert.ok(allow?.edit?.changes, JSON.stringify(actions.map((a) => a.title)));
    const edits = allow.edit.changes[uri(ws.launchJson)];
    const edited = applyTextEdits(fs.readFileSync(ws.launchJson, 'utf8'), edits);
    assert.match(edited, /\/\/ Kept: comments survive/);
    const config = parse(edited).configurations;
    assert.deepEqual(config[0].denyEvents, []);
    assert.equal(config[1].denyEvents, undefined);
  });

  it('offers to break on or deny the events of a line', async () => {
    const u = uri(ws.prog);
    const line = PROG_LINES.listdir;
    const actions = (await client.codeActions(u, { start: { line, character: 0 }, end: { line, character: 0 } }, [])).filter(isAction);
    const titles = actions.map((a) => a.title);
    assert.ok(titles.includes('Break on os.listdir'), JSON.stringify(titles));
    const deny = actions.find((a) => a.title === 'Deny os.listdir in launch.json');
    assert.ok(deny?.edit?.changes, JSON.stringify(titles));
    const edited = applyTextEdits(fs.readFileSync(ws.launchJson, 'utf8'), deny.edit.changes[uri(ws.launchJson)]);
    assert.deepEqual(parse(edited).configurations[0].denyEvents, ['socket.connect', 'os.listdir']);
    // Already denied: not offered again.
    const connect = PROG_LINES.connect;
    const onConnect = (await client.codeActions(u, { start: { line: connect, character: 0 }, end: { line: connect, character: 0 } }, [])).filter(isAction);
    assert.ok(!onConnect.some((a) => a.title.startsWith('Deny socket.connect')));
  });

  it('reports spython.tamper as an error, also in a file that is not open', async () => {
    const u = uri(ws.tamper);
    const diags = await client.waitFor('tamper.py diagnostics', () => {
      const d = client.diagnosticsOf(u);
      return d.length > 0 ? d : undefined;
    });
    assert.equal(diags.length, 1);
    assert.equal(diags[0].severity, DiagnosticSeverity.Error);
    assert.equal(diags[0].range.start.line, TAMPER_LINE);
    assert.match(diags[0].message as string, /^spython\.tamper: sys\.audit was replaced/);
  });

  it('reports a refused import as an error at the importing line', async () => {
    const u = uri(ws.importer);
    await client.open(u, IMPORTER);
    const diags = await client.waitFor('importer.py diagnostics', () => {
      const d = client.diagnosticsOf(u);
      return d.length > 0 ? d : undefined;
    });
    assert.equal(diags.length, 1, JSON.stringify(diags));
    const [d] = diags;
    assert.equal(d.severity, DiagnosticSeverity.Error);
    assert.equal(d.range.start.line, IMPORTER_LINE);
    assert.match(d.message as string, /^verifyImports refused \/.*helper\.py: no xattr/);
    const actions = (await client.codeActions(u, d.range, [d])).filter(isAction);
    assert.deepEqual(actions.filter((a) => a.diagnostics?.length).map((a) => a.title), ['Break on spython.code_refused']);
    // The hint names the refusal too.
    const byLine = await client.hintLines(u);
    assert.match(byLine[IMPORTER_LINE], /spython\.code_refused \(denied\)/);
  });

  it('hovers calls known to raise events in a file never run', async () => {
    const u = uri(ws.never);
    await client.open(u, NEVER_RUN);
    const lines = NEVER_RUN.split('\n');
    const at = async (line: number, word: string, nth = 0) => {
      let col = -1;
      for (let i = 0; i <= nth; i++) col = lines[line].indexOf(word, col + 1);
      assert.ok(col >= 0, `${word} on line ${line}`);
      return client.hoverText(u, line, col + 1);
    };
    const run = await at(8, 'run');
    assert.ok(run);
    assert.match(run, /`subprocess\.run` raises the audit event/);
    assert.match(run, /`subprocess\.Popen\(executable, args, cwd, env\)` — Python 3\.8\+/);
    assert.match((await at(9, 'co'))!, /`subprocess\.check_output` raises.*\n\n- `subprocess\.Popen\(/);
    assert.match((await at(10, 'open'))!, /`builtins\.open` raises.*\n\n- `open\(path, mode, flags\)`/);
    assert.match((await at(12, 'socket'))!, /`socket\.__new__\(self, family, type, protocol\)`/);
    assert.match((await at(13, 'connect'))!, /`socket\.socket\.connect` raises[^]*`socket\.connect\(self, address\)`/);
    assert.match((await at(14, 'write_text'))!, /`pathlib\.Path\.write_text` raises[^]*`open\(path, mode, flags\)`/);
    assert.match((await at(15, 'urlopen'))!, /`urllib\.Request\(fullurl, data, headers, method\)`/);
    assert.match((await at(17, 'eval'))!, /`compile\(source, filename\)`[^]*`exec\(code_object\)`/);
    // Not calls that raise events: a module name, a string, a comment, an unknown method.
    assert.equal(await at(8, 'subprocess'), undefined);
    assert.equal(await at(16, 'open'), undefined);
    assert.equal(await at(16, 'open', 1), undefined);
    assert.equal(await at(11, 'read'), undefined);
    // Never run: no hints, no diagnostics.
    assert.deepEqual(await client.hints(u), []);
    assert.deepEqual(client.diagnosticsOf(u), []);
  });

  it('moves hints with inserted lines and drops those of changed lines', async () => {
    const u = uri(ws.prog);
    // prog.py is open at version 1 (first test).
    await client.change(u, 2, [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: '# one\n# two\n' }]);
    let byLine = await client.hintLines(u);
    assert.deepEqual(Object.keys(byLine).map(Number), [PROG_LINES.connect + 2, PROG_LINES.open + 2, PROG_LINES.listdir + 2, PROG_LINES.exec + 2]);
    assert.equal(byLine[PROG_LINES.connect + 2], '⟵ socket.connect ×3 (denied), socket.__new__ ×3');
    let diags = await client.waitFor('moved diagnostic', () => {
      const d = client.diagnostics.get(u);
      return d?.version === 2 ? d.diagnostics : undefined;
    });
    assert.equal(diags[0].range.start.line, PROG_LINES.connect + 2);
    assert.match((await client.hoverText(u, PROG_LINES.connect + 2, 4))!, /socket\.connect/);

    // Enter at the end of the open(...) line: it keeps its hint, the lines below move down.
    const openLine = PROG_LINES.open + 2;
    const end = PROG.split('\n')[PROG_LINES.open].length;
    await client.change(u, 3, [{ range: { start: { line: openLine, character: end }, end: { line: openLine, character: end } }, text: '\n    ' }]);
    byLine = await client.hintLines(u);
    assert.deepEqual(Object.keys(byLine).map(Number), [PROG_LINES.connect + 2, openLine, PROG_LINES.listdir + 3, PROG_LINES.exec + 3]);

    // Editing the connect line drops its hint, hover and diagnostic; the others stay.
    const connectLine = PROG_LINES.connect + 2;
    const col = PROG.split('\n')[PROG_LINES.connect].indexOf('9');
    await client.change(u, 4, [{ range: { start: { line: connectLine, character: col }, end: { line: connectLine, character: col + 1 } }, text: '10' }]);
    byLine = await client.hintLines(u);
    assert.deepEqual(Object.keys(byLine).map(Number), [openLine, PROG_LINES.listdir + 3, PROG_LINES.exec + 3]);
    assert.equal(await client.hoverText(u, connectLine, 4), undefined);
    diags = await client.waitFor('dropped diagnostic', () => {
      const d = client.diagnostics.get(u);
      return d?.version === 4 ? d.diagnostics : undefined;
    });
    assert.deepEqual(diags, []);

    // Deleting the two inserted lines brings the rest back to the recorded lines.
    await client.change(u, 5, [{ range: { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } }, text: '' }]);
    byLine = await client.hintLines(u);
    assert.deepEqual(Object.keys(byLine).map(Number), [PROG_LINES.open, PROG_LINES.listdir + 1, PROG_LINES.exec + 1]);
  });

  it('shows nothing for a file changed on disk since its latest run', async () => {
    const copy = path.join(ws.root, 'changed.py');
    fs.writeFileSync(copy, WATCHED);
    await record(copy, path.join(ws.runs, 'changed.jsonl'), [], { N: '1' });
    await client.waitFor('the run of changed.py', async () => {
      await client.open(uri(copy), WATCHED, 1);
      const byLine = await client.hintLines(uri(copy));
      await client.close(uri(copy));
      return byLine[WATCHED_LINE] ? byLine : undefined;
    });
    // Same text, but written after the run: the lens cannot know it is what ran.
    await new Promise((resolve) => setTimeout(resolve, 20));
    fs.writeFileSync(copy, WATCHED.replace('import os', 'import os  '));
    await client.open(uri(copy), WATCHED.replace('import os', 'import os  '), 2);
    assert.deepEqual(await client.hints(uri(copy)), []);
    await client.close(uri(copy));
  });

  it('refreshes hints when a new run appears in the runs directory', async () => {
    const u = uri(ws.watched);
    await client.open(u, WATCHED);
    assert.deepEqual(await client.hintLines(u), { [WATCHED_LINE]: '⟵ os.listdir ×2' });
    const refreshes = client.refreshes;
    await record(ws.watched, path.join(ws.runs, 'watched-2.jsonl'), [], { N: '5' });
    const byLine = await client.waitFor('refreshed hints', async () => {
      if (client.refreshes === refreshes) return undefined;
      const hints = await client.hintLines(u);
      return hints[WATCHED_LINE] === '⟵ os.listdir ×5' ? hints : undefined;
    });
    assert.deepEqual(byLine, { [WATCHED_LINE]: '⟵ os.listdir ×5' });
    assert.match((await client.hoverText(u, WATCHED_LINE, 6))!, /watched-2\.jsonl[^]*1 older run also ran this file/);
  });

  it('turns off with spython.lens.enabled', async () => {
    const u = uri(ws.watched);
    await client.configure({ spython: { lens: { enabled: false } } });
    await client.waitFor('cleared diagnostics', () => (client.diagnosticsOf(uri(ws.tamper)).length === 0 ? true : undefined));
    assert.deepEqual(await client.hints(u), []);
    assert.equal(await client.hover(u, WATCHED_LINE, 6), null);
    await client.configure({ spython: { lens: { enabled: true } } });
    await client.waitFor('diagnostics again', () => (client.diagnosticsOf(uri(ws.tamper)).length === 1 ? true : undefined));
    assert.deepEqual(await client.hintLines(u), { [WATCHED_LINE]: '⟵ os.listdir ×5' });
  });
});

describe('audit lens language server without runs', () => {
  it('hovers the catalogue, and offers no hints or actions', async () => {
    const root = tempDir('spython-lens-empty-');
    const client = await LspClient.start({ rootDir: root, runsDir: path.join(root, 'no-runs-yet') });
    try {
      const file = path.join(root, 'x.py');
      const text = 'import os\nos.system("true")\n';
      fs.writeFileSync(file, text);
      await client.open(uri(file), text);
      assert.match((await client.hoverText(uri(file), 1, 4))!, /`os\.system\(command\)`/);
      assert.deepEqual(await client.hints(uri(file)), []);
      const diagnostic: Diagnostic = {
        range: { start: { line: 1, character: 0 }, end: { line: 1, character: 17 } },
        message: 'x',
      };
      assert.deepEqual(await client.codeActions(uri(file), diagnostic.range, [diagnostic]), []);
    } finally {
      await client.stop();
    }
  });
});
