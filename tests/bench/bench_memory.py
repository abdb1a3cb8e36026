"""Every Virga service's resident memory (issue 11: all services together under 150 MiB),
on a cloud of its own (the default one: the object store on RADOS, one host agent running
the `sim` driver), at three moments:

1. idle, 20 s after the cloud is up;
2. right after a bounded workload: MEMORY_INSTANCES (default 300) instances launched by
   RunInstances of 100, their launch tasks awaited, 20 DescribeInstances pages of
   MaxResults 1,000 and 50 one-instance filters; in the object store 200 PUTs of 4 KiB
   and 16 of 1 MiB, each read back, and listings;
3. settled, 25 s later (two reconcile passes).

Prints, for each moment, every service's VmRSS, Pss (shared pages divided among the
processes that map them), private anonymous memory (heap, malloc arenas, thread stacks)
and thread count, and the sums; with --detail, where each service's memory is, by mapping
kind (/proc/PID/smaps). PostgreSQL and the Kafka broker are not counted: they are the
database and the broker, not Virga's services.

`VIRGA_BIN_DIR=build/bin /usr/bin/python3 tests/bench/bench_memory.py [--detail]`"""
import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from harness import Cloud, boto3_client, new_tenant, s3_client  # noqa: E402
import service_memory  # noqa: E402

INSTANCES = int(os.environ.get("MEMORY_INSTANCES", "300"))
BATCH = 100
TASKS_BOUND_S = 300


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def report(cloud, moment, detail):
    mem = service_memory.usage(cloud)
    print("== %s (load average %s)" % (moment, loadavg()))
    print(service_memory.table(mem))
    if detail:
        for name, pid in sorted(service_memory.service_pids(cloud).items()):
            parts = service_memory.breakdown(pid)
            print("  %s: %s" % (name, "; ".join("%s %.1f/%.1f/%.1f" % (k, r / 1024.0, p / 1024.0, d / 1024.0)
                                                for k, r, p, d, _ in parts[:7])))
        print("  (per kind: Rss/Pss/Private_Dirty MiB, the 7 largest by Pss)")
    sys.stdout.flush()
    return mem


def compute_workload(cloud, ec2, ami):
    ids = []
    t0 = time.time()
    while len(ids) < INSTANCES:
        k = min(BATCH, INSTANCES - len(ids))
        r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=k, MaxCount=k)
        ids += [i["InstanceId"] for i in r["Instances"]]
    deadline = time.time() + TASKS_BOUND_S
    left = "?"
    while time.time() < deadline:
        left = cloud.psql("SELECT count(*) FROM compute.tasks WHERE status = 'active'")
        if left == "0":
            break
        time.sleep(2)
    print("launched %d instances, their launch tasks done after %.0f s (%s still active)"
          % (len(ids), time.time() - t0, left))
    token, pages = None, 0
    for _ in range(20):
        kw = {"MaxResults": 1000}
        if token:
            kw["NextToken"] = token
        r = ec2.describe_instances(**kw)
        pages += sum(len(x["Instances"]) for x in r["Reservations"])
        token = r.get("NextToken")
    for i in range(50):
        r = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [ids[i % len(ids)]]}])
        assert len(r["Reservations"]) == 1
    print("DescribeInstances: 20 pages (%d instances in all) and 50 one-instance filters" % pages)


def s3_workload(s3):
    bucket = "mem-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=bucket)
    small, big = os.urandom(4096), os.urandom(1 << 20)
    for i in range(200):
        s3.put_object(Bucket=bucket, Key="small/%04d" % i, Body=small)
    for i in range(16):
        s3.put_object(Bucket=bucket, Key="big/%02d" % i, Body=big)
    for i in range(200):
        assert s3.get_object(Bucket=bucket, Key="small/%04d" % i)["Body"].read() == small
    for i in range(16):
        assert s3.get_object(Bucket=bucket, Key="big/%02d" % i)["Body"].read() == big
    listed = 0
    for _ in range(5):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            listed += len(page.get("Contents", []))
    print("S3: 200 PUT/GET of 4 KiB, 16 of 1 MiB, %d keys listed" % listed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--detail", action="store_true", help="where each service's memory is (smaps)")
    args = ap.parse_args()
    cloud = Cloud.start(default_images=True,
                        env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "4096",
                             "VIRGA_AGENT_MEMORY_MIB": "4194304", "VIRGA_AGENT_DISK_GIB": "1000000", "VIRGA_GATEWAY_RATE_LIMIT": "0",
                             "VIRGA_QUOTA_INSTANCES": "5000", "VIRGA_QUOTA_VCPUS": "20000",
                             "VIRGA_QUOTA_MEMORY_MIB": "100000000"})
    try:
        print("== every Virga service's memory (binaries: %s)" % os.environ.get("VIRGA_BIN_DIR", "build/bin"))
        time.sleep(20)
        idle = report(cloud, "idle, 20 s after start", args.detail)
        _, k, s = new_tenant(cloud, "mem-" + uuid.uuid4().hex[:6])
        compute_workload(cloud, boto3_client(cloud, "ec2", k, s), cloud.default_images()["virga-busybox-rootfs"])
        s3_workload(s3_client(cloud, k, s))
        after = report(cloud, "right after the workload", args.detail)
        time.sleep(25)
        settled = report(cloud, "settled, 25 s later", args.detail)
        for label, m in (("idle", idle), ("after the workload", after), ("settled", settled)):
            print("the Virga services together, %s: VmRSS %.1f MiB, Pss %.1f MiB (aim: under 150 MiB)"
                  % (label, sum(v["rss"] for v in m.values()), sum(v["pss"] for v in m.values())))
    finally:
        cloud.stop()


main()
