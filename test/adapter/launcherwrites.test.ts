// LauncherWrites (adapter/launcherwrites.ts) over a real Unix socket: what the kernel cannot take yet is
// queued and follows in order once the other end reads; a write to an end that has gone fails alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { LauncherWrites } from '../../adapter/launcherwrites';
import { tempDir } from '../helpers/fixtures';

/** A connected pair: `ours` (accepted, written through LauncherWrites) and `theirs` (the launcher's end). */
async function socketPair(): Promise<{ ours: net.Socket; theirs: net.Socket; close: () => void }> {
  const address = path.join(tempDir('spython-writes-'), 'sock');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(address, resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const theirs = net.connect(address);
  const ours = await accepted;
  return {
    ours,
    theirs,
    close: () => {
      ours.destroy();
      theirs.destroy();
      server.close();
    },
  };
}

test('writes the kernel cannot take yet are queued, then arrive in order once the other end reads', async () => {
  const { ours, theirs, close } = await socketPair();
  try {
    theirs.pause();
    const writes = new LauncherWrites(ours);
    const lines = Array.from({ length: 4000 }, (_, i) => JSON.stringify({ type: 'ping', id: i, pad: 'x'.repeat(1000) }) + '\n');
    const taken = lines.map((line) => writes.write(line));
    assert.ok(taken[0], 'the first write goes straight to the kernel');
    assert.ok(taken.includes(false), 'a reader that does not read fills the socket: later writes wait');
    assert.ok(writes.waiting > 0);
    const drained = new Promise<void>((resolve) => writes.whenDrained(resolve));
    const received: Buffer[] = [];
    let bytes = 0;
    const total = lines.reduce((n, line) => n + line.length, 0);
    const all = new Promise<void>((resolve) =>
      theirs.on('data', (chunk: Buffer) => {
        received.push(chunk);
        bytes += chunk.length;
        if (bytes >= total) resolve();
      }),
    );
    theirs.resume();
    await Promise.all([drained, all]);
    assert.equal(writes.waiting, 0);
    assert.equal(writes.failure, undefined);
    assert.equal(Buffer.concat(received).toString(), lines.join(''));
  } finally {
    close();
  }
});

test('a write to an end that has gone fails alone: the socket stays whole, what it holds can be read', async () => {
  const { ours, theirs, close } = await socketPair();
  try {
    const readAll = new Promise<string>((resolve) => {
      let text = '';
      ours.on('data', (chunk: Buffer) => (text += chunk.toString()));
      ours.on('end', () => resolve(text));
    });
    ours.pause();
    await new Promise<void>((resolve) => theirs.end('last words\n', resolve));
    // Gone once its side is closed for good: the first write may still land, a later one cannot.
    theirs.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const writes = new LauncherWrites(ours);
    for (let i = 0; i < 3 && writes.failure === undefined; i++) writes.write('{"type":"pause"}\n');
    assert.ok(writes.failure !== undefined, 'writing to a closed peer fails');
    assert.match((writes.failure as NodeJS.ErrnoException).code ?? '', /^(EPIPE|ECONNRESET)$/);
    assert.equal(writes.write('{"type":"pause"}\n'), false, 'later writes are dropped');
    assert.equal(ours.destroyed, false, 'the failed write did not destroy the socket');
    ours.resume();
    assert.equal(await readAll, 'last words\n');
  } finally {
    close();
  }
});
