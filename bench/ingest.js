#!/usr/bin/env node
// Node's reading side on its own, without a launcher producing events at the same time: a storm is
// recorded once with the launcher (--log-file), then read back by a channel connection whose record
// sink does what the engine does with a record it neither shows nor keeps: count it by name when its
// thread is the previous record's (else read it), and copy its run to a JSONL log. Three ways, each once
// a round in rotating order:
//   reused  — through a real Unix socket, read into one reused buffer (what the channel server does);
//   fresh   — through a real Unix socket read as Node does by itself: a new zero-filled buffer a read
//             (the channel server's fallback);
//   memory  — the bytes fed from memory in 64 KiB chunks, no socket: the framing alone.
// The socket is written by a child process (a `cat` in Node), whose CPU is not counted. Prints CPU and
// wall nanoseconds a record (medians of the rounds) and each way's median ratio of CPU to `reused` in the
// same round. Uses the tsc output (run `npx tsc -p .` first) and dist/bin/spython.
//
// Usage: node bench/ingest.js [--events N] [--rounds N] [--python PATH] [--only reused,fresh,memory]
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawn } = require('child_process');
const { Duplex } = require('stream');

const ROOT = path.resolve(__dirname, '..');
const { ChannelConnection, ChannelServer, JsonlWriter, PROTOCOL_VERSION } = require(path.join(ROOT, 'out', 'adapter', 'channel'));
const { RecordReader } = require(path.join(ROOT, 'out', 'adapter', 'records'));

const CHUNK_BYTES = 64 * 1024;
const WAYS = ['reused', 'fresh', 'memory'];

/** The child writing the socket: the hello, then the recorded storm; it leaves when the reader closes. */
const FEEDER = `
const fs = require('fs'), net = require('net');
const [socketPath, hello, file] = process.argv.slice(1);
const socket = net.connect(socketPath, () => {
  socket.write(hello);
  fs.createReadStream(file, { highWaterMark: ${CHUNK_BYTES} }).pipe(socket);
});
socket.on('data', () => {});
socket.on('error', () => {});
`;

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback;
}

/** A socket stand-in: the bytes are injected as 'data' events, writes (the welcome) are dropped. */
class FedSocket extends Duplex {
  _read() {}
  _write(_chunk, _encoding, callback) {
    callback();
  }
}

function recordStorm(python, events, dir) {
  const log = path.join(dir, 'storm.jsonl');
  execFileSync(path.join(ROOT, 'dist', 'bin', 'spython'), ['--log-file', log, '--python', python, path.join(__dirname, 'workloads', 'storm.py'), String(events)]);
  return log;
}

function helloLine(token) {
  const hello = { type: 'hello', protocol: PROTOCOL_VERSION, token, pid: 1, ppid: 0, python: '3', mode: 'dlopen', executable: 'python', freeThreaded: false };
  return JSON.stringify(hello) + '\n';
}

/**
 * Sets the sink the engine's would be on `connection`, logging to `logFile`; resolves with
 * {records, cpuNs, wallNs} from `started` (process.cpuUsage() and hrtime) to the log's close.
 */
function drain(connection, logFile, started) {
  const writer = new JsonlWriter(logFile, { flags: 'w' });
  const reader = new RecordReader();
  const counts = new Map();
  let last;
  connection.setRecordSink({
    chunk() {},
    record(name, chunk, start, end) {
      if (last === undefined || last.name !== name) {
        last = counts.get(name) ?? { name, count: 0 };
        counts.set(name, last);
      }
      if (reader.sameAsLatest(name, chunk, start, end)) last.count++;
      else reader.read(name, chunk, start, end);
    },
    lines(chunk, start, end, count) {
      writer.writeLines(chunk, start, end, count);
    },
  });
  return new Promise((resolve, reject) => {
    connection.once('end', () => {
      writer.close().then(() => {
        const used = process.cpuUsage(started.cpu);
        resolve({ records: connection.records, cpuNs: (used.user + used.system) * 1e3, wallNs: Number(process.hrtime.bigint() - started.wall) });
      }, reject);
    });
  });
}

/** One pass over the storm through a real socket, read into a reused buffer or not. */
async function overSocket(streamFile, logFile, reuseReadBuffer) {
  const server = await ChannelServer.create({ reuseReadBuffer });
  try {
    const accepted = new Promise((resolve) => server.once('connection', resolve));
    const started = { cpu: process.cpuUsage(), wall: process.hrtime.bigint() };
    const feeder = spawn(process.execPath, ['-e', FEEDER, server.socketPath, helloLine(server.token), streamFile], { stdio: 'ignore' });
    const exited = new Promise((resolve) => feeder.once('exit', resolve));
    const result = await drain(await accepted, logFile, started);
    await exited;
    return result;
  } finally {
    await server.close();
  }
}

/** One pass over the storm fed from memory in 64 KiB chunks, a few per turn of the event loop. */
function fromMemory(stream, logFile) {
  const socket = new FedSocket();
  const token = 'bench';
  const connection = new ChannelConnection(socket, token, () => ({}));
  socket.emit('data', Buffer.from(helloLine(token)));
  const started = { cpu: process.cpuUsage(), wall: process.hrtime.bigint() };
  const done = drain(connection, logFile, started);
  let at = 0;
  // A few chunks per turn of the event loop, as a busy socket delivers them; the log's writes proceed between.
  const step = () => {
    for (let k = 0; k < 16 && at < stream.length; k++, at += CHUNK_BYTES) {
      socket.emit('data', Buffer.from(stream.subarray(at, at + CHUNK_BYTES)));
    }
    if (at < stream.length) setImmediate(step);
    else socket.emit('close');
  };
  step();
  return done;
}

async function main() {
  const events = Number(option('--events', '1000000'));
  const rounds = Number(option('--rounds', '5'));
  const python = option('--python', process.env.SPYTHON_PYTHON ?? 'python3');
  const ways = option('--only', WAYS.join(',')).split(',');
  for (const way of ways) if (!WAYS.includes(way)) throw new Error(`unknown way ${way} (${WAYS.join(', ')})`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-ingest-'));
  try {
    const streamFile = recordStorm(python, events, dir);
    const stream = fs.readFileSync(streamFile);
    const copy = path.join(dir, 'copy.jsonl');
    const figures = new Map(ways.map((way) => [way, { cpu: [], wall: [], ratio: [] }]));
    let records = 0;
    for (let round = 0; round < rounds; round++) {
      const cpu = new Map();
      for (let k = 0; k < ways.length; k++) {
        const way = ways[(round + k) % ways.length];
        const result = way === 'memory' ? await fromMemory(stream, copy) : await overSocket(streamFile, copy, way === 'reused');
        if (!fs.readFileSync(copy).equals(stream)) throw new Error(`${way}: the copied log differs from the recorded one`);
        records = result.records;
        cpu.set(way, result.cpuNs / records);
        figures.get(way).cpu.push(result.cpuNs / records);
        figures.get(way).wall.push(result.wallNs / records);
      }
      if (cpu.has('reused')) for (const way of ways) figures.get(way).ratio.push(cpu.get(way) / cpu.get('reused'));
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`${records.toLocaleString('en')} records (${(stream.length / 1e6).toFixed(0)} MB), ${rounds} rounds, load ${os.loadavg()[0].toFixed(2)}:`);
    for (const [way, f] of figures) {
      const ratio = f.ratio.length > 0 ? `, ${median(f.ratio).toFixed(2)}× reused's CPU (${Math.min(...f.ratio).toFixed(2)}–${Math.max(...f.ratio).toFixed(2)})` : '';
      console.log(
        `  ${way.padEnd(6)} ${median(f.cpu).toFixed(0)} ns CPU a record (${Math.min(...f.cpu).toFixed(0)}–${Math.max(...f.cpu).toFixed(0)}), ` +
          `${median(f.wall).toFixed(0)} ns wall; ${(1e3 / median(f.cpu)).toFixed(2)} M records/s of CPU${ratio}`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench/ingest: ${err.message}`);
  process.exit(1);
});
