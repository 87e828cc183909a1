// Reading an accepted socket into one buffer reused for every read. A socket Node reads by itself gets
// a fresh, zero-filled 64 KiB buffer for each read: at the channel's millions of records a second, that
// allocation, its page faults and its garbage add a tenth to a fifth to Node's reading CPU
// (bench/ingest.js). Node's `onread` option reads into a buffer of ours instead, but only sockets it
// constructs itself take the option; an accepted socket does not. Node 20's `new net.Socket({ handle,
// onread })` takes both an existing handle and the option, so an accepted socket that has not started
// reading (a server made with `pauseOnConnect`) can be re-made around its handle. That handle is the
// private `_handle`: when it is missing or not what Node 20 has, the socket is read as it is ('data'
// events).

import * as net from 'node:net';
import type { Duplex } from 'node:stream';

/** A socket's file descriptor, from Node's private `_handle`; undefined when it has none (any other
 * Duplex, or a socket destroyed: its number may since belong to another file). */
export function socketFd(socket: Duplex): number | undefined {
  if (socket.destroyed) return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Bytes asked of the kernel per read: what Node itself asks. */
export const READ_BUFFER_BYTES = 64 * 1024;

/** The part of Node's private stream handle this relies on. */
interface StreamHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
}

/**
 * A socket whose bytes go to one function as views of a reused buffer, each valid only until that
 * function returns: whatever it keeps, it copies.
 */
export class ReusedBufferReads {
  /** Takes each read's bytes; returns false to stop reading, until `socket.resume()`. */
  private take: (chunk: Buffer) => boolean | void = () => false;
  /** A Node that ignored `onread` reads the socket as any other: its bytes come as 'data' instead. */
  private readonly onData = (chunk: Buffer): void => {
    this.take(chunk);
  };

  private constructor(
    /** The socket to use in place of the accepted one (same connection, same file descriptor). */
    readonly socket: net.Socket,
  ) {
    // Listening also sets the stream flowing, without which it would never emit 'end'.
    socket.on('data', this.onData);
  }

  /**
   * Re-makes a socket accepted by a server created with `pauseOnConnect: true` (and not resumed since)
   * to read into a reused buffer; undefined when this Node's socket is not the one expected, and the
   * accepted socket is then left as it was (paused).
   */
  static wrap(accepted: net.Socket): ReusedBufferReads | undefined {
    const handle = (accepted as unknown as { _handle?: Partial<StreamHandle> | null })._handle;
    if (
      handle == null ||
      handle.reading !== false ||
      typeof handle.useUserBuffer !== 'function' ||
      typeof handle.readStart !== 'function' ||
      typeof handle.readStop !== 'function'
    ) {
      return undefined;
    }
    const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    let reads: ReusedBufferReads | undefined = undefined;
    let socket: net.Socket;
    try {
      socket = new net.Socket({
        handle,
        allowHalfOpen: false,
        readable: true,
        writable: true,
        onread: { buffer, callback: (nread: number) => reads!.take(buffer.subarray(0, nread)) },
      } as net.SocketConstructorOpts);
    } catch {
      return undefined; // a Node that refuses these options: the accepted socket is still whole
    }
    reads = new ReusedBufferReads(socket);
    // The accepted socket lets go of the handle; destroying it then only settles its count of the
    // server's connections, which the server does not need: the channel closes its connections itself.
    (accepted as unknown as { _handle: unknown })._handle = null;
    accepted.destroy();
    return reads;
  }

  /** Every read's bytes go to `take` from now on (a view valid during the call). */
  deliverTo(take: (chunk: Buffer) => boolean | void): void {
    this.take = take;
  }

  /**
   * From now on the socket's bytes are 'data' events, each its own copy, with the backpressure of any
   * stream: for whoever takes the socket over and pipes it.
   */
  emitData(): void {
    this.socket.off('data', this.onData);
    this.take = (chunk) => this.socket.push(Buffer.from(chunk));
  }
}
