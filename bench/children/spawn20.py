# Starts 20 Python children through sys.executable, one after another; each imports json and exits.
import subprocess, sys
for _ in range(20):
    subprocess.run([sys.executable, __file__.replace("spawn20.py", "leaf.py")], check=True)
