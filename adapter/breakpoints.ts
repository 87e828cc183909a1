// The session's breakpoints as the launcher takes them (docs/protocol.md, "breakpoint entry"): function
// breakpoints from the editor, breakOnEvents from launch.json and the enabled event categories, each
// entry with an id that tells, when the launcher stops on it, where it came from.

import { categoryRules, DENIED_CATEGORY, EVENT_CATEGORIES, EventCategory } from './catalog';
import { EventBreakpoint } from './config';

/** A breakpoint entry of docs/protocol.md ("Configuration"). */
export interface BreakpointEntry {
  id: number;
  event: string;
  condition?: string;
  hitCondition?: string;
  logMessage?: string;
  kind: 'function' | 'filter';
}

/** A function breakpoint as the editor gives it: its name is an event name or glob. */
export interface FunctionBreakpointRequest {
  name: string;
  condition?: string;
  hitCondition?: string;
  logMessage?: string;
}

/** What the editor is told about a function breakpoint. */
export interface FunctionBreakpointState {
  id: number;
  verified: boolean;
  message?: string;
}

/** An enabled category, with the condition the user gave it in the Breakpoints view. */
export interface FilterRequest {
  filterId: string;
  condition?: string;
}

/** Where an entry came from. */
export type BreakpointOrigin =
  | { kind: 'function'; event: string; logpoint: boolean }
  | { kind: 'launch'; event: string; logpoint: boolean }
  | { kind: 'filter'; category: EventCategory };

/** `N`, `>=N`, `>N`, `==N`, `<N`, `<=N` or `%N`. */
const HIT_CONDITION = /^\s*(>=|>|==|<=|<|%)?\s*\d+\s*$/;

export class BreakpointRegistry {
  private nextId = 1;
  private functionEntries: BreakpointEntry[] = [];
  private launchEntries: BreakpointEntry[] = [];
  private filterEntries: BreakpointEntry[] = [];
  private readonly origins = new Map<number, BreakpointOrigin>();
  /** The `denied` category is on: stop after any policy refusal. */
  breakOnDenied = false;

  /** Replaces the editor's function breakpoints; invalid ones are reported and left out. */
  setFunctionBreakpoints(requests: readonly FunctionBreakpointRequest[]): FunctionBreakpointState[] {
    this.forget(this.functionEntries);
    this.functionEntries = [];
    return requests.map((request) => {
      const id = this.nextId++;
      const problem = invalidBreakpoint(request.name, request.hitCondition);
      if (problem) return { id, verified: false, message: problem };
      this.functionEntries.push(this.entry(id, 'function', request.name.trim(), request));
      this.origins.set(id, { kind: 'function', event: request.name.trim(), logpoint: !!request.logMessage });
      return { id, verified: true };
    });
  }

  /** Sets the breakOnEvents of launch.json. Returns a message per invalid one (left out). */
  setLaunchBreakpoints(breakpoints: readonly EventBreakpoint[]): string[] {
    this.forget(this.launchEntries);
    this.launchEntries = [];
    const problems: string[] = [];
    for (const breakpoint of breakpoints) {
      const problem = invalidBreakpoint(breakpoint.event, breakpoint.hitCondition);
      if (problem) {
        problems.push(`breakOnEvents "${breakpoint.event}": ${problem}`);
        continue;
      }
      const id = this.nextId++;
      this.launchEntries.push(this.entry(id, 'function', breakpoint.event.trim(), breakpoint));
      this.origins.set(id, { kind: 'launch', event: breakpoint.event.trim(), logpoint: !!breakpoint.logMessage });
    }
    return problems;
  }

  /** Replaces the enabled categories. Throws on an unknown filter id. */
  setFilters(filters: readonly FilterRequest[]): void {
    const categories = filters.map((filter) => {
      const category = EVENT_CATEGORIES.find((c) => c.id === filter.filterId);
      if (!category) throw new Error(`unknown breakpoint filter "${filter.filterId}"`);
      return { category, condition: filter.condition };
    });
    this.forget(this.filterEntries);
    this.filterEntries = [];
    this.breakOnDenied = false;
    for (const { category, condition } of categories) {
      if (category.id === DENIED_CATEGORY) this.breakOnDenied = true;
      for (const rule of categoryRules(category, condition)) {
        const id = this.nextId++;
        this.filterEntries.push({ id, event: rule.event, ...(rule.condition ? { condition: rule.condition } : {}), kind: 'filter' });
        this.origins.set(id, { kind: 'filter', category });
      }
    }
  }

  /** Every entry in force, for `welcome.config.breakpoints` and `setBreakpoints`. */
  entries(): BreakpointEntry[] {
    return [...this.functionEntries, ...this.launchEntries, ...this.filterEntries];
  }

  origin(id: number): BreakpointOrigin | undefined {
    return this.origins.get(id);
  }

  private entry(
    id: number,
    kind: 'function' | 'filter',
    event: string,
    options: { condition?: string; hitCondition?: string; logMessage?: string },
  ): BreakpointEntry {
    const entry: BreakpointEntry = { id, event, kind };
    if (options.condition?.trim()) entry.condition = options.condition.trim();
    if (options.hitCondition?.trim()) entry.hitCondition = options.hitCondition.trim();
    if (options.logMessage) entry.logMessage = options.logMessage;
    return entry;
  }

  private forget(entries: readonly BreakpointEntry[]): void {
    for (const entry of entries) this.origins.delete(entry.id);
  }
}

function invalidBreakpoint(event: string, hitCondition: string | undefined): string | undefined {
  if (event.trim() === '') return 'an event name or glob is needed (socket.connect, subprocess.*)';
  if (hitCondition?.trim() && !HIT_CONDITION.test(hitCondition)) {
    return `hit condition "${hitCondition}" must be N, >=N, >N, ==N, <N, <=N or %N`;
  }
  return undefined;
}
