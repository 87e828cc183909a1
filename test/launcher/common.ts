// Shared fixtures of the launcher tests (test/launcher/*.test.ts). Not a test file itself.

import { ChannelServer, ConfigSource } from '../../adapter/channel';
import { isolatedEnv, tempDir } from '../helpers/fixtures';
import { Interpreter, interpreters, pythonFor } from '../helpers/interpreters';
import { CollectedConnection, collect, runLauncher, RunOptions, RunResult } from '../helpers/run';

export { describeResult, parseRecords, Rec } from '../helpers/run';

export { CACHE_DIR, tempDir, writeFile } from '../helpers/fixtures';

/** The environment every run gets (launcher and direct interpreter alike): see isolatedEnv. */
export const baseEnv = isolatedEnv;

export const PYENV_37 = '/root/.pyenv/versions/3.7.16/bin/python3';

export { pythonFor };

export interface Target {
  /** Used in test names. */
  label: string;
  interp: Interpreter | undefined;
  /** Launcher options selecting the mode ([] = auto). */
  modeArgs: string[];
  /** The mode the hello must report. */
  mode: 'dlopen' | 'preload';
}

/** 3.8, 3.12, 3.13 (pyenv, dlopen) and the Debian 3.11 in preload mode. */
export function channelTargets(): Target[] {
  const t = (minor: number): Target => ({
    label: `3.${minor}`,
    interp: pythonFor(minor),
    modeArgs: [],
    mode: 'dlopen',
  });
  return [
    t(8),
    t(12),
    t(13),
    { label: '3.11 (Debian, preload)', interp: pythonFor(11, true), modeArgs: ['--mode', 'preload'], mode: 'preload' },
  ];
}

/** Skip option for a test that needs `interp`. */
export function needs(interp: unknown, what = 'interpreter'): { skip?: string } {
  return interp ? {} : { skip: `${what} not installed` };
}

/** Runs `fn` over `items`, at most `limit` at a time; results in input order. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface ChannelRun {
  result: RunResult;
  /** Every connection, in order of arrival (the first is the launched process). */
  connections: CollectedConnection[];
  server: ChannelServer;
}

/**
 * Runs the launcher with a fresh ChannelServer and waits until every connection has ended.
 * `onServer` may attach listeners before the launcher starts.
 */
export async function runWithChannel(
  args: string[],
  opts: RunOptions & { config?: ConfigSource; onServer?: (server: ChannelServer) => void; minConnections?: number } = {},
): Promise<ChannelRun> {
  const server = await ChannelServer.create({ config: opts.config });
  const collector = collect(server);
  opts.onServer?.(server);
  try {
    const result = await runLauncher(args, {
      ...opts,
      env: baseEnv(opts.env),
      channel: server,
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
    const connections = await collector.all(opts.minConnections ?? 0, 30_000);
    return { result, connections, server };
  } finally {
    collector.stop();
    await server.close();
  }
}

