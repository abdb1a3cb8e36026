"""The agent's network sync (docs/performance.md): time from compute's port_plug answered to
the interface whole on the host (its stand-in namespace with its address), which is the
network's NOTIFY at commit -> agent.network_changed -> network.host_desired -> apply; and the
first metadata answer in the new VPC. Root only; starts its own throwaway devcloud (agent
datapath linux in its own prefix) and stops it.

  sudo /usr/bin/python3 tests/bench/bench_agent_network.py [--count 20] [--build build]

Each round plugs one more port into one VPC on the agent's host (the document grows by
one interface per round). Bounded: at most `count` rounds, each waited for at most 60 s."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from bench_common import bench_args, pct  # noqa: E402

args = bench_args("agent network bench", 20)
from harness import Cloud, boto3_client, new_tenant  # noqa: E402


def ns_exec(ns, *a):
    return subprocess.run(["ip", "netns", "exec", ns, *a], capture_output=True, text=True, timeout=20)


c = Cloud.start()
try:
    with open(c.config) as f:
        host = [ln.split()[1] for ln in f if ln.startswith("  host_id:")][0]
    cred = os.path.join(c.dir, "secrets", "bus", "compute.cred")

    def compute(mtype, body):
        r = c.virgadm("--set", "bus.credential_file=" + cred, "call", "network", mtype, json.dumps(body))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    account, key, secret = new_tenant(c, "bench-net")
    ec2 = boto3_client(c, "ec2", key, secret)
    vid = ec2.create_vpc(CidrBlock="10.85.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.85.0.0/22")["Subnet"]["SubnetId"]
    plug, meta = [], None
    for i in range(args.count):
        p = compute("network.port_create", {"account": account, "subnet": sid, "host": host,
                                            "instance_id": "i-%017x" % (0xbe0000 + i)})
        ns = "virga-d%d-i-%s.%s" % (c.base, host, p["eni_id"])
        compute("network.port_plug", {"eni": p["eni_id"], "host": host})
        t0 = time.time()
        while time.time() - t0 < 60:
            if os.path.exists("/run/netns/" + ns) and \
                    ("inet %s/" % p["ip"]) in ns_exec(ns, "ip", "addr", "show", "dev", "eth0").stdout:
                break
            time.sleep(0.005)
        else:
            raise SystemExit("round %d: the interface did not appear within 60 s" % i)
        plug.append(time.time() - t0)
        if meta is None:   # the first answer of the VPC's new metadata server
            while time.time() - t0 < 60:
                r = ns_exec(ns, "curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}",
                            "http://169.254.169.254/latest/meta-data/")
                if r.stdout.strip() not in ("", "000"):
                    break
            meta = time.time() - t0
    print("== agent network sync (devcloud, agent.datapath=linux, %d ports into one VPC)" % args.count)
    print("port_plug answered -> interface whole on the host: p50 %.0f ms, p90 %.0f ms, max %.0f ms" %
          (pct(plug, 50) * 1000, pct(plug, 90) * 1000, max(plug) * 1000))
    print("first port of a VPC -> metadata answering there: %.0f ms" % (meta * 1000))
finally:
    c.stop()
