# 200 forks at once, each raising one event (an open) and leaving with os._exit.
import os, tempfile
here = tempfile.mkdtemp()
pids = []
for i in range(200):
    pid = os.fork()
    if pid == 0:
        open(os.path.join(here, str(i)), "w").close()
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
