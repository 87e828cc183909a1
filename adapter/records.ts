// Event records (docs/protocol.md, "Event records") and how they read in the Debug Console: argument
// values rendered back into Python-like text, `socket.connect ('127.0.0.1', 8080)  demo.py:12`.

import * as path from 'node:path';
import { mainArgument, visibleArguments } from './catalog';

/** A parsed event record. */
export interface AuditRecord {
  event: string;
  seq: number;
  ts: number;
  pid: number;
  ppid: number;
  tid: number;
  thread: string | null;
  file?: string;
  line?: number;
  func?: string;
  /** Set when file/line is the interpreter's library code: the program's frame that called into it. */
  caller?: SourceSite;
  args: unknown[];
  /** The policy that refused the operation. */
  denied?: string;
}

export interface SourceSite {
  file?: string;
  line?: number;
  func?: string;
}

/**
 * Where the program raised the event: the line that called into the library when the record names
 * one (`subprocess.run(…)` rather than subprocess.py), else the innermost frame.
 */
export function eventSite(record: AuditRecord): SourceSite {
  return record.caller ?? record;
}

/** Longest argument text in an event line or a stop description. */
const MAX_ARGUMENTS_TEXT = 240;

/** `socket.connect ('127.0.0.1', 8080)  demo.py:12`, with `  [denied by denyEvents]` when refused. */
export function eventLine(record: AuditRecord): string {
  const shown = visibleArguments(record.event, record.args);
  let text = record.event;
  if (shown.length === 1) text += ' ' + truncate(formatValue(shown[0]));
  else if (shown.length > 1) text += ' ' + truncate(formatTuple(shown));
  const site = eventSite(record);
  if (site.file !== undefined) text += `  ${path.basename(site.file)}${site.line ? `:${site.line}` : ''}`;
  if (record.denied) text += `  [denied by ${record.denied}]`;
  return text;
}

/** `socket.connect ('127.0.0.1', 8080)`: the event and its main argument. */
export function eventSummary(record: AuditRecord): string {
  const main = mainArgument(record.event, record.args);
  return main === undefined ? record.event : `${record.event} ${truncate(formatValue(main))}`;
}

/** Renders one argument value (docs/protocol.md, "Rendering of arguments") as Python would show it. */
export function formatValue(value: unknown): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return pythonString(value);
  if (Array.isArray(value)) return formatTuple(value);
  if (typeof value !== 'object') return String(value);
  const tagged = value as Record<string, unknown>;
  if ('$str' in tagged) return `${pythonString(String(tagged.$str))}… (${tagged.len} characters)`;
  if ('$bytes' in tagged) {
    const body = String(tagged.$bytes);
    const more = typeof tagged.len === 'number' && tagged.len > 256 ? `… (${tagged.len} bytes)` : '';
    return `b'${body}'${more}`;
  }
  if ('$int' in tagged) return tagged.$int === null ? `<int of ${tagged.bits} bits>` : String(tagged.$int);
  if ('$float' in tagged) return String(tagged.$float);
  if ('$more' in tagged) return `…${tagged.$more} more`;
  if ('$dict' in tagged && Array.isArray(tagged.$dict)) {
    const items = tagged.$dict.map((pair) =>
      Array.isArray(pair) ? `${formatValue(pair[0])}: ${formatValue(pair[1])}` : formatValue(pair),
    );
    return `{${items.join(', ')}}`;
  }
  if ('$code' in tagged) return `<code object ${tagged.$code} at ${tagged.file}:${tagged.line}>`;
  if ('$cycle' in tagged) return `<${tagged.$cycle} ...>`;
  if ('$type' in tagged) return tagged.depth ? `<${tagged.$type} ...>` : `<${tagged.$type}>`;
  return JSON.stringify(value);
}

/** Tuples and lists arrive alike, as arrays; both are shown as tuples. */
function formatTuple(items: readonly unknown[]): string {
  const parts = items.map(formatValue);
  return parts.length === 1 ? `(${parts[0]},)` : `(${parts.join(', ')})`;
}

/** Python's repr of a str: single quotes unless the text holds one and no double quote. */
function pythonString(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else if (code >= 0xd800 && code <= 0xdfff) out += '\\u' + code.toString(16); // a lone surrogate
    else out += ch;
  }
  return out + quote;
}

function truncate(text: string): string {
  return text.length > MAX_ARGUMENTS_TEXT ? text.slice(0, MAX_ARGUMENTS_TEXT - 1) + '…' : text;
}
