"""What building a host and a VPC costs the applier (docs/performance.md, "The datapath's
other applies in-process"): its CPU time with the commands it waited for, the processes it
exec'd and the wall time, for two builds of virga-datapath taken alternately (--build and
--other), so that the machine's load falls on both alike. Root only; namespaces of its own.

  sudo /usr/bin/python3 tests/bench/bench_datapath_build.py --count 10 [--build build] [--other DIR]

Each round, for each build: a fresh namespace prefix; apply 1, an empty machine: the shared
namespaces, host h1, VPC A with one interface (the host's build); apply 2: VPC B with one
interface more (a VPC's build on a host that has one; observed first, as every `apply` of
the CLI); then teardown-all. CPU is getrusage(RUSAGE_CHILDREN) around each virga-datapath
run: the applier and every command it waited for (dnsmasq, a daemon, is not counted, the
same in both). Bounded: --count rounds, 300 s."""
import os
import re
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from bench_common import bench_args, pct  # noqa: E402

args = bench_args("datapath build bench", 10, extra=lambda ap: ap.add_argument("--other", default=None))
from datapath import Datapath, group, host, iface, rule, vpc  # noqa: E402

groups = [group("sg-open", ingress=[rule(cidrs=["0.0.0.0/0"])])]
A = vpc("vpc-a", 1001, peers=["10.254.0.12"])
B = dict(vpc("vpc-b", 1002, peers=["10.254.0.12"]), cidr="172.30.0.0/16")
B["subnets"][0].update(cidr="172.30.0.0/20", gateway="172.30.0.1", dns="172.30.0.2")
ia = iface(1, "vpc-a", "172.31.0.5", ["sg-open"], public_ip="198.51.100.5")
ib = dict(iface(2, "vpc-b", "172.30.0.5", ["sg-open"]), subnet_id="subnet-b")
DOCS = [host("h1", "10.254.0.11", [A], [ia], groups), host("h1", "10.254.0.11", [A, B], [ia, ib], groups)]
os.environ["VIRGA_DP_TRACE"] = "1"     # its last line says the apply's commands and processes


def run(dp, *cli_args, doc=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = dp.cli(*cli_args, stdin=None if doc is None else __import__("json").dumps(doc))
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0, r.stderr[-2000:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.findall(r"(\d+) commands \((\d+) processes\)", r.stderr)
    return cpu, wall, (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)


builds = [("this", os.environ["VIRGA_BIN_DIR"])]
if args.other:
    builds.append(("other", os.path.abspath(os.path.join(args.other, "bin"))))
res = {name: {"host": [], "vpc": [], "teardown": []} for name, _ in builds}
deadline = time.monotonic() + 300
for rnd in range(args.count):
    if time.monotonic() > deadline:
        break
    for name, bindir in (builds if rnd % 2 == 0 else builds[::-1]):
        dp = Datapath()
        dp.bin = os.path.join(bindir, "virga-datapath")
        try:
            res[name]["host"].append(run(dp, "apply", "-", doc=DOCS[0]))
            res[name]["vpc"].append(run(dp, "apply", "-", doc=DOCS[1]))
        finally:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            dp.close()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            res[name]["teardown"].append(((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 0, (0, 0)))

print("load average at the end: %s" % open("/proc/loadavg").read().split()[0])
for name, bindir in builds:
    for what in ("host", "vpc"):
        v = res[name][what]
        cpu = [x[0] * 1000 for x in v]
        wall = [x[1] * 1000 for x in v]
        cmds = sorted(set(x[2] for x in v))
        print("%s (%s) %s build, %d rounds: CPU p50 %.1f ms (min %.1f, max %.1f), wall p50 %.0f ms, commands (processes) %s"
              % (name, bindir, what, len(v), pct(cpu, 50), min(cpu), max(cpu), pct(wall, 50),
                 ", ".join("%d (%d)" % c for c in cmds)))
    td = [x[0] * 1000 for x in res[name]["teardown"]]
    print("%s teardown-all (and the test's check): CPU p50 %.1f ms" % (name, pct(td, 50)))
