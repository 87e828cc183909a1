// How recorded events read: the inlay hint label of a line, its hover, the diagnostics.

import { DiagnosticSeverity } from 'vscode-languageserver/node';
import { AuditEventInfo, EVENT_CATEGORIES } from '../adapter/catalog';
import { interestRank } from './interest';
import { EventAggregate, LineEvents, Run } from './runs';

/** At most this many events named in a hint; the rest are counted. */
const HINT_EVENTS = 4;

export function deniedTotal(agg: EventAggregate): number {
  let n = 0;
  for (const count of agg.denied.values()) n += count;
  return n;
}

/** Events of a line by interest: denied first, then network, subprocess, file writes, dynamic code..., then by count. */
export function byInterest(events: Iterable<EventAggregate>, count: (a: EventAggregate) => number): EventAggregate[] {
  return [...events].sort(
    (a, b) =>
      interestRank(deniedTotal(a) > 0, a.categories) - interestRank(deniedTotal(b) > 0, b.categories) ||
      count(b) - count(a) ||
      (a.event < b.event ? -1 : a.event > b.event ? 1 : 0),
  );
}

/** Whether an event shows in the hint: it told something (see interest.ts) or was refused. */
export function inHint(agg: EventAggregate): boolean {
  return agg.telling > 0 || deniedTotal(agg) > 0;
}

/** `⟵ socket.connect ×3 (denied), open ×12`, or undefined when the line raised only noise. */
export function hintLabel(events: LineEvents): string | undefined {
  const shown = byInterest([...events.values()].filter(inHint), (a) => a.telling);
  if (shown.length === 0) return undefined;
  const parts = shown.slice(0, HINT_EVENTS).map((agg) => {
    const n = Math.max(agg.telling, deniedTotal(agg));
    const denied = deniedTotal(agg);
    let text = agg.event + (n > 1 ? ` ×${n}` : '');
    if (denied > 0) text += denied === agg.count ? ' (denied)' : ` (${denied} denied)`;
    return text;
  });
  if (shown.length > HINT_EVENTS) parts.push(`+${shown.length - HINT_EVENTS} more`);
  return `⟵ ${parts.join(', ')}`;
}

/** Inline code that survives backticks in the text. */
export function code(text: string): string {
  const ticks = text.match(/`+/g);
  const fence = '`'.repeat(ticks ? Math.max(...ticks.map((t) => t.length)) + 1 : 1);
  const pad = fence.length > 1 ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

function when(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function list(values: Iterable<string | number>, max = 4): string {
  const all = [...values].map(String);
  return all.length > max ? `${all.slice(0, max).join(', ')}, …` : all.join(', ');
}

/** The hover of a line that raised events: every event (noise too), counts, samples, pids/threads, the run. */
export function lineHover(events: LineEvents, run: Run, runsWithFile: number): string {
  const out: string[] = [];
  const older = runsWithFile > 1 ? ` · ${runsWithFile - 1} older run${runsWithFile > 2 ? 's' : ''} also ran this file` : '';
  out.push(`**Audit events on this line** — run ${code(run.name)} (${when(run.mtimeMs)})${older}`, '');
  for (const agg of byInterest(events.values(), (a) => a.count)) {
    const facts = [`**${code(agg.event)}** ×${agg.count}`];
    for (const [policy, n] of agg.denied) facts.push(`refused by ${policy}${n > 1 ? ` ×${n}` : ''}`);
    if (agg.categories.size > 0) {
      facts.push([...agg.categories].map((id) => EVENT_CATEGORIES.find((c) => c.id === id)?.label.toLowerCase() ?? id).join(', '));
    }
    if (!inHint(agg)) facts.push('_noisy: not in the hint_');
    out.push(`- ${facts.join(' · ')}  `);
    const who = `${agg.pids.size > 1 ? 'pids' : 'pid'} ${list(agg.pids)} · ${list(agg.threads)}`;
    const samples = agg.samples.map((s) => code(agg.event + s));
    out.push(`  ${samples.join('  \n  ')}${samples.length > 0 ? '  \n  ' : ''}${who}`);
  }
  return out.join('\n');
}

function signature(info: AuditEventInfo): string {
  return `${info.event}(${info.args.join(', ')})`;
}

/** The catalogue hover of a call: `subprocess.run` raises `subprocess.Popen(executable, args, cwd, env)`. */
export function callHover(call: string, events: readonly AuditEventInfo[]): string {
  const lines = [`${code(call)} raises the audit event${events.length > 1 ? 's' : ''}`, ''];
  for (const info of events) {
    const notes = [`Python ${info.since}+`];
    if (info.removedIn) notes.push(`removed in ${info.removedIn}`);
    if (info.platform && info.platform !== 'all') notes.push(`${info.platform} only`);
    lines.push(`- ${code(signature(info))} — ${notes.join(', ')}`);
  }
  return lines.join('\n');
}

export type DiagnosticKind = 'denied' | 'code_refused' | 'tamper';

export interface DiagnosticData {
  kind: DiagnosticKind;
  event: string;
  /** Policies that refused it (denied). */
  policies: string[];
  run: string;
}

export interface LineDiagnostic {
  severity: DiagnosticSeverity;
  message: string;
  data: DiagnosticData;
}

/** Denied operations, refused imports and tampering recorded on a line. */
export function lineDiagnostics(events: LineEvents, run: Run): LineDiagnostic[] {
  const out: LineDiagnostic[] = [];
  for (const agg of byInterest(events.values(), (a) => a.count)) {
    const times = agg.count > 1 ? ` (×${agg.count})` : '';
    if (agg.event === 'spython.code_refused') {
      const [, policy, reason] = agg.details[0] ?? [];
      const policyName = typeof policy === 'string' ? policy : [...agg.denied.keys()][0] ?? 'verifyImports';
      out.push({
        severity: DiagnosticSeverity.Error,
        // As the launcher words the PermissionError: "verifyImports refused /app/lib/x.py: no xattr: ...".
        message: `${policyName} refused ${typeof reason === 'string' ? reason : 'a code file'}${times}`,
        data: { kind: 'code_refused', event: agg.event, policies: [policyName], run: run.file },
      });
    } else if (agg.event === 'spython.tamper') {
      const [message] = agg.details[0] ?? [];
      out.push({
        severity: DiagnosticSeverity.Error,
        message: `spython.tamper: ${typeof message === 'string' ? message : 'the audit hooks were tampered with'}${times}`,
        data: { kind: 'tamper', event: agg.event, policies: [], run: run.file },
      });
    } else if (agg.denied.size > 0) {
      const total = deniedTotal(agg);
      const policies = [...agg.denied.keys()];
      const by =
        agg.denied.size === 1 ? policies[0] : [...agg.denied].map(([p, n]) => `${p} ×${n}`).join(', ');
      out.push({
        severity: DiagnosticSeverity.Warning,
        message: `${agg.event} refused by ${by}${total > 1 ? ` (×${total})` : ''}`,
        data: { kind: 'denied', event: agg.event, policies, run: run.file },
      });
    }
  }
  return out;
}
