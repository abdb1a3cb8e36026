"""Two builds' reply paths compared on ONE cloud (docs/performance.md, "The reply path of
large answers"): the gateway, network and compute processes restarted from OLD_BIN or
NEW_BIN in turn, ROUNDS times, on the same data (AB_GROUPS security groups, default 1,000,
and AB_INSTANCES sim instances, default 1,200, over 50 hosts): DescribeSecurityGroups of
the whole listing, DescribeInstances MaxResults 1,000 (pages in turn), DescribeInstances of
one instance by filter. Per figure and build: the HTTP exchange p50/p99 (the answer's bytes
all in, before botocore parses them) and the CPU per call of each of the three processes
(/proc/PID/stat over the calls: on a shared machine the figure to compare). Not part of
`make bench` (it needs two builds). Bounded: 40 + 20 + 60 calls per build and round.

  VIRGA_BIN_DIR=build/bin /usr/bin/python3 tests/bench/ab_reply_path.py OLD_BIN NEW_BIN [ROUNDS]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Cloud, boto3_client, new_tenant  # noqa: E402
from ab_bench import TICK, pct, swap, ticks, timed_http  # noqa: E402

OLD, NEW = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
GROUPS = int(os.environ.get("AB_GROUPS", "1000"))
INSTANCES = int(os.environ.get("AB_INSTANCES", "1200"))










def measure(c, what, fn, n, marks):
    for _ in range(3):
        fn()
    pids = {k: c.pid(k) for k in ("gateway", "network", "compute")}
    t0 = {k: ticks(p) for k, p in pids.items()}
    wire = []
    for _ in range(n):
        fn()
        wire.append(marks["dt"])
    cpu = {k: (ticks(p) - t0[k]) * 1000.0 / TICK / n for k, p in pids.items()}
    return {"p50": pct(wire, 50) * 1000, "p99": pct(wire, 99) * 1000, "cpu": cpu, "bytes": marks["len"]}


env = {"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "64", "VIRGA_AGENT_MEMORY_MIB": "262144",
       "VIRGA_GATEWAY_RATE_LIMIT": "0", "VIRGA_GATEWAY_AUTH_FAIL_RATE": "0", "VIRGA_QUOTA_INSTANCES": "5000",
       "VIRGA_QUOTA_VCPUS": "20000", "VIRGA_QUOTA_MEMORY_MIB": "100000000",
       "VIRGA_COMPUTE_HOST_DOWN_AFTER_S": "86400"}
c = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True, env=env)
try:
    ami = c.default_images()["virga-busybox-rootfs"]
    c.psql("INSERT INTO compute.hosts (host_id, vcpus, memory_mib, disk_gib, drivers, zone, state, last_seen) "
           "SELECT 'simbulk-' || lpad(g::text, 4, '0'), 64, 262144, 0, '{sim}', '', 'up', now() "
           "FROM generate_series(1, 49) g")
    account, key, secret = new_tenant(c, "ab-xml4")
    c.virgadm("quota", "set", account, "vpcs", "10")
    ec2 = boto3_client(c, "ec2", key, secret)
    vid = ec2.create_vpc(CidrBlock="10.88.0.0/16")["Vpc"]["VpcId"]
    import concurrent.futures
    cl = [boto3_client(c, "ec2", key, secret) for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: cl[i % 8].create_security_group(GroupName="g%04d" % i, Description="bench", VpcId=vid),
                    range(GROUPS)))
    first = None
    for i in range(INSTANCES // 100):
        # no public addresses: 1,200 would empty the operator's pool (a /24)
        r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=100, MaxCount=100,
                              NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}])
        first = first or r["Instances"][0]["InstanceId"]
    t0 = time.time()
    while time.time() < t0 + 600:
        if c.psql("SELECT count(*) FROM compute.tasks WHERE status = 'active'") == "0":
            break
        time.sleep(3)
    print("setup: %d groups, %d instances, tasks settled after %.0f s" % (GROUPS, INSTANCES, time.time() - t0),
          flush=True)
    marks = timed_http(ec2)
    tok = {"t": None}

    def page():
        kw = {"MaxResults": 1000}
        if tok["t"]:
            kw["NextToken"] = tok["t"]
        r = ec2.describe_instances(**kw)
        tok["t"] = r.get("NextToken")

    figures = [("DescribeSecurityGroups (all)", lambda: ec2.describe_security_groups(), 40),
               ("DescribeInstances MaxResults 1000", page, 20),
               ("DescribeInstances one by filter",
                lambda: ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [first]}]), 60)]
    for rnd in range(ROUNDS):
        for label, bindir in (("old", OLD), ("new", NEW)):
            swap(c, bindir, ("gateway", "network", "compute"), env)
            time.sleep(2)
            load = open("/proc/loadavg").read().split()[0]
            for what, fn, n in figures:
                m = measure(c, what, fn, n, marks)
                print("round %d %s load %s | %-34s | p50 %7.1f ms p99 %7.1f ms | CPU/call gateway %6.2f network %6.2f "
                      "compute %6.2f ms | %d bytes" % (rnd + 1, label, load, what, m["p50"], m["p99"], m["cpu"]["gateway"],
                                                       m["cpu"]["network"], m["cpu"]["compute"], m["bytes"]), flush=True)
finally:
    if not os.environ.get("AB_KEEP"):
        c.stop()
