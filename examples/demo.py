"""A small program that does a bit of everything an audit hook sees.

Run it through the launcher (`npm start`, or `dist/bin/spython --stderr -- examples/demo.py`) to watch
the events it raises: a file read, a directory listing, a subprocess, a loopback TCP connection and an
exec of generated code. Standard library only; Python 3.8+.
"""

import os
import socket
import subprocess
import sys
import threading


def read_own_source():
    with open(__file__, "r", encoding="utf-8") as f:
        text = f.read()
    print("read %d lines of %s" % (text.count("\n"), os.path.basename(__file__)))


def list_directory():
    here = os.path.dirname(os.path.abspath(__file__))
    names = sorted(os.listdir(here))
    print("listed %s: %d entries" % (here, len(names)))


def run_child():
    out = subprocess.run(
        [sys.executable, "-c", "print('child says hi')"],
        stdout=subprocess.PIPE,
        check=True,
        timeout=10,
    ).stdout.decode().strip()
    print("started a subprocess; it printed %r" % out)


def loopback_tcp():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(64).upper())

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"ping")
        reply = client.recv(64)
    t.join(5)
    server.close()
    print("opened a TCP server on 127.0.0.1:%d; it answered %r" % (port, reply.decode()))


def exec_generated():
    source = "\n".join("square_%d = %d * %d" % (i, i, i) for i in range(3)) + "\ntotal = square_0 + square_1 + square_2\n"
    namespace = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    print("exec'd %d lines of generated code; total = %d" % (source.count("\n"), namespace["total"]))


def main():
    read_own_source()
    list_directory()
    run_child()
    loopback_tcp()
    exec_generated()
    print("done")


if __name__ == "__main__":
    main()
