// The cost of a child debug session's relay: bench/children/events.py (a child raising 200,000 audit
// events) through the bundled adapter, its child shown (a) in a child session — the parent relays the
// child's channel to a second adapter process, as when VS Code runs the adapter on stdio — and (b) in
// the parent session (a client without startDebugging). Runs alternate a b a b …; prints each mode's
// wall-clock times from launch to the parent's `terminated`, and the median ratio a/b of the pairs.
//
//   node bench/children/child-session.js [RUNS] [PYTHON]      (after npm run build)

const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

const ROOT = path.resolve(__dirname, '..', '..');
const ADAPTER = path.join(ROOT, 'dist', 'adapter.js');
const PROGRAM = path.join(__dirname, 'events.py');
const RUNS = Number(process.argv[2] ?? 5);
const PYTHON = process.argv[3] ?? process.env.SPYTHON_PYTHON ?? 'python3';

async function client() {
  const dc = new DebugClient('node', ADAPTER, 'spython');
  dc.defaultTimeout = 120_000;
  await dc.start();
  return dc;
}

/** Answers the adapter's startDebugging as VS Code would: a new adapter process attached to the child. */
function serveStartDebugging(dc, children) {
  const dispatch = dc.dispatch.bind(dc);
  dc.dispatch = (body) => {
    const message = JSON.parse(body);
    if (message.type !== 'request' || message.command !== 'startDebugging') return dispatch(body);
    void (async () => {
      const child = await client();
      children.push(child);
      const terminated = child.waitForEvent('terminated');
      await child.initializeRequest({ adapterID: 'spython', pathFormat: 'path' });
      await Promise.all([child.configurationDoneRequest(), child.send('attach', message.arguments.configuration)]);
      child.terminated = terminated;
      const json = JSON.stringify({ type: 'response', seq: 0, request_seq: message.seq, command: 'startDebugging', success: true });
      dc.outputStream.write(`Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
    })();
  };
}

async function run(childSession, runsDir) {
  const dc = await client();
  const children = [];
  if (childSession) serveStartDebugging(dc, children);
  const started = process.hrtime.bigint();
  const terminated = dc.waitForEvent('terminated');
  await dc.initializeRequest({ adapterID: 'spython', pathFormat: 'path', supportsStartDebuggingRequest: childSession });
  await Promise.all([
    dc.configurationDoneRequest(),
    dc.launchRequest({ program: PROGRAM, python: PYTHON, subProcess: true, runsDir, hideEvents: ['bench.event'] }),
  ]);
  await terminated;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (childSession && children.length !== 1) throw new Error(`expected one child session, got ${children.length}`);
  for (const child of children) await child.stop();
  await dc.stop();
  return ms;
}

const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];

(async () => {
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spython-bench-'));
  const a = [];
  const b = [];
  await run(true, runsDir); // warm-up (interpreter facts cache, page cache)
  for (let i = 0; i < RUNS; i++) {
    a.push(await run(true, runsDir));
    b.push(await run(false, runsDir));
  }
  fs.rmSync(runsDir, { recursive: true, force: true });
  const fmt = (values) => values.map((v) => v.toFixed(0)).join(' ');
  console.log(`a (child session, relayed): median ${median(a).toFixed(0)} ms  [${fmt(a)}]`);
  console.log(`b (in the parent session):  median ${median(b).toFixed(0)} ms  [${fmt(b)}]`);
  console.log(`a/b pairwise median ratio: ${median(a.map((x, i) => x / b[i])).toFixed(3)}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
