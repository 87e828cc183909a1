// `--sarif FILE`: a SARIF 2.1.0 log with one result per denied operation (denyEvents, a prompt answered
// no, verifyImports, startupControl...) and per event matching --fail-on; ruleId is the event's name
// and the location the Python line that raised it.

import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Sarif from 'sarif';
import { eventInfo } from '../catalog';
import { eventSite } from '../records';
import { argumentsText } from './render';
import { Finding, targetText } from './summary';

export const SARIF_SCHEMA = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';
const AUDIT_EVENTS_URI = 'https://docs.python.org/3/library/audit_events.html';
const ROOT = 'SRCROOT';

export interface SarifInput {
  findings: readonly Finding[];
  /** Findings left out past the limit. */
  dropped: number;
  toolVersion: string;
  /** Relative locations are relative to this directory (the workspace, or the current directory). */
  base: string;
  commandLine: string[];
  exitCode: number | undefined;
  /** How the program ended, for the invocation's description. */
  ending: string;
  /** The CLI's own exit status: a --fail-on match makes the run unsuccessful. */
  successful: boolean;
  startTime: Date;
  endTime: Date;
  /** Things worth saying about the run (no terminal for a break, a start refused...). */
  notes: string[];
}

export function sarifLog(input: SarifInput): Sarif.Log {
  const rules: Sarif.ReportingDescriptor[] = [];
  const ruleIndex = new Map<string, number>();
  const rootUri = pathToFileURL(input.base.endsWith(path.sep) ? input.base : input.base + path.sep).href;

  const results: Sarif.Result[] = input.findings.map(({ record, failOn }) => {
    let index = ruleIndex.get(record.event);
    if (index === undefined) {
      index = rules.length;
      ruleIndex.set(record.event, index);
      rules.push(rule(record.event));
    }
    const target = targetText(record);
    const what = target ? `${record.event} ${target}` : record.event;
    const why: string[] = [];
    if (record.denied) why.push(`refused by ${record.denied}`);
    if (failOn !== undefined) why.push(`matched --fail-on ${failOn}`);
    const result: Sarif.Result = {
      ruleId: record.event,
      ruleIndex: index,
      level: 'error',
      kind: 'fail',
      message: { text: `${what}: ${why.join(', ')}` },
      properties: {
        ...(record.denied ? { policy: record.denied } : {}),
        ...(failOn !== undefined ? { failOn } : {}),
        arguments: argumentsText(record),
        pid: record.pid,
        tid: record.tid,
        thread: record.thread,
        seq: record.seq,
      },
    };
    const site = eventSite(record);
    const located = locationOf(site.file, site.line, site.func, input.base);
    if (located) result.locations = [located];
    return result;
  });

  const notifications: Sarif.Notification[] = input.notes.map((text) => ({ level: 'note', message: { text } }));
  if (input.dropped > 0) {
    notifications.push({
      level: 'warning',
      message: { text: `${input.dropped} more results were left out (every record is in the JSONL log)` },
    });
  }
  const invocation: Sarif.Invocation = {
    executionSuccessful: input.successful,
    commandLine: input.commandLine.map(quoteArgument).join(' '),
    arguments: input.commandLine.slice(1),
    workingDirectory: { uri: pathToFileURL(process.cwd()).href },
    startTimeUtc: input.startTime.toISOString(),
    endTimeUtc: input.endTime.toISOString(),
    properties: { programEnding: input.ending },
  };
  if (input.exitCode !== undefined) invocation.exitCode = input.exitCode;
  if (notifications.length > 0) invocation.toolExecutionNotifications = notifications;

  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'spython-audit',
            version: input.toolVersion,
            informationUri: AUDIT_EVENTS_URI,
            rules,
          },
        },
        originalUriBaseIds: { [ROOT]: { uri: rootUri } },
        invocations: [invocation],
        columnKind: 'unicodeCodePoints',
        results,
      },
    ],
  };
}

function rule(event: string): Sarif.ReportingDescriptor {
  const info = eventInfo(event);
  const descriptor: Sarif.ReportingDescriptor = {
    id: event,
    shortDescription: { text: `Audit event ${event}` },
    helpUri: AUDIT_EVENTS_URI,
    defaultConfiguration: { level: 'error' },
  };
  if (info) {
    const raisedBy = info.raisedBy?.length ? `Raised by ${info.raisedBy.join(', ')}` : 'Raised by CPython';
    descriptor.fullDescription = { text: `${raisedBy} with the arguments (${info.args.join(', ')}).` };
  } else if (event.startsWith('spython.')) {
    descriptor.fullDescription = { text: 'Raised by the SPython launcher itself.' };
  }
  return descriptor;
}

/** A file under the base is relative to SRCROOT; other absolute paths are file URIs; `<frozen x>` is logical only. */
function locationOf(file: string | undefined, line: number | undefined, func: string | undefined, base: string): Sarif.Location | undefined {
  const logical: Sarif.LogicalLocation[] | undefined = func ? [{ name: func, kind: 'function' }] : undefined;
  if (file === undefined || !path.isAbsolute(file)) {
    if (!logical && file === undefined) return undefined;
    return { logicalLocations: logical, ...(file !== undefined ? { message: { text: `in ${file}` } } : {}) };
  }
  const relative = path.relative(base, file);
  const artifactLocation: Sarif.ArtifactLocation =
    relative && !relative.startsWith('..') && !path.isAbsolute(relative)
      ? { uri: relative.split(path.sep).map(encodeURIComponent).join('/'), uriBaseId: ROOT }
      : { uri: pathToFileURL(file).href };
  const physicalLocation: Sarif.PhysicalLocation = { artifactLocation };
  if (line !== undefined && line >= 1) physicalLocation.region = { startLine: line };
  return logical ? { physicalLocation, logicalLocations: logical } : { physicalLocation };
}

function quoteArgument(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
