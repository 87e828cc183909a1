// The `spython-audit` command line (commander): subcommands run, launcher, stamp, verify, keygen.
// adapter/cli.ts is the entry that runs it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { EVENT_CATEGORIES } from '../catalog';
import { EXIT_FAILED, EXIT_HELP, EXIT_USAGE } from './exit';
import { UsageError } from './launchjson';
import type { RunFlags } from './run';
import type { StampFlags, VerifyFlags } from './trusttools';

// Each subcommand's module is loaded when that subcommand runs: `stamp` need not start up the engine,
// the channel and the reports (start-up is most of a short command's time).
const runModule = (): typeof import('./run') => require('./run');
const launcherModule = (): typeof import('./launcher') => require('./launcher');
const trustModule = (): typeof import('./trusttools') => require('./trusttools');

/** The package's version: the nearest package.json naming the package (dist/'s, written by the build, when bundled). */
function packageVersion(): string {
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'spython-debug' && pkg.version) return pkg.version;
    } catch {
      // not here
    }
  }
  return '0.0.0';
}

const version = packageVersion();

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The command line, built fresh (tests parse with it too); `done` receives each action's status. */
export function buildProgram(done: (status: number) => void): Command {
  const program = new Command('spython-audit')
    .description('Audit a Python program with PEP 578 audit hooks: live events, policies, reports.')
    .version(version, '-V, --version')
    .enablePositionalOptions()
    .showHelpAfterError('(spython-audit --help, or spython-audit help COMMAND, tells more)')
    .exitOverride()
    .addHelpText('after', `\n${EXIT_HELP}`);

  const colorOptions = (command: Command) =>
    command.option('--color', 'colour even when stderr is not a terminal').option('--no-color', 'never colour');

  // --- run ---------------------------------------------------------------------------------------
  const run = program
    .command('run')
    .summary('run a program through the hooked launcher, with policies and reports')
    .description(
      'Runs a Python program (or --module NAME, or the launch.json configuration --config NAME) through the ' +
        'hooked launcher with the debug adapter’s engine. Its stdin, stdout and stderr are the terminal’s; ' +
        'the audit lines, questions and the closing summary go to stderr. Options go before the program: ' +
        'what follows it is the program’s.',
    )
    .usage('[options] [--] program [args...]  |  run [options] --module NAME [args...]  |  run --config NAME [options]')
    .argument('[program]', 'the Python file to run')
    .argument('[args...]', 'its arguments')
    .passThroughOptions()
    .option('-m, --module <name>', 'run a module (python -m NAME); positional arguments are its arguments')
    .option('--config <name>', 'run this configuration of the workspace’s .vscode/launch.json; flags beside it win')
    .option('--workspace <dir>', 'the workspace folder for --config and ${workspaceFolder} (default: the current directory)')
    .option('--python <path>', 'the interpreter (default: $SPYTHON_PYTHON, else python3 on PATH)')
    .option('--python-arg <arg>', 'an option for the interpreter itself (pythonArgs; repeatable)', collect)
    .option('--cwd <dir>', 'the program’s working directory')
    .option('--env <name=value>', 'set a variable in the program’s environment (repeatable)', collect)
    .option('--env-file <file>', 'variables for the program, in dotenv syntax (envFile)')
    .option('--startup-control', 'only a script file may run: no -c, -m, stdin, REPL, -i or PYTHONSTARTUP')
    .option('--deny <glob>', 'matching events raise PermissionError; `GLOB if EXPR` adds a Python condition (repeatable)', collect)
    .option('--prompt <glob>', 'ask on the terminal whether matching events may proceed; without one, refuse (repeatable)', collect)
    .option('--break <glob>', 'stop on matching events and ask: continue, deny, stack, print (repeatable)', collect)
    .addOption(
      new Option('--break-category <id>', 'stop on a Breakpoints-view category (repeatable)')
        .choices(EVENT_CATEGORIES.map((category) => category.id))
        .argParser(collect),
    )
    .option('--stop-on-entry', 'stop before the program’s first line')
    .addOption(new Option('--verify <mode>', 'verify every code file (verifyImports)').choices(['xattr', 'warn', 'manifest', 'off']))
    .option('--verify-exempt <dir>', 'trust a tree without verifying it (repeatable)', collect)
    .option('--xattr-name <name>', 'the hash attribute (default user.org.python.x-spython-hash)')
    .option('--max-code-size <bytes>', 'the largest code file (default 2097152)')
    .option('--manifest <file>', 'with --verify manifest: the signed manifest')
    .option('--key <file>', 'with --verify manifest: its Ed25519 public key (PEM)')
    .option('--exec-check', 'ask the kernel (AT_EXECVE_CHECK) about every code file')
    .option('--lock-hooks', 'the program may not add audit hooks')
    .option('--syslog <glob>', 'send matching events (and every refusal) to syslog (repeatable)', collect)
    .option('--journal <glob>', 'send matching events to the systemd journal (repeatable)', collect)
    .option('--log-file <file>', 'the launcher’s own log of every record (auditLog.file)')
    .option('--show <glob>', 'show matching events live, even noisy ones (repeatable)', collect)
    .option('--hide <glob>', 'hide matching events from the live lines (repeatable; wins over --show)', collect)
    .option('--sub-process', 'audit children started through sys.executable (subProcess)')
    .option('--jsonl <file>', 'write every record, exactly as the launcher sent it, to FILE')
    .option('--sarif <file>', 'write a SARIF 2.1.0 report: one result per denied or --fail-on event')
    .option('--fail-on <glob>', 'fail the run (exit status 122) when a matching event happens (repeatable)', collect)
    .option('-q, --quiet', 'no live event lines')
    .option('--no-summary', 'no summary at exit');
  colorOptions(run)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        "  spython-audit run --deny 'subprocess.Popen' --sarif audit.sarif app.py --port 8000\n" +
        "  spython-audit run --config 'Audit app' --fail-on 'socket.connect' --jsonl run.jsonl\n" +
        "  spython-audit run --break 'open if \"w\" in str(args[1])' -m mypackage\n" +
        `\n${EXIT_HELP}`,
    )
    .action(async (file: string | undefined, args: string[], flags: RunFlags) => {
      done(await runModule().runCommand(file, args, flags, { version, argv: ['spython-audit', ...process.argv.slice(2)] }));
    });

  // --- launcher ----------------------------------------------------------------------------------
  colorOptions(
    program
      .command('launcher')
      .summary('which launcher mode runs for an interpreter, and why')
      .description(
        'Asks the launcher which mode it would run the interpreter in (dlopen: its shared libpython loaded into ' +
          'the launcher; preload: the interpreter itself with the hooks in LD_PRELOAD) and says why.',
      )
      .option('--python <path>', 'the interpreter (default: $SPYTHON_PYTHON, else python3 on PATH)')
      .addOption(new Option('--mode <mode>', 'the mode to ask for').choices(['auto', 'dlopen', 'preload']).default('auto'))
      .option('--json', 'print the diagnosis as JSON'),
  ).action(async (flags: { python?: string; mode?: string; json?: boolean; color?: boolean }) => {
    done(await launcherModule().launcherCommand(flags));
  });

  // --- stamp / verify / keygen -------------------------------------------------------------------
  colorOptions(
    program
      .command('stamp')
      .summary('stamp code files for --verify xattr (or write a signed manifest)')
      .description(
        'Writes the SHA-256 of each code file (.py and .pyc under the directories given; files named ' +
          'explicitly whatever their name) to its xattr, as verifyImports "xattr" checks it; with --manifest ' +
          'and --key, writes a signed manifest for verifyImports "manifest" instead.',
      )
      .argument('<paths...>', 'files and directories')
      .option('--python <path>', 'recompile out-of-date .pyc files with this interpreter first, and stamp them too')
      .option('--xattr-name <name>', 'the hash attribute (default user.org.python.x-spython-hash)')
      .option('--verify-exempt <dir>', 'a directory not to walk (repeatable)', collect)
      .option('--manifest <file>', 'write this signed manifest instead of xattrs (<file>.sig beside it)')
      .option('--key <private.pem>', 'with --manifest: the Ed25519 private key that signs it (see keygen)')
      .option('--threads <n>', 'worker threads (default: min(4, cores))')
      .option('--json', 'print the report as JSON on stdout')
      .option('--no-progress', 'no progress bar'),
  ).action(async (paths: string[], flags: StampFlags) => {
    done(await trustModule().stampCommand(paths, flags));
  });

  colorOptions(
    program
      .command('verify')
      .summary('verify code files as the launcher would (exit 1 naming each failure)')
      .description(
        'Checks each code file exactly as the launcher’s open_code hook does: a regular file, not too large, ' +
          'not on a noexec mount, hashing to its xattr (or listed in the signed manifest). Each failing file ' +
          'is named with its reason; the exit status is 1 when any fails.',
      )
      .argument('<paths...>', 'files and directories')
      .option('--xattr-name <name>', 'the hash attribute (default user.org.python.x-spython-hash)')
      .option('--max-code-size <bytes>', 'the largest code file (default 2097152)')
      .option('--manifest <file>', 'verify against this signed manifest instead of xattrs')
      .option('--key <public.pem>', 'with --manifest: its Ed25519 public key')
      .option('--verify-exempt <dir>', 'trust a tree without verifying it (repeatable)', collect)
      .option('--threads <n>', 'worker threads (default: min(4, cores))')
      .option('--json', 'print the report as JSON on stdout')
      .option('--no-progress', 'no progress bar'),
  ).action(async (paths: string[], flags: VerifyFlags) => {
    done(await trustModule().verifyCommand(paths, flags));
  });

  colorOptions(
    program
      .command('keygen')
      .summary('generate an Ed25519 key pair for signed manifests')
      .argument('[dir]', 'where to write NAME.key.pem and NAME.pub.pem (default: the current directory)')
      .option('--name <name>', 'the files’ base name', 'spython-manifest')
      .option('--force', 'replace existing key files')
      .option('--json', 'print the paths as JSON'),
  ).action((dir: string | undefined, flags: { name?: string; force?: boolean; json?: boolean; color?: boolean }) => {
    done(trustModule().keygenCommand(dir, flags));
  });

  return program;
}

/** Parses `argv` (without node and the script) and runs the command; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  let status: number | undefined;
  const program = buildProgram((s) => (status = s));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    if (err instanceof UsageError) {
      process.stderr.write(`spython-audit: ${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`spython-audit: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_FAILED;
  }
  if (status === undefined) {
    // No subcommand: the help, as a usage error.
    program.outputHelp({ error: true });
    return EXIT_USAGE;
  }
  return status;
}
