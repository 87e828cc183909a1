// Words the extension shows, without `vscode` (plain Node tests cover them): the prompt's question, the
// status bar's text, the catalogue's quick pick entries.

import { AUDIT_EVENTS, AuditEventInfo } from '../adapter/catalog';
import { thousands } from '../adapter/thousands';

/** `('93.184.216.34', 443)` → `93.184.216.34:443`; `('::1', 443, 0, 0)` → `[::1]:443`; else unchanged. */
export function prettyTarget(target: string): string {
  const address = /^\(\s*'([^']*)',\s*(\d+)(?:,\s*\d+,\s*\d+)?\s*\)$/.exec(target.trim());
  if (address) {
    const host = address[1].includes(':') ? `[${address[1]}]` : address[1];
    return `${host}:${address[2]}`;
  }
  return target;
}

/** Events whose target is where the operation goes. */
const TOWARDS = /^(socket\.(connect|sendto|sendmsg)|http\.client\.connect|ftplib\.connect|smtplib\.connect|imaplib\.open|poplib\.connect|nntplib\.connect|telnetlib\.Telnet\.open|urllib\.Request)$/;

/** "Allow socket.connect to 93.184.216.34:443?", "Allow subprocess.Popen of ['ls', '-l']?" */
export function promptQuestion(event: string, target: string): string {
  const what = prettyTarget(target);
  if (!what) return `Allow ${event}?`;
  return `Allow ${event} ${TOWARDS.test(event) ? 'to' : 'of'} ${what}?`;
}

export const PROMPT_CHOICES = {
  allow: 'Allow',
  allowAlways: 'Always Allow',
  deny: 'Deny',
} as const;

export type PromptAnswer = keyof typeof PROMPT_CHOICES;

/** The answer for the button pressed; closing the dialog denies (the program is waiting on it). */
export function promptAnswer(choice: string | undefined): PromptAnswer {
  for (const [answer, label] of Object.entries(PROMPT_CHOICES)) if (label === choice) return answer as PromptAnswer;
  return 'deny';
}


export interface StatusCounts {
  records: number;
  denied: number;
  verificationFailures: number;
}

/** `$(shield) 1,234 events  $(circle-slash) 2 denied  $(warning) 1 verification failure` */
export function statusText(c: StatusCounts): string {
  const parts = [`$(shield) ${thousands(c.records)} ${c.records === 1 ? 'event' : 'events'}`];
  parts.push(`$(circle-slash) ${thousands(c.denied)} denied`);
  parts.push(`$(warning) ${thousands(c.verificationFailures)} ${c.verificationFailures === 1 ? 'verification failure' : 'verification failures'}`);
  return parts.join('  ');
}

/** The quick pick's entries over the catalogue: name, arguments, what raises it. */
export interface CatalogueEntry {
  label: string;
  description: string;
  detail: string;
}

export function catalogueEntry(info: AuditEventInfo): CatalogueEntry {
  const raisedBy = info.raisedBy?.length ? `Raised by ${info.raisedBy.slice(0, 4).join(', ')}${info.raisedBy.length > 4 ? ', …' : ''}` : '';
  const facts = [raisedBy, `Python ${info.since}+`];
  if (info.platform !== 'all') facts.push(`${info.platform} only`);
  if (info.noise) facts.push(`noisy: ${info.noise.split(':')[0]}`);
  return {
    label: info.event,
    description: `(${info.args.join(', ')})`,
    detail: facts.filter(Boolean).join(' · '),
  };
}

/** Every catalogue event, those raised on every platform first. */
export function catalogueEntries(): CatalogueEntry[] {
  const rank = (i: AuditEventInfo) => (i.platform === 'all' ? 0 : 1);
  return [...AUDIT_EVENTS].sort((a, b) => rank(a) - rank(b) || a.event.localeCompare(b.event)).map(catalogueEntry);
}

/** A glob or name someone typed: what a function breakpoint accepts (no spaces, not empty). */
export function isEventPattern(text: string): boolean {
  return /^[\w.*?[\]!/-]+$/.test(text.trim());
}

/**
 * `spython: verifyImports (warn): /app/x.py: hash mismatch: xattr … but the file hashes to …`: the
 * launcher's stderr line when verifyImports is "warn" (the file is allowed, so no record says so).
 */
export function parseVerifyWarning(line: string): { file: string; reason: string; detail?: string } | undefined {
  const m =
    /^spython: verifyImports \(warn\): (.+?): (no xattr|hash mismatch|too large|not a regular file|on a noexec mount|not in manifest|bad signature|I\/O error|malformed manifest)(?:: (.*))?$/.exec(
      line.trim(),
    );
  return m ? { file: m[1], reason: m[2], detail: m[3] } : undefined;
}

const CODE_REFUSED = Buffer.from('{"event":"spython.code_refused"');

/**
 * A run-log line recording a code file the launcher refused (`spython.code_refused(path, policy,
 * reason)`): the file and what to say about it; undefined for any other line.
 */
export function parseCodeRefusal(line: Buffer): { file: string; message: string } | undefined {
  if (line.length < CODE_REFUSED.length || !line.subarray(0, CODE_REFUSED.length).equals(CODE_REFUSED)) return undefined;
  try {
    const [file, policy, reason] = (JSON.parse(line.toString('utf8')) as { args?: unknown[] }).args ?? [];
    if (typeof file !== 'string') return undefined;
    return { file, message: `${typeof policy === 'string' ? policy : 'The launcher'} refused this file: ${String(reason ?? 'no reason given')}` };
  } catch {
    return undefined;
  }
}
