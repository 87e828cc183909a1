// A workspace of small Python programs and genuine runs of them recorded by the launcher
// (dist/bin/spython --log-file RUN.jsonl ...), for the language server tests. Not a test file itself.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CACHE_DIR, tempDir } from '../helpers/fixtures';
import { interpreters, launcherBuilt } from '../helpers/interpreters';
import { runLauncher, RunResult } from '../helpers/run';

export { tempDir };

/** Why the recorded-run tests cannot run here, if they cannot. */
export function cannotRecord(): string | undefined {
  if (!launcherBuilt()) return 'the launcher is not built (make -C native)';
  if (!python()) return 'no CPython 3.8-3.13 found';
  return undefined;
}

/** The interpreter runs are recorded with: 3.12 when installed, else the newest found. */
export function python(): string | undefined {
  const all = interpreters();
  return (all.find((i) => i.version.startsWith('3.12.')) ?? all[all.length - 1])?.path;
}

/** Runs `script` under the launcher, every record going to `logFile`. */
export async function record(script: string, logFile: string, launcherArgs: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const result = await runLauncher(['--log-file', logFile, ...launcherArgs, '--python', python()!, script], {
    cwd: path.dirname(script),
    env: {
      SPYTHON_CACHE_DIR: CACHE_DIR,
      SPYTHON_PYTHON: undefined,
      PYTHONPATH: undefined,
      PYTHONHOME: undefined,
      PYTHONDONTWRITEBYTECODE: '1',
      ...env,
    },
  });
  if (result.status === 125) throw new Error(`launcher refused to run ${script}: ${result.stderrText}`);
  return result;
}

export function uri(file: string): string {
  return pathToFileURL(file).href;
}

/** sys.base_prefix of the recording interpreter: trusted (exempt) when verifying imports. */
export function pythonPrefix(): string {
  return execFileSync(python()!, ['-c', 'import sys; print(sys.base_prefix)'], { encoding: 'utf8' }).trim();
}

// ---------------------------------------------------------------------------------------------
// The programs. Line numbers matter: the tests name them (1-based in comments).

export const PROG = `import os
import socket


def connect_all(n):
    for _ in range(n):
        try:
            socket.socket().connect(("127.0.0.1", 9))
        except OSError:
            pass


connect_all(3)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "out.txt"), "w") as f:
    f.write("x")
os.listdir(os.path.dirname(os.path.abspath(__file__)))
exec("y = 1")
`;
/** 0-based lines of PROG that raise events. */
export const PROG_LINES = { connect: 7, open: 13, listdir: 15, exec: 16 };

export const TAMPER = `import os
import sys

sys.audit = lambda *args: None
os.listdir(".")
`;
export const TAMPER_LINE = 4;

export const IMPORTER = `import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
try:
    import helper
except PermissionError as e:
    print("refused:", e)
`;
export const IMPORTER_LINE = 5;

export const WATCHED = `import os

for _ in range(int(os.environ.get("N", "1"))):
    os.listdir("/")
`;
export const WATCHED_LINE = 3;

export const NEVER_RUN = `import subprocess
import socket as sock
from subprocess import check_output as co
from pathlib import Path
import urllib.request


def f(p):
    subprocess.run(["ls"])
    co(["ls"])
    with open(p) as fh:
        fh.read()
    s = sock.socket()
    s.connect(("example.org", 80))
    Path(p).write_text("x")
    urllib.request.urlopen("http://example.org")
    print(subprocess, "open")  # open
    eval("1")
`;

export const LAUNCH_JSON = `{
    // Kept: comments survive the lens's edits.
    "version": "0.2.0",
    "configurations": [
        {
            "type": "spython",
            "request": "launch",
            "name": "prog",
            "program": "\${workspaceFolder}/prog.py",
            "denyEvents": ["socket.connect"]
        },
        {
            "type": "python",
            "request": "launch",
            "name": "other"
        }
    ]
}
`;

export interface Workspace {
  root: string;
  runs: string;
  prog: string;
  tamper: string;
  importer: string;
  helper: string;
  watched: string;
  never: string;
  launchJson: string;
}

/** Writes the workspace and records its runs (prog, tamper, importer, watched with N=2). */
export async function makeWorkspace(): Promise<Workspace> {
  const root = tempDir('spython-lens-ws-');
  const runs = tempDir('spython-lens-runs-');
  const ws: Workspace = {
    root,
    runs,
    prog: path.join(root, 'prog.py'),
    tamper: path.join(root, 'tamper.py'),
    importer: path.join(root, 'app', 'importer.py'),
    helper: path.join(root, 'lib', 'helper.py'),
    watched: path.join(root, 'watched.py'),
    never: path.join(root, 'never.py'),
    launchJson: path.join(root, '.vscode', 'launch.json'),
  };
  for (const dir of ['app', 'lib', '.vscode']) fs.mkdirSync(path.join(root, dir));
  fs.writeFileSync(ws.prog, PROG);
  fs.writeFileSync(ws.tamper, TAMPER);
  fs.writeFileSync(ws.importer, IMPORTER);
  fs.writeFileSync(ws.helper, 'VALUE = 1\n');
  fs.writeFileSync(ws.watched, WATCHED);
  fs.writeFileSync(ws.never, NEVER_RUN);
  fs.writeFileSync(ws.launchJson, LAUNCH_JSON);

  await record(ws.prog, path.join(runs, 'prog.jsonl'), ['--deny', 'socket.connect']);
  await record(ws.tamper, path.join(runs, 'tamper.jsonl'));
  await record(ws.importer, path.join(runs, 'importer.jsonl'), [
    '--verify', 'xattr',
    '--verify-exempt', pythonPrefix(),
    '--verify-exempt', path.join(root, 'app'),
  ]);
  // One level down, as the adapter may keep them.
  await record(ws.watched, path.join(runs, 'session-1', 'watched.jsonl'), [], { N: '2' });
  return ws;
}
