// Unit tests of the reader side of the channel (adapter/channel.ts), against fake launchers written
// in Node: a net.connect client in this process, a Duplex fed by hand, and a child process.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import {
  ChannelConnection,
  ChannelServer,
  ChannelServerOptions,
  ControlMessage,
  HelloMessage,
  JsonlWriter,
  MAX_LINE_BYTES,
} from '../adapter/channel';
import { RecordReader } from '../adapter/records';
import { collect, fakeHello, runProcess } from './helpers/run';
import { interpreters, LAUNCHER, REPO_ROOT } from './helpers/interpreters';
import { until } from './helpers/fixtures';

// ---------------------------------------------------------------------------------------------
// fixtures

function helloLine(token: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify(fakeHello(token, extra)) + '\n';
}

function record(event: string, seq: number, args: unknown[] = []): string {
  return JSON.stringify({
    event,
    seq,
    ts: 93847560123456 + seq,
    pid: 4242,
    ppid: 4200,
    tid: 4242,
    thread: 'MainThread',
    file: '/home/u/demo.py',
    line: 3,
    func: '<module>',
    args,
  });
}

const RECORDS = [
  record('open', 1, ['/etc/hostname', 'r', 524288]),
  record('exec', 2, [{ $code: '<module>', file: '/home/u/demo.py', line: 1 }]),
  record('socket.connect', 3, [{ $type: 'socket' }, ['example.org', 443]]),
  record('os.system', 4, ['echo héllo — ünïcödé ✓ 𝄞']),
  record('compile', 5, [{ $bytes: 'GET /\\r\\n', len: 7 }, '<string>']),
];
const NAMES = ['open', 'exec', 'socket.connect', 'os.system', 'compile'];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fake launcher: a client socket plus the lines the reader sent back. */
class FakeLauncher {
  readonly received: Array<Record<string, unknown>> = [];
  closed = false;
  private tail = '';
  sent = 0;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      const text = this.tail + chunk.toString('utf8');
      const lines = text.split('\n');
      this.tail = lines.pop() ?? '';
      for (const line of lines) this.received.push(JSON.parse(line) as Record<string, unknown>);
    });
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static connect(server: ChannelServer): Promise<FakeLauncher> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(server.env.SPYTHON_CHANNEL, () => resolve(new FakeLauncher(socket)));
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): Promise<void> {
    this.sent += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Writes `data` in the given pieces, each arriving as a separate read on the reader's side. */
  async writeInPieces(data: Buffer, cuts: number[], connection: ChannelConnection): Promise<void> {
    let start = 0;
    for (const cut of [...cuts, data.length]) {
      if (cut <= start) continue;
      await this.write(data.subarray(start, cut));
      const expected = this.sent;
      await until(() => connection.bytesReceived >= expected, 'the reader to receive a piece');
      start = cut;
    }
  }

  async waitFor(type: string): Promise<Record<string, unknown>> {
    await until(() => this.received.some((m) => m.type === type), `a "${type}" message`);
    return this.received.find((m) => m.type === type)!;
  }

  end(): Promise<void> {
    return new Promise((resolve) => this.socket.end(resolve));
  }
}

/** Everything a connection emitted, in order. */
interface Log {
  events: Array<[string, ...unknown[]]>;
  hello?: HelloMessage;
  names: string[];
  lines: Buffer[];
  controls: ControlMessage[];
  errors: string[];
  rejected?: string;
  ends: number;
  ended: Promise<void>;
}

function watch(connection: ChannelConnection): Log {
  let resolveEnded!: () => void;
  const log: Log = {
    events: [],
    names: [],
    lines: [],
    controls: [],
    errors: [],
    ends: 0,
    ended: new Promise<void>((resolve) => (resolveEnded = resolve)),
  };
  connection.on('hello', (hello) => {
    log.hello = hello;
    log.events.push(['hello']);
  });
  connection.on('record', (name, line) => {
    log.names.push(name);
    log.lines.push(line); // its own copy: kept as it is
    log.events.push(['record', name]);
  });
  connection.on('control', (msg) => {
    log.controls.push(msg);
    log.events.push(['control', msg.type]);
  });
  connection.on('protocolError', (description) => {
    log.errors.push(description);
    log.events.push(['protocolError', description]);
  });
  connection.on('rejected', (reason) => {
    log.rejected = reason;
    log.events.push(['rejected', reason]);
  });
  connection.on('end', () => {
    log.ends++;
    log.events.push(['end']);
    resolveEnded();
  });
  return log;
}

/** A server being started, with a promise of its next connection (already watched). */
async function connectedServer(created: Promise<ChannelServer>): Promise<{
  server: ChannelServer;
  next: () => Promise<{ connection: ChannelConnection; log: Log }>;
}> {
  const server = await created;
  const queue: Array<{ connection: ChannelConnection; log: Log }> = [];
  server.on('connection', (connection) => queue.push({ connection, log: watch(connection) }));
  return {
    server,
    next: async () => {
      await until(() => queue.length > 0, 'a connection');
      return queue.shift()!;
    },
  };
}

/** A fake launcher that has said hello and been welcomed, with the server's side of its connection. */
async function welcomedLauncher(
  server: ChannelServer,
  next: () => Promise<{ connection: ChannelConnection; log: Log }>,
): Promise<{ fake: FakeLauncher; connection: ChannelConnection; log: Log }> {
  const fake = await FakeLauncher.connect(server);
  await fake.write(helloLine(server.env.SPYTHON_TOKEN));
  await fake.waitFor('welcome');
  return { fake, ...(await next()) };
}

/**
 * A Duplex standing in for a socket: data is injected by hand, writes are captured. Each injected
 * chunk arrives as a socket reading into a reused buffer delivers it, and is scribbled over once it has
 * been handled: whatever the reader keeps without copying it shows up as 0xff bytes.
 */
class FakeSocket extends Duplex {
  readonly written: string[] = [];
  _read(): void {}
  _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written.push(chunk.toString('utf8'));
    callback();
  }
  inject(chunk: Buffer): void {
    const read = Buffer.from(chunk);
    this.emit('data', read);
    read.fill(0xff);
  }
}

/** Feeds `data` cut at `cuts` to a fresh connection over a FakeSocket, then closes it. */
function feedWithCuts(token: string, data: Buffer, cuts: number[]): { log: Log; socket: FakeSocket; connection: ChannelConnection } {
  const socket = new FakeSocket();
  const connection = new ChannelConnection(socket, token, () => ({ x: 1 }));
  const log = watch(connection);
  let start = 0;
  for (const cut of [...cuts, data.length]) {
    if (cut <= start) continue;
    socket.inject(data.subarray(start, cut));
    start = cut;
  }
  socket.emit('close');
  return { log, socket, connection };
}

// ---------------------------------------------------------------------------------------------

for (const reuseReadBuffer of [true, false]) {
  describe(`ChannelServer, ${reuseReadBuffer ? 'reading into a reused buffer' : 'a fresh buffer a read (the fallback)'}`, () => {
    const create = (options: ChannelServerOptions = {}) => ChannelServer.create({ ...options, reuseReadBuffer });
    const serverWithConnection = (config?: object) => connectedServer(create(config ? { config } : {}));

    test(`its connections ${reuseReadBuffer ? 'read into a reused buffer on this Node' : 'are read as Node reads by itself'}`, async () => {
      const { server, next } = await serverWithConnection();
      try {
        const fake = await FakeLauncher.connect(server);
        const { connection } = await next();
        assert.equal(connection.reusesReadBuffer, reuseReadBuffer);
        await fake.end();
      } finally {
        await server.close();
      }
    });

    test('creates a private directory, a socket and a token; close() removes them', async () => {
      const server = await create();
      const dir = path.dirname(server.env.SPYTHON_CHANNEL);
      assert.equal(path.basename(server.env.SPYTHON_CHANNEL), 'sock');
      assert.ok(path.basename(dir).startsWith('spython-'));
      assert.equal(dir, server.dir);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      assert.ok(fs.statSync(server.env.SPYTHON_CHANNEL).isSocket());
      assert.match(server.env.SPYTHON_TOKEN, /^[0-9a-f]{64}$/);
      assert.deepEqual(Object.keys(server.env).sort(), ['SPYTHON_CHANNEL', 'SPYTHON_TOKEN']);

      const other = await create();
      assert.notEqual(other.env.SPYTHON_TOKEN, server.env.SPYTHON_TOKEN);
      assert.notEqual(other.env.SPYTHON_CHANNEL, server.env.SPYTHON_CHANNEL);

      await server.close();
      await other.close();
      await server.close(); // idempotent
      assert.equal(fs.existsSync(dir), false);
    });

    test('handshake: hello verified, welcome carries the config', async () => {
      const { server, next } = await serverWithConnection({ breakpoints: [{ event: 'open' }], stopOnEntry: true });
      const emitted: ChannelConnection[] = [];
      server.on('connection', (c) => emitted.push(c));
      try {
        const fake = await FakeLauncher.connect(server);
        await fake.write(helloLine(server.env.SPYTHON_TOKEN, { pid: 777, unknownKey: 'ignored' }));
        const welcome = await fake.waitFor('welcome');
        assert.deepEqual(welcome, {
          type: 'welcome',
          protocol: 1,
          config: { breakpoints: [{ event: 'open' }], stopOnEntry: true },
        });
        const { connection, log } = await next();
        assert.equal(emitted[0], connection);
        assert.equal(server.connections[0], connection);
        assert.equal(log.hello?.pid, 777);
        assert.equal(connection.pid, 777);
        assert.equal(connection.hello?.python, '3.12.1');
        assert.equal(log.rejected, undefined);
        await fake.end();
        await log.ended;
        assert.deepEqual(log.events, [['hello'], ['end']]);
        assert.equal(log.errors.length, 0);
      } finally {
        await server.close();
      }
    });

    test('welcome with the default (empty) config', async () => {
      const { server } = await serverWithConnection();
      try {
        const fake = await FakeLauncher.connect(server);
        await fake.write(helloLine(server.env.SPYTHON_TOKEN));
        assert.deepEqual(await fake.waitFor('welcome'), { type: 'welcome', protocol: 1, config: {} });
      } finally {
        await server.close();
      }
    });

    const badHellos: Array<[string, (token: string) => string, RegExp]> = [
      ['a wrong token of the right length', (t) => helloLine(t.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))), /token/],
      ['a token of the wrong length', (t) => helloLine(t + '00'), /token/],
      ['an empty token', () => helloLine(''), /token/],
      ['a missing token', (t) => helloLine(t, { token: undefined }), /token/],
      ['a non-string token', () => helloLine('', { token: 12345 }), /token/],
      ['another protocol version', (t) => helloLine(t, { protocol: 2 }), /protocol version/],
      ['a string protocol version', (t) => helloLine(t, { protocol: '1' }), /protocol version/],
      ['a record before the hello', () => record('open', 1) + '\n', /hello/],
      ['another control message first', (t) => JSON.stringify({ type: 'exit', status: 0, token: t }) + '\n', /hello/],
      ['garbage', () => 'hello there\n', /hello/],
      ['malformed JSON', (t) => `{"type":"hello","token":"${t}",\n`, /malformed/],
    ];
    for (const [what, make, reason] of badHellos) {
      test(`rejects a first line with ${what}`, async () => {
        const { server, next } = await serverWithConnection();
        try {
          const fake = await FakeLauncher.connect(server);
          await fake.write(make(server.env.SPYTHON_TOKEN));
          // Records after a refused hello are ignored.
          fake.write(record('open', 1) + '\n').catch(() => {});
          const reject = await fake.waitFor('reject');
          assert.equal(typeof reject.message, 'string');
          assert.match(reject.message as string, reason);
          await until(() => fake.closed, 'the reader to close the connection');
          const { connection, log } = await next();
          await log.ended;
          assert.equal(log.hello, undefined);
          assert.equal(connection.hello, undefined);
          assert.equal(log.names.length, 0);
          assert.equal(connection.records, 0);
          assert.match(log.rejected ?? '', reason);
          assert.equal(connection.rejectReason, log.rejected);
          assert.equal(log.ends, 1);
          assert.ok(!fake.received.some((m) => m.type === 'welcome'));
        } finally {
          await server.close();
        }
      });
    }

    test('records split across arbitrary chunk boundaries (real socket)', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const fake = await FakeLauncher.connect(server);
        const hello = Buffer.from(helloLine(server.env.SPYTHON_TOKEN));
        const body = Buffer.from(RECORDS.join('\n') + '\n' + RECORDS.join('\n') + '\n');
        const all = Buffer.concat([hello, body]);
        const { connection, log } = await next();
        // Cuts: inside the hello, right after it, inside the event prefix, inside the name, inside a
        // multi-byte UTF-8 character, right before and right after newlines, single bytes.
        const utf8 = all.indexOf(Buffer.from('𝄞'));
        const nl = all.indexOf(10, hello.length + 5);
        const cuts = [
          5,
          hello.length - 1,
          hello.length,
          hello.length + 3,
          hello.length + 9,
          hello.length + 10,
          hello.length + 12,
          nl,
          nl + 1,
          nl + 2,
          utf8 + 1,
          utf8 + 2,
          utf8 + 3,
          all.length - 1,
        ].sort((a, b) => a - b);
        await fake.writeInPieces(all, cuts, connection);
        await fake.end();
        await log.ended;
        assert.deepEqual(log.names, [...NAMES, ...NAMES]);
        assert.deepEqual(
          log.lines.map((l) => l.toString('utf8')),
          [...RECORDS, ...RECORDS],
        );
        assert.equal(connection.records, 10);
        assert.equal(connection.bytesReceived, all.length);
        assert.deepEqual(log.errors, []);
        assert.equal(log.events[0][0], 'hello');
        assert.deepEqual(log.events[log.events.length - 1], ['end']);
      } finally {
        await server.close();
      }
    });

    test('control messages: exit sets exitStatus, error and unknown types are passed on', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const { fake, connection, log } = await welcomedLauncher(server, next);
        await fake.write(
          RECORDS[0] +
            '\n' +
            JSON.stringify({ type: 'error', message: 'unknown type', line: '{"type":"frob"}' }) +
            '\n' +
            JSON.stringify({ type: 'future-thing', x: 1 }) +
            '\n' +
            RECORDS[1] +
            '\n' +
            JSON.stringify({ type: 'exit', status: 3 }) +
            '\n',
        );
        await fake.end();
        await log.ended;
        assert.equal(connection.exitStatus, 3);
        assert.deepEqual(
          log.controls.map((m) => m.type),
          ['error', 'future-thing', 'exit'],
        );
        assert.deepEqual(log.controls[2], { type: 'exit', status: 3 });
        assert.deepEqual(log.events, [
          ['hello'],
          ['record', 'open'],
          ['control', 'error'],
          ['control', 'future-thing'],
          ['record', 'exec'],
          ['control', 'exit'],
          ['end'],
        ]);
        assert.deepEqual(log.errors, []);
      } finally {
        await server.close();
      }
    });

    test('exitStatus stays undefined without an exit message', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const fake = await FakeLauncher.connect(server);
        await fake.write(helloLine(server.env.SPYTHON_TOKEN) + RECORDS[0] + '\n');
        const { connection, log } = await next();
        fake.socket.destroy();
        await log.ended;
        assert.equal(connection.exitStatus, undefined);
        assert.equal(connection.records, 1);
      } finally {
        await server.close();
      }
    });

    test('malformed lines are protocol errors; the connection goes on', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const { fake, connection, log } = await welcomedLauncher(server, next);
        const bad = [
          'not json at all',
          '',
          '{"seq":1,"event":"open"}', // the event key must come first
          '{"event":"open', // no closing quote after the name
          '{"type":"exit","status":', // malformed control JSON
          '{"type":"exit","status":"0"}', // non-integer status
          '{"type":"hello","protocol":1}', // a second hello
          ' {"event":"open","seq":1}', // leading space
          '[1,2,3]',
        ];
        await fake.write(bad.map((l) => l + '\n' + RECORDS[2] + '\n').join(''));
        await fake.end();
        await log.ended;
        assert.equal(log.errors.length, bad.length, log.errors.join('\n'));
        assert.equal(connection.protocolErrors, bad.length);
        assert.match(log.errors[1], /empty line/);
        assert.match(log.errors[3], /closing quote/);
        assert.match(log.errors[4], /malformed control message/);
        assert.match(log.errors[6], /hello received twice/);
        assert.deepEqual(log.names, bad.map(() => 'socket.connect'));
        assert.equal(connection.exitStatus, undefined);
        assert.equal(log.controls.length, 0);
        assert.equal(log.ends, 1);
      } finally {
        await server.close();
      }
    });

    test('an oversized line is a protocol error and is skipped; a line of exactly 1 MiB is not', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const { fake, connection, log } = await welcomedLauncher(server, next);

        const exact = Buffer.alloc(MAX_LINE_BYTES, 0x61);
        Buffer.from('{"event":"big","args":["').copy(exact);
        Buffer.from('"]}').copy(exact, MAX_LINE_BYTES - 3);
        const over = Buffer.alloc(MAX_LINE_BYTES + 1, 0x62);
        Buffer.from('{"event":"huge","args":["').copy(over);
        Buffer.from('"]}').copy(over, over.length - 3);
        const overLarge = Buffer.alloc(3 * MAX_LINE_BYTES, 0x63);
        Buffer.from('{"event":"huger","args":["').copy(overLarge);

        await fake.write(Buffer.concat([exact, Buffer.from('\n' + RECORDS[0] + '\n')]));
        await fake.write(Buffer.concat([over, Buffer.from('\n' + RECORDS[1] + '\n')]));
        // An oversized line arriving in pieces, followed on the same chunk by a good record.
        await fake.writeInPieces(
          Buffer.concat([overLarge, Buffer.from('\n' + RECORDS[2] + '\n')]),
          [1000, MAX_LINE_BYTES - 10, MAX_LINE_BYTES + 10, 2 * MAX_LINE_BYTES],
          connection,
        );
        // And one that is complete within a single large write.
        await fake.write(Buffer.concat([Buffer.from(RECORDS[3] + '\n'), overLarge, Buffer.from('\n' + RECORDS[4] + '\n')]));
        await fake.end();
        await log.ended;

        assert.deepEqual(log.names, ['big', 'open', 'exec', 'socket.connect', 'os.system', 'compile']);
        assert.equal(log.lines[0].length, MAX_LINE_BYTES);
        assert.ok(log.lines[0].equals(exact));
        assert.equal(log.errors.length, 3, log.errors.join('\n'));
        for (const e of log.errors) assert.match(e, /longer than 1048576 bytes/);
        assert.equal(log.ends, 1);
      } finally {
        await server.close();
      }
    });

    test('an oversized hello is rejected', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const fake = await FakeLauncher.connect(server);
        const { log } = await next();
        fake.write(Buffer.alloc(MAX_LINE_BYTES + 100, 0x7b)).catch(() => {});
        await log.ended;
        assert.match(log.rejected ?? '', /longer than/);
        assert.equal(log.hello, undefined);
      } finally {
        await server.close();
      }
    });

    test('a truncated final line is a protocol error, then end exactly once', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const fake = await FakeLauncher.connect(server);
        const { connection, log } = await next();
        await fake.write(helloLine(server.env.SPYTHON_TOKEN) + RECORDS[0] + '\n' + RECORDS[1] + '\n' + RECORDS[2].slice(0, 40));
        await fake.end();
        await log.ended;
        await sleep(20);
        assert.deepEqual(log.names, ['open', 'exec']);
        assert.equal(log.errors.length, 1);
        assert.match(log.errors[0], /^truncated line/);
        assert.equal(log.ends, 1);
        assert.deepEqual(log.events[log.events.length - 2], ['protocolError', log.errors[0]]);
        assert.deepEqual(log.events[log.events.length - 1], ['end']);
        assert.equal(connection.ended, true);
      } finally {
        await server.close();
      }
    });

    test('a peer that connects and leaves without a word: just end', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const fake = await FakeLauncher.connect(server);
        const { log } = await next();
        await fake.end();
        await log.ended;
        assert.deepEqual(log.events, [['end']]);
      } finally {
        await server.close();
      }
    });

    test('send() writes one JSON line; ping() resolves on the matching pong', async () => {
      const { server, next } = await serverWithConnection();
      try {
        const { fake, connection, log } = await welcomedLauncher(server, next);
        assert.equal(connection.send({ type: 'custom', text: 'a\nb' }), true);
        const custom = await fake.waitFor('custom');
        assert.deepEqual(custom, { type: 'custom', text: 'a\nb' });

        const pinged = connection.ping(2000);
        const ping = await fake.waitFor('ping');
        assert.equal(typeof ping.id, 'number');
        await fake.write(JSON.stringify({ type: 'pong', id: (ping.id as number) + 1000 }) + '\n'); // not ours
        await fake.write(JSON.stringify({ type: 'pong', id: ping.id }) + '\n');
        const rtt = await pinged;
        assert.ok(rtt >= 0);
        assert.deepEqual(
          log.controls.map((m) => m.type),
          ['pong', 'pong'],
        );

        const unanswered = connection.ping(5000);
        await fake.waitFor('ping');
        fake.socket.destroy();
        await assert.rejects(unanswered, /ended before pong/);
      } finally {
        await server.close();
      }
    });

    test('a config function may defer the welcome; input meanwhile is held in order', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const seen: HelloMessage[] = [];
      const server = await create({
        config: async (hello: HelloMessage) => {
          seen.push(hello);
          await gate;
          return { forPid: hello.pid };
        },
      });
      const logs: Log[] = [];
      server.on('connection', (c) => logs.push(watch(c)));
      try {
        const fake = await FakeLauncher.connect(server);
        // The hello, then (against the protocol, to test the holding) records and a partial line.
        await fake.write(helloLine(server.env.SPYTHON_TOKEN, { pid: 99 }) + RECORDS[0] + '\n' + RECORDS[1].slice(0, 20));
        await until(() => seen.length === 1, 'the config function to be called');
        await fake.write(RECORDS[1].slice(20) + '\n');
        await sleep(30);
        assert.equal(logs[0].hello, undefined);
        assert.equal(logs[0].names.length, 0);
        assert.ok(!fake.received.some((m) => m.type === 'welcome'));

        release();
        assert.deepEqual(await fake.waitFor('welcome'), { type: 'welcome', protocol: 1, config: { forPid: 99 } });
        await fake.write(RECORDS[2] + '\n');
        await fake.end();
        await logs[0].ended;
        assert.deepEqual(logs[0].events, [['hello'], ['record', 'open'], ['record', 'exec'], ['record', 'socket.connect'], ['end']]);
      } finally {
        await server.close();
      }
    });

    test('a failing config function rejects the connection', async () => {
      const server = await create({
        config: () => {
          throw new Error('no session');
        },
      });
      const asyncFailing = await create({ config: async () => Promise.reject(new Error('too late')) });
      try {
        for (const [s, reason] of [
          [server, /no session/],
          [asyncFailing, /too late/],
        ] as const) {
          const fake = await FakeLauncher.connect(s);
          await fake.write(helloLine(s.env.SPYTHON_TOKEN));
          const reject = await fake.waitFor('reject');
          assert.match(reject.message as string, reason);
          await until(() => fake.closed, 'the connection to close');
        }
      } finally {
        await server.close();
        await asyncFailing.close();
      }
    });

    test('server.config can be changed between connections', async () => {
      const server = await create({ config: { n: 1 } });
      try {
        const a = await FakeLauncher.connect(server);
        await a.write(helloLine(server.env.SPYTHON_TOKEN));
        assert.deepEqual((await a.waitFor('welcome')).config, { n: 1 });
        server.config = { n: 2 };
        const b = await FakeLauncher.connect(server);
        await b.write(helloLine(server.env.SPYTHON_TOKEN));
        assert.deepEqual((await b.waitFor('welcome')).config, { n: 2 });
      } finally {
        await server.close();
      }
    });

    test('several connections at once keep their streams apart', async () => {
      const server = await create();
      const collector = collect(server);
      try {
        const fakes = await Promise.all([0, 1, 2, 3, 4].map(() => FakeLauncher.connect(server)));
        await Promise.all(
          fakes.map(async (fake, i) => {
            await fake.write(helloLine(server.env.SPYTHON_TOKEN, { pid: 1000 + i }));
            await fake.waitFor('welcome');
            for (let j = 0; j < 50; j++) await fake.write(record(`ev.${i}`, j + 1) + '\n');
            await fake.write(JSON.stringify({ type: 'exit', status: i }) + '\n');
            await fake.end();
          }),
        );
        const all = await collector.all(5);
        assert.equal(all.length, 5);
        for (const c of all) {
          const i = (c.hello?.pid ?? 0) - 1000;
          assert.ok(i >= 0 && i < 5);
          assert.equal(c.exitStatus, i);
          assert.equal(c.names.length, 50);
          assert.ok(c.names.every((n) => n === `ev.${i}`));
          assert.deepEqual(
            c.parsed().map((r) => r.seq),
            Array.from({ length: 50 }, (_, j) => j + 1),
          );
          assert.deepEqual(c.protocolErrors, []);
        }
      } finally {
        await server.close();
      }
    });

    test('close() ends live connections without protocol errors and removes the directory', async () => {
      const { server, next } = await serverWithConnection();
      const fake = await FakeLauncher.connect(server);
      await fake.write(helloLine(server.env.SPYTHON_TOKEN) + RECORDS[0] + '\n' + RECORDS[1].slice(0, 10));
      const { log } = await next();
      await until(() => log.names.length === 1, 'a record');
      await server.close();
      await log.ended;
      await until(() => fake.closed, 'the launcher side to see the close');
      assert.deepEqual(log.errors, []);
      assert.equal(log.ends, 1);
      assert.equal(fs.existsSync(server.dir), false);
      await assert.rejects(FakeLauncher.connect(server));
    });

    test('throughput: 200k records over a real socket', async (t) => {
      const { server, next } = await serverWithConnection();
      try {
        const { fake, connection, log } = await welcomedLauncher(server, next);
        const batch = Buffer.from(Array.from({ length: 1000 }, (_, i) => record(i % 2 ? 'open' : 'exec', i) + '\n').join(''));
        let opens = 0;
        connection.on('record', (name) => {
          if (name === 'open') opens++;
        });
        const started = Date.now();
        for (let i = 0; i < 200; i++) {
          if (!fake.socket.write(batch)) await new Promise((resolve) => fake.socket.once('drain', resolve));
        }
        await fake.end();
        await log.ended;
        const ms = Date.now() - started;
        assert.equal(connection.records, 200_000);
        assert.equal(opens, 100_000);
        assert.deepEqual(log.errors, []);
        // Generous bound: this is a smoke test for accidental quadratic behaviour, not a benchmark.
        assert.ok(ms < 20_000, `took ${ms} ms`);
        t.diagnostic(`throughput: 200000 records (${batch.length * 200} bytes) in ${ms} ms`);
      } finally {
        await server.close();
      }
    });
  });
}

describe('ChannelConnection line splitting (hand-fed chunks)', () => {
  const token = 'f'.repeat(64);
  const stream = Buffer.from(
    helloLine(token) +
      RECORDS.join('\n') +
      '\n' +
      JSON.stringify({ type: 'exit', status: 0 }) +
      '\n' +
      RECORDS[3] +
      '\n',
  );
  const expectedEvents = [
    ['hello'],
    ...NAMES.map((n) => ['record', n]),
    ['control', 'exit'],
    ['record', 'os.system'],
    ['end'],
  ];
  const expectedLines = [...RECORDS, RECORDS[3]];

  function check(log: Log, connection: ChannelConnection, socket: FakeSocket, cuts: number[]) {
    const where = `cuts ${JSON.stringify(cuts)}`;
    assert.deepEqual(log.events, expectedEvents, where);
    assert.deepEqual(
      log.lines.map((l) => l.toString('utf8')),
      expectedLines,
      where,
    );
    assert.equal(connection.exitStatus, 0);
    assert.equal(socket.written.join(''), '{"type":"welcome","protocol":1,"config":{"x":1}}\n');
  }

  test('every single cut position', () => {
    for (let i = 1; i < stream.length; i++) {
      const { log, connection, socket } = feedWithCuts(token, stream, [i]);
      check(log, connection, socket, [i]);
    }
  });

  test('byte by byte', () => {
    const cuts = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
    const { log, connection, socket } = feedWithCuts(token, stream, cuts);
    check(log, connection, socket, []);
  });

  test('input held while the configuration is computed, and the hello, in pieces', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const socket = new FakeSocket();
    const connection = new ChannelConnection(socket, token, async () => {
      await gate;
      return { x: 1 };
    });
    const log = watch(connection);
    const hello = stream.indexOf(10) + 1;
    // The hello's start, its end with records and a partial line (held), more pieces while held.
    const cuts = [5, hello + RECORDS[0].length + 30, hello + RECORDS[0].length + RECORDS[1].length + 90, stream.length];
    let start = 0;
    for (const cut of cuts) {
      socket.inject(stream.subarray(start, cut));
      start = cut;
    }
    assert.equal(connection.hello, undefined);
    release();
    await until(() => connection.hello !== undefined, 'the welcome');
    socket.emit('close');
    await log.ended;
    check(log, connection, socket, cuts);
  });

  test('500 random partitions', () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let n = 0; n < 500; n++) {
      const count = 1 + Math.floor(random() * 12);
      const cuts = Array.from({ length: count }, () => 1 + Math.floor(random() * (stream.length - 1))).sort((a, b) => a - b);
      const { log, connection, socket } = feedWithCuts(token, stream, cuts);
      check(log, connection, socket, cuts);
    }
  });

  test('the whole stream as one chunk', () => {
    const { log, connection, socket } = feedWithCuts(token, stream, []);
    check(log, connection, socket, []);
    assert.equal(connection.bytesReceived, stream.length);
  });

  test('a record sink takes every record in place of the events, and their bytes in runs, whole or across cuts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-sink-'));
    try {
      for (const cuts of [[], [stream.length - 3], Array.from({ length: 40 }, (_, i) => 7 + i * 23)]) {
        const socket = new FakeSocket();
        const connection = new ChannelConnection(socket, token, () => ({ x: 1 }));
        const log = watch(connection);
        const writer = new JsonlWriter(path.join(dir, `${cuts.length}.jsonl`), { flags: 'w' });
        const reader = new RecordReader();
        const sunk: Array<[string, string, number]> = [];
        let sunkSinceLines = 0;
        let chunks = 0;
        connection.setRecordSink({
          chunk: () => chunks++,
          record: (name, chunk, start, end) => {
            sunk.push([name, chunk.toString('utf8', start, end), reader.read(name, chunk, start, end).tid]);
            sunkSinceLines++;
          },
          lines: (chunk, start, end, count) => {
            // The run is the records handed over since the last run, newlines included, nothing else.
            assert.equal(count, sunkSinceLines);
            const run = sunk.slice(sunk.length - count).map(([, line]) => line + '\n').join('');
            assert.equal(chunk.toString('utf8', start, end), run);
            sunkSinceLines = 0;
            writer.writeLines(chunk, start, end, count);
          },
        });
        let start = 0;
        let injected = 0;
        for (const cut of [...cuts.filter((c) => c < stream.length), stream.length]) {
          socket.inject(stream.subarray(start, cut));
          start = cut;
          injected++;
        }
        socket.emit('close');
        await writer.close();
        // The sink is set before the first chunk: told of every one.
        assert.equal(chunks, injected);
        const where = `cuts ${JSON.stringify(cuts)}`;
        assert.deepEqual(log.names, [], where);
        assert.deepEqual(log.events, expectedEvents.filter(([kind]) => kind !== 'record'), where);
        assert.deepEqual(sunk, expectedLines.map((line) => [JSON.parse(line).event, line, 4242]), where);
        assert.equal(connection.records, expectedLines.length, where);
        assert.equal(sunkSinceLines, 0, where);
        assert.equal(writer.lines, expectedLines.length, where);
        assert.equal(fs.readFileSync(writer.path, 'utf8'), expectedLines.map((line) => line + '\n').join(''), where);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('destroy() from a record listener stops the rest of the chunk', async () => {
    const socket = new FakeSocket();
    const connection = new ChannelConnection(socket, token, () => ({}));
    const log = watch(connection);
    connection.on('record', (name) => {
      if (name === 'exec') connection.destroy();
    });
    socket.inject(stream);
    await log.ended;
    assert.deepEqual(log.names, ['open', 'exec']);
    assert.deepEqual(log.errors, []);
    assert.equal(log.ends, 1);
  });

  test('a truncated tail at every position of the last line', () => {
    const lastStart = stream.lastIndexOf(10, stream.length - 2) + 1;
    for (let end = lastStart + 1; end < stream.length; end++) {
      const { log } = feedWithCuts(token, stream.subarray(0, end), [lastStart + 1]);
      assert.equal(log.errors.length, 1);
      assert.match(log.errors[0], /truncated line/);
      assert.equal(log.names.length, 5);
      assert.equal(log.ends, 1);
    }
  });
});

describe('JsonlWriter', () => {
  function tmpFile(): { dir: string; file: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-test-'));
    return { dir, file: path.join(dir, 'audit.jsonl') };
  }

  test('writes each line plus a newline, in order', async () => {
    const { dir, file } = tmpFile();
    try {
      const writer = new JsonlWriter(file);
      const lines: string[] = [];
      for (let i = 0; i < 20_000; i++) {
        const line = record(i % 3 ? 'open' : 'exec', i + 1, ['x'.repeat(i % 50)]);
        lines.push(line);
        writer.write(Buffer.from(line));
        if (i % 5000 === 0) await sleep(1);
      }
      await writer.close();
      assert.equal(writer.lines, 20_000);
      assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('runs of whole lines are written as they are, in order with single lines', async () => {
    const { dir, file } = tmpFile();
    try {
      const writer = new JsonlWriter(file, { batchBytes: 4096 });
      // Runs of lines of one chunk, as the channel hands them over, between single lines.
      const chunk = Buffer.from('{"type":"exit","status":0}\n' + RECORDS.join('\n') + '\n' + RECORDS.join('\n') + '\n');
      const runStart = chunk.indexOf(0x0a) + 1;
      writer.write(Buffer.from('{"event":"before"}'));
      writer.writeLines(chunk, runStart, chunk.length, 2 * RECORDS.length);
      writer.write(Buffer.concat([Buffer.from('{"event":'), Buffer.from('"pieces"}')]));
      writer.writeLines(chunk, runStart, runStart + RECORDS[0].length + 1, 1);
      const expected = ['{"event":"before"}', ...RECORDS, ...RECORDS, '{"event":"pieces"}', RECORDS[0]];
      await writer.close();
      assert.equal(writer.lines, expected.length);
      assert.equal(fs.readFileSync(file, 'utf8'), expected.join('\n') + '\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a batch smaller than batchBytes is written on its own, batchMs after its first line', async () => {
    const { dir, file } = tmpFile();
    try {
      const writer = new JsonlWriter(file, { batchBytes: 1024 * 1024, batchMs: 5 });
      writer.write(Buffer.from(RECORDS[0]));
      writer.write(Buffer.from(RECORDS[1]));
      // Neither flush() nor close(): the batch's timer writes it.
      const size = () => (fs.existsSync(file) ? fs.statSync(file).size : 0);
      for (let waited = 0; size() === 0 && waited < 10_000; waited += 10) await sleep(10);
      assert.equal(fs.readFileSync(file, 'utf8'), RECORDS[0] + '\n' + RECORDS[1] + '\n');
      await writer.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('appends by default; "w" truncates', async () => {
    const { dir, file } = tmpFile();
    try {
      fs.writeFileSync(file, RECORDS[0] + '\n');
      const a = new JsonlWriter(file);
      a.write(Buffer.from(RECORDS[1]));
      await a.close();
      assert.equal(fs.readFileSync(file, 'utf8'), RECORDS[0] + '\n' + RECORDS[1] + '\n');
      const w = new JsonlWriter(file, { flags: 'w' });
      w.write(Buffer.from(RECORDS[2]));
      await w.flush();
      assert.equal(fs.readFileSync(file, 'utf8'), RECORDS[2] + '\n');
      await w.close();
      await w.close();
      assert.equal(w.write(Buffer.from(RECORDS[3])), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('backpressure: write() returns false above the high-water mark, then drain', async () => {
    const { dir, file } = tmpFile();
    try {
      const writer = new JsonlWriter(file, { highWaterMark: 64 * 1024, batchBytes: 16 * 1024 });
      const line = Buffer.alloc(1000, 0x61);
      let i = 0;
      while (writer.write(line)) i++;
      assert.ok(i < 200, `accepted ${i} lines before asking to wait`);
      await new Promise<void>((resolve) => writer.once('drain', resolve));
      await writer.close();
      assert.equal(fs.statSync(file).size, (i + 1) * 1001);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unwritable path: close() rejects, "error" is emitted when listened to', async () => {
    const writer = new JsonlWriter('/nonexistent-dir-for-spython/audit.jsonl');
    const errors: Error[] = [];
    writer.on('error', (err) => errors.push(err));
    writer.write(Buffer.from(RECORDS[0]));
    await assert.rejects(writer.close(), /ENOENT/);
    assert.equal(errors.length, 1);

    const silent = new JsonlWriter('/nonexistent-dir-for-spython/audit.jsonl');
    silent.write(Buffer.from(RECORDS[0]));
    await assert.rejects(silent.close(), /ENOENT/);
  });
});

describe('test helpers', () => {
  test('runProcess + collect with a fake launcher in a child process', async () => {
    const server = await ChannelServer.create({ config: { hi: true } });
    const collector = collect(server);
    // A fake launcher: connects, sends hello, waits for welcome, prints the config, streams
    // records in small pieces, says exit, and exits 7.
    const script = `
      const net = require('net');
      const s = net.connect(process.env.SPYTHON_CHANNEL, () => {
        s.write(JSON.stringify({type:'hello',protocol:1,token:process.env.SPYTHON_TOKEN,pid:process.pid,
          ppid:process.ppid,python:'3.12.1',mode:'dlopen',executable:process.execPath,freeThreaded:false}) + '\\n');
      });
      let buf = '';
      s.on('data', async (d) => {
        buf += d;
        if (!buf.includes('\\n')) return;
        const welcome = JSON.parse(buf.slice(0, buf.indexOf('\\n')));
        process.stdout.write(JSON.stringify(welcome.config));
        process.stderr.write('err-text');
        const out = ${JSON.stringify(RECORDS.join('\n') + '\n')} + '{"type":"exit","status":7}\\n';
        for (let i = 0; i < out.length; i += 37) {
          s.write(out.slice(i, i + 37));
          await new Promise((r) => setTimeout(r, 1));
        }
        s.end(() => process.exit(7));
      });`;
    try {
      const result = await runProcess(process.execPath, ['-e', script], {
        channel: server,
        env: { UNRELATED: 'x' },
        timeoutMs: 10_000,
      });
      assert.equal(result.status, 7, result.stderrText);
      assert.equal(result.signal, null);
      assert.equal(result.stdoutText, '{"hi":true}');
      assert.equal(result.stderrText, 'err-text');
      assert.ok(Buffer.isBuffer(result.stdout));
      const c = await collector.connection(0);
      assert.equal(c.hello?.pid !== undefined, true);
      assert.deepEqual(c.names, NAMES);
      assert.deepEqual(
        c.records.map((r) => r.toString('utf8')),
        RECORDS,
      );
      assert.equal(c.exitStatus, 7);
      assert.deepEqual(c.protocolErrors, []);
      assert.equal(c.rejected, undefined);
      assert.equal(c.parsed()[3].event, 'os.system');
    } finally {
      collector.stop();
      await server.close();
    }
  });

  test('runProcess: input, env removal, timeout', async () => {
    process.env.SPYTHON_TEST_REMOVE_ME = '1';
    try {
      const r = await runProcess(
        process.execPath,
        [
          '-e',
          `let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{console.log(d.toUpperCase(), process.env.SPYTHON_TEST_REMOVE_ME, process.env.SPYTHON_CHANNEL)})`,
        ],
        { input: 'abc', env: { SPYTHON_TEST_REMOVE_ME: undefined } },
      );
      assert.equal(r.stdoutText, 'ABC undefined undefined\n');
      assert.equal(r.status, 0);
    } finally {
      delete process.env.SPYTHON_TEST_REMOVE_ME;
    }
    await assert.rejects(
      runProcess(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { timeoutMs: 300 }),
      /timed out after 300 ms/,
    );
    await assert.rejects(runProcess('/nonexistent/spython', []), /cannot run/);
  });

  test('interpreters() and LAUNCHER', (t) => {
    assert.ok(fs.existsSync(path.join(REPO_ROOT, 'package.json')));
    assert.equal(LAUNCHER, path.join(REPO_ROOT, 'dist', 'bin', 'spython'));
    const found = interpreters();
    for (const i of found) {
      assert.match(i.version, /^3\.(8|9|10|11|12|13)\.\d+$/);
      assert.ok(path.isAbsolute(i.path));
      assert.equal(fs.realpathSync(i.path), i.path);
    }
    const versions = found.map((i) => i.version.split('.').map(Number));
    for (let k = 1; k < versions.length; k++) {
      const [a, b] = [versions[k - 1], versions[k]];
      assert.ok(a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] <= b[2]))), 'sorted');
    }
    t.diagnostic(`interpreters: ${found.map((i) => `${i.version}=${i.path}`).join(', ')}`);
  });
});
