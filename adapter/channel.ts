// The reader side of the launcher ↔ adapter channel (docs/protocol.md, protocol version 1).
//
// Used by the debug adapter, the CLI and the tests: it must never import `vscode`.
//
// A `ChannelServer` owns a private directory (mode 0700) holding a Unix socket and a random token;
// `server.env` is merged into the launcher's environment. Every accepted socket becomes a
// `ChannelConnection`, which splits the byte stream into lines, performs the hello/welcome handshake
// and then emits one 'record' per event record — without parsing it: the event name is read from the
// bytes between offset 10 and the next `"` — and one 'control' per (parsed) control message.
//
// The server's sockets read into one buffer reused for every read (adapter/socketreads.ts): the bytes
// of a chunk are valid only while it is being handled, and whatever outlives that is copied — the start
// of a line that the next chunk ends, input held while the configuration is computed, the lines 'record'
// listeners get. A record sink is told the same of the chunks it sees.

import { EventEmitter } from 'node:events';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { BytePattern, ChunkView } from './bytes';
import { LauncherWrites } from './launcherwrites';
import { ReusedBufferReads } from './socketreads';

/** Must match `PROTOCOL_VERSION` in native/core/channel.h. */
export const PROTOCOL_VERSION = 1;

/** Longest accepted line, not counting its `\n` (docs/protocol.md, "Framing"). */
export const MAX_LINE_BYTES = 1024 * 1024;

const NL = 0x0a;
const QUOTE = 0x22;
/** `{"event":"` — the 10 bytes every event record starts with. */
const EVENT_PREFIX = Buffer.from('{"event":"', 'latin1');
/** `{"type":"` — the 9 bytes every control message starts with. */
const CONTROL_PREFIX = Buffer.from('{"type":"', 'latin1');
const EVENT_NAME_OFFSET = EVENT_PREFIX.length; // 10

// ---------------------------------------------------------------------------------------------
// Message types

/** First line of every connection (launcher → reader). */
export interface HelloMessage {
  type: 'hello';
  protocol: number;
  token: string;
  pid: number;
  ppid: number;
  python: string;
  mode: 'dlopen' | 'preload';
  executable: string;
  freeThreaded: boolean;
  [key: string]: unknown;
}

export interface PongMessage {
  type: 'pong';
  id: number;
  [key: string]: unknown;
}

export interface ErrorMessage {
  type: 'error';
  message: string;
  line?: string;
  [key: string]: unknown;
}

export interface ExitMessage {
  type: 'exit';
  status: number;
  [key: string]: unknown;
}

/** Any control message after the hello. Unknown types are passed through as they are. */
export type ControlMessage =
  | PongMessage
  | ErrorMessage
  | ExitMessage
  | { type: string; [key: string]: unknown };

/** The session configuration sent in `welcome`: a plain JSON object. */
export type ChannelConfig = Record<string, unknown>;

/**
 * Either a fixed configuration or a function deciding it per connection, once its hello has been
 * verified. A function may return a promise: the `welcome` (and with it the start of Python in that
 * process) is then deferred until it settles — that is how the adapter holds the first process until
 * `configurationDone`. If the function throws or the promise rejects, the connection is rejected
 * with the error's message.
 */
export type ConfigSource =
  | object
  | ((hello: HelloMessage, connection: ChannelConnection) => object | Promise<object>);

/**
 * Decides, once the token has been verified, whether the process at the other end may join: undefined
 * when it may, else why not (the connection is then rejected). See adapter/peers.ts.
 */
export type PeerCheck = (socket: net.Socket, hello: HelloMessage) => string | undefined;

export interface ChannelServerOptions {
  /** Sent in every `welcome`; default `{}`. Can be changed later through `server.config`. */
  config?: ConfigSource;
  /** Checks each peer after its token (default: none, the token alone). */
  checkPeer?: PeerCheck;
  /**
   * Read each connection into one reused buffer where this Node allows it (default true); false reads
   * them as Node does by itself, a fresh buffer a read.
   */
  reuseReadBuffer?: boolean;
}

/**
 * Takes a connection's event records in place of its 'record' events (see `setRecordSink`): no event
 * and no Buffer per record, for readers of millions of them.
 */
export interface RecordSink {
  /** A chunk of input is being read: the records in it follow. */
  chunk(): void;
  /**
   * One event record named `name`: bytes `start` to `end` of `chunk`, its newline excluded. The chunk's
   * bytes are valid only until this returns (the next read may overwrite them): copy what you keep.
   */
  record(name: string, chunk: Buffer, start: number, end: number): void;
  /**
   * The records handed to `record` since the last call, as they arrived: bytes `start` to `end` of
   * `chunk`, `count` lines each ending in its newline and nothing else (the JSONL log's bytes). Called
   * once for each run of records, at the latest when the chunk that holds it has been read. The bytes
   * are valid only until this returns, as `record`'s are.
   */
  lines(chunk: Buffer, start: number, end: number, count: number): void;
}

export interface ChannelEnv {
  SPYTHON_CHANNEL: string;
  SPYTHON_TOKEN: string;
  [key: string]: string;
}

// ---------------------------------------------------------------------------------------------
// ChannelConnection

type ConnectionState =
  | 'hello' //    waiting for the first line
  | 'waiting' //  hello verified, configuration being computed (socket paused, input held)
  | 'open' //     welcome sent: records and control messages flow
  | 'closed'; //  rejected, destroyed, or ended

export interface ChannelConnection {
  /** The verified hello; the `welcome` has been sent. */
  on(event: 'hello', listener: (hello: HelloMessage) => void): this;
  /**
   * One event record. `name` is the event name; `line` is the record's exact bytes without the
   * trailing newline, a copy of its own.
   */
  on(event: 'record', listener: (name: string, line: Buffer) => void): this;
  /** A parsed control message other than the hello (`pong`, `error`, `exit`, or unknown types). */
  on(event: 'control', listener: (msg: ControlMessage) => void): this;
  /** A line that violates the protocol; the connection stays up. */
  on(event: 'protocolError', listener: (description: string) => void): this;
  /** The handshake was refused (`reject` has been sent and the socket is being closed). */
  on(event: 'rejected', listener: (reason: string) => void): this;
  /** An error on the socket itself (ECONNRESET, EPIPE…); 'end' follows. */
  on(event: 'socketError', listener: (err: Error) => void): this;
  /** The connection is over; emitted exactly once, after every other event. */
  on(event: 'end', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;

  once(event: 'hello', listener: (hello: HelloMessage) => void): this;
  once(event: 'record', listener: (name: string, line: Buffer) => void): this;
  once(event: 'control', listener: (msg: ControlMessage) => void): this;
  once(event: 'protocolError', listener: (description: string) => void): this;
  once(event: 'rejected', listener: (reason: string) => void): this;
  once(event: 'socketError', listener: (err: Error) => void): this;
  once(event: 'end', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class ChannelConnection extends EventEmitter {
  /** The verified hello, once the handshake succeeded. */
  hello: HelloMessage | undefined;
  /** Status from the `exit` control message; undefined on `os._exit`, signals, crashes. */
  exitStatus: number | undefined;
  /** Number of event records received. */
  records = 0;
  private lastName = '';
  /** The latest event record's first bytes: `{"event":"NAME"` (at first, those of an empty name). */
  private lastHead = new BytePattern(Buffer.from('{"event":""', 'latin1'));
  private readonly view = new ChunkView();
  /** Number of bytes received (all lines, newlines included). */
  bytesReceived = 0;
  /** Number of protocol errors seen. */
  protocolErrors = 0;
  /** Why the handshake was refused, if it was. */
  rejectReason: string | undefined;
  /** The last socket error, if any. */
  socketError: Error | undefined;
  /** True once 'end' has been emitted. */
  ended = false;

  private state: ConnectionState = 'hello';
  /** Pieces of the current incomplete line. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Discarding an oversized line up to its newline. */
  private skipping = false;
  /** Input received while the configuration is being computed. */
  private held: Buffer[] = [];
  /** The socket closed while in 'waiting': finish once the held input is processed. */
  private closedWhileWaiting = false;
  /** pause() was called: nothing resumes reading but resume(). */
  private pausedByUser = false;
  /** We closed the socket on purpose: an incomplete tail then is not a "truncated line". */
  private closingOnPurpose = false;
  private nextPingId = 1;
  private readonly pings = new Map<number, (msg: PongMessage) => void>();
  private sink: RecordSink | undefined;
  private readonly writes: LauncherWrites;

  /**
   * @param socket the accepted socket (any Duplex works, which is what the unit tests use)
   * @param token the expected token
   * @param getConfig the configuration source (see `ConfigSource`)
   * @param checkPeer who may connect besides the token's holder (see `PeerCheck`)
   * @param reads the socket's reads into a reused buffer, when it is read that way (`socket` is then
   *   `reads.socket`)
   */
  constructor(
    readonly socket: Duplex,
    private readonly token: string,
    private readonly getConfig: () => ConfigSource,
    private readonly checkPeer?: PeerCheck,
    private readonly reads?: ReusedBufferReads,
  ) {
    super();
    this.writes = new LauncherWrites(socket);
    if (reads !== undefined) reads.deliverTo(this.onData);
    else socket.on('data', this.onData);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onClose);
  }

  /** Whether the socket is read into a reused buffer (adapter/socketreads.ts), not a fresh one a read. */
  get reusesReadBuffer(): boolean {
    return this.reads !== undefined;
  }

  /** The process id from the hello, once there is one. */
  get pid(): number | undefined {
    return this.hello?.pid;
  }

  /**
   * Writes one control message (one JSON line). Returns false if the launcher is gone (the message is
   * dropped) or has not taken it all yet (the rest follows). A launcher gone never ends the reading.
   */
  send(msg: object): boolean {
    return this.writes.write(JSON.stringify(msg) + '\n');
  }

  /**
   * Sends `ping` and resolves with the round-trip time in milliseconds when the `pong` arrives;
   * rejects after `timeoutMs` or when the connection ends first.
   */
  ping(timeoutMs = 5000): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.state !== 'open') {
        reject(new Error('channel connection is not open'));
        return;
      }
      const id = this.nextPingId++;
      const started = process.hrtime.bigint();
      const cleanup = () => {
        clearTimeout(timer);
        this.pings.delete(id);
        this.off('end', onEnd);
      };
      const onEnd = () => {
        cleanup();
        reject(new Error('channel connection ended before pong'));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(id, () => {
        cleanup();
        resolve(Number(process.hrtime.bigint() - started) / 1e6);
      });
      this.once('end', onEnd);
      this.send({ type: 'ping', id });
    });
  }

  /** Event records go to `sink` from now on, not to 'record' listeners (undefined: back to them). */
  setRecordSink(sink: RecordSink | undefined): void {
    this.sink = sink;
  }

  /** Stops reading (the launcher blocks once the socket buffers fill). Lines of a chunk already
   * received are still delivered. */
  pause(): void {
    this.pausedByUser = true;
    this.socket.pause();
  }

  resume(): void {
    this.pausedByUser = false;
    if (this.state !== 'waiting') this.socket.resume();
  }

  /**
   * Closes the connection at once; no further 'record'/'control' events (not even for the rest of
   * the chunk being processed), then 'end'. The launcher will end its program with status 125.
   */
  destroy(): void {
    this.closingOnPurpose = true;
    this.state = 'closed';
    this.held = [];
    this.writes.close();
    this.socket.destroy();
  }

  /**
   * Gives the connection away while its configuration is being computed (the hello verified, no
   * `welcome` sent yet): this object lets go of the socket and emits nothing more, not even 'end'.
   * Returns the socket, paused, and the bytes that arrived after the hello, in order.
   */
  handOff(): { socket: Duplex; rest: Buffer } {
    if (this.state !== 'waiting') throw new Error('only a connection waiting for its configuration can be handed off');
    this.state = 'closed';
    this.ended = true;
    this.writes.close();
    if (this.reads !== undefined) this.reads.emitData();
    else this.socket.off('data', this.onData);
    this.socket.off('error', this.onSocketError);
    this.socket.off('close', this.onClose);
    const rest = Buffer.concat(this.held);
    this.held = [];
    return { socket: this.socket, rest };
  }

  // --- input ----------------------------------------------------------------------------------

  private readonly onSocketError = (err: Error): void => {
    this.socketError = err;
    this.emit('socketError', err);
  };

  private readonly onData = (chunk: Buffer): void => {
    this.bytesReceived += chunk.length;
    if (this.state === 'waiting') {
      this.held.push(Buffer.from(chunk));
    } else if (this.state !== 'closed') {
      this.feed(chunk);
    }
  };

  /**
   * Splits `chunk` into lines, continuing the pending partial line. With a record sink, the event
   * records between two other lines (or the chunk's edges) go to it as one run: `record` for each,
   * then `lines` for all of them.
   */
  private feed(chunk: Buffer): void {
    this.sink?.chunk();
    let start = 0;
    if (this.skipping) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) return;
      this.skipping = false;
      start = nl + 1;
    }
    let nl = chunk.indexOf(NL, start);
    if (this.pendingLength > 0) {
      if (nl < 0) {
        this.addPending(chunk.subarray(start));
        return;
      }
      const length = this.pendingLength + (nl - start);
      if (length > MAX_LINE_BYTES) {
        this.pending = [];
        this.pendingLength = 0;
        this.oversized(length);
      } else {
        // The line with its newline: a record's bytes are then ready for the log as they are.
        this.pending.push(chunk.subarray(start, nl + 1));
        const line = Buffer.concat(this.pending, length + 1);
        this.pending = [];
        this.pendingLength = 0;
        const sink = this.sink;
        if (sink !== undefined && this.sinkRecord(sink, line, 0, length)) sink.lines(line, 0, length + 1, 1);
        else this.handleLine(line.subarray(0, length));
      }
      start = nl + 1;
      if (this.state !== 'open' && this.state !== 'hello') {
        this.hold(chunk, start);
        return;
      }
      nl = chunk.indexOf(NL, start);
    }
    const sink = this.sink;
    // The run of records handed to the sink and not yet to its `lines`.
    let runStart = start;
    let runCount = 0;
    while (nl >= 0) {
      if (sink !== undefined && nl - start <= MAX_LINE_BYTES && this.sinkRecord(sink, chunk, start, nl)) {
        runCount++;
      } else {
        if (runCount > 0) sink!.lines(chunk, runStart, start, runCount);
        runCount = 0;
        if (nl - start > MAX_LINE_BYTES) this.oversized(nl - start);
        else this.handleLine(chunk.subarray(start, nl));
        runStart = nl + 1;
      }
      start = nl + 1;
      if (this.state !== 'open' && this.state !== 'hello') {
        if (runCount > 0) sink!.lines(chunk, runStart, start, runCount);
        this.hold(chunk, start);
        return;
      }
      nl = chunk.indexOf(NL, start);
    }
    if (runCount > 0) sink!.lines(chunk, runStart, start, runCount);
    if (start < chunk.length) this.addPending(chunk.subarray(start));
  }

  /** Keeps the rest of a chunk while the configuration is computed (dropped when closed). */
  private hold(chunk: Buffer, start: number): void {
    if (this.state === 'waiting' && start < chunk.length) this.held.push(Buffer.from(chunk.subarray(start)));
  }

  /** Keeps a copy of `piece`, the start of a line a later chunk ends. */
  private addPending(piece: Buffer): void {
    if (piece.length === 0) return;
    const length = this.pendingLength + piece.length;
    if (length > MAX_LINE_BYTES) {
      this.pending = [];
      this.pendingLength = 0;
      this.skipping = true;
      this.oversized(length);
      return;
    }
    this.pending.push(Buffer.from(piece));
    this.pendingLength = length;
  }

  private oversized(length: number): void {
    const what = `line longer than ${MAX_LINE_BYTES} bytes (${length}${this.skipping ? '+' : ''})`;
    if (this.state === 'hello') this.reject(`protocol error: ${what}`);
    else this.protocolError(what);
  }

  /**
   * Hands an event record from `start` to `end` of `chunk` to the sink without cutting it out; false
   * when it is not one (a control message, or not open yet): handleLine takes it then.
   */
  private sinkRecord(sink: RecordSink, chunk: Buffer, start: number, end: number): boolean {
    if (this.state !== 'open') return false;
    // Runs of one event are common: a record that starts as the latest did has its name.
    let name: string | undefined = this.lastName;
    if (end - start < this.lastHead.length || !this.lastHead.isAt(this.view.of(chunk), start)) {
      if (!startsWith(chunk, EVENT_PREFIX, start, end)) return false;
      name = this.eventName(chunk, start, end);
      if (name === undefined) return false;
    }
    this.records++;
    sink.record(name, chunk, start, end);
    return true;
  }

  private handleLine(line: Buffer): void {
    if (this.state === 'open') {
      // Hot path: an event record is recognised and named without parsing it.
      if (startsWith(line, EVENT_PREFIX)) {
        const name = this.eventName(line, 0, line.length);
        if (name === undefined) {
          this.protocolError(`event record without a closing quote after its name: ${excerpt(line)}`);
          return;
        }
        this.records++;
        this.emit('record', name, Buffer.from(line));
        return;
      }
      if (startsWith(line, CONTROL_PREFIX)) {
        this.handleControl(line);
        return;
      }
      this.protocolError(
        line.length === 0 ? 'empty line' : `line is neither an event record nor a control message: ${excerpt(line)}`,
      );
      return;
    }
    if (this.state === 'hello') this.handleHello(line);
  }

  /** The name between `{"event":"` and the next quote (names never hold one); undefined without it. */
  private eventName(chunk: Buffer, start: number, end: number): string | undefined {
    const quote = chunk.indexOf(QUOTE, start + EVENT_NAME_OFFSET);
    if (quote < 0 || quote >= end) return undefined;
    if (quote - start !== this.lastHead.length - 1 || !startsWith(chunk, this.lastHead.bytes, start, end)) {
      this.lastHead = new BytePattern(Buffer.from(chunk.subarray(start, quote + 1)));
      this.lastName = chunk.toString('utf8', start + EVENT_NAME_OFFSET, quote);
    }
    return this.lastName;
  }

  private handleControl(line: Buffer): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line.toString('utf8'));
    } catch (err) {
      this.protocolError(`malformed control message (${(err as Error).message}): ${excerpt(line)}`);
      return;
    }
    if (!isObject(msg) || typeof msg.type !== 'string') {
      this.protocolError(`control message without a string "type": ${excerpt(line)}`);
      return;
    }
    switch (msg.type) {
      case 'hello':
        this.protocolError('hello received twice');
        return;
      case 'exit':
        if (typeof msg.status !== 'number' || !Number.isInteger(msg.status)) {
          this.protocolError(`exit message without an integer status: ${excerpt(line)}`);
          return;
        }
        this.exitStatus = msg.status;
        break;
      case 'pong':
        if (typeof msg.id === 'number') this.pings.get(msg.id)?.(msg as PongMessage);
        break;
    }
    this.emit('control', msg as ControlMessage);
  }

  private handleHello(line: Buffer): void {
    if (!startsWith(line, CONTROL_PREFIX)) {
      this.reject('protocol error: the first line must be a hello message');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(line.toString('utf8'));
    } catch {
      this.reject('protocol error: malformed hello message');
      return;
    }
    if (!isObject(msg) || msg.type !== 'hello') {
      this.reject('protocol error: the first line must be a hello message');
      return;
    }
    if (msg.protocol !== PROTOCOL_VERSION) {
      this.reject(
        `protocol version mismatch: the launcher speaks ${JSON.stringify(msg.protocol ?? null)}, ` +
          `the reader speaks ${PROTOCOL_VERSION}`,
      );
      return;
    }
    if (!tokenMatches(msg.token, this.token)) {
      this.reject('authentication failed: wrong channel token');
      return;
    }
    const hello = msg as HelloMessage;
    const refusal = this.checkPeer?.(this.socket as net.Socket, hello);
    if (refusal !== undefined) {
      this.reject(`peer check failed: ${refusal}`);
      return;
    }

    let config: object | Promise<object>;
    const source = this.getConfig();
    try {
      config = typeof source === 'function' ? source(hello, this) : source;
    } catch (err) {
      this.reject(`configuration failed: ${errorMessage(err)}`);
      return;
    }
    if (isThenable(config)) {
      this.state = 'waiting';
      this.socket.pause();
      config.then(
        (value) => this.welcome(hello, value),
        (err) => {
          this.reject(`configuration failed: ${errorMessage(err)}`);
          this.afterWaiting();
        },
      );
      return;
    }
    this.welcome(hello, config);
  }

  private welcome(hello: HelloMessage, config: object): void {
    if (this.state === 'closed') return;
    this.state = 'open';
    this.hello = hello;
    this.send({ type: 'welcome', protocol: PROTOCOL_VERSION, config: config ?? {} });
    this.emit('hello', hello);
    this.afterWaiting();
  }

  /** Processes what arrived while the configuration was computed, then reads on. */
  private afterWaiting(): void {
    const held = this.held;
    this.held = [];
    for (const chunk of held) {
      if (this.state !== 'open') break;
      this.feed(chunk);
    }
    if (this.closedWhileWaiting) this.finish();
    else if (this.state === 'open' && !this.pausedByUser) this.socket.resume();
  }

  private reject(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.rejectReason = reason;
    this.held = [];
    this.pending = [];
    this.pendingLength = 0;
    this.closingOnPurpose = true;
    this.emit('rejected', reason);
    if (!this.socket.destroyed && this.socket.writable) {
      this.socket.end(JSON.stringify({ type: 'reject', message: reason }) + '\n', () => this.socket.destroy());
      // Never wait long on a peer that does not read.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
  }

  private protocolError(description: string): void {
    this.protocolErrors++;
    this.emit('protocolError', description);
  }

  private readonly onClose = (): void => {
    if (this.state === 'waiting') {
      this.closedWhileWaiting = true;
      return;
    }
    this.finish();
  };

  private finish(): void {
    if (this.ended) return;
    // (An oversized line being skipped was reported already; a peer that leaves without a word
    // gets nothing but 'end'.)
    if (this.state !== 'closed' && !this.closingOnPurpose && this.pendingLength > 0) {
      this.protocolError(`truncated line: ${this.pendingLength} bytes without a final newline`);
    }
    this.pending = [];
    this.pendingLength = 0;
    this.state = 'closed';
    this.ended = true;
    this.writes.close();
    this.emit('end');
  }
}

// ---------------------------------------------------------------------------------------------
// ChannelServer

export interface ChannelServer {
  on(event: 'connection', listener: (connection: ChannelConnection) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'connection', listener: (connection: ChannelConnection) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class ChannelServer extends EventEmitter {
  /** The session configuration sent in each `welcome` (may be replaced at any time). */
  config: ConfigSource;
  /** Every connection accepted so far, in order (ended ones included). */
  readonly connections: ChannelConnection[] = [];
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    /** The private directory (mode 0700) holding the socket. */
    readonly dir: string,
    /** The socket's path. */
    readonly socketPath: string,
    /** The token (64 lowercase hex digits). */
    readonly token: string,
    private readonly server: net.Server,
    config: ConfigSource,
    private readonly checkPeer: PeerCheck | undefined,
    private readonly reuseReadBuffer: boolean,
  ) {
    super();
    this.config = config;
    server.on('connection', (socket) => this.onConnection(socket));
    server.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  /** Creates the directory, the socket and the token, and starts listening. */
  static async create(options: ChannelServerOptions = {}): Promise<ChannelServer> {
    const dir = await fsp.mkdtemp(path.join(socketBaseDir(), 'spython-'));
    try {
      await fsp.chmod(dir, 0o700);
      const socketPath = path.join(dir, 'sock');
      const token = crypto.randomBytes(32).toString('hex');
      // Paused: a socket is re-made to read into a reused buffer before its first read.
      const server = net.createServer({ allowHalfOpen: false, pauseOnConnect: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return new ChannelServer(
        dir,
        socketPath,
        token,
        server,
        options.config ?? {},
        options.checkPeer,
        options.reuseReadBuffer ?? true,
      );
    } catch (err) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The variables to merge into the launcher's environment. */
  get env(): ChannelEnv {
    return { SPYTHON_CHANNEL: this.socketPath, SPYTHON_TOKEN: this.token };
  }

  /** Closes the server and every connection, and removes the directory. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      for (const connection of this.connections) connection.destroy();
      this.closing = new Promise<void>((resolve) => this.server.close(() => resolve())).then(() =>
        fsp.rm(this.dir, { recursive: true, force: true }),
      );
    }
    return this.closing;
  }

  private onConnection(accepted: net.Socket): void {
    if (this.closed) {
      accepted.destroy();
      return;
    }
    const reads = this.reuseReadBuffer ? ReusedBufferReads.wrap(accepted) : undefined;
    const socket = reads?.socket ?? accepted;
    const connection = new ChannelConnection(socket, this.token, () => this.config, this.checkPeer, reads);
    if (reads === undefined) accepted.resume();
    this.connections.push(connection);
    this.emit('connection', connection);
  }
}

// ---------------------------------------------------------------------------------------------
// JsonlWriter

export interface JsonlWriterOptions {
  /** `'a'` (default) appends to an existing file, `'w'` truncates it. */
  flags?: 'a' | 'w';
  /** File mode when the file is created; default 0o600 (audit logs can be sensitive). */
  mode?: number;
  /** Bytes gathered before a write is issued (the size of a batch's buffer); default 1 MiB. */
  batchBytes?: number;
  /** Milliseconds after its first line that a smaller batch is written; default 10. */
  batchMs?: number;
  /** Bytes buffered (batch + stream) above which `write` returns false; default 4 MiB. */
  highWaterMark?: number;
}

export interface JsonlWriter {
  /** Emitted when the buffered bytes fall back under the high-water mark after `write` returned false. */
  on(event: 'drain', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'drain', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

const NEWLINE = Buffer.from('\n');

/**
 * Appends record lines (each + `\n`) to a file: the JSONL audit log. Lines are copied into batches and
 * written with one `write` per batch, once it holds `batchBytes` or `batchMs` after its first line
 * (each write goes through libuv's thread pool: fewer, larger ones cost less CPU). Copied, because the
 * lines given are views of a read buffer that the next read overwrites; a batch's buffer is used again
 * once its write is done. `write` returns false when more than `highWaterMark` bytes are waiting; the
 * caller may then pause its connection until 'drain'. Errors are reported by 'error' (if listened to)
 * and by `close()`.
 */
export class JsonlWriter extends EventEmitter {
  /** Lines written (accepted by `write`). */
  lines = 0;
  /** The first error, if any; later writes are dropped. */
  error: Error | undefined;

  private readonly stream: fs.WriteStream;
  /** The batch being gathered: its first `batchLength` bytes. */
  private batch: Buffer | undefined;
  private batchLength = 0;
  /** Buffers of batches written, for the next batches: at most as many as the high-water mark holds. */
  private readonly spare: Buffer[] = [];
  private readonly maxSpare: number;
  /** Writes the batch when it is due (a batch is being gathered). */
  private timer: NodeJS.Timeout | undefined;
  private needDrain = false;
  private closing: Promise<void> | undefined;
  private readonly batchBytes: number;
  private readonly batchMs: number;
  private readonly highWaterMark: number;

  constructor(
    readonly path: string,
    options: JsonlWriterOptions = {},
  ) {
    super();
    this.batchBytes = options.batchBytes ?? 1024 * 1024;
    this.batchMs = options.batchMs ?? 10;
    this.highWaterMark = options.highWaterMark ?? 4 * 1024 * 1024;
    this.maxSpare = Math.ceil(this.highWaterMark / this.batchBytes);
    this.stream = fs.createWriteStream(path, {
      flags: options.flags ?? 'a',
      mode: options.mode ?? 0o600,
      highWaterMark: this.highWaterMark,
    });
    this.stream.on('error', (err) => this.fail(err));
    this.stream.on('drain', () => this.maybeDrain());
  }

  /** Queues one line (without its newline). Returns false when the caller should wait for 'drain'. */
  write(line: Buffer): boolean {
    if (!this.accepts()) return false;
    this.lines++;
    this.append(line, 0, line.length);
    this.append(NEWLINE, 0, 1);
    return this.queued();
  }

  /**
   * Queues bytes `start` to `end` of `chunk`: `count` whole lines, each with its newline, written as
   * they are. Returns false as `write` does.
   */
  writeLines(chunk: Buffer, start: number, end: number, count: number): boolean {
    if (!this.accepts()) return false;
    this.lines += count;
    this.append(chunk, start, end);
    return this.queued();
  }

  private accepts(): boolean {
    return this.error === undefined && this.closing === undefined;
  }

  /** Copies bytes `start` to `end` of `source` into the batch, writing each batch that fills up. */
  private append(source: Buffer, start: number, end: number): void {
    while (start < end) {
      const batch = (this.batch ??= this.spare.pop() ?? Buffer.allocUnsafe(this.batchBytes));
      const copied = source.copy(batch, this.batchLength, start, end);
      this.batchLength += copied;
      start += copied;
      if (this.batchLength === batch.length) this.flushBatch();
    }
  }

  /** After bytes were queued: a timer for the batch, and whether the caller may go on. */
  private queued(): boolean {
    if (this.batchLength > 0 && this.timer === undefined) this.timer = setTimeout(() => this.flushBatch(), this.batchMs);
    if (this.buffered() > this.highWaterMark) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Bytes accepted but not yet handed to the file system. */
  buffered(): number {
    return this.batchLength + this.stream.writableLength;
  }

  /** Writes everything queued so far; resolves when the file system has it. */
  flush(): Promise<void> {
    this.flushBatch();
    if (this.error) return Promise.reject(this.error);
    if (this.stream.writableLength === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // An empty write's callback runs after every earlier write completed.
      this.stream.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Flushes and closes the file. Rejects with the first write error, if there was one. */
  close(): Promise<void> {
    if (!this.closing) {
      this.flushBatch();
      this.closing = new Promise<void>((resolve, reject) => {
        // end()'s callback receives the stream's error (and runs before the 'error' event).
        const done = (err?: Error | null) => {
          if (err) this.fail(err);
          if (this.error) reject(this.error);
          else resolve();
        };
        if (this.stream.destroyed || this.error) done();
        else this.stream.end(done);
      });
    }
    return this.closing;
  }

  private flushBatch(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.batchLength === 0 || this.error) return;
    const batch = this.batch!;
    const length = this.batchLength;
    this.batch = undefined;
    this.batchLength = 0;
    // The stream emits 'drain' only after a write it refused; our own mark can be passed while it
    // accepts every write, so each completed write looks again.
    this.stream.write(batch.subarray(0, length), () => {
      if (this.spare.length < this.maxSpare) this.spare.push(batch);
      this.maybeDrain();
    });
    this.maybeDrain();
  }

  private maybeDrain(): void {
    if (this.needDrain && this.buffered() <= this.highWaterMark / 2) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.batch = undefined;
    this.batchLength = 0;
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

// ---------------------------------------------------------------------------------------------
// helpers

/** Whether bytes `start` to `end` of `buffer` (by default, all of it) begin with `prefix`. */
function startsWith(buffer: Buffer, prefix: Buffer, start = 0, end = buffer.length): boolean {
  const n = prefix.length;
  if (end - start < n) return false;
  for (let i = 0; i < n; i++) if (buffer[start + i] !== prefix[i]) return false;
  return true;
}

/** Constant-time token comparison (lengths compared first, as timingSafeEqual requires). */
export function tokenMatches(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  if (a.length !== b.length) return false;
  return crypto.timingSafeEqual(a, b);
}

function excerpt(line: Buffer): string {
  const text = line.toString('utf8', 0, Math.min(line.length, 200));
  return line.length > 200 ? `${JSON.stringify(text)}… (${line.length} bytes)` : JSON.stringify(text);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isThenable(value: unknown): value is Promise<object> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Where to create the socket directory: os.tmpdir(), unless its path is so long that
 * `<tmpdir>/spython-XXXXXX/sock` would exceed the ~104-byte limit of a Unix socket path.
 */
export function socketBaseDir(): string {
  const tmp = os.tmpdir();
  if (Buffer.byteLength(tmp) + '/spython-XXXXXX/sock'.length < 100) return tmp;
  return '/tmp';
}
