"""What the Python benchmarks under tests/bench share: their arguments (--count N,
--build DIR, plus their own), VIRGA_BIN_DIR set from --build before harness or datapath
is imported (they read it at import), the skip when a benchmark needs root, and the
percentile they report."""
import argparse
import os
import sys


def bench_args(name, count, needs_root=True, extra=None):
    """Parse the benchmark's arguments; exits 0 with "<name>: skipped (needs root)" when it
    needs root and is not. extra(ap) adds the benchmark's own arguments."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=count)
    ap.add_argument("--build", default="build")
    if extra:
        extra(ap)
    args = ap.parse_args()
    os.environ.setdefault("VIRGA_BIN_DIR", os.path.abspath(os.path.join(args.build, "bin")))
    if needs_root and os.geteuid() != 0:
        print("%s: skipped (needs root)" % name)
        sys.exit(0)
    return args


def pct(v, p):
    """The p-th percentile of v (nearest rank)."""
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
