"""Stands in for the launcher to time Node's ingest on its own: started by the CLI in the launcher's
place (SPYTHON_LAUNCHER), it connects to the channel, says hello, waits for the welcome, sends the
records of BENCH_REPLAY (a JSONL log the launcher wrote) as they are, then the exit message. No Python
program runs and no hook: the kernel copies the file into the socket (sendfile), so the producer costs
far less than Node's reading and Node's pace is what is measured. Its arguments are the launcher's, and
ignored."""
import json
import os
import socket
import sys


def main():
    path = os.environ.pop("SPYTHON_CHANNEL")
    token = os.environ.pop("SPYTHON_TOKEN")
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    channel.connect(path)
    hello = {
        "type": "hello", "protocol": 1, "token": token, "pid": os.getpid(), "ppid": os.getppid(),
        "python": "%d.%d.%d" % sys.version_info[:3], "mode": "dlopen", "executable": sys.executable,
        "freeThreaded": False,
    }
    channel.sendall(json.dumps(hello, separators=(",", ":")).encode() + b"\n")
    reader = channel.makefile("rb")
    answer = json.loads(reader.readline() or b"{}")
    if answer.get("type") != "welcome":
        sys.exit("replay: the reader answered %r" % answer)
    with open(os.environ["BENCH_REPLAY"], "rb") as records:
        channel.sendfile(records)
    channel.sendall(b'{"type":"exit","status":0}\n')
    channel.shutdown(socket.SHUT_WR)
    # The reader closes once it has read everything.
    while reader.read(65536):
        pass


main()
