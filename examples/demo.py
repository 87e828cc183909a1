"""A small program that does four things an audit hook sees, for `npm start`.

It reads a file, starts a subprocess, talks to a loopback HTTP server it starts itself, and execs
code it generates. `npm start` runs it through the command line with the policy of
examples/.vscode/launch.json ("Demo: deny subprocesses"), which refuses the subprocess: the program
is told with a PermissionError, says so and carries on. Standard library only; Python 3.8+.

    node dist/cli.js run --workspace examples --config "Demo: deny subprocesses"
    node dist/cli.js run examples/demo.py            # no policy: all four succeed
"""

import http.server
import os
import subprocess
import sys
import threading
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def read_a_file():
    with open(os.path.join(HERE, "greeting.txt"), encoding="utf-8") as f:  # READ
        text = f.read().strip()
    print("1. read greeting.txt: %r" % text)


def start_a_subprocess():
    try:
        out = subprocess.run(  # SPAWN
            [sys.executable, "-c", "print('hello from a child process')"],
            stdout=subprocess.PIPE,
            check=True,
            timeout=30,
        ).stdout.decode().strip()
    except PermissionError as e:
        print("2. the subprocess was refused: %s" % e)
        return
    print("2. started a subprocess; it printed %r" % out)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("you asked for %s" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # keep the demo's output short


def talk_to_a_loopback_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.handle_request, name="http-server")
    thread.start()
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % port, timeout=10) as response:
        answer = response.read().decode()
    thread.join(10)
    server.server_close()
    print("3. HTTP server on 127.0.0.1:%d answered %r" % (port, answer))


def exec_generated_code():
    source = "\n".join("square_%d = %d * %d" % (i, i, i) for i in range(4))
    source += "\ntotal = " + " + ".join("square_%d" % i for i in range(4)) + "\n"
    namespace = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # EXEC
    print("4. exec'd %d lines of generated code: total = %d" % (source.count("\n"), namespace["total"]))


def main():
    read_a_file()
    start_a_subprocess()
    talk_to_a_loopback_server()
    exec_generated_code()


if __name__ == "__main__":
    main()
