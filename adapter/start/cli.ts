// dist/cli.js, the `spython-audit` command: runs the command line's bundle (dist/cli-main.js, from
// adapter/cli.ts) with V8's code cache. A subcommand compiles functions others do not: each is a kind.

import * as path from 'node:path';
import { runBundle } from './codecache';

const subcommand = process.argv[2] ?? '';
runBundle(path.join(__dirname, 'cli-main.js'), /^[\w-]{1,32}$/.test(subcommand) ? subcommand : 'other');
