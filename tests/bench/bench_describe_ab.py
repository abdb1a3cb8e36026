"""DescribeInstances old against new on ONE cloud: the builds in DESCRIBE_AB_BINS
(colon-separated: paths to virga-compute binaries, or bin directories, whose
virga-compute AND virga-gateway are swapped together) take turns serving the same cloud
(each service is stopped by its pid and the build's binary started with the cloud's
config), ROUNDS times, so every binary meets the same data and, as nearly as a shared
machine allows, the same load. Per turn: pages of MaxResults 1,000 and one-instance
filters (instance-id) timed by the client, and the CPU compute and PostgreSQL spend per
call (/proc, less their idle rate); a page's time is given as the client's round trip and
as the HTTP exchange alone (before botocore parses the XML). The XML answers of nine shapes
of request (pages, filters SQL applies, filters applied in memory, InstanceIds, errors)
are compared across binaries byte for byte (the request id aside): a faster compute must
answer the very same documents.

  DESCRIBE_AB_BINS=/tmp/old/bin:build/bin SCALE_INSTANCES=4000 \
  SCALE_HOSTS=100 /usr/bin/python3 tests/bench/bench_describe_ab.py

The instances are launched without public addresses (the operator's pool, a /24, holds
far fewer than 4,000: past it the launches failed and most instances were terminated
ones without interfaces, not the page issue 11 measures).
"""
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import boto3_client, new_tenant  # noqa: E402
from scale_cloud import cpu_seconds, minor_faults, start_scale_cloud, timed_page  # noqa: E402

BINS = [os.path.abspath(b) for b in os.environ.get("DESCRIBE_AB_BINS", "").split(":") if b]
SIM_HOSTS = int(os.environ.get("SCALE_HOSTS", "100"))
INSTANCES = int(os.environ.get("SCALE_INSTANCES", "4000"))
ROUNDS = int(os.environ.get("DESCRIBE_AB_ROUNDS", "3"))
PAGES, ONES = 20, 50
NO_PUBLIC_IP = [{"DeviceIndex": 0, "AssociatePublicIpAddress": False}]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def cpu(cloud):
    """(compute CPU s, PostgreSQL backends' CPU s, gateway CPU s)"""
    c = cpu_seconds(cloud, ("compute", "gateway"))
    return c["compute"], c["postgres"], c["gateway"]


def swap_service(cloud, name, binary):
    """Stop the cloud's service name by its pid and start binary in its place."""
    pid = cloud.pid(name)
    os.kill(pid, 15)
    for _ in range(200):
        if not os.path.exists("/proc/%d" % pid):
            break
        time.sleep(0.05)
    log = open(os.path.join(cloud.dir, "log", name + ".log"), "a")
    p = subprocess.Popen([binary, "-c", cloud.config], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         env={**os.environ, **cloud.start_env}, start_new_session=True)
    with open(os.path.join(cloud.dir, "run", name + ".pid"), "w") as f:
        f.write("%d\n" % p.pid)


def swap_build(cloud, ec2, build):
    """A virga-compute binary, or a bin directory whose compute and gateway both serve."""
    if not os.path.isdir(build):
        swap_service(cloud, "compute", build)
        cloud.wait_healthy("compute")
        return
    swap_service(cloud, "compute", os.path.join(build, "virga-compute"))
    swap_service(cloud, "gateway", os.path.join(build, "virga-gateway"))
    cloud.wait_healthy("compute")
    for _ in range(200):   # the gateway answers HTTP again
        try:
            ec2.describe_regions()
            return
        except Exception:
            time.sleep(0.1)
    raise AssertionError("the gateway of %s did not answer" % build)


def capture(client):
    sess = client._endpoint.http_session
    send, marks = sess.send, {}

    def keep(req):
        t0 = time.time()
        r = send(req)
        marks["body"] = r.content
        marks["dt"] = time.time() - t0   # the HTTP exchange, before botocore parses the XML
        return r
    sess.send = keep
    return marks


def shapes(target):
    """Requests whose answers must not depend on the build: pages (SQL's narrowing is the
    answer) and the in-memory pass (InstanceIds, wildcards, filters SQL does not apply)."""
    f = lambda name, *v: {"Name": name, "Values": list(v)}
    return [{"MaxResults": 1000}, {"Filters": [f("instance-id", target)]}, {"MaxResults": 5},
            {"Filters": [f("instance-state-name", "pending"), f("availability-zone", "virga-1a")], "MaxResults": 50},
            {"Filters": [f("tag:Name", "ab-0")]}, {"Filters": [f("tag-key", "Name")], "MaxResults": 10},
            {"Filters": [f("instance-id", target[:6] + "*")], "MaxResults": 20}, {"InstanceIds": [target]},
            {"InstanceIds": ["i-00000000000000000"]}]


def turn(cloud, ec2, marks, target):
    for _ in range(3):   # warm: the prepared statements, the caches
        ec2.describe_instances(MaxResults=1000)
    idle0, t0 = cpu(cloud), time.time()
    time.sleep(3)
    idle1 = cpu(cloud)
    rate = [(b - a) / (time.time() - t0) for a, b in zip(idle0, idle1)]
    page, page_http, one, sizes, token = [], [], [], [], None
    c0, tc0, f0 = cpu(cloud), time.time(), minor_faults(cloud)
    for _ in range(PAGES):
        dt, got, token = timed_page(ec2, token)
        page.append(dt)
        page_http.append(marks["dt"])
        sizes.append(got)
    c1, tc1, f1 = cpu(cloud), time.time(), minor_faults(cloud)
    for _ in range(ONES):
        t = time.time()
        ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [target]}])
        one.append(time.time() - t)
    c2, tc2 = cpu(cloud), time.time()
    per = lambda a, b, n, s: ["%.2f" % ((y - x - r * s) * 1000 / n) for x, y, r in zip(a, b, rate)]
    docs = []
    for kw in shapes(target):   # the answers of every shape of request, to compare across builds
        try:
            ec2.describe_instances(**kw)
        except ec2.exceptions.ClientError:
            pass
        docs.append(re.sub(rb"(?i)<requestid>[^<]*</requestid>", b"", marks["body"]))
    return {"page": page, "page_http": page_http, "one": one, "size": statistics.median(sizes),
            "cpu_page": per(c0, c1, PAGES, tc1 - tc0), "cpu_one": per(c1, c2, ONES, tc2 - tc1),
            "faults": "/".join("%.0f" % ((f1[k] - f0[k]) / PAGES) for k in ("compute", "gateway")),
            "docs": docs, "load": open("/proc/loadavg").read().split()[0]}


def compare(cloud, ec2, marks, target, bins):
    """ROUNDS turns of each build in bins, then their answers compared with the first's."""
    docs = {}
    for rnd in range(ROUNDS):
        for b in bins:
            swap_build(cloud, ec2, b)
            t = turn(cloud, ec2, marks, target)
            docs.setdefault(b, t["docs"])
            print("round %d %s (load %s): page of %d p50 %.1f p99 %.1f ms (HTTP exchange p50 %.1f p99 %.1f ms) "
                  "| one p50 %.1f p99 %.1f ms | CPU ms per page compute/pg/gateway %s | per one %s "
                  "| page faults per page compute/gateway %s"
                  % (rnd, b, t["load"], t["size"], statistics.median(t["page"]) * 1000,
                     pct(t["page"], 99) * 1000, statistics.median(t["page_http"]) * 1000,
                     pct(t["page_http"], 99) * 1000, statistics.median(t["one"]) * 1000, pct(t["one"], 99) * 1000,
                     "/".join(t["cpu_page"]), "/".join(t["cpu_one"]), t["faults"]), flush=True)
    ref = docs[bins[0]]
    for b in bins[1:]:
        print("%s answers %s" % (b, "the same documents" if docs[b] == ref else "DIFFERENT documents"), flush=True)
        for i, (mine, theirs) in enumerate(zip(docs[b], ref)):
            if mine != theirs:
                print("  differs: %r" % (shapes("i-x")[i],))
                with open("/tmp/describe-ab-%d-%d.xml" % (i, bins.index(b)), "wb") as f:
                    f.write(mine)
                with open("/tmp/describe-ab-%d-0.xml" % i, "wb") as f:
                    f.write(theirs)


def main():
    assert BINS, "DESCRIBE_AB_BINS: the virga-compute binaries to compare, colon-separated"
    cloud = start_scale_cloud(SIM_HOSTS)
    try:
        ami = cloud.default_images()["virga-busybox-rootfs"]
        _, k, s = new_tenant(cloud, "ab")
        ec2 = boto3_client(cloud, "ec2", k, s)
        target, n = None, 0
        while n < INSTANCES:
            r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=min(100, INSTANCES - n),
                                  MaxCount=min(100, INSTANCES - n), NetworkInterfaces=NO_PUBLIC_IP,
                                  TagSpecifications=[{"ResourceType": "instance",
                                                      "Tags": [{"Key": "Name", "Value": "ab-%d" % n}]}])
            target = target or r["Instances"][0]["InstanceId"]
            n += len(r["Instances"])
        t0 = time.time()
        while time.time() < t0 + 900 and cloud.psql("SELECT count(*) FROM compute.tasks WHERE status = 'active'") != "0":
            time.sleep(5)
        print("== %d instances on %d hosts; launch tasks settled after %.0f s" % (n, SIM_HOSTS, time.time() - t0))
        marks = capture(ec2)
        compare(cloud, ec2, marks, target, BINS)
        hold = os.environ.get("DESCRIBE_AB_HOLD")
        if hold:
            # held: another comparison each time HOLD.bins is written (the builds, colon-separated)
            print("holding the cloud in %s until %s is removed (write %s.bins for another comparison)"
                  % (cloud.dir, hold, hold), flush=True)
            open(hold, "w").close()
            while os.path.exists(hold):
                if os.path.exists(hold + ".bins"):
                    bins = [os.path.abspath(b) for b in open(hold + ".bins").read().strip().split(":") if b]
                    os.unlink(hold + ".bins")
                    compare(cloud, ec2, marks, target, bins)
                time.sleep(1)
    finally:
        cloud.stop()


main()
