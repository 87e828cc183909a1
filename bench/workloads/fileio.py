"""File I/O: create, stat, read, list and remove N small files (default 20,000) in DIR."""
import os
import sys

root = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
payload = b"x" * 200
per_dir = 1000

for d in range(0, n, per_dir):
    os.mkdir(os.path.join(root, "d%d" % d))
for i in range(n):
    with open(os.path.join(root, "d%d" % (i - i % per_dir), "f%d.txt" % i), "wb") as f:
        f.write(payload)
total = 0
for d in range(0, n, per_dir):
    folder = os.path.join(root, "d%d" % d)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        total += os.stat(path).st_size
        with open(path, "rb") as f:
            total += len(f.read())
        os.remove(path)
    os.rmdir(folder)
if total != 2 * n * len(payload):
    raise SystemExit("read back %d bytes, expected %d" % (total, 2 * n * len(payload)))
