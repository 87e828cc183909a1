// `spython-audit` (node dist/cli.js, the package's bin): audit a script headlessly, in a terminal or in
// CI, with the policies of launch.json. It drives the debug adapter's engine in-process (one engine for
// editor and terminal: adapter/engine.ts) and never imports `vscode`. The commands are in adapter/cli/.

import { main } from './cli/program';

void main(process.argv.slice(2)).then((status) => process.exit(status));
