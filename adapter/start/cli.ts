// dist/cli.js, the `spython-audit` command: runs the command line's bundle (dist/cli-main.js, from
// adapter/cli.ts) with V8's code cache. A subcommand compiles functions others do not: each is a kind.

import * as path from 'node:path';
import { EXIT_USAGE } from '../cli/exit';
import { runBundle } from './codecache';

const args = process.argv.slice(2);
const options = args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
const subcommand = args[0] ?? '';
// Help runs little of a subcommand's code, and a usage error (status 2) stops before it runs.
const help = subcommand === 'help' || options.some((arg) => arg === '-h' || arg === '--help');
const kind = help ? undefined : /^[\w-]{1,32}$/.test(subcommand) ? subcommand : 'other';
runBundle(path.join(__dirname, 'cli-main.js'), kind, undefined, (status) => status !== EXIT_USAGE);
