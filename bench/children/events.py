# A child (through sys.executable) that raises 200,000 audit events; the parent waits for it.
import subprocess, sys
if len(sys.argv) > 1:
    for i in range(200_000):
        sys.audit("bench.event", i)
else:
    subprocess.run([sys.executable, __file__, "child"], check=True)
