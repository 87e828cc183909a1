"""Runs a script under one of bench/floor/floorhook.c's floor hooks (see there).

    python floorhook.py LIB MODE LOG RECORD_BYTES -- script.py [args...]

MODE -1 installs no hook (the floors' baseline), 0 the empty hook, 1 the line-writing one.
"""
import ctypes
import os
import runpy
import sys

lib_path, mode, log, record_bytes = sys.argv[1:5]
lib = ctypes.PyDLL(lib_path)
lib.floor_install.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
# Mode -1 installs nothing: the baseline with the same start-up (ctypes loaded).
if int(mode) >= 0 and lib.floor_install(int(mode), os.fsencode(log), int(record_bytes)) != 0:
    raise SystemExit("floorhook: could not install the hook")
sys.argv = sys.argv[6:]
runpy.run_path(sys.argv[0], run_name="__main__")
