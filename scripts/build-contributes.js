#!/usr/bin/env node
// Writes the extension's `contributes` (and activationEvents) into package.json: the debugger with
// every launch attribute the adapter takes (adapter/config.ts), event-name suggestions from the event
// catalogue (adapter/audit-events.json), the views, commands and menus of extension/. This file is the
// source; package.json's copy is generated. `--check` exits 1 when package.json is out of date.
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const catalogue = require(path.join(root, 'adapter', 'audit-events.json'));

/** Event names for suggestions: those CPython raises on Linux (the launcher's platform). */
const EVENT_NAMES = catalogue.filter((e) => e.platform === 'all').map((e) => e.event).sort();
/** Globs worth suggesting beside the names. */
const GLOBS = ['socket.*', 'subprocess.*', 'os.*', 'shutil.*', 'ctypes.*', 'http.client.*', 'urllib.*', 'sqlite3.*', 'sys.*', 'spython.*'];
const SUGGESTIONS = [...GLOBS, ...EVENT_NAMES];

const CONDITION = {
  type: 'string',
  description:
    'A Python expression evaluated in the frame that raised the event, with `event` and `args` bound; the rule applies when it is true (e.g. `args[1][0] != "127.0.0.1"`).',
};

/** A list of rules: globs, "GLOB if EXPR", or {event, condition} (and, for breakpoints, more keys). */
function ruleList(description, extra = {}) {
  return {
    type: 'array',
    description,
    items: {
      anyOf: [
        {
          type: 'string',
          description: 'An event name or glob (`socket.*`), optionally followed by ` if ` and a Python condition over `event` and `args`.',
          examples: SUGGESTIONS,
        },
        {
          type: 'object',
          required: ['event'],
          additionalProperties: false,
          properties: {
            event: { type: 'string', description: 'An event name or glob.', examples: SUGGESTIONS },
            condition: CONDITION,
            ...extra,
          },
        },
      ],
    },
    default: [],
  };
}

function globList(description) {
  return { type: 'array', description, items: { type: 'string', examples: SUGGESTIONS }, default: [] };
}

const launchProperties = {
  program: {
    type: 'string',
    description: 'The Python file to run (absolute, or relative to `cwd`). Give this or `module`.',
    default: '${file}',
  },
  module: { type: 'string', description: 'A module to run with `-m` instead of a file. Give this or `program`.' },
  args: { type: 'array', items: { type: 'string' }, description: "The program's arguments.", default: [] },
  cwd: {
    type: 'string',
    description: "The program's working directory. Default: the workspace folder (else the program's folder).",
    default: '${workspaceFolder}',
  },
  env: {
    type: 'object',
    additionalProperties: { type: ['string', 'null'] },
    description: 'Environment variables added to the inherited ones (after `envFile`); `null` removes a variable.',
    default: {},
  },
  envFile: {
    type: 'string',
    description: 'A dotenv file of environment variables, applied before `env`.',
    default: '${workspaceFolder}/.env',
  },
  python: {
    type: 'string',
    description:
      "The CPython 3.8+ interpreter to run. Default: the Python extension's selected interpreter when it is installed, else python3 on PATH.",
  },
  pythonArgs: { type: 'array', items: { type: 'string' }, description: "The interpreter's own options (`-X dev`, `-O`).", default: [] },
  console: {
    type: 'string',
    enum: ['internalConsole', 'integratedTerminal', 'externalTerminal'],
    enumDescriptions: [
      "The Debug Console: the program's output and its audit events, in order.",
      "VS Code's integrated terminal (the program can read input); audit events still go to the Debug Console.",
      'An external terminal window.',
    ],
    description: 'Where the program runs.',
    default: 'internalConsole',
  },
  stopOnEntry: { type: 'boolean', description: "Stop before the program's first line.", default: false },
  subProcess: {
    type: 'boolean',
    description:
      'Audit child processes too: Python started through `sys.executable` (subprocess, multiprocessing, `os.exec*`, ProcessPoolExecutor) runs through the launcher with the same policies, each child as a child debug session; Python started another way is reported as `spython.unaudited_child`.',
    default: false,
  },
  startupControl: {
    type: 'boolean',
    description: 'Only a script file may run: `-c`, `-m`, stdin, the REPL, `-i` and `PYTHONSTARTUP` are refused before their code runs.',
    default: false,
  },
  denyEvents: ruleList('Audit events to refuse: a matching event raises PermissionError in the program.'),
  promptEvents: ruleList(
    'Audit events to ask about: VS Code shows "Allow socket.connect to 93.184.216.34:443?" with Allow, Always Allow and Deny.',
  ),
  breakOnEvents: ruleList('Breakpoints on audit events (as function breakpoints in the Breakpoints view, but kept in launch.json).', {
    hitCondition: { type: 'string', description: 'Stop on the N-th hit: `N`, `>=N`, `>N`, `==N`, `<N`, `<=N` or `%N`.' },
    logMessage: { type: 'string', description: 'Log this message (with `{expression}` parts) instead of stopping.' },
  }),
  lockHooks: { type: 'boolean', description: "Refuse `sys.addaudithook`: the program's own audit hooks are never added.", default: false },
  verifyImports: {
    type: 'string',
    enum: ['off', 'xattr', 'warn', 'manifest'],
    enumDescriptions: [
      'No verification.',
      'Every code file must hash (SHA-256) to its trusted-hash xattr ("SPython: Stamp Trusted Hashes…" writes them).',
      'Check as with xattr, but only warn (the Problems panel shows what would be refused).',
      'Every code file must be listed in a signed manifest (`manifest`, `manifestKey`).',
    ],
    description: 'Verify every code file Python reads (imports, the main script) before it runs.',
    default: 'off',
  },
  verifyExempt: {
    type: 'array',
    items: { type: 'string' },
    description: "Directories whose code is trusted unverified (typically the interpreter's own library).",
    default: [],
  },
  xattrName: { type: 'string', description: 'The extended attribute holding a file\'s trusted hash.', default: 'user.org.python.x-spython-hash' },
  maxCodeSize: { type: 'integer', minimum: 1, description: 'The largest code file verifyImports accepts, in bytes.', default: 2097152 },
  manifest: { type: 'string', description: 'The signed `sha256sum`-format manifest for `verifyImports: "manifest"`.' },
  manifestKey: { type: 'string', description: "The manifest's Ed25519 public key (PEM)." },
  execCheck: {
    type: 'boolean',
    description: 'Ask the kernel whether it would execute each code file (AT_EXECVE_CHECK, Linux 6.14+).',
    default: false,
  },
  auditLog: {
    type: 'object',
    additionalProperties: false,
    description: 'Where audit records go besides the editor.',
    properties: {
      file: { type: 'string', description: 'Every record as one JSON line.' },
      syslog: ruleList('Events (and every refusal) to send to syslog.'),
      journal: ruleList('Events (and every refusal) to send to the systemd journal as structured entries.'),
    },
    default: { file: '${workspaceFolder}/audit.jsonl' },
  },
  showEvents: globList('Events the Debug Console shows even when they are noisy (`open`, `import`, `exec`…).'),
  hideEvents: globList('Events the Debug Console hides (wins over `showEvents`).'),
  runsDir: {
    type: 'string',
    description:
      "Where the session keeps a JSONL copy of every record. Default: the workspace's storage, where the audit lens and the Audit Events view read it. The newest 100 copies (at most 1 GiB in all) are kept: older ones are removed as a session ends, except any written in the last hour.",
  },
};

const currentFile = {
  type: 'spython',
  request: 'launch',
  name: 'Python (audit hooks): Current File',
  program: '${file}',
  console: 'internalConsole',
};

/**
 * A snippet's body. A string holding `${file}` is given VS Code's `^"…"` form (inserted as written,
 * not re-quoted) with `\${` escaped, so the variable reaches launch.json instead of being read as a
 * snippet placeholder.
 */
function body(config) {
  const convert = (value) => {
    if (typeof value === 'string') return value.includes('${') ? '^' + JSON.stringify(value).replace(/\$\{/g, '\\${') : value;
    if (Array.isArray(value)) return value.map(convert);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v)]));
    return value;
  };
  return convert(config);
}

const snippets = [
  {
    label: 'SPython: Audit Current File',
    description: 'Run the current Python file with every audit event in the Debug Console.',
    body: body(currentFile),
  },
  {
    label: 'SPython: StartupControl',
    description: 'Only a script file may run (no -c, -m, stdin or REPL), and the program cannot add its own audit hooks.',
    body: body({ ...currentFile, name: 'Python (audit hooks): StartupControl', startupControl: true, lockHooks: true }),
  },
  {
    label: 'SPython: Verified Imports',
    description: 'Every code file must match its stamped hash ("SPython: Stamp Trusted Hashes…" first).',
    body: body({ ...currentFile, name: 'Python (audit hooks): Verified Imports', verifyImports: 'xattr', verifyExempt: [] }),
  },
  {
    label: 'SPython: No Network',
    description: 'Refuse connections and name look-ups (local Unix sockets still work).',
    body: body({
      ...currentFile,
      name: 'Python (audit hooks): No Network',
      denyEvents: [
        'socket.connect if isinstance(args[1], tuple)',
        'socket.sendto if isinstance(args[1], tuple)',
        'socket.sendmsg if isinstance(args[1], tuple)',
        'socket.getaddrinfo',
        'socket.gethostbyname',
        'socket.gethostbyaddr',
      ],
    }),
  },
  {
    label: 'SPython: Prompt on Network',
    description: 'Ask before each connection: Allow, Always Allow or Deny.',
    body: body({
      ...currentFile,
      name: 'Python (audit hooks): Prompt on Network',
      promptEvents: ['socket.connect if isinstance(args[1], tuple)', 'socket.sendto if isinstance(args[1], tuple)'],
    }),
  },
];

const VIEW = 'spython.auditEvents';

const commands = [
  { command: 'spython.auditCurrentFile', title: 'Audit Python File', category: 'SPython', icon: '$(shield)', enablement: 'isWorkspaceTrusted' },
  { command: 'spython.addEventBreakpoint', title: 'Add Audit Event Breakpoint…', category: 'SPython', icon: '$(debug-breakpoint-function)' },
  { command: 'spython.denyOperation', title: 'Deny Operation', category: 'SPython', icon: '$(circle-slash)' },
  { command: 'spython.stampTrustedHashes', title: 'Stamp Trusted Hashes…', category: 'SPython', enablement: 'isWorkspaceTrusted' },
  { command: 'spython.verifyImports', title: 'Verify Imports…', category: 'SPython' },
  { command: 'spython.auditEvents.filter', title: 'Filter Audit Events…', category: 'SPython', icon: '$(filter)' },
  { command: 'spython.auditEvents.clearFilter', title: 'Clear Audit Events Filter', category: 'SPython', icon: '$(filter-filled)' },
  { command: 'spython.auditEvents.showHidden', title: 'Show Hidden (Noisy) Audit Events', category: 'SPython', icon: '$(eye)' },
  { command: 'spython.auditEvents.hideHidden', title: 'Hide Hidden (Noisy) Audit Events', category: 'SPython', icon: '$(eye-closed)' },
  { command: 'spython.auditEvents.clear', title: 'Clear Audit Events', category: 'SPython', icon: '$(clear-all)' },
  { command: 'spython.auditEvents.export', title: 'Export Audit Events (JSONL/CSV)…', category: 'SPython', icon: '$(export)' },
  { command: 'spython.auditEvents.reveal', title: 'Reveal Line', category: 'SPython', icon: '$(go-to-file)' },
];

const contributes = {
  debuggers: [
    {
      type: 'spython',
      label: 'Python (audit hooks)',
      languages: ['python'],
      configurationAttributes: { launch: { properties: launchProperties } },
      initialConfigurations: [currentFile],
      configurationSnippets: snippets,
    },
  ],
  breakpoints: [{ language: 'python' }],
  commands,
  menus: {
    commandPalette: [
      { command: 'spython.denyOperation', when: 'debugType == spython && spython.stoppedOnEvent' },
      { command: 'spython.auditCurrentFile', when: 'editorLangId == python' },
      { command: 'spython.auditEvents.filter', when: 'spython.auditEvents.available' },
      { command: 'spython.auditEvents.clearFilter', when: 'spython.auditEvents.filtered' },
      { command: 'spython.auditEvents.showHidden', when: 'spython.auditEvents.available && !spython.auditEvents.showHidden' },
      { command: 'spython.auditEvents.hideHidden', when: 'spython.auditEvents.available && spython.auditEvents.showHidden' },
      { command: 'spython.auditEvents.clear', when: 'spython.auditEvents.available' },
      { command: 'spython.auditEvents.export', when: 'spython.auditEvents.available' },
      { command: 'spython.auditEvents.reveal', when: 'false' },
    ],
    'debug/toolBar': [{ command: 'spython.denyOperation', when: 'debugType == spython && spython.stoppedOnEvent', group: 'navigation@15' }],
    'debug/callstack/context': [
      {
        command: 'spython.denyOperation',
        when: "debugType == spython && spython.stoppedOnEvent && callStackItemType != 'session'",
        group: 'navigation@0',
      },
    ],
    'editor/title/run': [{ command: 'spython.auditCurrentFile', when: 'resourceLangId == python && !isInDiffEditor', group: 'navigation@10' }],
    'view/title': [
      { command: 'spython.auditEvents.filter', when: `view == ${VIEW}`, group: 'navigation@1' },
      { command: 'spython.auditEvents.clearFilter', when: `view == ${VIEW} && spython.auditEvents.filtered`, group: 'navigation@2' },
      { command: 'spython.auditEvents.showHidden', when: `view == ${VIEW} && !spython.auditEvents.showHidden`, group: 'navigation@3' },
      { command: 'spython.auditEvents.hideHidden', when: `view == ${VIEW} && spython.auditEvents.showHidden`, group: 'navigation@3' },
      { command: 'spython.auditEvents.clear', when: `view == ${VIEW}`, group: 'navigation@4' },
      { command: 'spython.auditEvents.export', when: `view == ${VIEW}`, group: 'navigation@5' },
    ],
    'view/item/context': [
      { command: 'spython.addEventBreakpoint', when: `view == ${VIEW} && viewItem == event`, group: 'inline' },
      { command: 'spython.addEventBreakpoint', when: `view == ${VIEW} && viewItem == event`, group: 'navigation' },
      { command: 'spython.auditEvents.reveal', when: `view == ${VIEW} && viewItem == occurrence`, group: 'navigation' },
    ],
  },
  views: {
    debug: [
      {
        id: VIEW,
        name: 'Audit Events',
        icon: 'media/audit-events.svg',
        contextualTitle: 'SPython Debug',
        when: 'spython.auditEvents.available || debugType == spython',
      },
    ],
  },
  viewsWelcome: [
    {
      view: VIEW,
      contents:
        'The audit events of the current SPython session appear here, by category and event name.\n[Audit Python File](command:spython.auditCurrentFile)\n[Add Audit Event Breakpoint…](command:spython.addEventBreakpoint)',
    },
  ],
  configuration: {
    title: 'SPython Debug',
    properties: {
      'spython.lens.enabled': {
        type: 'boolean',
        default: true,
        description:
          'Show what recorded runs did on each line of Python (inlay hints, hovers, Problems), and hovers from the audit event catalogue.',
      },
    },
  },
};

const activationEvents = [
  'onDebugResolve:spython',
  'onDebugDynamicConfigurations:spython',
  'onDebugInitialConfigurations',
  'onDebugAdapterProtocolTracker:spython',
  'onLanguage:python',
];

const capabilities = {
  virtualWorkspaces: false,
  untrustedWorkspaces: {
    supported: 'limited',
    description:
      'Launching runs the workspace\'s code, so it needs a trusted workspace; the audit lens and the catalogue work in restricted mode.',
  },
};

function render() {
  const file = path.join(root, 'package.json');
  const text = fs.readFileSync(file, 'utf8');
  const manifest = JSON.parse(text);
  manifest.activationEvents = activationEvents;
  manifest.contributes = contributes;
  manifest.capabilities = capabilities;
  return { file, before: text, after: JSON.stringify(manifest, null, 2) + '\n' };
}

module.exports = { contributes, activationEvents, capabilities, EVENT_NAMES, render };

if (require.main === module) {
  const { file, before, after } = render();
  if (process.argv.includes('--check')) {
    if (before !== after) {
      console.error('package.json is out of date: run `node scripts/build-contributes.js`');
      process.exit(1);
    }
  } else if (before !== after) {
    fs.writeFileSync(file, after);
    console.log('build-contributes: package.json updated');
  }
}
