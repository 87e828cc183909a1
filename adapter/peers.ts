// Who may speak on a session's channel (docs/protocol.md, "Transport and authentication"): besides the
// token, the kernel's word on the process at the other end of the socket (SO_PEERCRED, through the
// trust addon — Node has no API for it). The peer must run as this user, be the process its hello
// names, and belong to the launched program's process tree: the launched process itself, or a
// descendant of it or of another process already accepted. A leaked token alone then lets nothing in.

import * as fs from 'node:fs';
import type { Socket } from 'node:net';
import type { HelloMessage } from './channel';
import { loadTrustAddon } from './trust';
import { socketFd } from './socketreads';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** How far up the parent chain a peer is followed before giving up. */
const MAX_ANCESTRY = 64;

/** What /proc/PID/stat says of a process: its parent, its start time (clock ticks since boot), and
 * whether it has exited (a zombie not yet reaped). */
interface ProcStat {
  ppid: number;
  start: number;
  exited: boolean;
}

function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The name, in parentheses, may hold anything: the fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, starttime field 22.
  return { ppid: Number(fields[1]), start: Number(fields[19]), exited: fields[0] === 'Z' || fields[0] === 'X' };
}

/** The peer of a Unix socket, from the kernel; throws when it cannot be had. */
export function peerCredentials(socket: Socket): PeerCredentials {
  const fd = socketFd(socket);
  if (fd === undefined) throw new Error('the socket has no file descriptor');
  return (loadTrustAddon() as unknown as { peerCredentials(fd: number): PeerCredentials }).peerCredentials(fd);
}

/**
 * The processes of one session. `root` is the launched process (the first to connect when it is not
 * known, as in a terminal); each accepted peer joins the tree.
 *
 * A process whose parent died before it first connected has been re-parented (to init or a subreaper),
 * so its parent chain no longer leads to the tree. It is accepted when the parent its hello names is a
 * process of the tree that has exited since, and it started after that parent did: a foreign process
 * would have to name an exited process of this session and start after it, knowing the token — the
 * residual risk docs/protocol.md states.
 */
export class ProcessTree {
  /** Accepted processes and their start times (a pid reused later has another). */
  private readonly members = new Map<number, number>();
  private warned = false;

  constructor(
    private root?: number,
    /** Told once when the check cannot run (the addon is missing): the token alone guards the channel. */
    private readonly onUnavailable: (why: string) => void = () => undefined,
    private readonly credentials: (socket: Socket) => PeerCredentials = peerCredentials,
  ) {}

  /**
   * Makes the check ready before the first peer comes (loads the trust addon), for a caller with time
   * to spare now, such as while the launcher starts; what fails is check()'s to tell.
   */
  prepare(): void {
    if (this.credentials !== peerCredentials) return;
    try {
      loadTrustAddon();
    } catch {
      // check() reports it
    }
  }

  /** The launched process, once its pid is known. */
  setRoot(pid: number): void {
    this.root = pid;
  }

  /** Why this peer may not join, or undefined when it may (it is then a member). */
  check(socket: Socket, hello: HelloMessage): string | undefined {
    let peer: PeerCredentials;
    try {
      peer = this.credentials(socket);
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_SPY_PEERCRED') return `cannot tell who the peer is (${(err as Error).message})`;
      if (!this.warned) {
        this.warned = true;
        this.onUnavailable(
          `The channel's peer check is off (${(err as Error).message}): only its token and private directory keep other processes out.`,
        );
      }
      return undefined;
    }
    const uid = process.getuid?.();
    if (uid !== undefined && peer.uid !== uid) return `the peer runs as uid ${peer.uid}, not as this user (uid ${uid})`;
    if (peer.pid !== hello.pid) return `the peer is process ${peer.pid}, but its hello says pid ${JSON.stringify(hello.pid)}`;
    const stat = procStat(peer.pid);
    if (!stat) return `process ${peer.pid} cannot be looked up in /proc`;
    if (this.root === undefined) this.root = peer.pid;
    if (!this.belongs(peer.pid, stat, hello)) {
      return (
        `process ${peer.pid} (parent ${stat.ppid}) is neither the launched program (pid ${this.root}) ` +
        'nor one of its descendants'
      );
    }
    this.members.set(peer.pid, stat.start);
    return undefined;
  }

  private belongs(pid: number, stat: ProcStat, hello: HelloMessage): boolean {
    let current = pid;
    let currentStat: ProcStat | undefined = stat;
    for (let i = 0; i < MAX_ANCESTRY && currentStat && current > 1; i++) {
      if (current === this.root || this.isMember(current, currentStat)) return true;
      current = currentStat.ppid;
      currentStat = procStat(current);
    }
    // Re-parented: the parent it names belonged to the tree, is gone, and started before it.
    const parent = typeof hello.ppid === 'number' ? hello.ppid : undefined;
    const parentStart = parent !== undefined ? this.members.get(parent) : undefined;
    if (parent === undefined || parentStart === undefined || stat.ppid === parent) return false;
    const now = procStat(parent);
    const parentGone = now === undefined || now.start !== parentStart || now.exited;
    return parentGone && stat.start >= parentStart;
  }

  private isMember(pid: number, stat: ProcStat): boolean {
    return this.members.get(pid) === stat.start;
  }
}
