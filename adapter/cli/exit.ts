// The command line's exit statuses (README "Command line", `spython-audit --help`).

/** `run`: nothing of its own to say; the program's status is passed through (128 + N after signal N). */
export const EXIT_OK = 0;
/** `stamp` / `verify`: a file failed (each is named with its reason). */
export const EXIT_FAILED = 1;
/** A usage error: unknown option, bad value, a launch configuration that cannot be used. */
export const EXIT_USAGE = 2;
/** `run`: the program succeeded (status 0) but an event matched --fail-on. */
export const EXIT_FAIL_ON = 122;
/** The launcher's own errors (docs/protocol.md), passed through; also a launcher that cannot be run. */
export const EXIT_LAUNCHER = 125;

/** The exit statuses, as `--help` lists them. */
export const EXIT_HELP = [
  'Exit status:',
  "  run       the program's own (128+N when signal N ended it); " + EXIT_FAIL_ON + ' when it succeeded but',
  '            an event matched --fail-on; ' + EXIT_LAUNCHER + ' for launcher errors (passed through)',
  '  launcher  0; ' + EXIT_LAUNCHER + ' when the launcher cannot run the interpreter',
  '  stamp, verify, keygen   0; ' + EXIT_FAILED + ' when a file (or the manifest, or the key) failed',
  '  all       ' + EXIT_USAGE + ' for usage errors',
].join('\n');
