"""The event storm: N sys.audit calls (default 1,000,000), one small argument each."""
import sys

audit = sys.audit


def storm(n):
    for i in range(n):
        audit("bench.storm", i)


storm(int(sys.argv[1]) if len(sys.argv) > 1 else 1000000)
