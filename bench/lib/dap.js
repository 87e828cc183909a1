// F5 to first output: a DAP client does what VS Code does on F5 (initialize, launch, and
// configurationDone once the adapter says it is initialized) against the adapter on stdio, and times
// it from the initialize request to the program's first line of output in an `output` event. The
// adapter process is started (and idle) beforehand: in VS Code it runs inside the extension host.
'use strict';

const { spawn } = require('child_process');

const MARKER = 'spython-bench: first output';

class DapClient {
  constructor(adapterJs, env) {
    this.child = spawn(process.execPath, [adapterJs], { stdio: ['pipe', 'pipe', 'inherit'], env });
    this.seq = 1;
    this.buffer = Buffer.alloc(0);
    this.waiters = [];
    this.child.stdout.on('data', (chunk) => this.onData(chunk));
  }

  onData(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const head = this.buffer.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/Content-Length: (\d+)/i.exec(this.buffer.toString('ascii', 0, head))[1]);
      if (this.buffer.length < head + 4 + length) return;
      const message = JSON.parse(this.buffer.toString('utf8', head + 4, head + 4 + length));
      this.buffer = this.buffer.subarray(head + 4 + length);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(message)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(message);
        }
      }
    }
  }

  waitFor(match, what, timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`DAP: no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    });
  }

  send(command, args) {
    const seq = this.seq++;
    const body = JSON.stringify({ seq, type: 'request', command, arguments: args });
    this.child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    return this.waitFor((m) => m.type === 'response' && m.request_seq === seq, `${command} response`).then((m) => {
      if (!m.success) throw new Error(`DAP ${command} failed: ${m.message}`);
      return m;
    });
  }

  close() {
    this.child.kill();
  }
}

/** Seconds from the initialize request to the program's first output, for one F5. */
async function f5Once(adapterJs, python, program, env) {
  const client = new DapClient(adapterJs, env);
  try {
    // The adapter answers a first request only once Node has loaded it: wait for that outside the timing.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const output = client.waitFor(
      (m) => m.type === 'event' && m.event === 'output' && String(m.body?.output).includes(MARKER),
      'program output',
    );
    const initialized = client.waitFor((m) => m.type === 'event' && m.event === 'initialized', 'initialized event');
    const terminated = client.waitFor((m) => m.type === 'event' && m.event === 'terminated', 'terminated event');
    const started = process.hrtime.bigint();
    await client.send('initialize', { adapterID: 'spython', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
    const launched = client.send('launch', { type: 'spython', request: 'launch', name: 'bench', program, python, console: 'internalConsole' });
    await initialized;
    await client.send('configurationDone', {});
    await launched;
    await output;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await terminated;
    return { seconds };
  } finally {
    client.close();
  }
}

/** Seconds from spawning plain python to its first output. */
function plainOnce(python, program) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(python, [program], { stdio: ['ignore', 'pipe', 'inherit'] });
    let seconds;
    child.stdout.on('data', (chunk) => {
      if (seconds === undefined && chunk.includes(MARKER)) seconds = Number(process.hrtime.bigint() - started) / 1e9;
    });
    child.on('error', reject);
    child.on('close', (status) => (seconds !== undefined ? resolve({ seconds }) : reject(new Error(`python exited ${status} without output`))));
  });
}

module.exports = { f5Once, plainOnce };
