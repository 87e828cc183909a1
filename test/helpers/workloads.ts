// Workloads the no-loss tests share (test/launcher through the channel, test/reliability through the
// command line): 64 threads raising 5,000 events each, and a fork whose child raises 1,000.

import assert from 'node:assert/strict';

export const THREADS = 64;
export const EVENTS_PER_THREAD = 5000;

/** The program; it prints `done` at the end. */
export const THREADS_PROGRAM = [
  'import sys, threading',
  `N, M = ${THREADS}, ${EVENTS_PER_THREAD}`,
  'go = threading.Event()',
  'def work(t):',
  '    go.wait()',
  '    for i in range(M):',
  '        sys.audit("spy.n", t, i)',
  'threads = [threading.Thread(target=work, args=(t,), name="w%d" % t) for t in range(N)]',
  'for th in threads: th.start()',
  'go.set()',
  'for th in threads: th.join()',
  'print("done")',
  '',
].join('\n');

interface ThreadRecord {
  event: string;
  args: unknown[];
  tid: number;
  thread?: string | null;
}

/** Every `spy.n` event arrived once, each thread's in the order raised, under its own name and tid. */
export function assertThreadRecords(records: Iterable<ThreadRecord>): void {
  const next = new Array<number>(THREADS).fill(0);
  const tids = new Array<number | undefined>(THREADS);
  for (const r of records) {
    if (r.event !== 'spy.n') continue;
    const [t, i] = r.args as [number, number];
    assert.ok(Number.isInteger(t) && t >= 0 && t < THREADS, `bad thread index ${t}`);
    if (i !== next[t]) assert.fail(`thread ${t}: event ${i} arrived when ${next[t]} was due`);
    next[t]++;
    tids[t] ??= r.tid;
    if (r.tid !== tids[t]) assert.fail(`thread ${t}: tid changed from ${tids[t]} to ${r.tid}`);
    if (r.thread !== `w${t}`) assert.fail(`thread ${t}: thread name ${JSON.stringify(r.thread)}`);
  }
  assert.deepEqual(next, new Array<number>(THREADS).fill(EVENTS_PER_THREAD), 'events per thread');
  assert.equal(new Set(tids).size, THREADS, 'threads share tids');
}

/**
 * The fork program: `spy.parent` before and after, 1,000 `spy.child` in a forked child that ends with
 * os._exit(7); it prints its pid, the child's and the child's exit status.
 */
export const FORK_PROGRAM = [
  'import os, sys',
  'sys.audit("spy.parent", "before")',
  'pid = os.fork()',
  'if pid == 0:',
  '    for i in range(1000):',
  '        sys.audit("spy.child", i)',
  '    os._exit(7)',
  '_, status = os.waitpid(pid, 0)',
  'sys.audit("spy.parent", "after")',
  'print(os.getpid(), pid, os.WEXITSTATUS(status))',
  '',
].join('\n');
