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
    if frame is not None:
        scope_globals = frame.f_globals
        scope_locals = dict(frame.f_locals)
    else:
        scope_globals = {"__builtins__": __builtins__}
        scope_locals = {}
    scope_locals["event"] = event
    scope_locals["args"] = args
    return bool(eval(code, scope_globals, scope_locals))


def describe_error(error):
    """One line for a failed condition: 'NameError: name 'x' is not
    defined'."""
    return "%s: %s" % (type(error).__name__, error)
