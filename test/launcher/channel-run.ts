// A command-line reader for reproducing launcher behaviour by hand (not a test):
//
//   node out/test/launcher/channel-run.js [--show N] [--reject MSG] -- LAUNCHER-ARGS...
//
// starts a ChannelServer, runs dist/bin/spython with LAUNCHER-ARGS and the channel's environment,
// then prints, per connection, the hello, the number of records, seq gaps, the exit message and the
// first N (default 0) records, and finally the launcher's status or signal.

import { ChannelServer } from '../../adapter/channel';
import { collect, runLauncher } from '../helpers/run';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let show = 0;
  let reject: string | undefined;
  while (argv.length && argv[0] !== '--') {
    const opt = argv.shift()!;
    if (opt === '--show') show = Number(argv.shift());
    else if (opt === '--reject') reject = argv.shift();
    else throw new Error(`unknown option ${opt}`);
  }
  argv.shift();
  const server = await ChannelServer.create({
    config: () => {
      if (reject !== undefined) throw new Error(reject);
      return {};
    },
  });
  const collector = collect(server);
  const result = await runLauncher(argv, { channel: server, timeoutMs: 600_000 });
  const conns = await collector.all(0, 30_000).catch(() => collector.connections);
  await server.close();
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  for (const [i, c] of conns.entries()) {
    const seqs = c.records.map((l) => Number(/"seq":(\d+)/.exec(l.toString('latin1'))?.[1]));
    const gaps = seqs.filter((s, k) => s !== k + 1).length;
    console.log(
      `[channel] connection ${i}: hello=${JSON.stringify(c.hello && { ...c.hello, token: '…' })}` +
        ` rejected=${JSON.stringify(c.rejected)} records=${c.records.length} seq-out-of-place=${gaps}` +
        ` exit-message=${JSON.stringify(c.exitStatus)} protocol-errors=${c.protocolErrors.length}`,
    );
    for (const line of c.records.slice(0, show)) console.log(`[channel]   ${line.toString('utf8')}`);
  }
  console.log(`[channel] launcher: status=${result.status} signal=${result.signal}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
