"""The cloud of compute's scale benches (bench_scale.py, bench_describe_ab.py): one real
host whose agent runs the `sim` driver, plus sim_hosts - 1 SIMULATED hosts registered in
bulk straight into compute's hosts table (`simbulk-NNNN`, driver `sim`, no agent: their
instances stay pending, which placement and DescribeInstances do not mind), quotas and
the gateway's rate limit out of the way; and the CPU its services have spent."""
import os

from harness import Cloud


def start_scale_cloud(sim_hosts):
    cloud = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True,
                        env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "64",
                             "VIRGA_AGENT_MEMORY_MIB": "262144", "VIRGA_GATEWAY_RATE_LIMIT": "0",
                             "VIRGA_QUOTA_INSTANCES": "5000", "VIRGA_QUOTA_VCPUS": "20000",
                             "VIRGA_QUOTA_MEMORY_MIB": "100000000",
                             "VIRGA_COMPUTE_HOST_DOWN_AFTER_S": "86400",
                             # one underlay address per host (the default /24 holds 244)
                             "VIRGA_NETWORK_UNDERLAY_CIDR": "10.254.0.0/20",
                             # RunInstances of 100 times placement and the records, as
                             # before its answer waited for the ports: with the wait, a
                             # MaxCount of 100 answered after its 100 launch tasks (2.3 s,
                             # or the whole 5 s wait, a call), and the bench's "per
                             # instance" figure was that wait. SCALE_RUN_ANSWER_WAIT_MS
                             # puts the wait back.
                             "VIRGA_COMPUTE_RUN_ANSWER_WAIT_MS": os.environ.get("SCALE_RUN_ANSWER_WAIT_MS", "0")})
    try:
        cloud.psql("INSERT INTO compute.hosts (host_id, vcpus, memory_mib, disk_gib, drivers, zone, state, last_seen) "
                   "SELECT 'simbulk-' || lpad(g::text, 4, '0'), 64, 262144, 0, '{sim}', '', 'up', now() "
                   "FROM generate_series(1, %d) g" % (sim_hosts - 1))
    except Exception:
        cloud.stop()
        raise
    return cloud


def cpu_seconds(cloud, names=("compute", "network", "gateway")):
    """{service: user+system CPU seconds so far}; "postgres" sums the postmaster's
    children (the services' backends). CPU per call is what the machine's load changes
    least: the wall clock on a shared 2-core machine mostly measures the other work."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(pid):
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick, int(f[1])

    out = {}
    for name in names:
        try:
            out[name] = of(cloud.pid(name))[0]
        except (OSError, ValueError):
            pass
    try:
        pg = cloud.pid("postgres")
        total = 0.0
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    t, ppid = of(int(d))
                    if ppid == pg:
                        total += t
                except (OSError, ValueError, IndexError):
                    pass
        out["postgres"] = total
    except (OSError, ValueError):
        pass
    return out


def minor_faults(cloud, names=("compute", "gateway")):
    """Minor page faults so far of each named service (/proc/PID/stat): a page's fresh
    memory is faulted in and zeroed by the kernel, 4 KiB at a time (docs/performance.md,
    page8)."""
    out = {}
    for n in names:
        with open("/proc/%d/stat" % cloud.pid(n)) as f:
            out[n] = int(f.read().rsplit(")", 1)[1].split()[7])
    return out


def timed_page(ec2, token):
    """One DescribeInstances page of MaxResults 1,000 after token (None: the first):
    (client round trip in seconds, instances in it, the next token or None)."""
    import time
    kw = {"MaxResults": 1000}
    if token:
        kw["NextToken"] = token
    t0 = time.time()
    r = ec2.describe_instances(**kw)
    dt = time.time() - t0
    return dt, sum(len(x["Instances"]) for x in r["Reservations"]), r.get("NextToken")
