"""Datapath figures (docs/performance.md): time to plug an interface ready for traffic, and
a security group change, with the linux driver in namespaces of its own (root only).

  sudo /usr/bin/python3 tests/bench/bench_datapath.py [--count 40] [--build build]

Plug: one host with a VPC and one interface already there; each round adds one interface
to the document and measures (a) the apply (virga-datapath apply: observe, build the
veth pair and stand-in, rewrite the rules and DHCP hosts) and (b) apply + the first ping
from the existing interface answered by the new one. The document grows by one interface
per round, so late rounds apply to a host with `count` interfaces. Bounded in count and in
time (120 s); everything is torn down and checked gone at the end."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from bench_common import bench_args, pct  # noqa: E402

args = bench_args("datapath bench", 40)
from datapath import Datapath, group, host, iface, rule, vpc, run_in  # noqa: E402


def ms(x):
    return "%.1f ms" % (x * 1000)


dp = Datapath()
try:
    groups = [group("sg-open", ingress=[rule(cidrs=["0.0.0.0/0"])])]
    ifs = [iface(1, "vpc-a", "172.31.0.5", ["sg-open"])]
    doc = lambda: host("h1", "10.254.0.11", [vpc("vpc-a", 1001)], ifs, groups)
    dp.apply(doc())
    src = dp.inst("h1", "eni-1")
    assert dp.ping_ok(src, "172.31.0.1")
    plug, ready = [], []
    deadline = time.monotonic() + 120
    for n in range(2, args.count + 2):
        if time.monotonic() > deadline:
            break
        ip = "172.31.%d.%d" % (n // 200, 10 + n % 200)
        ifs.append(iface(n, "vpc-a", ip, ["sg-open"]))
        t0 = time.monotonic()
        dp.apply(doc())
        t1 = time.monotonic()
        ok = False
        for _ in range(50):     # bounded: 50 tries of 1 ping, each 1 s at most
            if run_in(src, ["busybox", "ping", "-c", "1", "-W", "1", ip]).returncode == 0:
                ok = True
                break
        assert ok, "interface %d never answered" % n
        plug.append(t1 - t0)
        ready.append(time.monotonic() - t0)
    # a security group change on that host: one rule added, then removed
    sg = []
    for i in range(min(20, args.count)):
        groups[0]["ingress"] = [rule(cidrs=["0.0.0.0/0"])] + ([rule("tcp", 9000 + i, 9000 + i, cidrs=["10.0.0.0/8"])] if i % 2 == 0 else [])
        t0 = time.monotonic()
        st = dp.apply(doc())
        sg.append(time.monotonic() - t0)
        assert st["ensured"] == 1, st
    print("datapath plug (apply), %d interfaces: p50 %s, p99 %s, max %s" % (len(plug), ms(pct(plug, 50)), ms(pct(plug, 99)), ms(max(plug))))
    print("datapath plug to first ping answered: p50 %s, p99 %s, max %s" % (ms(pct(ready, 50)), ms(pct(ready, 99)), ms(max(ready))))
    print("datapath security group change on a host with %d interfaces: p50 %s, p99 %s" % (len(ifs), ms(pct(sg, 50)), ms(pct(sg, 99))))
finally:
    dp.close()
