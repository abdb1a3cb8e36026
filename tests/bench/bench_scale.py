"""Compute at scale (issue 11's figures), with the real client (boto3) on a cloud of its
own: one real host whose agent runs the `sim` driver, plus SIM_HOSTS - 1 SIMULATED hosts
registered in bulk straight into compute's hosts table (named `simbulk-NNNN`, driver
`sim`, no agent: nothing reports their instances running, they stay pending; placement,
RunInstances and DescribeInstances do not care). INSTANCES instances are launched by
RunInstances of 100 (MaxCount) from ACCOUNTS accounts (a default VPC subnet holds 4,091
addresses), without public addresses (AssociatePublicIpAddress false: the operator's pool
is far smaller than 20,000), the launch tasks making every port for real in the
background.

Prints: RunInstances of 100 (placement inside) per instance as the instance count grows;
DescribeInstances of a page of 1,000 (MaxResults) p50/p99; a filter matching one
instance (instance-id) p50/p99, each as the client's round trip and as the time until the
response's bytes were in (before botocore parses the XML, which for a page of ~400 instances
takes longer than the server); every service's resident memory at the end, VmRSS (which
counts the shared libraries' pages, ~10 MiB, in every process) and Pss (each shared page
divided among the processes that map it).
SCALE_INSTANCES / SCALE_HOSTS in the environment shrink it (the default is the issue's
1,000 hosts and 20,000 instances)."""
import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from harness import boto3_client, new_tenant  # noqa: E402
from scale_cloud import cpu_seconds, minor_faults, start_scale_cloud, timed_page  # noqa: E402
import service_memory  # noqa: E402

SIM_HOSTS = int(os.environ.get("SCALE_HOSTS", "1000"))
INSTANCES = int(os.environ.get("SCALE_INSTANCES", "20000"))
ACCOUNTS = max(1, (INSTANCES + 3999) // 4000)
BATCH = 100
# A default subnet maps public addresses on launch; 20,000 of them would empty the
# operator's pool (a /24 by default) and measure its allocator instead of placement.
NO_PUBLIC_IP = [{"DeviceIndex": 0, "AssociatePublicIpAddress": False}]
SAMPLES = 50


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def ms(v):
    return "p50 %.1f ms, p99 %.1f ms" % (statistics.median(v) * 1000, pct(v, 99) * 1000)


def cpu_per_call(before, after, calls, seconds, idle):
    """CPU ms per call of each service between two cpu_seconds, less what it spends idle
    (idle: CPU seconds per second, measured with no request) over those seconds."""
    return ", ".join("%s %.2f ms" % (k, (after[k] - before[k] - idle.get(k, 0.0) * seconds) * 1000.0 / calls)
                     for k in sorted(after) if k in before)


def timed_http(client):
    """Record, per call, when the response's bytes were all in (before botocore parses)."""
    sess = client._endpoint.http_session
    send, marks = sess.send, {}

    def timed(req):
        marks["t0"] = time.time()
        r = send(req)
        r.content
        marks["dt"] = time.time() - marks["t0"]
        return r
    sess.send = timed
    return marks


def main():
    cloud = start_scale_cloud(SIM_HOSTS)
    try:
        ami = cloud.default_images()["virga-busybox-rootfs"]
        accounts = []
        for a in range(ACCOUNTS):
            _, k, s = new_tenant(cloud, "scale-%d-%s" % (a, uuid.uuid4().hex[:6]))
            accounts.append(boto3_client(cloud, "ec2", k, s))
        per_account = INSTANCES // ACCOUNTS
        print("== compute at scale: %d hosts (%d simulated in bulk), %d instances in %d accounts"
              % (SIM_HOSTS, SIM_HOSTS - 1, per_account * ACCOUNTS, ACCOUNTS))
        # one unmeasured launch per account: compute learns the image and quotas
        made, first = 0, {}
        t_all = time.time()
        samples = []          # (instances before, seconds per instance)
        answered = []         # seconds of each whole RunInstances of BATCH (its answer's wait inside)
        for ec2 in accounts:
            n = 0
            while n < per_account:
                k = min(BATCH, per_account - n)
                t0 = time.time()
                r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=k, MaxCount=k,
                                      NetworkInterfaces=NO_PUBLIC_IP)
                dt = time.time() - t0
                if ec2 not in first:
                    first[ec2] = r["Instances"][0]["InstanceId"]
                else:
                    samples.append((made, dt / k))
                    if k == BATCH:
                        answered.append(dt)
                n += k
                made += k
        print("launched %d instances in %.0f s" % (made, time.time() - t_all))
        step = max(1, len(samples) // 5)
        for i in range(0, len(samples), step):
            chunk = [s for _, s in samples[i:i + step]]
            print("RunInstances of %d, per instance, with %5d..%5d instances placed: median %.2f ms, max %.2f ms"
                  % (BATCH, samples[i][0], samples[min(len(samples) - 1, i + step - 1)][0],
                     statistics.median(chunk) * 1000, max(chunk) * 1000))
        if answered:
            # with compute.run_answer_wait_ms (SCALE_RUN_ANSWER_WAIT_MS), the answer waits for
            # the launch tasks' ports: this is the time a MaxCount 100 launch is answered in
            print("RunInstances of %d answered (the whole call, %d calls): %s, max %.0f ms"
                  % (BATCH, len(answered), ms(answered), max(answered) * 1000))
        # let the launch tasks (ports) settle, bounded, before the reads are measured
        t0 = time.time()
        while time.time() < t0 + 600:
            left = cloud.psql("SELECT count(*) FROM compute.tasks WHERE status = 'active'")
            if left == "0":
                break
            time.sleep(5)
        print("the launch tasks (20,000 ports from the network) after %.0f s: %s still active"
              % (time.time() - t0, left))
        # the reads on tables as a cloud in service has them, vacuumed and analysed: the
        # launches just updated every row several times, and how soon autovacuum comes
        # after them depends on how long the launches took (15 s or 130 s), which made the
        # pages' PostgreSQL cost differ by half between builds (SCALE_VACUUM=0: as left)
        if os.environ.get("SCALE_VACUUM", "1") != "0":
            cloud.psql("VACUUM ANALYZE")
        ec2 = accounts[0]
        marks = timed_http(ec2)
        print("load average before the reads: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
        page, one, sizes, page_http, one_http = [], [], [], [], []
        token = None
        idle0, t_idle = cpu_seconds(cloud), time.time()
        time.sleep(10)
        idle1 = cpu_seconds(cloud)
        idle = {k: (idle1[k] - idle0[k]) / (time.time() - t_idle) for k in idle1 if k in idle0}
        cpu0, t_cpu0, faults0 = cpu_seconds(cloud), time.time(), minor_faults(cloud)
        for _ in range(SAMPLES // 2):
            dt, got, token = timed_page(ec2, token)   # the last page: None, start again
            page.append(dt)
            page_http.append(marks["dt"])
            assert 0 < got <= 1000, got   # fewer when 1,000 would not fit a bus message
            sizes.append(got)
        cpu1, t_cpu1, faults1 = cpu_seconds(cloud), time.time(), minor_faults(cloud)
        target = first[ec2]
        for _ in range(SAMPLES):
            t0 = time.time()
            r = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [target]}])
            one.append(time.time() - t0)
            one_http.append(marks["dt"])
            assert [i["InstanceId"] for x in r["Reservations"] for i in x["Instances"]] == [target]
        cpu2, t_cpu2 = cpu_seconds(cloud), time.time()
        print("DescribeInstances, MaxResults 1,000 of an account's %d (client round trip; %d instances a page): %s"
              % (per_account, statistics.median(sizes), ms(page)))
        print("  the same until the response was in (server and HTTP, before botocore's parse): %s" % ms(page_http))
        print("DescribeInstances, a filter matching one instance (client round trip): %s" % ms(one))
        print("  the same until the response was in: %s" % ms(one_http))
        print("CPU idle, ms per second: %s" % ", ".join("%s %.1f" % (k, v * 1000) for k, v in sorted(idle.items())))
        print("CPU per page of MaxResults 1,000: %s" % cpu_per_call(cpu0, cpu1, SAMPLES // 2, t_cpu1 - t_cpu0, idle))
        print("CPU per one-instance filter: %s" % cpu_per_call(cpu1, cpu2, SAMPLES, t_cpu2 - t_cpu1, idle))
        print("minor page faults per page: %s" % ", ".join("%s %.0f" % (k, (faults1[k] - faults0[k]) / (SAMPLES // 2))
                                                            for k in sorted(faults1)))
        print("load average at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
        mem = service_memory.usage(cloud)
        print("memory (MiB):\n" + service_memory.table(mem))
    finally:
        cloud.stop()


main()
