// Writing to a launcher's socket without failing its reads. When a write to a Node socket fails (EPIPE,
// ECONNRESET: the launcher has exited), Node destroys the whole socket, and with it every byte the
// kernel still holds for us to read: a reader that is behind and sends a pause or a breakpoint just as a
// busy program exits would lose the program's last records. So control messages go to the socket's file
// descriptor with write(2) (non-blocking, as libuv set it): a write the launcher can no longer receive
// fails alone, and reading goes on to the end of the stream. A stream without a descriptor
// (socketFd) is written the ordinary way.

import * as fs from 'node:fs';
import type { Duplex } from 'node:stream';
import { socketFd } from './socketreads';

/** How long to wait before writing again when the launcher's receive buffer is full. */
const RETRY_MS = 2;

export class LauncherWrites {
  /** Bytes the kernel would not take yet, in order. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private retry: NodeJS.Timeout | undefined;
  private drained: (() => void)[] = [];
  /** Why writing stopped (the launcher is gone), once it has. */
  failure: Error | undefined;

  constructor(private readonly socket: Duplex) {}

  /**
   * Writes `data` after everything written before. Returns true when the kernel took all of it; false
   * when part waits for the launcher to read (it follows on its own) or the launcher is gone (dropped:
   * it could not act on it).
   */
  write(data: string | Buffer): boolean {
    if (this.failure !== undefined || this.socket.destroyed) return false;
    if (socketFd(this.socket) === undefined) return this.socket.write(data);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.queuedBytes > 0) {
      this.enqueue(bytes);
      return false;
    }
    const written = this.writeNow(bytes);
    if (written === bytes.length) return true;
    if (this.failure === undefined) this.enqueue(bytes.subarray(written));
    return false;
  }

  /** Calls `done` once nothing waits to be written, or writing failed (at once when nothing waits). */
  whenDrained(done: () => void): void {
    if (this.queuedBytes === 0) done();
    else this.drained.push(done);
  }

  /** Bytes waiting for the launcher to read. */
  get waiting(): number {
    return this.queuedBytes;
  }

  /** Drops whatever waits and stops retrying. */
  close(): void {
    this.queued = [];
    this.queuedBytes = 0;
    clearTimeout(this.retry);
    this.retry = undefined;
    this.drained = [];
  }

  /** Bytes of `bytes` the kernel took; on an error other than a full buffer, `failure` is set. */
  private writeNow(bytes: Buffer): number {
    const fd = socketFd(this.socket);
    if (fd === undefined) {
      this.failure = new Error('the launcher connection is closed');
      return 0;
    }
    try {
      return fs.writeSync(fd, bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      this.failure = err as Error;
      return 0;
    }
  }

  private enqueue(bytes: Buffer): void {
    // Copied: a caller's buffer may be reused once write returns.
    this.queued.push(Buffer.from(bytes));
    this.queuedBytes += bytes.length;
    this.retry ??= setTimeout(this.flush, RETRY_MS);
  }

  private readonly flush = (): void => {
    this.retry = undefined;
    while (this.queued.length > 0) {
      const head = this.queued[0];
      const written = this.writeNow(head);
      if (this.failure !== undefined) break;
      this.queuedBytes -= written;
      if (written < head.length) {
        this.queued[0] = head.subarray(written);
        this.retry = setTimeout(this.flush, RETRY_MS);
        return;
      }
      this.queued.shift();
    }
    const drained = this.drained;
    this.close();
    for (const done of drained) done();
  };
}
