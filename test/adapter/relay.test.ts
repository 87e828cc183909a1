// The child-session relay (adapter/relay.ts) over real Unix sockets, with a process in the launcher's
// place: what the process wrote before it exited reaches the child session in full, even when the
// child session writes to the process after it has gone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { ChildRelay, connectToRelay } from '../../adapter/relay';
import { tempDir } from '../helpers/fixtures';
import { fakeHello } from '../helpers/run';

const LINES = 1500;

/** A process that connects to `address`, writes LINES lines of ~100 bytes, and exits once they are sent. */
function writeAndExit(address: string): Promise<number | null> {
  const script = `
    const socket = require('net').connect(${JSON.stringify(address)}, () => {
      let text = '';
      for (let i = 0; i < ${LINES}; i++) text += JSON.stringify({ event: 'spy.line', seq: i + 1, args: ['x'.repeat(60)] }) + '\\n';
      socket.end(text, () => process.exit(0));
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

test('a child session that writes after its process exited still gets every line the process wrote', async () => {
  const address = path.join(tempDir('spython-relay-'), 'sock');
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(address, resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const exited = writeAndExit(address);
  const launcher = await accepted;
  assert.equal(await exited, 0);
  const hello = fakeHello('parent-token');
  const relay = await ChildRelay.create(hello);
  try {
    const attached = relay.attached(5000);
    const peer = await connectToRelay(relay.target);
    await attached;
    // Written before the relay starts copying, so it is read before the process's last lines are:
    // its copy to the process fails (EPIPE), which must not end the copying the other way.
    peer.write(JSON.stringify({ type: 'pause' }) + '\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const received: Buffer[] = [];
    const ended = new Promise<void>((resolve) => peer.once('close', () => resolve()));
    peer.on('data', (chunk: Buffer) => received.push(chunk));
    peer.on('error', () => undefined);
    relay.start(hello, { socket: launcher, rest: Buffer.alloc(0) });
    await ended;
    const lines = Buffer.concat(received).toString('utf8').split('\n').filter((line) => line !== '');
    const first = JSON.parse(lines[0]) as { type: string; token: string };
    assert.equal(first.type, 'hello');
    assert.equal(first.token, relay.target.token, 'the hello carries the relay token, not the parent channel one');
    const seqs = lines.slice(1).map((line) => (JSON.parse(line) as { seq: number }).seq);
    assert.equal(seqs.length, LINES, `${seqs.length} of ${LINES} lines arrived`);
    assert.deepEqual(seqs, Array.from({ length: LINES }, (_, i) => i + 1));
  } finally {
    await relay.close();
    server.close();
  }
});
