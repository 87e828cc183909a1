"""The hand-written alternative: a sys.addaudithook logger writing JSON lines with the source
location, installed before the program runs (what users write instead of a native hook).

    python pyhook.py LOG -- script.py [args...]
    python pyhook.py LOG -m module [args...]
"""
import json
import runpy
import sys

log = open(sys.argv[1], "w", buffering=64 * 1024)
busy = False


def hook(event, args):
    global busy
    if busy:
        return      # sys._getframe below raises an event of its own
    busy = True
    try:
        frame = sys._getframe(1)
        log.write(json.dumps({"event": event, "file": frame.f_code.co_filename,
                              "line": frame.f_lineno, "args": args}, default=repr) + "\n")
    finally:
        busy = False


if sys.argv[2] == "-m":
    sys.argv = sys.argv[3:]
    sys.addaudithook(hook)
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[3:]
    sys.addaudithook(hook)
    runpy.run_path(sys.argv[0], run_name="__main__")
