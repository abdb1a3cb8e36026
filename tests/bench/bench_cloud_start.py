"""A throwaway cloud's start and stop, with the deploy/ of two source trees in turn (the
same load for both: compare a change with what it replaces). For each start: the wall
seconds of `devcloud up`, the CPU seconds of what it waited for (the broker's storage
format, psql, virga-busctl...), the broker JVM's CPU when up returned; the wall seconds
of `devcloud down`; and the CPU of all the cloud's daemons (DIR/run/*.pid) at the end of
`up`. docs/testing.md ("Test time") has figures.

    /usr/bin/python3 tests/bench/bench_cloud_start.py --count 3 --old /tmp/old-tree \\
        [--new .] [--old-args="ARGS"] [--build build] [-- devcloud up arguments, e.g. --objectstore dir]

--old: a checkout (git archive) of what is compared against; both use --build's
binaries. --old-args: the old side's devcloud up arguments instead of those after --,
e.g. `--old . --old-args="--objectstore rados" -- --objectstore dir` compares a Ceph
cloud with a directory one in the same tree."""
import glob
import importlib
import os
import resource
import shlex
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from bench_common import bench_args  # noqa: E402

argv, up_args = (sys.argv[:sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1:]) if "--" in sys.argv \
    else (sys.argv, [])
sys.argv = argv
args = bench_args("bench_cloud_start", 3, extra=lambda ap: (ap.add_argument("--old", required=True),
                                                              ap.add_argument("--new", default="."),
                                                              ap.add_argument("--old-args")))
sides = [("old", os.path.abspath(args.old), shlex.split(args.old_args) if args.old_args is not None else up_args),
         ("new", os.path.abspath(args.new), up_args)]


def harness_of(tree):
    """tree's tests/lib/harness.py: its Cloud starts tree's deploy/devcloud."""
    sys.modules.pop("harness", None)
    sys.path.insert(0, os.path.join(tree, "tests", "lib"))
    try:
        return importlib.import_module("harness")
    finally:
        sys.path.pop(0)


def cpu_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def daemons_cpu(cloud):
    total = 0.0
    for f in glob.glob(os.path.join(cloud.dir, "run", "*.pid")):
        try:
            with open(f) as fh:
                total += cpu_of(int(fh.read().strip()))
        except (OSError, ValueError):
            pass   # gone meanwhile
    return total


results = {name: [] for name, _, _ in sides}
for i in range(args.count):
    for name, tree, up in sides:
        h = harness_of(tree)
        load = os.getloadavg()[0]
        cpu0, t0 = children_cpu(), time.time()
        c = h.Cloud.start(extra_args=tuple(up))
        up_s, waited = time.time() - t0, children_cpu() - cpu0
        broker, daemons = cpu_of(c.pid("kafka")), daemons_cpu(c)
        t1 = time.time()
        c.stop()
        down_s = time.time() - t1
        results[name].append((up_s, waited, broker, daemons, down_s))
        print("%s %s %s #%d: up %.1f s, waited-for CPU %.1f s, broker JVM CPU %.1f s, all daemons' CPU %.1f s, "
              "down %.1f s (load %.1f)" % (name, tree, " ".join(up), i, up_s, waited, broker, daemons, down_s, load),
              flush=True)
for name, tree, up in sides:
    rs = results[name]
    print("%s %s %s: mean up %.1f s, waited-for CPU %.1f s, broker JVM CPU %.1f s, all daemons' CPU %.1f s, "
          "down %.1f s (n=%d)" % (name, tree, " ".join(up), *(sum(r[k] for r in rs) / len(rs) for k in range(5)),
                                  len(rs)))
