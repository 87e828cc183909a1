// The "Deny / Allow this event in launch.json" code actions: edits of .vscode/launch.json (JSON with
// comments) made with jsonc-parser, so comments, order and formatting survive.
//
// - Deny: the event is appended to `denyEvents` of every `spython` configuration that does not deny it
//   yet. A launch.json without a `spython` configuration gets one added; a workspace folder without a
//   launch.json gets one created (when the client can create files), holding that configuration.
// - Allow: every `denyEvents` entry whose glob matches the event is removed from every `spython`
//   configuration (the title names the globs when they are wider than the event). Offered only when
//   launch.json has such an entry: a refusal configured elsewhere (CLI flags) is not launch.json's to lift.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { applyEdits, FormattingOptions, modify, parse, ParseError } from 'jsonc-parser';
import { CreateFile, TextDocumentEdit, TextEdit, WorkspaceEdit } from 'vscode-languageserver/node';
import { eventMatcher } from '../adapter/catalog';

export interface LaunchEditAction {
  title: string;
  edit: WorkspaceEdit;
}

/** The configuration added when launch.json has none of type spython. */
export function newConfiguration(denyEvents: string[]): Record<string, unknown> {
  return {
    type: 'spython',
    request: 'launch',
    name: 'Python (audit hooks)',
    program: '${file}',
    denyEvents,
  };
}

function formatting(text: string): FormattingOptions {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const indented = /^([ \t]+)\S/m.exec(text);
  if (indented && indented[1].startsWith('\t')) return { insertSpaces: false, tabSize: 4, eol };
  return { insertSpaces: true, tabSize: indented ? Math.min(indented[1].length, 8) : 4, eol };
}

/** One edit turning `before` into `after`: the differing middle. */
function minimalEdit(before: string, after: string): TextEdit {
  let prefix = 0;
  const max = Math.min(before.length, after.length);
  while (prefix < max && before[prefix] === after[prefix]) prefix++;
  let suffix = 0;
  while (
    suffix < max - prefix &&
    before[before.length - 1 - suffix] === after[after.length - 1 - suffix]
  ) {
    suffix++;
  }
  const position = (offset: number) => {
    const lines = before.slice(0, offset).split(/\r\n|\r|\n/);
    return { line: lines.length - 1, character: lines[lines.length - 1].length };
  };
  return TextEdit.replace(
    { start: position(prefix), end: position(before.length - suffix) },
    after.slice(prefix, after.length - suffix),
  );
}

interface Parsed {
  text: string;
  root: Record<string, unknown>;
}

function readLaunchJson(file: string): Parsed | 'missing' | 'unusable' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return 'missing';
  }
  const errors: ParseError[] = [];
  const root: unknown = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0 || typeof root !== 'object' || root === null || Array.isArray(root)) return 'unusable';
  return { text, root: root as Record<string, unknown> };
}

function spythonConfigurations(root: Record<string, unknown>): [index: number, config: Record<string, unknown>][] {
  const list = root.configurations;
  if (!Array.isArray(list)) return [];
  return list.flatMap((c, i): [number, Record<string, unknown>][] =>
    typeof c === 'object' && c !== null && (c as Record<string, unknown>).type === 'spython'
      ? [[i, c as Record<string, unknown>]]
      : [],
  );
}

function ruleGlob(rule: unknown): string | undefined {
  if (typeof rule === 'string') return rule.split(/\s+if\s+/)[0].trim();
  if (typeof rule === 'object' && rule !== null && typeof (rule as { event?: unknown }).event === 'string') {
    return (rule as { event: string }).event;
  }
  return undefined;
}

/** An unconditional entry naming exactly the event (or a glob matching it): already denied. */
function alreadyDenied(rules: unknown[], event: string): boolean {
  return rules.some((rule) => {
    const glob = ruleGlob(rule);
    const conditional =
      (typeof rule === 'string' && /\s+if\s+/.test(rule)) ||
      (typeof rule === 'object' && rule !== null && 'condition' in rule);
    return glob !== undefined && !conditional && eventMatcher([glob])(event);
  });
}

export interface LaunchTarget {
  /** The workspace folder whose .vscode/launch.json is edited. */
  folder: string;
  /** The client can create files in a WorkspaceEdit (documentChanges + resourceOperations "create"). */
  canCreateFiles: boolean;
}

/** "Deny this event in launch.json", or undefined when there is nothing to do. */
export function denyAction(target: LaunchTarget, event: string): LaunchEditAction | undefined {
  const file = path.join(target.folder, '.vscode', 'launch.json');
  const uri = pathToFileURL(file).href;
  const title = `Deny ${event} in launch.json`;
  const parsed = readLaunchJson(file);
  if (parsed === 'unusable') return undefined;
  if (parsed === 'missing') {
    if (!target.canCreateFiles) return undefined;
    const content =
      JSON.stringify({ version: '0.2.0', configurations: [newConfiguration([event])] }, null, 4) + '\n';
    return {
      title,
      edit: {
        documentChanges: [
          CreateFile.create(uri, { ignoreIfExists: true }),
          TextDocumentEdit.create({ uri, version: null }, [TextEdit.insert({ line: 0, character: 0 }, content)]),
        ],
      },
    };
  }
  const options = formatting(parsed.text);
  let text = parsed.text;
  const configs = spythonConfigurations(parsed.root);
  if (configs.length > 0) {
    let changed = false;
    for (const [index, config] of configs) {
      const rules = config.denyEvents;
      if (Array.isArray(rules)) {
        if (alreadyDenied(rules, event)) continue;
        text = applyEdits(
          text,
          modify(text, ['configurations', index, 'denyEvents', rules.length], event, {
            formattingOptions: options,
            isArrayInsertion: true,
          }),
        );
      } else {
        text = applyEdits(text, modify(text, ['configurations', index, 'denyEvents'], [event], { formattingOptions: options }));
      }
      changed = true;
    }
    if (!changed) return undefined;
  } else {
    const list = parsed.root.configurations;
    const at = Array.isArray(list) ? list.length : undefined;
    text = applyEdits(
      text,
      at === undefined
        ? modify(text, ['configurations'], [newConfiguration([event])], { formattingOptions: options })
        : modify(text, ['configurations', at], newConfiguration([event]), {
            formattingOptions: options,
            isArrayInsertion: true,
          }),
    );
  }
  return { title, edit: { changes: { [uri]: [minimalEdit(parsed.text, text)] } } };
}

/** "Allow this event in launch.json": removes the denyEvents entries matching it. */
export function allowAction(target: LaunchTarget, event: string): LaunchEditAction | undefined {
  const file = path.join(target.folder, '.vscode', 'launch.json');
  const parsed = readLaunchJson(file);
  if (typeof parsed === 'string') return undefined;
  const options = formatting(parsed.text);
  let text = parsed.text;
  const removed = new Set<string>();
  for (const [index, config] of spythonConfigurations(parsed.root)) {
    const rules = config.denyEvents;
    if (!Array.isArray(rules)) continue;
    // Last first, so earlier indexes stay valid.
    for (let i = rules.length - 1; i >= 0; i--) {
      const glob = ruleGlob(rules[i]);
      if (glob === undefined || !eventMatcher([glob])(event)) continue;
      text = applyEdits(text, modify(text, ['configurations', index, 'denyEvents', i], undefined, { formattingOptions: options }));
      removed.add(glob);
    }
  }
  if (removed.size === 0) return undefined;
  const wider = [...removed].filter((g) => g !== event);
  const title =
    `Allow ${event} in launch.json` +
    (wider.length > 0 ? ` (removes ${wider.map((g) => `"${g}"`).join(', ')} from denyEvents)` : '');
  return { title, edit: { changes: { [pathToFileURL(file).href]: [minimalEdit(parsed.text, text)] } } };
}
