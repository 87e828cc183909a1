# The launcher's Python-side helper.  It runs inside the audited process,
# only when the hook calls it (a condition to test, later an inspection the
# user asked for), in a namespace of its own that is not in sys.modules.
# Events it raises itself are not recorded: the hook is busy while it runs.


def compile_condition(source):
    """Compiles a rule's condition once; a SyntaxError is reported by the
    launcher and the rule is left out."""
    return compile(source, "<spython condition>", "eval")


def test_condition(code, event, args, frame):
    """True when the condition holds in the frame that raised the event,
    with `event` and `args` bound as well."""
    return bool(test_value(code, event, args, frame))


# The -c programs multiprocessing runs in the children it starts through
# sys.executable: (module, entry point).
MULTIPROCESSING_BOOTSTRAPS = frozenset({
    ("multiprocessing.spawn", "spawn_main"),
    ("multiprocessing.forkserver", "main"),
    ("multiprocessing.resource_tracker", "main"),
})


def is_multiprocessing_bootstrap(source):
    """True for exactly what multiprocessing passes with -c: one import of
    a known entry point and one call of it with literal arguments only.
    Parsed, never run, so nothing else can hide in it."""
    import ast
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    if len(tree.body) != 2:
        return False
    imported, statement = tree.body
    if (not isinstance(imported, ast.ImportFrom) or imported.level
            or len(imported.names) != 1 or imported.names[0].asname
            or (imported.module, imported.names[0].name)
            not in MULTIPROCESSING_BOOTSTRAPS):
        return False
    call = getattr(statement, "value", None)
    if (not isinstance(statement, ast.Expr) or not isinstance(call, ast.Call)
            or not isinstance(call.func, ast.Name)
            or call.func.id != imported.names[0].name):
        return False
    try:
        for argument in call.args:
            ast.literal_eval(argument)
        for keyword in call.keywords:
            ast.literal_eval(keyword.value)
    except ValueError:
        return False
    return True


def flush_standard_streams():
    """What the program printed reaches its destination before the
    launcher ends it."""
    import sys
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or replaced stream: nothing to save
            pass


def describe_error(error):
    """One line for a failed condition: 'NameError: name 'x' is not
    defined'."""
    return "%s: %s" % (type(error).__name__, error)


# ---- Logpoints -------------------------------------------------------------

def format_log(template, event, args, frame):
    """A logpoint's message: {expression} parts evaluated like conditions;
    {{ and }} stand for braces.  A failing part shows its error inline."""
    out = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch in "{}" and template[i:i + 2] in ("{{", "}}"):
            out.append(ch)
            i += 2
            continue
        if ch != "{":
            out.append(ch)
            i += 1
            continue
        end = template.find("}", i + 1)
        if end < 0:
            out.append(template[i:])
            break
        source = template[i + 1:end]
        try:
            value = test_value(compile(source, "<spython logpoint>", "eval"),
                               event, args, frame)
            out.append(value if isinstance(value, str) else safe_repr(value))
        except Exception as error:  # shown to the user, not raised
            out.append("<%s>" % describe_error(error))
        i = end + 1
    return "".join(out)


def test_value(code, event, args, frame):
    """The value of a compiled expression in the event's frame."""
    scope_globals, scope_locals = event_scope(event, args, frame)
    return eval(code, scope_globals, scope_locals)


def event_scope(event, args, frame):
    if frame is not None:
        scope_globals = frame.f_globals
        scope_locals = dict(frame.f_locals)
    else:
        scope_globals = {"__builtins__": __builtins__}
        scope_locals = {}
    scope_locals["event"] = event
    scope_locals["args"] = args
    return scope_globals, scope_locals


# ---- Inspection at a stop ---------------------------------------------------

REPR_LIMIT = 1000
CHILDREN_LIMIT = 300


def safe_repr(value):
    """repr() of the program's own objects: runs their __repr__, so any
    failure is shown rather than raised."""
    try:
        text = repr(value)
    except BaseException as error:  # a hostile __repr__ must not escape
        return "<repr failed: %s>" % describe_error(error)
    if not isinstance(text, str):
        return "<repr returned %s>" % type(text).__name__
    if len(text) > REPR_LIMIT:
        text = text[:REPR_LIMIT] + "..."
    return text


def type_name(value):
    try:
        return type(value).__name__
    except BaseException:
        return "?"


class Stop:
    """What one stop hands out (frame ids, variable references); forgotten
    when the thread resumes."""

    def __init__(self, event, args, frame, thread_id):
        self.event = event
        self.args = args
        self.frame = frame
        self.thread_id = thread_id
        self.handles = [None]      # id 0 means "none" in DAP

    def handle(self, kind, value):
        self.handles.append((kind, value))
        return len(self.handles) - 1

    def lookup(self, number, kind):
        if not isinstance(number, int) or not 0 < number < len(self.handles):
            raise LookupError("unknown %s %r (ids last until resume)"
                              % (kind, number))
        found_kind, value = self.handles[number]
        if found_kind != kind:
            raise LookupError("%r is not a %s" % (number, kind))
        return value


current_stop = None


def begin_stop(event, args, frame, thread_id):
    global current_stop
    current_stop = Stop(event, args, frame, thread_id)


def end_stop():
    global current_stop
    current_stop = None


def python_threads():
    """[(native id, ident, name)] of the threads threading knows; the
    interpreter's main thread even before threading is imported."""
    import sys
    threading = sys.modules.get("threading")
    found = []
    if threading is not None:
        for thread in list(threading._active.values()):
            native = getattr(thread, "native_id", None)
            if native is not None:
                found.append((native, thread.ident, thread.name))
    if not any(t[0] == current_stop.thread_id for t in found):
        found.append((current_stop.thread_id, None, "MainThread"
                      if not found else "Thread %d" % current_stop.thread_id))
    return found


def command_threads(arguments):
    return {"threads": [{"id": native, "name": name}
                        for native, _, name in sorted(python_threads())]}


def top_frame(thread_id):
    import sys
    if thread_id == current_stop.thread_id:
        return current_stop.frame
    for native, ident, _ in python_threads():
        if native == thread_id and ident is not None:
            return sys._current_frames().get(ident)
    raise LookupError("no Python thread %r" % (thread_id,))


def command_stackTrace(arguments):
    frame = top_frame(arguments.get("threadId"))
    frames = []
    while frame is not None:
        code = frame.f_code
        frames.append({
            "id": current_stop.handle("frame", frame),
            "name": code.co_name,
            "line": frame.f_lineno or 0,
            "column": 1,
            "source": {"path": code.co_filename,
                       "name": code.co_filename.rsplit("/", 1)[-1]},
        })
        frame = frame.f_back
    start = arguments.get("startFrame") or 0
    levels = arguments.get("levels") or len(frames)
    return {"stackFrames": frames[start:start + levels],
            "totalFrames": len(frames)}


def command_scopes(arguments):
    frame = current_stop.lookup(arguments.get("frameId"), "frame")
    scopes = []
    if frame is current_stop.frame:
        event = {"event": current_stop.event, "args": current_stop.args}
        scopes.append({"name": "Audit Event", "presentationHint": "arguments",
                       "variablesReference": current_stop.handle(
                           "members", event),
                       "expensive": False})
    scopes.append({"name": "Locals", "presentationHint": "locals",
                   "variablesReference": current_stop.handle(
                       "members", dict(frame.f_locals)),
                   "expensive": False})
    scopes.append({"name": "Globals",
                   "variablesReference": current_stop.handle(
                       "members", frame.f_globals),
                   "expensive": False})
    return {"scopes": scopes}


def has_children(value):
    if isinstance(value, (str, bytes, bytearray, int, float, complex,
                          bool, type(None))):
        return False
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return len(value) > 0
    try:
        return bool(getattr(value, "__dict__", None))
    except BaseException:
        return False


def variable(name, value):
    return {"name": name, "value": safe_repr(value), "type": type_name(value),
            "variablesReference": (current_stop.handle("value", value)
                                   if has_children(value) else 0)}


def children(value):
    if isinstance(value, dict):
        return [(safe_repr(k) if not isinstance(k, str) else k, v)
                for k, v in list(value.items())[:CHILDREN_LIMIT]]
    if isinstance(value, (list, tuple)):
        return [("[%d]" % i, v)
                for i, v in enumerate(value[:CHILDREN_LIMIT])]
    if isinstance(value, (set, frozenset)):
        return [("<%d>" % i, v)
                for i, v in enumerate(list(value)[:CHILDREN_LIMIT])]
    try:
        members = vars(value)
    except BaseException:
        return []
    return sorted(list(members.items())[:CHILDREN_LIMIT])


def command_variables(arguments):
    reference = arguments.get("variablesReference")
    try:
        members = current_stop.lookup(reference, "members")
        items = list(members.items())[:CHILDREN_LIMIT]
    except LookupError:
        items = children(current_stop.lookup(reference, "value"))
    return {"variables": [variable(str(name), value)
                          for name, value in items]}


def command_evaluate(arguments):
    expression = arguments.get("expression") or ""
    frame_id = arguments.get("frameId")
    frame = (current_stop.lookup(frame_id, "frame") if frame_id
             else current_stop.frame)
    scope_globals, scope_locals = event_scope(current_stop.event,
                                              current_stop.args, frame)
    try:
        code = compile(expression, "<spython evaluate>", "eval")
    except SyntaxError:
        if arguments.get("context") != "repl":
            raise
        exec(compile(expression, "<spython evaluate>", "exec"),
             scope_globals, scope_locals)
        return {"result": "", "variablesReference": 0}
    value = eval(code, scope_globals, scope_locals)
    described = variable(expression, value)
    return {"result": described["value"], "type": described["type"],
            "variablesReference": described["variablesReference"]}


def handle_request(command, arguments_json):
    """Answers one inspection request: the body as JSON text."""
    import json
    arguments = json.loads(arguments_json) if arguments_json else {}
    handler = globals().get("command_" + command)
    if handler is None or current_stop is None:
        raise LookupError("cannot answer %r here" % (command,))
    return json.dumps(handler(arguments))
