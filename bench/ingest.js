#!/usr/bin/env node
// Node's reading side on its own, without a launcher producing events at the same time: a storm is
// recorded once with the launcher (--log-file), then fed in 64 KiB chunks (what a socket read gives) to a
// ChannelConnection whose record sink does what the engine does with a record it neither shows nor
// keeps: count it by name when its thread is the previous record's, and copy its run to a JSONL log. Prints CPU and wall nanoseconds a record, median of
// the rounds. Uses the tsc output (run `npx tsc -p .` first) and dist/bin/spython.
//
// Usage: node bench/ingest.js [--events N] [--rounds N] [--python PATH]
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { Duplex } = require('stream');

const ROOT = path.resolve(__dirname, '..');
const { ChannelConnection, JsonlWriter, PROTOCOL_VERSION } = require(path.join(ROOT, 'out', 'adapter', 'channel'));
const { RecordReader } = require(path.join(ROOT, 'out', 'adapter', 'records'));

const CHUNK_BYTES = 64 * 1024;
const TOKEN = 'bench';

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
  return fs.readFileSync(log);
}

/** One pass over `stream`; resolves with {records, cpuNs, wallNs} for the whole of it. */
function ingestOnce(stream, logFile) {
  return new Promise((resolve, reject) => {
    const socket = new FedSocket();
    const connection = new ChannelConnection(socket, TOKEN, () => ({}));
    const hello = { type: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, pid: 1, ppid: 0, python: '3', mode: 'dlopen', executable: 'python', freeThreaded: false };
    socket.emit('data', Buffer.from(JSON.stringify(hello) + '\n'));
    const writer = new JsonlWriter(logFile, { flags: 'w' });
    const reader = new RecordReader();
    const counts = new Map();
    let last;
    // What the engine does with a record it neither shows nor keeps: count it by name when its thread
    // is the previous record's (else read it), and log its run of bytes.
    connection.setRecordSink({
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
    const cpu = process.cpuUsage();
    const wall = process.hrtime.bigint();
    let at = 0;
    // A few chunks per turn of the event loop, as a busy socket delivers them; the log's writes proceed between.
    const step = () => {
      for (let k = 0; k < 16 && at < stream.length; k++, at += CHUNK_BYTES) {
        socket.emit('data', Buffer.from(stream.subarray(at, at + CHUNK_BYTES)));
      }
      if (at < stream.length) {
        setImmediate(step);
        return;
      }
      writer.close().then(() => {
        const used = process.cpuUsage(cpu);
        resolve({ records: connection.records, cpuNs: (used.user + used.system) * 1e3, wallNs: Number(process.hrtime.bigint() - wall) });
      }, reject);
    };
    step();
  });
}

async function main() {
  const events = Number(option('--events', '1000000'));
  const rounds = Number(option('--rounds', '5'));
  const python = option('--python', process.env.SPYTHON_PYTHON ?? 'python3');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-ingest-'));
  try {
    const stream = recordStorm(python, events, dir);
    const cpu = [];
    const wall = [];
    let records = 0;
    for (let round = 0; round < rounds; round++) {
      const result = await ingestOnce(stream, path.join(dir, 'copy.jsonl'));
      records = result.records;
      cpu.push(result.cpuNs / records);
      wall.push(result.wallNs / records);
    }
    if (!fs.readFileSync(path.join(dir, 'copy.jsonl')).equals(stream)) throw new Error('the copied log differs from the recorded one');
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`${records.toLocaleString('en')} records (${(stream.length / 1e6).toFixed(0)} MB), ${rounds} rounds, load ${os.loadavg()[0].toFixed(2)}: ` +
      `${median(cpu).toFixed(0)} ns CPU a record (${Math.min(...cpu).toFixed(0)}–${Math.max(...cpu).toFixed(0)}), ` +
      `${median(wall).toFixed(0)} ns wall; ${(1e3 / median(cpu)).toFixed(2)} M records/s of CPU`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench/ingest: ${err.message}`);
  process.exit(1);
});
