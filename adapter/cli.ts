// `spython-audit` (node dist/cli.js, the package's bin): audit a script headlessly, in a terminal or in
// CI, with the policies of launch.json. It drives the debug adapter's engine in-process (one engine for
// editor and terminal: adapter/engine.ts) and never imports `vscode`. The commands are in adapter/cli/.

import { main } from './cli/program';

// A reader that went away (`spython-audit ... | head`) is no error: what is left to print is dropped
// and the command goes on (a run still ends normally and writes its reports).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

void main(process.argv.slice(2)).then((status) => process.exit(status));
