#!/usr/bin/env python3
"""A minimal channel reader for reproducing launcher findings by hand.

Listens on a Unix socket, runs the launcher with SPYTHON_CHANNEL/SPYTHON_TOKEN
pointing at it, answers the hello with a welcome holding CONFIG, allows every
prompt, continues every stop, and prints each line the launcher sends: "OK"
when it is one complete JSON value, "BAD" otherwise, "TIMEOUT" when the
launcher stops talking (e.g. waiting for an answer to a message that never
arrived whole).

    python3 native/fuzz/repro/channel-reader.py CONFIG_JSON SCRIPT [LAUNCHER [PYTHON]]

e.g. a prompt whose event name is 250 control characters (docs/protocol.md:
promptEvents): the prompt line is cut at 2048 bytes without its newline and
the program waits forever:

    python3 native/fuzz/repro/channel-reader.py '{"promptEvents":["x*"]}' \\
        'import sys; sys.audit("x" + "\\x01"*250, "\\\\"*300); print("after")'
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main():
    config, script = json.loads(sys.argv[1]), sys.argv[2]
    launcher = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "dist", "bin", "spython")
    python = sys.argv[4] if len(sys.argv) > 4 else "/root/.pyenv/versions/3.12.1/bin/python3"
    path = os.path.join(tempfile.mkdtemp(), "channel")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    env = dict(os.environ, SPYTHON_CHANNEL=path, SPYTHON_TOKEN="token")
    proc = subprocess.Popen([launcher, "--python", python, "-c", script], env=env)
    conn, _ = server.accept()
    conn.settimeout(8)
    buf, welcomed = b"", False
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    print("BAD ", len(line), repr(line[:80]), "...", repr(line[-40:]))
                    continue
                print("OK  ", len(line), msg.get("type") or msg.get("event"))
                if not welcomed:
                    answer = {"type": "welcome", "protocol": 1, "config": config}
                    welcomed = True
                elif msg.get("type") == "prompt":
                    answer = {"type": "promptReply", "id": msg["id"], "answer": "allow"}
                elif msg.get("type") == "stopped":
                    answer = {"type": "continue", "threadId": msg["threadId"], "action": "allow"}
                else:
                    continue
                conn.sendall(json.dumps(answer).encode() + b"\n")
    except socket.timeout:
        print("TIMEOUT: nothing for 8 s; unfinished line of", len(buf), "bytes:", repr(buf[:60]), "...")
    if buf:
        print("unterminated at the end:", len(buf), "bytes")
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    print("launcher status", proc.returncode)


if __name__ == "__main__":
    main()
