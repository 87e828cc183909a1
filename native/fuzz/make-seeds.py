#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets into
native/fuzz/corpus/<target>/seed-*.  The corpus directories also hold
what `npm run fuzz` merged in (named by their SHA-1); those are kept.

    python3 native/fuzz/make-seeds.py

Seeds: every control message of docs/protocol.md, configurations with
every key, and the edge cases each parser has (depth 64/65, escapes,
surrogates, invalid UTF-8, numbers, truncation, over-long lines); for the
renderer, programs for fuzz_render's stack machine (see decode_objects in
fuzz_render.c) and marshal data.
"""

import marshal
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# ---- JSON ------------------------------------------------------------------

PROTOCOL = [
    b'{"type":"welcome","protocol":1,"config":{}}',
    b'{"type":"reject","message":"no thanks"}',
    b'{"type":"ping","id":7}',
    b'{"type":"promptReply","id":1,"answer":"allow"}',
    b'{"type":"promptReply","id":2,"answer":"allowAlways"}',
    b'{"type":"promptReply","id":3,"answer":"deny"}',
    b'{"type":"setBreakpoints","breakpoints":[{"id":1,"event":"socket.*"}],"breakOnDenied":false}',
    b'{"type":"continue","threadId":4242,"action":"allow"}',
    b'{"type":"continue","threadId":4242,"action":"deny"}',
    b'{"type":"continue","threadId":4242,"action":"step"}',
    b'{"type":"pause"}',
    b'{"type":"request","id":5,"command":"threads","arguments":{}}',
    b'{"type":"request","id":6,"command":"evaluate","arguments":{"expression":"x","frameId":1,"context":"repl"}}',
    b'{"type":"hello","protocol":1,"token":"t","pid":1,"ppid":0,"python":"3.12.1","mode":"dlopen","executable":"/usr/bin/python3","freeThreaded":false}',
    b'{"type":"error","message":"bad","line":"{"}',
    b'{"type":"stopped","reason":"breakpoint","threadId":1,"seq":3,"event":"open","description":"Paused on open","breakpointId":1}',
]

CONFIG = (
    b'{"startupControl":true,"lockHooks":true,"subProcess":false,"execCheck":false,'
    b'"denyEvents":["socket.*","os.system if args[0] == \'ls\'",{"event":"open","condition":"True"},{"event":"exec","condition":null}],'
    b'"promptEvents":["subprocess.Popen"],'
    b'"auditLog":{"file":"/tmp/x.jsonl","syslog":["os.*"],"journal":[{"event":"open"}]},'
    b'"verifyImports":"warn","verifyExempt":["/usr/lib"],"xattrName":"user.spython.sha256",'
    b'"maxCodeSize":1048576,"manifest":"/tmp/m","manifestKey":"/tmp/k",'
    b'"breakpoints":[{"id":1,"event":"open","condition":"args[1] == \'w\'","hitCondition":">=2","logMessage":"{event} {args}","kind":"function"},'
    b'{"id":2,"event":"socket.*","kind":"filter","hitCondition":"%3"},{"id":3,"event":"*","hitCondition":"==1"},'
    b'{"id":4,"event":"x","hitCondition":"<5"},{"id":5,"event":"y","hitCondition":"<=5"},{"id":6,"event":"z","hitCondition":">1"},'
    b'{"id":7,"event":"w","hitCondition":" 4 "}],'
    b'"breakOnDenied":true,"stopOnEntry":true,"unknownKey":[1,2,{"a":null}]}'
)

JSON_EDGES = [
    b"", b" ", b"null", b"true", b"false", b"0", b"-0", b"-", b"01", b"1.", b"1.5e+10", b"-1E-5",
    b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808", b"1e400",
    b"12345678901234567890123456789012345678901234567890",
    b'""', b'"\\"\\\\\\/\\b\\f\\n\\r\\t"', b'"\\u0000\\u001f\\u007f\\u0080\\u07ff\\u0800\\uffff"',
    b'"\\ud83d\\ude00"', b'"\\ud83d"', b'"\\ude00"', b'"\\ud83d\\u0041"', b'"\\ud83d\\ud83d\\ude00"',
    b'"\\uD83D\\uDE00"', b'"\\u12"', b'"\\x41"', b'"\\', b'"abc', b'"\x01"',
    b'"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80"', b'"\xc0\x80"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"',
    b'"\xe2\x80"', b'"\xff"', b'[]', b'{}', b'[1,2,[3,[4]]]', b'{"a":{"b":{"c":[]}}}', b'[1,]', b'{"a":1,}',
    b'{"a"}', b'{"a":}', b'{1:2}', b'[1 2]', b'{"a":1 "b":2}', b' \t\r\n[ \t\r\n1 \t\r\n] \t\r\n',
    b'[] []', b'[nul]', b'tru', b'[true,false,null,-1.25e-3,"x",{}]',
    b'{"type":"a","type":"b"}', b'{"":""}',
    b"[" * 64 + b"]" * 64, b"[" * 65 + b"]" * 65, b'{"a":' * 63 + b"1" + b"}" * 63,
]

# ---- control streams ---------------------------------------------------------

WELCOME = b'{"type":"welcome","protocol":1,"config":{}}\n'


def stream(*lines):
    return WELCOME + b"".join(line + b"\n" for line in lines)


CONTROL = {
    "protocol": b"".join(line + b"\n" for line in [PROTOCOL[0]] + PROTOCOL[2:13]),
    "welcome-config": b'{"type":"welcome","protocol":1,"config":' + CONFIG + b"}\n"
                      + b'{"type":"ping","id":1}\n',
    "welcome-bad-config": b'{"type":"welcome","protocol":1,"config":{"denyEvents":"x","breakpoints":[1]}}\n',
    "welcome-wrong-protocol": b'{"type":"welcome","protocol":2,"config":{}}\n{"type":"ping"}\n',
    "reject": b'{"type":"reject","message":"' + b"\\u00e9" * 300 + b'"}\n',
    "reject-no-message": b'{"type":"reject"}\n',
    "handshake-garbage": b"hello\n",
    "ping-ids": stream(b'{"type":"ping","id":-9223372036854775808}', b'{"type":"ping","id":1e3}',
                       b'{"type":"ping","id":"x"}', b'{"type":"ping"}',
                       b'{"type":"ping","id":99999999999999999999}'),
    "prompt-replies": stream(b'{"type":"promptReply","id":1,"answer":"allow"}',
                             b'{"type":"promptReply","id":1,"answer":"deny"}',
                             b'{"type":"promptReply","id":9,"answer":"allow"}',
                             b'{"type":"promptReply","id":2,"answer":"maybe"}',
                             b'{"type":"promptReply","id":3}'),
    "breakpoints": stream(
        b'{"type":"setBreakpoints","breakpoints":[{"id":1,"event":"open","hitCondition":"x"},'
        b'{"id":2,"event":"","condition":"","logMessage":""},{"id":3,"event":"a","hitCondition":"%0"},'
        b'{"id":4,"event":"b","hitCondition":">=-1"},{"id":5.5,"event":"c"}]}',
        b'{"type":"setBreakpoints","breakpoints":[{"event":"x"}]}',
        b'{"type":"setBreakpoints","breakpoints":{}}',
        b'{"type":"setBreakpoints","breakpoints":[1,2]}',
        b'{"type":"setBreakpoints","breakOnDenied":true}',
        b'{"type":"setBreakpoints","breakpoints":[{"id":1,"event":"e","hitCondition":"\\u0001' + b"\\u0002" * 250 + b'"}]}',
        b'{"type":"setBreakpoints","breakpoints":[]}'),
    "stopped-requests": stream(
        b'{"type":"request","id":1,"command":"threads"}',
        b'{"type":"request","id":2,"command":"evaluate","arguments":{"expression":"\\"\\n"}}',
        b'{"type":"request","id":3,"command":"' + b"x" * 100 + b'"}',
        b'{"type":"request","id":4}',
        b'{"type":"continue","threadId":1,"action":"allow"}',
        b'{"type":"continue","action":"step"}',
        b'{"action":"deny","type":"continue"}',
        b'{"type":"continue"}'),
    "errors": stream(b"", b"{", b"[]", b'{"type":1}', b'{"type":"nope"}', b'{"type":"' + b"t" * 40 + b'"}',
                     b"\x01" * 199 + b"\\", b'"' * 300, b"\xff\xfe" * 150, b"\r", b'{"type":"ping"}\r'),
    "too-long": stream(b'{"type":"ping","pad":"' + b"a" * 9000 + b'"}', b'{"type":"ping","id":2}'),
    "too-long-unterminated": WELCOME + b"[" * 20000,
    "no-final-newline": WELCOME + b'{"type":"ping","id":3}',
}

# ---- render programs --------------------------------------------------------------
# Opcodes of decode_objects(): 0 None, 1 True, 2 False, 3 int, 4 float,
# 5/6 str, 7 bytes, 8 bytearray, 9 tuple, 10 list, 11 dict, 12 self-ref,
# 13 dup, 14 counting subclass, 15 opaque, 16 code, 17 1-tuple nesting,
# 18 other builtins, 19 drop.  Header: mode, cap byte, budget byte.

NONE, TRUE, FALSE, INT, FLOAT, STR, BYTES, BARR, TUPLE, LIST, DICT, SELF, DUP, SUB, OPAQUE, CODE, NEST, OTHER, DROP = (
    0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)


def prog(cap, budget, *ops):
    out = bytearray([0, cap, budget])
    for op in ops:
        out += bytes(op) if isinstance(op, (bytes, bytearray, list)) else bytes([op])
    return bytes(out)


def s(units, rep=1, salt=0):
    return [STR, len(units), rep, salt] + list(units)


def b(data, rep=1, kind=BYTES):
    return [kind, len(data), rep] + list(data)


def i64(v):
    return [INT, 0] + list(struct.pack(">q", v))


def f64(v):
    return [FLOAT] + list(struct.pack(">d", v))


def big(bits, neg=False, minus_one=False, times16=False):
    kind = 2 | (4 if times16 else 0) | (8 if minus_one else 0) | (16 if neg else 0)
    bits -= 60
    return [INT, kind, bits >> 8, bits & 255]


def opaque(name, base):
    return [OPAQUE, len(name), base] + list(name)


def code(filename, name, line):
    return [CODE, len(filename), len(name)] + list(filename) + list(name) + [line]


RENDER = {
    "scalars": prog(255, 255, NONE, TRUE, FALSE, i64(0), i64(-1), i64(2**53), i64(-2**53 - 1),
                    i64(2**63 - 1), i64(-2**63), [INT, 1, 7], f64(0.1), f64(-0.0), f64(1e308),
                    f64(float("inf")), f64(float("-inf")), f64(float("nan")), f64(5e-324)),
    "strings": prog(100, 128, s(b"hello"), s(b"\x00\x01\x1f"), s(bytes(range(0x10, 0x20))),
                    s(b"'"), s(b'"'), s(b"'\""), s(b"\x80\x81\x82"), s(b"\x90\xa0"), s(b"\x90"),
                    s(b"\xa0"), s(b"\xb0\xb1"), s(b"\xc0\xd0\xe0\xe1\xf0")),
    "long-strings": prog(255, 200, s(b"ab", 250), s(b"\x90\xa0", 255), s(b"\x01", 200), s(b"\x13", 255)),
    "bytes": prog(150, 100, b(b"abc"), b(b"'"), b(b"'\""), b(bytes(range(256))[:63]),
                  b(b"\\\n\r\t\x00\x7f\x80\xff"), b(b"x", 255), b(b"\"'", 3, BARR), b(b"", 1, BARR)),
    "big-ints": prog(255, 255, big(64), big(100, neg=True), big(14300), big(14400, minus_one=True),
                     big(65000, times16=True, neg=True)),
    "containers": prog(255, 255, i64(1), s(b"a"), TUPLE, 2, i64(1), TUPLE, 1, TUPLE, 0, LIST, 0, DICT, 0,
                       i64(1), s(b"k"), s(b"v"), i64(2), DICT, 4, LIST, 5),
    "cycles": prog(255, 255, i64(1), LIST, 1, SELF, DUP, 0, DICT, 0, SELF, 3, LIST, 2, SELF, TUPLE, 1),
    "deep": prog(255, 255, NONE, NEST, 7, NEST, 7, LIST, 1, NEST, 3, DUP, 0, LIST, 2),
    "wide": prog(255, 255, *([NONE] * 39), LIST, 39, *([DUP, 0] * 39), TUPLE, 39),
    "shared-dag": prog(255, 255, s(b"\x01", 255), *([DUP, 0] * 31), LIST, 32, *([DUP, 0] * 31), LIST, 32,
                       *([DUP, 0] * 31), LIST, 32),
    "subclasses": prog(255, 255, s(b"x"), SUB, i64(5), SUB, f64(1.5), SUB, b(b"y"), SUB, b(b"z", 1, BARR), SUB,
                       NONE, LIST, 1, SUB, NONE, TUPLE, 1, SUB, i64(1), i64(2), DICT, 2, SUB, big(20000), SUB),
    "opaque": prog(255, 255, opaque(b"q\"x\x01", 9), opaque("\u00e9t".encode(), 0),
                   opaque(b"\xff\xfe\x01\x02", 5), opaque(b"", 8), opaque(b"<a b>", 7),
                   *[[OTHER, k] for k in range(20)]),
    "code": prog(255, 255, code(b"a\"b\\c", b"<module>", 0),
                   code(b"\xff\xfe\x80\x81", b"f\x01\xe9", 255), code(b"", b"", 1)),
    "small-buffer": prog(3, 100, s(b"\x01\x02", 50), b(b"\x00", 40), big(20000), LIST, 3),
    "tiny-buffer": prog(1, 0, s(b"abc"), i64(123456), LIST, 2),
}

MARSHAL = {
    "marshal-values": (None, True, False, 0, -1, 2**70, -2**200, 1.5, float("nan"), 1j, "s\udc80x", b"b",
                       bytearray(b"ba"), [1, [2]], {"k": (1,)}, {1, 2}, frozenset({3}), ..., StopIteration),
    "marshal-str": ("\u2028\u2029\U0001f600\x00\x7f" * 300,),
    "marshal-nested": [[[[[[[1]]]]]]],
}


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    for i, line in enumerate(PROTOCOL):
        write("fuzz_json", "protocol-%02d" % i, line)
    write("fuzz_json", "config", CONFIG)
    for i, text in enumerate(JSON_EDGES):
        write("fuzz_json", "edge-%02d" % i, text)
    for name, data in CONTROL.items():
        write("fuzz_control", name, data)
    for name, data in RENDER.items():
        write("fuzz_render", name, data)
    for name, value in MARSHAL.items():
        write("fuzz_render", name, b"\x01\xff\xff" + marshal.dumps(value, 4))
    # A self-referencing list: marshal keeps the reference.
    cyc = []
    cyc.append(cyc)
    write("fuzz_render", "marshal-cycle", b"\x01\xff\x80" + marshal.dumps(cyc, 4))


if __name__ == "__main__":
    main()
