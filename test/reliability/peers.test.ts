// The channel's peer check (adapter/peers.ts): besides the token, the kernel's SO_PEERCRED must show a
// process of this user that is the one its hello names and belongs to the launched process tree. Real
// processes on a real socket: a foreign process that knows the path and the token is refused.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { ChannelServer } from '../../adapter/channel';
import { ProcessTree } from '../../adapter/peers';
import { needs, runCli } from '../cli/common';
import { program, PYTHON, readReport, show } from './common';

/** A stand-in launcher: connects, says hello (claiming CLAIM_PID when set), prints the answer's line. */
const FAKE_LAUNCHER = `
const net = require('net');
const s = net.connect(process.env.SPYTHON_CHANNEL, () => {
  const pid = process.env.CLAIM_PID ? Number(process.env.CLAIM_PID) : process.pid;
  s.write(JSON.stringify({ type: 'hello', protocol: 1, token: process.env.SPYTHON_TOKEN, pid, ppid: process.ppid,
    python: '3.12.1', mode: 'dlopen', executable: 'python3', freeThreaded: false }) + '\\n');
});
let buf = '';
s.on('data', (d) => {
  buf += d;
  const nl = buf.indexOf('\\n');
  if (nl < 0) return;
  process.stdout.write(process.pid + ' ' + buf.slice(0, nl) + '\\n');
  s.destroy();
});
s.on('error', () => {});
`;

interface Answer {
  pid: number;
  type: string;
  message?: string;
}

/** Runs `command` (sh -c) with the channel's variables; resolves with its pid and each fake's answer. */
function run(server: ChannelServer, command: string, extra: Record<string, string> = {}, onSpawn?: (pid: number) => void): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      env: { ...process.env, ...server.env, FAKE: FAKE_LAUNCHER, NODE: process.execPath, ...extra },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onSpawn?.(child.pid!);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () =>
      resolve(
        out
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((line) => {
            const sp = line.indexOf(' ');
            const msg = JSON.parse(line.slice(sp + 1)) as { type: string; message?: string };
            return { pid: Number(line.slice(0, sp)), type: msg.type, message: msg.message };
          }),
      ),
    );
  });
}

const FAKE = '"$NODE" -e "$FAKE"';

describe('the channel admits only the launched process tree', () => {
  test('the launched process and its descendants are welcome; a foreign process with the token is refused', async () => {
    const tree = new ProcessTree();
    const server = await ChannelServer.create({ checkPeer: (socket, hello) => tree.check(socket, hello) });
    try {
      // The "launched program": a shell whose two children connect.
      const inside = await run(server, `${FAKE} & ${FAKE}; wait`, {}, (pid) => tree.setRoot(pid));
      assert.deepEqual(
        inside.map((a) => a.type),
        ['welcome', 'welcome'],
        JSON.stringify(inside),
      );
      // Another process of this user, with the path and the token, but not of that tree.
      const [outside] = await run(server, `exec ${FAKE}`);
      assert.equal(outside.type, 'reject');
      assert.match(outside.message!, /^peer check failed: process \d+ \(parent \d+\) is neither the launched program \(pid \d+\) nor one of its descendants$/);
      assert.match(outside.message!, new RegExp(`process ${outside.pid} `));
    } finally {
      await server.close();
    }
  });

  test('a hello that names another process is refused', async () => {
    const tree = new ProcessTree();
    const server = await ChannelServer.create({ checkPeer: (socket, hello) => tree.check(socket, hello) });
    try {
      let root = 0;
      const [liar] = await run(server, `${FAKE}; true`, { CLAIM_PID: String(process.pid) }, (pid) => tree.setRoot((root = pid)));
      assert.equal(liar.type, 'reject');
      assert.equal(liar.message, `peer check failed: the peer is process ${liar.pid}, but its hello says pid ${process.pid}`);
      assert.notEqual(liar.pid, root);
    } finally {
      await server.close();
    }
  });

  test('without the trust addon the check is off, said once, and the token still guards', async () => {
    const notices: string[] = [];
    const tree = new ProcessTree(undefined, (why) => notices.push(why), () => {
      throw new Error('the trust addon spython_trust.node was not found');
    });
    const server = await ChannelServer.create({ checkPeer: (socket, hello) => tree.check(socket, hello) });
    try {
      const answers = await run(server, `${FAKE} & ${FAKE}; wait`, {}, (pid) => tree.setRoot(pid));
      assert.deepEqual(answers.map((a) => a.type), ['welcome', 'welcome']);
      assert.equal(notices.length, 1, notices.join('\n'));
      assert.match(notices[0], /peer check is off \(the trust addon .* was not found\): only its token and private directory keep other processes out/);
      const [wrongToken] = await run(server, `exec ${FAKE}`, { SPYTHON_TOKEN: '0'.repeat(64) });
      assert.deepEqual([wrongToken.type, wrongToken.message], ['reject', 'authentication failed: wrong channel token']);
    } finally {
      await server.close();
    }
  });
});

describe('the peer check with the real launcher', { ...needs(PYTHON) }, () => {
  test('a forked child whose parent exited before it connected (re-parented) is still admitted', async () => {
    // program → middle (connects) → orphan; the middle exits at once, the orphan connects only once
    // it has been re-parented, so its parent chain no longer leads to the program.
    const { dir, file } = program(
      [
        'import os, sys',
        'r, w = os.pipe()',
        'middle = os.fork()',
        'if middle == 0:',
        '    sys.audit("spy.middle")',
        '    me = os.getpid()',
        '    if os.fork() == 0:',
        '        while os.getppid() == me: pass  # until re-parented (raises no event)',
        '        for i in range(100): sys.audit("spy.orphan", i)',
        '        print(os.getpid(), me, flush=True)',
        '    os._exit(0)',
        'os.close(w)',
        'os.read(r, 1)  # end of file: both have exited',
        'os.waitpid(middle, 0)',
        '',
      ].join('\n'),
    );
    const report = path.join(dir, 'report.jsonl');
    const r = await runCli(['run', '-q', '--jsonl', report, '--python', PYTHON!, file]);
    assert.equal(r.status, 0, show(r));
    const [orphanPid, middlePid] = r.stdoutText.trim().split(' ').map(Number);
    const orphan = readReport(report).filter((rec) => rec.event === 'spy.orphan');
    assert.equal(orphan.length, 100, show(r));
    assert.ok(orphan.every((rec) => rec.pid === orphanPid && rec.ppid === middlePid));
    assert.doesNotMatch(r.stderrText, /peer check failed/, show(r));
  });

  test('the command line runs with the check off when the addon is missing, and says so once', async () => {
    const { dir, file } = program('import os, sys\nsys.audit("spy.x")\nif os.fork() == 0:\n    sys.audit("spy.child")\n    os._exit(0)\nos.wait()\n');
    const report = path.join(dir, 'report.jsonl');
    const r = await runCli(['run', '-q', '--jsonl', report, '--python', PYTHON!, file], {
      env: { SPYTHON_TRUST_ADDON: path.join(dir, 'missing.node') },
    });
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stderrText.match(/peer check is off/g)?.length, 1, show(r));
    assert.deepEqual(
      readReport(report).filter((rec) => rec.event.startsWith('spy.')).map((rec) => rec.event),
      ['spy.x', 'spy.child'],
    );
  });
});
