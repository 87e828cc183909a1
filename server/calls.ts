// Catalogue hovers: which audit events a call to a standard-library function raises, known before any
// run. The hovered name is read with the dotted chain before it (`subprocess.run`, `Path(p).read_text`),
// resolved through the file's imports (`from subprocess import run as r`) and simple assignments
// (`s = socket.socket()`), and looked up in a map built from the catalogue's `raisedBy` plus the common
// wrappers the catalogue does not list (subprocess.run → subprocess.Popen).

import { AUDIT_EVENTS, AuditEventInfo, eventInfo } from '../adapter/catalog';

/** Wrappers and entry points → the events they raise (beyond what `raisedBy` says). */
const EXTRA_CALLS: Readonly<Record<string, readonly string[]>> = {
  'subprocess.run': ['subprocess.Popen'],
  'subprocess.call': ['subprocess.Popen'],
  'subprocess.check_call': ['subprocess.Popen'],
  'subprocess.check_output': ['subprocess.Popen'],
  'subprocess.getoutput': ['subprocess.Popen'],
  'subprocess.getstatusoutput': ['subprocess.Popen'],
  'os.popen': ['subprocess.Popen'],
  'asyncio.create_subprocess_exec': ['subprocess.Popen'],
  'asyncio.create_subprocess_shell': ['subprocess.Popen'],
  'os.execv': ['os.exec'],
  'os.execve': ['os.exec'],
  'os.execvp': ['os.exec'],
  'os.execvpe': ['os.exec'],
  'os.execle': ['os.exec'],
  'os.execlp': ['os.exec'],
  'os.execlpe': ['os.exec'],
  ...Object.fromEntries(
    ['spawnl', 'spawnle', 'spawnlp', 'spawnlpe', 'spawnv', 'spawnve', 'spawnvp', 'spawnvpe'].map((f) => [
      `os.${f}`,
      ['os.fork', 'os.exec', 'os.spawn'],
    ]),
  ),
  'builtins.exec': ['compile', 'exec'],
  'builtins.eval': ['compile', 'exec'],
  'codecs.open': ['open'],
  'pathlib.Path.open': ['open'],
  'pathlib.Path.read_text': ['open'],
  'pathlib.Path.read_bytes': ['open'],
  'pathlib.Path.write_text': ['open'],
  'pathlib.Path.write_bytes': ['open'],
  'pathlib.Path.touch': ['open', 'os.utime'],
  'pathlib.Path.unlink': ['os.remove'],
  'pathlib.Path.rename': ['os.rename'],
  'pathlib.Path.replace': ['os.rename'],
  'pathlib.Path.mkdir': ['os.mkdir'],
  'pathlib.Path.rmdir': ['os.rmdir'],
  'pathlib.Path.chmod': ['os.chmod'],
  'pathlib.Path.symlink_to': ['os.symlink'],
  'pathlib.Path.hardlink_to': ['os.link'],
  'pathlib.Path.iterdir': ['os.listdir', 'os.scandir'],
  'os.unlink': ['os.remove'],
  'os.replace': ['os.rename'],
  'os.makedirs': ['os.mkdir'],
  'os.removedirs': ['os.remove', 'os.rmdir'],
  'shutil.copy': ['shutil.copyfile', 'shutil.copymode'],
  'shutil.copy2': ['shutil.copyfile', 'shutil.copystat'],
  'socket.create_connection': ['socket.getaddrinfo', 'socket.__new__', 'socket.connect'],
  'socket.create_server': ['socket.__new__', 'socket.bind'],
  'socket.socket.connect': ['socket.connect'],
  'socket.socket.connect_ex': ['socket.connect'],
  'socket.socket.bind': ['socket.bind'],
  'socket.socket.sendto': ['socket.sendto'],
  'socket.socket.sendmsg': ['socket.sendmsg'],
  'urllib.request.urlopen': ['urllib.Request', 'socket.getaddrinfo', 'socket.connect'],
  'urllib.request.OpenerDirector.open': ['urllib.Request'],
  'http.client.HTTPConnection.request': ['http.client.connect', 'http.client.send'],
  'http.client.HTTPSConnection.request': ['http.client.connect', 'http.client.send'],
  'http.client.HTTPSConnection.connect': ['http.client.connect'],
  'pickle.load': ['pickle.find_class'],
  'pickle.loads': ['pickle.find_class'],
  'pickle.Unpickler.load': ['pickle.find_class'],
  'marshal.loads': ['marshal.loads'],
  'marshal.dumps': ['marshal.dumps'],
  'ctypes.CDLL': ['ctypes.dlopen'],
  'ctypes.PyDLL': ['ctypes.dlopen'],
  'ctypes.WinDLL': ['ctypes.dlopen'],
  'ctypes.OleDLL': ['ctypes.dlopen'],
  'ctypes.cdll.LoadLibrary': ['ctypes.dlopen'],
  'ctypes.pydll.LoadLibrary': ['ctypes.dlopen'],
  'ctypes.LibraryLoader.LoadLibrary': ['ctypes.dlopen'],
  'importlib.import_module': ['import'],
  'builtins.__import__': ['import'],
  'builtins.input': ['builtins.input', 'builtins.input/result'],
  'tempfile.TemporaryDirectory': ['tempfile.mkdtemp'],
  'sqlite3.Connection.enable_load_extension': ['sqlite3.enable_load_extension'],
  'sqlite3.Connection.load_extension': ['sqlite3.load_extension'],
  'threading.Thread.start': ['_thread.start_new_thread', '_thread.start_joinable_thread'],
};

/** What some calls return, so a method on the result resolves: `socket.create_connection(a).send`. */
const RETURNS: Readonly<Record<string, string>> = {
  'socket.create_connection': 'socket.socket',
  'socket.create_server': 'socket.socket',
  'socket.socket.accept': 'socket.socket',
  'sqlite3.connect': 'sqlite3.Connection',
  'pathlib.Path.home': 'pathlib.Path',
  'pathlib.Path.cwd': 'pathlib.Path',
  'pathlib.Path.resolve': 'pathlib.Path',
  'pathlib.Path.absolute': 'pathlib.Path',
  'pathlib.Path.expanduser': 'pathlib.Path',
  'pathlib.Path.with_name': 'pathlib.Path',
  'pathlib.Path.with_suffix': 'pathlib.Path',
  'pickle.Unpickler': 'pickle.Unpickler',
  'urllib.request.build_opener': 'urllib.request.OpenerDirector',
};

/** Other spellings of the same thing. */
const ALIASES: Readonly<Record<string, string>> = {
  'pathlib.PosixPath': 'pathlib.Path',
  'pathlib.WindowsPath': 'pathlib.Path',
  'socket.SocketType': 'socket.socket',
  'io.open': 'builtins.open',
  'http.client.HTTPSConnection': 'http.client.HTTPConnection',
  'subprocess.Popen.__init__': 'subprocess.Popen',
};

/** Builtins that raise events, callable without an import. */
const BUILTINS = new Set(['open', 'exec', 'eval', 'compile', '__import__', 'input', 'breakpoint', 'id']);

/** A plain dotted callable name in `raisedBy` (not "[Lib source]", "[C API]", "(data model)"...). */
const CALLABLE = /^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/;

function buildCallMap(): Map<string, string[]> {
  const calls = new Map<string, string[]>();
  const add = (call: string, event: string) => {
    const list = calls.get(call) ?? [];
    if (!list.includes(event)) list.push(event);
    calls.set(call, list);
  };
  // The explicit list first: its order is the order the events are raised in.
  for (const [call, events] of Object.entries(EXTRA_CALLS)) {
    for (const event of events) if (eventInfo(event)) add(call, event);
  }
  for (const info of AUDIT_EVENTS) {
    for (const raw of info.raisedBy ?? []) {
      // "threading.Thread.start (3.12)" → "threading.Thread.start"; "[Lib source]" entries are internals.
      if (/\[/.test(raw)) continue;
      const name = raw.replace(/\s*\(.*\)\s*$/, '').trim();
      if (!CALLABLE.test(name)) continue;
      add(name, info.event);
    }
  }
  return calls;
}

let callMap: Map<string, string[]> | undefined;

/** `pathlib.PosixPath.open` → `pathlib.Path.open`: the aliases applied to the name or its owner. */
function canonical(call: string): string {
  if (ALIASES[call]) return ALIASES[call];
  const dot = call.lastIndexOf('.');
  if (dot > 0 && ALIASES[call.slice(0, dot)]) return `${ALIASES[call.slice(0, dot)]}${call.slice(dot)}`;
  return call;
}

/** The events a fully qualified callable raises (`subprocess.run` → [subprocess.Popen]). */
export function eventsRaisedBy(call: string): AuditEventInfo[] {
  callMap ??= buildCallMap();
  const events = callMap.get(canonical(call)) ?? [];
  return events.map((e) => eventInfo(e)).filter((e): e is AuditEventInfo => e !== undefined);
}

// ---------------------------------------------------------------------------------------------
// Reading the source

export interface ChainPart {
  name: string;
  /** Followed by a call: `Path(p)` in `Path(p).read_text`. */
  called: boolean;
}

export interface HoveredChain {
  parts: ChainPart[];
  /** Character range of the hovered name on its line. */
  start: number;
  end: number;
}

const IDENT = /[A-Za-z0-9_]/;

/** Whether `column` of the line is inside a string literal or a comment (one-line view). */
function inStringOrComment(line: string, column: number): boolean {
  let quote: string | undefined;
  for (let i = 0; i < column && i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\') i++;
      else if (line.startsWith(quote, i)) {
        i += quote.length - 1;
        quote = undefined;
      }
    } else if (c === '#') {
      return true;
    } else if (c === '"' || c === "'") {
      quote = line.startsWith(c.repeat(3), i) ? c.repeat(3) : c;
      i += quote.length - 1;
    }
  }
  return quote !== undefined;
}

/** The dotted chain ending with the name under `column`: `subprocess.run` when hovering `run`. */
export function chainAt(line: string, column: number): HoveredChain | undefined {
  let start = column;
  let end = column;
  while (start > 0 && IDENT.test(line[start - 1])) start--;
  while (end < line.length && IDENT.test(line[end])) end++;
  if (start === end || /[0-9]/.test(line[start])) return undefined;
  if (inStringOrComment(line, start)) return undefined;
  const parts: ChainPart[] = [{ name: line.slice(start, end), called: false }];
  let i = start;
  for (;;) {
    let j = i - 1;
    while (j >= 0 && line[j] === ' ') j--;
    if (j < 0 || line[j] !== '.') break;
    j--;
    while (j >= 0 && line[j] === ' ') j--;
    let called = false;
    if (j >= 0 && line[j] === ')') {
      // Skip a balanced argument list: `Path(p).read_text`.
      let depth = 0;
      for (; j >= 0; j--) {
        if (line[j] === ')') depth++;
        else if (line[j] === '(' && --depth === 0) break;
      }
      if (j < 0) return undefined;
      j--;
      called = true;
    }
    const nameEnd = j + 1;
    while (j >= 0 && IDENT.test(line[j])) j--;
    const name = line.slice(j + 1, nameEnd);
    if (!name || /[0-9]/.test(name[0])) return undefined;
    parts.unshift({ name, called });
    i = j + 1;
  }
  // A name preceded by anything but an operator or bracket is an attribute of an expression the lens
  // cannot follow (`x[0].connect`, `"s".join`).
  let k = i - 1;
  while (k >= 0 && line[k] === ' ') k--;
  if (k >= 0 && /[\]"'}]/.test(line[k])) return undefined;
  return { parts, start, end };
}

/** What the names of a file stand for: imports (`sp` → subprocess) and simple assignments. */
export interface Bindings {
  names: Map<string, string>;
  /** Names the file defines itself (def, class, ambiguous assignments): not resolved. */
  shadowed: Set<string>;
}

/** A simple scan of the file's imports, definitions and `x = call(...)` / `with call(...) as x`. */
export function scanBindings(text: string): Bindings {
  const names = new Map<string, string>();
  const shadowed = new Set<string>();
  // Join parenthesized `from x import (a,\n b)` lists and backslash continuations.
  const joined = text
    .replace(/\\\r?\n/g, ' ')
    .replace(/import\s*\(([^)]*)\)/g, (_, inner: string) => `import ${inner.replace(/\s+/g, ' ')}`);
  const lines = joined.split(/\r\n|\r|\n/);
  const assigned = new Map<string, Set<string>>();
  for (const raw of lines) {
    const line = raw.replace(/#.*$/, '').trim();
    let m: RegExpExecArray | null;
    if ((m = /^import\s+(.+)$/.exec(line))) {
      for (const item of m[1].split(',')) {
        const im = /^([\w.]+)(?:\s+as\s+(\w+))?$/.exec(item.trim());
        if (!im) continue;
        if (im[2]) names.set(im[2], im[1]);
        else names.set(im[1].split('.')[0], im[1].split('.')[0]);
      }
    } else if ((m = /^from\s+([\w.]+)\s+import\s+(.+)$/.exec(line))) {
      if (m[1].startsWith('.')) continue;
      for (const item of m[2].split(',')) {
        const im = /^(\w+)(?:\s+as\s+(\w+))?$/.exec(item.trim());
        if (im) names.set(im[2] ?? im[1], `${m[1]}.${im[1]}`);
      }
    } else if ((m = /^(?:async\s+)?(?:def|class)\s+(\w+)/.exec(line))) {
      shadowed.add(m[1]);
    } else if ((m = /^(\w+)\s*(?::[^=]+)?=\s*([\w.]+)\s*\(/.exec(line))) {
      (assigned.get(m[1]) ?? assigned.set(m[1], new Set()).get(m[1])!).add(m[2]);
    } else if ((m = /^(?:async\s+)?with\s+(.*)$/.exec(line))) {
      for (const wm of m[1].matchAll(/([\w.]+)\s*\((?:[^()]|\([^()]*\))*\)\s+as\s+(\w+)/g)) {
        (assigned.get(wm[2]) ?? assigned.set(wm[2], new Set()).get(wm[2])!).add(wm[1]);
      }
    } else if ((m = /^(\w+)\s*(?::[^=]+)?=/.exec(line))) {
      (assigned.get(m[1]) ?? assigned.set(m[1], new Set()).get(m[1])!).add('');
    }
  }
  const bindings: Bindings = { names, shadowed };
  for (const [name, sources] of assigned) {
    if (names.has(name)) continue;
    const types = new Set([...sources].map((s) => (s ? resultOf(resolveDotted(s, bindings)) : '')));
    if (types.size === 1 && !types.has('')) names.set(`${name}()`, [...types][0]);
    else shadowed.add(name);
  }
  return bindings;
}

function resultOf(call: string | undefined): string {
  if (!call) return '';
  const name = ALIASES[call] ?? call;
  return RETURNS[name] ?? name;
}

function resolveDotted(dotted: string, bindings: Bindings): string | undefined {
  const [head, ...rest] = dotted.split('.');
  const base = resolveName(head, bindings);
  return base === undefined ? undefined : [base, ...rest].join('.');
}

function resolveName(name: string, bindings: Bindings): string | undefined {
  const imported = bindings.names.get(name);
  if (imported !== undefined) return imported;
  const instance = bindings.names.get(`${name}()`);
  if (instance !== undefined) return instance;
  if (bindings.shadowed.has(name)) return undefined;
  return BUILTINS.has(name) ? `builtins.${name}` : undefined;
}

/** The fully qualified callable a chain names (`sp.run` → `subprocess.run`), if the lens can tell. */
export function resolveChain(parts: readonly ChainPart[], bindings: Bindings): string | undefined {
  let current = resolveName(parts[0].name, bindings);
  if (current === undefined) return undefined;
  for (let i = 1; i < parts.length; i++) {
    if (parts[i - 1].called) current = resultOf(current);
    current = `${ALIASES[current] ?? current}.${parts[i].name}`;
  }
  return current;
}
