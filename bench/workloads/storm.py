"""The event storm: N sys.audit calls (default 1,000,000), one small argument each.

With KIND and SIZE (storm.py N KIND SIZE), every call passes the same argument instead: bytes of SIZE
bytes, a str of SIZE characters, a list of SIZE items, a dict of SIZE pairs, or an int of SIZE bits,
made once before the calls.
"""
import sys

audit = sys.audit

ARGUMENTS = {
    "bytes": lambda size: b"x" * size,
    "str": lambda size: "x" * size,
    "list": lambda size: [None] * size,
    "dict": lambda size: dict.fromkeys(range(size)),
    "int": lambda size: 1 << (size - 1),
}


def storm(n):
    for i in range(n):
        audit("bench.storm", i)


def storm_with(n, argument):
    for _ in range(n):
        audit("bench.storm", argument)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
if len(sys.argv) > 3:
    storm_with(n, ARGUMENTS[sys.argv[2]](int(sys.argv[3])))
else:
    storm(n)
