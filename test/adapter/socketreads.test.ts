// Reading the channel into one reused buffer (adapter/socketreads.ts): the socket's own behaviour, and
// the channel's records through it from the real launcher, compared byte for byte with the launcher's
// own log — the JSONL copy and records kept while later reads overwrite the buffer they came in —
// both ways: the reused buffer and the fallback's fresh buffer a read.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { ChannelConnection, ChannelServer, JsonlWriter } from '../../adapter/channel';
import { ReceivedRecord, RecordReader } from '../../adapter/records';
import { READ_BUFFER_BYTES, ReusedBufferReads } from '../../adapter/socketreads';
import { tempDir, until, writeFile } from '../helpers/fixtures';
import { launcherBuilt, LAUNCHER, pythonFor } from '../helpers/interpreters';
import { runProcess } from '../helpers/run';

/**
 * A server like the channel's (paused on connect) and a client connected to it; `close` ends the client,
 * the server and its directory.
 */
async function acceptedPair(pauseOnConnect = true): Promise<{ accepted: net.Socket; client: net.Socket; close: () => Promise<void> }> {
  const dir = tempDir('spython-reads-');
  const server = net.createServer({ pauseOnConnect });
  const socketPath = path.join(dir, 'sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(socketPath);
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const close = async (): Promise<void> => {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { accepted: await accepted, client, close };
}

function write(socket: net.Socket, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}

/** How long a test waits for bytes on a local socket. */
const READ_TIMEOUT_MS = 10_000;

describe('ReusedBufferReads', () => {
  test('an accepted socket reads every piece into the same buffer, writes, ends and closes', async () => {
    const { accepted, client, close } = await acceptedPair();
    try {
      const reads = ReusedBufferReads.wrap(accepted);
      assert.ok(reads, 'Node 20 lets an accepted socket be re-made with onread');
      const buffers = new Set<ArrayBufferLike>();
      const received: Buffer[] = [];
      reads.deliverTo((chunk) => {
        buffers.add(chunk.buffer);
        received.push(Buffer.from(chunk));
      });
      const socket = reads.socket;
      const ended = new Promise<void>((resolve) => socket.once('end', resolve));
      const closed = new Promise<void>((resolve) => socket.once('close', resolve));
      const pieces = ['first piece\n', 'x'.repeat(3 * READ_BUFFER_BYTES + 17), 'last\n'];
      let sent = 0;
      for (const piece of pieces) {
        await write(client, piece);
        sent += piece.length;
        await until(() => received.reduce((n, b) => n + b.length, 0) === sent, 'the piece to be read', READ_TIMEOUT_MS);
      }
      assert.equal(Buffer.concat(received).toString('latin1'), pieces.join(''));
      assert.ok(received.length >= 5, `${received.length} reads`);
      assert.equal(buffers.size, 1, 'every read landed in the one buffer');
      const answer = new Promise<string>((resolve) => client.once('data', (chunk) => resolve(chunk.toString())));
      socket.write('welcome\n');
      assert.equal(await answer, 'welcome\n');
      client.end();
      await ended;
      await closed;
    } finally {
      await close();
    }
  });

  test('pause() stops reading until resume(); a false from the taker stops it too', async () => {
    const { accepted, client, close } = await acceptedPair();
    try {
      const reads = ReusedBufferReads.wrap(accepted)!;
      let bytes = 0;
      let stopAt = -1;
      reads.deliverTo((chunk) => {
        bytes += chunk.length;
        return stopAt < 0 || bytes < stopAt;
      });
      reads.socket.pause();
      await write(client, 'a'.repeat(1000));
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(bytes, 0);
      reads.socket.resume();
      await until(() => bytes === 1000, 'the bytes after resume()', READ_TIMEOUT_MS);
      stopAt = 1500;
      await write(client, 'b'.repeat(1000));
      await until(() => bytes === 2000, 'the read that says stop', READ_TIMEOUT_MS);
      await write(client, 'c'.repeat(1000));
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(bytes, 2000);
      stopAt = -1;
      reads.socket.resume();
      await until(() => bytes === 3000, 'the bytes after resume()', READ_TIMEOUT_MS);
    } finally {
      await close();
    }
  });

  test('emitData(): the bytes then come as data events of their own, piped with backpressure', async () => {
    const { accepted, client, close } = await acceptedPair();
    try {
      const reads = ReusedBufferReads.wrap(accepted)!;
      const taken: Buffer[] = [];
      reads.deliverTo((chunk) => {
        taken.push(Buffer.from(chunk));
      });
      await write(client, 'before\n');
      await until(() => taken.length > 0, 'the first read', READ_TIMEOUT_MS);
      reads.socket.pause();
      reads.emitData();
      // A slow destination: each 'data' must stay intact after later reads reused the buffer.
      const chunks: Buffer[] = [];
      const sink = new Writable({
        highWaterMark: 1024,
        write(chunk: Buffer, _encoding, callback) {
          chunks.push(chunk);
          setTimeout(callback, 1);
        },
      });
      reads.socket.pipe(sink);
      const finished = new Promise<void>((resolve) => sink.once('finish', resolve));
      const body = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join(''));
      await write(client, body);
      client.end();
      await finished;
      assert.equal(Buffer.concat(taken).toString(), 'before\n');
      assert.ok(Buffer.concat(chunks).equals(body), 'the piped bytes are the ones sent');
      assert.ok(new Set(chunks.map((c) => c.buffer)).size > 1, 'each data event has a buffer of its own');
    } finally {
      await close();
    }
  });

  test('a socket that already reads is left as it is', async () => {
    const { accepted, client, close } = await acceptedPair(false);
    try {
      assert.equal(ReusedBufferReads.wrap(accepted), undefined);
      const received = new Promise<string>((resolve) => accepted.once('data', (chunk) => resolve(chunk.toString())));
      await write(client, 'still read\n');
      assert.equal(await received, 'still read\n');
    } finally {
      accepted.destroy();
      await close();
    }
  });
});

const PYTHON = pythonFor(12)?.path;

/**
 * Three threads raising records of many lengths (a few bytes of argument to 2,000 characters, some not
 * ASCII): the reads end inside records at every kind of place.
 */
const STORM = `
import sys, threading
N = 12000
TEXT = "é✓ab" * 500
def work(t):
    for i in range(N):
        sys.audit("reads.t%d" % t, i, TEXT[: (i * 37 + t * 11) % 2000])
threads = [threading.Thread(target=work, args=(t,), name="w%d" % t) for t in range(3)]
for th in threads: th.start()
for th in threads: th.join()
`;

describe('the channel through the real launcher', { skip: !launcherBuilt() ? 'launcher not built' : !PYTHON ? 'no 3.12' : undefined }, () => {
  for (const reuseReadBuffer of [true, false]) {
    test(`${reuseReadBuffer ? 'a reused buffer' : 'a fresh buffer a read'}: the JSONL copy and records kept across reads are the launcher's own bytes`, async () => {
      const dir = tempDir('spython-reads-');
      const server = await ChannelServer.create({ reuseReadBuffer });
      try {
        const program = writeFile(dir, 'storm.py', STORM);
        const launcherLog = path.join(dir, 'launcher.jsonl');
        const copy = new JsonlWriter(path.join(dir, 'copy.jsonl'), { flags: 'w' });
        const kept: ReceivedRecord[] = [];
        let chunks = 0;
        let connection: ChannelConnection | undefined;
        server.on('connection', (c: ChannelConnection) => {
          connection = c;
          const reader = new RecordReader();
          // What the engine does: count a record of the latest thread, read the others; keep what is
          // read (here every 50th as well) and parse it only at the end, long after its chunk.
          let n = 0;
          c.setRecordSink({
            chunk: () => chunks++,
            record: (name, chunk, start, end) => {
              if (n++ % 50 === 0 || !reader.sameAsLatest(name, chunk, start, end)) kept.push(reader.read(name, chunk, start, end));
            },
            lines: (chunk, start, end, count) => copy.writeLines(chunk, start, end, count),
          });
        });
        const ended = new Promise<void>((resolve) => server.once('connection', (c: ChannelConnection) => c.once('end', resolve)));
        const result = await runProcess(LAUNCHER, ['--log-file', launcherLog, '--python', PYTHON!, program], { channel: server, timeoutMs: 120_000 });
        assert.equal(result.status, 0, result.stderr.toString());
        await ended;
        await copy.close();
        assert.equal(connection!.reusesReadBuffer, reuseReadBuffer);

        const theirs = fs.readFileSync(launcherLog);
        const lines = theirs.toString('utf8').split('\n').slice(0, -1);
        assert.equal(lines.length, connection!.records);
        assert.ok(theirs.length > 20 * READ_BUFFER_BYTES, `${theirs.length} bytes: many reads`);
        assert.ok(chunks > 20, `${chunks} chunks`);
        assert.ok(fs.readFileSync(copy.path).equals(theirs), 'the JSONL copy differs from the launcher’s --log-file');
        assert.ok(kept.length > 500, `${kept.length} records kept`);
        for (const record of kept) {
          const full = record.record;
          assert.equal(record.line.toString('utf8'), lines[full.seq - 1], `record ${full.seq}`);
          assert.equal(full.event, record.event);
          if (!record.event.startsWith('reads.t')) continue;
          assert.equal(record.thread, `w${record.event.slice(-1)}`);
          assert.equal(record.file, program);
        }
      } finally {
        await server.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
