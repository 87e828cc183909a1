// The audit lens language server (dist/server.js). Editor-neutral: `node dist/server.js --stdio`
// (or --node-ipc, --socket=PORT) serves any LSP client; the VS Code extension starts it through
// extension/lens.ts. See server/lens.ts for what it offers and its options.

import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { LensServer } from './lens';

const TRANSPORTS = ['--stdio', '--node-ipc', '--socket', '--pipe'];

if (!process.argv.slice(2).some((arg) => TRANSPORTS.some((t) => arg === t || arg.startsWith(`${t}=`)))) {
  process.stderr.write(
    'usage: node server.js --stdio | --node-ipc | --socket=PORT\n' +
      'The SPython Debug audit lens language server: inlay hints, hovers and diagnostics from recorded\n' +
      'runs (initializationOptions.runsDir) and the audit event catalogue.\n',
  );
  process.exit(2);
}

new LensServer(createConnection(ProposedFeatures.all)).listen();
