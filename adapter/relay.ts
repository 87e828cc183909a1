// Child debug sessions (subProcess): a process the program started connects to the session's channel
// like any other; when the editor can open a child session (DAP `startDebugging`), the parent engine
// hands that connection to a ChildRelay instead of reading it. The relay listens on a fresh private
// socket, whose address and token travel in the child session's `attach` configuration; the child
// session's adapter — in the same Node process (inline in VS Code) or a new one (`node
// dist/adapter.js`, one per session) — connects, proves the token with one line, and from then on
// reads the launcher's channel as if the launcher had connected to it: the relay copies bytes both
// ways unchanged, except that the hello carries the relay's token instead of the parent channel's
// (which never leaves the parent). docs/protocol.md, "Child sessions", describes the attach line.

import * as crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { HelloMessage, socketBaseDir, tokenMatches } from './channel';
import { LauncherWrites } from './launcherwrites';

/** Where a child session finds its process: the relay's socket and token. */
export interface ChildTarget {
  address: string;
  token: string;
  pid: number;
  ppid: number;
}

/** The longest attach line a relay reads. */
const MAX_ATTACH_LINE = 1024;

export interface ChildRelay {
  /** Both sides are closed: the child's channel is over. */
  on(event: 'end', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class ChildRelay extends EventEmitter {
  private peer: net.Socket | undefined;
  private launcher: Duplex | undefined;
  private closing: Promise<void> | undefined;
  private ended = false;
  /** Fails a pending `attached()` when the relay is closed first. */
  private abandon: ((err: Error) => void) | undefined;

  private constructor(
    private readonly dir: string,
    private readonly server: net.Server,
    readonly target: ChildTarget,
  ) {
    super();
  }

  /** A relay for the process that said `hello`, listening on a socket in a fresh private directory. */
  static async create(hello: HelloMessage): Promise<ChildRelay> {
    const dir = await fsp.mkdtemp(path.join(socketBaseDir(), 'spython-child-'));
    try {
      await fsp.chmod(dir, 0o700);
      const address = path.join(dir, 'sock');
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(address, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const token = crypto.randomBytes(32).toString('hex');
      return new ChildRelay(dir, server, { address, token, pid: hello.pid, ppid: hello.ppid });
    } catch (err) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Resolves once a child session has connected and proved the token (then nobody else may connect);
   * rejects after `timeoutMs`. Connections with a wrong token are closed and waited past.
   */
  attached(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.abandon = undefined;
        this.server.off('connection', onConnection);
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`no child session attached within ${timeoutMs / 1000} s`)), timeoutMs);
      this.abandon = fail;
      const onConnection = (socket: net.Socket) => {
        readAttachLine(socket).then((token) => {
          if (this.peer || !tokenMatches(token, this.target.token)) {
            socket.destroy();
            return;
          }
          clearTimeout(timer);
          this.abandon = undefined;
          this.server.off('connection', onConnection);
          this.peer = socket;
          // Nobody else gets in: the socket file goes, the listener closes.
          this.server.close();
          resolve();
        }, () => socket.destroy());
      };
      this.server.on('connection', onConnection);
    });
  }

  /**
   * Starts copying: the hello (with the relay's token), the launcher's bytes received since, then
   * everything in both directions until either side closes.
   */
  start(hello: HelloMessage, launcher: { socket: Duplex; rest: Buffer }): void {
    const peer = this.peer!;
    this.launcher = launcher.socket;
    peer.write(JSON.stringify({ ...hello, token: this.target.token }) + '\n');
    if (launcher.rest.length > 0) peer.write(launcher.rest);
    // An end travels through the pipes (what was written still arrives); an error ends both at once.
    let open = 2;
    const closed = () => {
      if (--open > 0 || this.ended) return;
      this.ended = true;
      this.emit('end');
    };
    const failed = () => {
      launcher.socket.destroy();
      peer.destroy();
    };
    for (const side of [launcher.socket, peer]) {
      side.once('error', failed);
      // The launcher may have gone while the child session was attaching.
      if (side.destroyed) closed();
      else side.once('close', closed);
    }
    if (launcher.socket.destroyed) peer.end();
    launcher.socket.pipe(peer);
    // The child session's messages go the way the adapter's own do (adapter/launcherwrites.ts): a
    // launcher gone fails them alone, and its last records still reach the child session.
    const writes = new LauncherWrites(launcher.socket);
    peer.on('data', (chunk: Buffer) => {
      if (!writes.write(chunk) && writes.failure === undefined) {
        peer.pause();
        writes.whenDrained(() => peer.resume());
      }
    });
    peer.once('end', () => writes.whenDrained(() => launcher.socket.end()));
    peer.once('close', () => writes.close());
    peer.resume();
    launcher.socket.resume();
  }

  /** True once copying has started (a child session is reading the process). */
  get relaying(): boolean {
    return this.launcher !== undefined;
  }

  /** The pid of the process relayed. */
  get pid(): number {
    return this.target.pid;
  }

  /** Closes both sides and removes the directory. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.abandon?.(new Error('the session ended'));
      this.peer?.destroy();
      this.launcher?.destroy();
      this.closing = new Promise<void>((resolve) => {
        if (this.server.listening) this.server.close(() => resolve());
        else resolve();
      }).then(() => fsp.rm(this.dir, { recursive: true, force: true }));
    }
    return this.closing;
  }
}

/** Connects to a relay as a child session: the returned socket then carries the launcher's channel. */
export function connectToRelay(target: ChildTarget): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const socket = net.createConnection(target.address);
    socket.once('error', (err) => reject(new Error(`Cannot reach the process ${target.pid}: ${err.message}`)));
    socket.once('connect', () => {
      socket.write(JSON.stringify({ type: 'attach', token: target.token }) + '\n');
      resolve(socket);
    });
  });
}

/** The token of the first line a connecting child session sends: `{"type":"attach","token":"…"}`. */
function readAttachLine(socket: net.Socket): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      text += chunk.toString('utf8', 0, nl < 0 ? chunk.length : nl);
      if (nl < 0 && text.length <= MAX_ATTACH_LINE) return;
      socket.off('data', onData);
      socket.pause();
      // Nothing follows the attach line until the hello has been sent: there is no rest to keep.
      try {
        const msg = JSON.parse(text) as { type?: unknown; token?: unknown };
        if (msg.type === 'attach' && typeof msg.token === 'string') resolve(msg.token);
        else reject(new Error('not an attach line'));
      } catch {
        reject(new Error('not an attach line'));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed')));
  });
}
