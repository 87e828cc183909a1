// Flood control for the Debug Console: a program raising millions of events must not bury the editor
// (VS Code slows down past a few thousand console lines). Each source of lines (an event name, a
// logpoint) has a token bucket — a burst, then a steady rate — and all of them together have another;
// what does not fit is counted and later summarised as `… N more `open` events`. The audit log and the
// views still get every record.

export interface FloodLimits {
  /** Lines one source may show at once before its rate applies. */
  burstPerSource: number;
  /** Lines per second one source may show after its burst. */
  ratePerSource: number;
  /** The same two for all sources together. */
  burstTotal: number;
  rateTotal: number;
}

const DEFAULT_FLOOD_LIMITS: FloodLimits = {
  burstPerSource: 100,
  ratePerSource: 10,
  burstTotal: 400,
  rateTotal: 100,
};

/**
 * Milliseconds on a monotonic clock, as performance.now() counts them: the `performance` global loads
 * perf_hooks on first use, ~0.75 ms of a command's start-up.
 */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

interface Bucket {
  tokens: number;
  /** When the tokens were last topped up (ms). */
  at: number;
}

/** `Key` tells the sources apart: event names, logpoint ids... */
export class FloodControl<Key> {
  private readonly perSource = new Map<Key, Bucket>();
  private readonly total: Bucket;
  private heldBack = new Map<Key, number>();

  constructor(
    private readonly limits: FloodLimits = DEFAULT_FLOOD_LIMITS,
    private readonly now: () => number = monotonicMs,
  ) {
    this.total = { tokens: limits.burstTotal, at: now() };
  }

  /** True when a line from `source` may be shown now; otherwise it is counted as held back. */
  admit(source: Key): boolean {
    const now = this.now();
    let bucket = this.perSource.get(source);
    if (!bucket) {
      bucket = { tokens: this.limits.burstPerSource, at: now };
      this.perSource.set(source, bucket);
    }
    refill(bucket, now, this.limits.burstPerSource, this.limits.ratePerSource);
    refill(this.total, now, this.limits.burstTotal, this.limits.rateTotal);
    if (bucket.tokens >= 1 && this.total.tokens >= 1) {
      bucket.tokens--;
      this.total.tokens--;
      return true;
    }
    this.holdBack(source, 1);
    return false;
  }

  /** Whether `admit(source)` would show a line now (nothing is taken or counted). */
  wouldAdmit(source: Key): boolean {
    const now = this.now();
    refill(this.total, now, this.limits.burstTotal, this.limits.rateTotal);
    const bucket = this.perSource.get(source);
    if (bucket) refill(bucket, now, this.limits.burstPerSource, this.limits.ratePerSource);
    return this.total.tokens >= 1 && (bucket === undefined || bucket.tokens >= 1);
  }

  /** Counts `count` lines from `source` as held back, as `admit` does when it refuses one. */
  holdBack(source: Key, count: number): void {
    this.heldBack.set(source, (this.heldBack.get(source) ?? 0) + count);
  }

  /** The sources with lines held back since the last call, and how many; starts counting afresh. */
  takeHeldBack(): Array<{ source: Key; count: number }> {
    const taken = [...this.heldBack].map(([source, count]) => ({ source, count }));
    this.heldBack = new Map();
    return taken;
  }
}

function refill(bucket: Bucket, now: number, burst: number, rate: number): void {
  const elapsed = now - bucket.at;
  if (elapsed <= 0) return;
  bucket.tokens = Math.min(burst, bucket.tokens + (elapsed * rate) / 1000);
  bucket.at = now;
}

/** What a program's output may put in the Debug Console: a burst, then a steady rate (bytes). */
export interface OutputLimits {
  burstBytes: number;
  bytesPerSecond: number;
}

const DEFAULT_OUTPUT_LIMITS: OutputLimits = { burstBytes: 1024 * 1024, bytesPerSecond: 256 * 1024 };

/**
 * Flood control for the program's own output in the Debug Console: a program writing hundreds of MB
 * would freeze the editor. Output past the budget is read (the program never blocks on it) and
 * counted, not shown; a cut falls after a newline when the admitted part has one.
 */
export class OutputBudget {
  private readonly bucket: Bucket;
  private heldBackBytes = 0;

  constructor(
    private readonly limits: OutputLimits = DEFAULT_OUTPUT_LIMITS,
    private readonly now: () => number = monotonicMs,
  ) {
    this.bucket = { tokens: limits.burstBytes, at: now() };
  }

  /** The part of `text` that may be shown now (possibly all, possibly ''); the rest is counted. */
  admit(text: string): string {
    refill(this.bucket, this.now(), this.limits.burstBytes, this.limits.bytesPerSecond);
    const allowed = Math.floor(this.bucket.tokens);
    if (text.length <= allowed) {
      this.bucket.tokens -= text.length;
      return text;
    }
    let shown = text.slice(0, Math.max(0, allowed));
    const newline = shown.lastIndexOf('\n');
    if (newline >= 0) shown = shown.slice(0, newline + 1);
    this.bucket.tokens -= shown.length;
    this.heldBackBytes += Buffer.byteLength(text) - Buffer.byteLength(shown);
    return shown;
  }

  /** Bytes held back since the last call; starts counting afresh. */
  takeHeldBack(): number {
    const bytes = this.heldBackBytes;
    this.heldBackBytes = 0;
    return bytes;
  }
}
