"""The round trip of ONE call at a time through an otherwise idle cloud (docs/bus.md,
"Latency against idle cost"; docs/performance.md, "One call at a time"): what a lone
forwarded call costs on top of the work, i.e. the bus hops gateway -> Kafka -> compute ->
Kafka -> gateway. Builds or settings take turns on ONE cloud (the gateway, compute,
identity and network processes restarted from each in turn, ROUNDS times, alternating),
so every variant meets the same data, broker and database, and, as nearly as a shared
machine allows, the same load.

Per variant and round, CALLS sequential calls of each kind (after 20 unmeasured):
DescribeRegions (answered by the gateway: the HTTP and SigV4 floor), DescribeKeyPairs
and DescribeInstances by an instance-id filter matching one instance (both forwarded to
compute), and `sys.echo` to compute on the bus alone (build/bench/bus_rpc of the variant's
build, one caller at 50 calls/s). Printed: p50/p90/p99 of the HTTP exchange (request sent
to the answer's last byte, before botocore parses it), the gateway's and compute's CPU
per call (/proc/PID/stat over the calls) and their threads' context switches per call
(voluntary: a thread went to sleep, so each is a wake-up; involuntary: preempted), with the load average at the turn's start, and
the broker's stop-the-world collections meanwhile (its GC log: count, total and longest
pause; VIRGA_KAFKA_JVM_OPTS is added to, and the broker is not one of the swapped
processes, so every variant meets the same broker).
First, what the four restarted processes spend doing nothing for IDLE_RTT_IDLE_S (20 s;
0: skip), in % of a core: the cost of each Kafka client they keep. Then, so that a lower
idle latency is not bought with CPU under load, signed
DescribeKeyPairs with wrk at IDLE_RTT_LOAD_CONNS connections (16; 0: skip) for 8 s
(tests/bench/gateway_breakdown.py): the rate and the CPU per request of the gateway,
compute, the broker and PostgreSQL.

  VIRGA_BIN_DIR=build/bin /usr/bin/python3 tests/bench/bench_idle_rtt.py \
      main=/work/main/build/bin new=build/bin [new-linger0=build/bin,VIRGA_BUS_LINGER_MS=0]

A variant is LABEL=BINDIR[,VIRGA_X=V...]: the VIRGA_* settings are given to the restarted
processes. IDLE_RTT_ROUNDS (3), IDLE_RTT_CALLS (500); IDLE_RTT_THREADS=1 also prints each
thread's context switches per call (by thread name: bus-work, rdk:broker1, MHD-worker...). Bounded: 4 x CALLS calls per variant
and round. Loopback only; the cloud is stopped at the end.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Cloud, boto3_client, new_tenant  # noqa: E402
from ab_bench import TICK, pct, swap, ticks, timed_http  # noqa: E402

ROUNDS = int(os.environ.get("IDLE_RTT_ROUNDS", "3"))
CALLS = int(os.environ.get("IDLE_RTT_CALLS", "500"))
IDLE_S = int(os.environ.get("IDLE_RTT_IDLE_S", "20"))
LOAD_CONNS = int(os.environ.get("IDLE_RTT_LOAD_CONNS", "16"))
SWAPPED = ("gateway", "compute", "identity", "network")


def variants(args):
    out = []
    for a in args:
        label, rest = a.split("=", 1)
        parts = rest.split(",")
        env = dict(kv.split("=", 1) for kv in parts[1:])
        out.append((label, os.path.abspath(parts[0]), env))
    return out










class BrokerGC:
    """The broker's stop-the-world collections, from its GC log (-Xlog:gc through
    VIRGA_KAFKA_JVM_OPTS, deploy/kafka/broker): each pause stops every call in flight,
    which is what a lone call's p99 meets (docs/bus.md, "The broker's pauses")."""

    def __init__(self):
        self.path = "/tmp/virga-idle-rtt-gc-%d.log" % os.getpid()
        self.seen = 0

    def jvm_opts(self):
        return (os.environ.get("VIRGA_KAFKA_JVM_OPTS", "") + " -Xlog:gc:file=%s" % self.path).strip()

    def since_last(self):
        """'N pauses, T ms (max M)' since the previous call."""
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
        except OSError:
            return "no GC log"
        new, self.seen = lines[self.seen:], len(lines)
        ms = [float(m) for ln in new if "Pause" in ln for m in re.findall(r"([0-9.]+)ms$", ln)]
        return "%d pauses, %.0f ms (max %.0f)" % (len(ms), sum(ms), max(ms or [0]))

    def remove(self):
        try:
            os.unlink(self.path)
        except OSError:
            pass


THREADS = os.environ.get("IDLE_RTT_THREADS") == "1"


def switches_by_thread(pid):
    """{thread name: [voluntary, involuntary]} context switches so far, summed over the
    threads of that name: voluntary, it slept (each is a wake-up later); involuntary, it
    was preempted."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                st = dict(ln.split(":", 1) for ln in f if ":" in ln)
        except OSError:
            continue   # the thread ended meanwhile
        v = out.setdefault(st["Name"].strip(), [0, 0])
        v[0] += int(st["voluntary_ctxt_switches"])
        v[1] += int(st["nonvoluntary_ctxt_switches"])
    return out


def switches(pid):
    """(voluntary, involuntary) context switches of every thread of pid so far."""
    by = switches_by_thread(pid).values()
    return sum(v[0] for v in by), sum(v[1] for v in by)


def per_thread(before, after):
    """'name vol+inv, ...' per call, the largest first (IDLE_RTT_THREADS=1)."""
    d = {k: ((v[0] - before.get(k, [0, 0])[0]) / CALLS, (v[1] - before.get(k, [0, 0])[1]) / CALLS)
         for k, v in after.items()}
    return ", ".join("%s %.2f+%.2f" % (k, v[0], v[1]) for k, v in sorted(d.items(), key=lambda x: -x[1][0])
                     if v[0] + v[1] >= 0.05)


def measure(c, fn, marks, gc):
    for _ in range(20):
        fn()
    pids = {k: c.pid(k) for k in ("gateway", "compute")}
    t0 = {k: ticks(p) for k, p in pids.items()}
    s0 = {k: switches(p) for k, p in pids.items()}
    t0_by = {k: switches_by_thread(p) for k, p in pids.items()}
    gc.since_last()
    wire = []
    for _ in range(CALLS):
        fn()
        wire.append(marks["dt"] * 1000)
    cpu = {k: (ticks(p) - t0[k]) * 1e6 / TICK / CALLS for k, p in pids.items()}
    sw = {k: tuple((a - b) / CALLS for a, b in zip(switches(p), s0[k])) for k, p in pids.items()}
    if THREADS:
        for k, p in pids.items():
            print("    %s's threads, switches per call: %s" % (k, per_thread(t0_by[k], switches_by_thread(p))))
    return wire, cpu, gc.since_last(), sw


def bus_echo(c, bindir, venv):
    """sys.echo to compute, one caller at 50 calls/s, with the variant's own bus_rpc."""
    tool = os.path.join(os.path.dirname(bindir), "bench", "bus_rpc")
    if not os.path.exists(tool):
        return "no %s" % tool
    secs = max(2, CALLS // 50)
    r = subprocess.run([tool, "-c", c.config, "--set", "bus.principal=virgadm", "--rate", "50", "--seconds",
                        str(secs), "--threads", "1", "--throughput-seconds", "0"],
                       capture_output=True, text=True, timeout=secs + 60, env={**os.environ, **venv})
    return (r.stdout.strip().splitlines() or [r.stderr.strip()])[-1]


def sent(c, bindir):
    """compute's virga_bus_sent_total by producer ({} from a build without it)."""
    r = subprocess.run([os.path.join(bindir, "virgadm"), "-c", c.config, "call", "compute", "sys.metrics"],
                       capture_output=True, text=True, timeout=60)
    try:
        text = json.loads(r.stdout)["text"]
    except ValueError:
        return {}
    m = re.findall(r'^virga_bus_sent_total\{[^}]*producer="(\w+)"\} (\d+)$', text, re.M)
    return {k: int(v) for k, v in m}


def loaded(c, bindir, venv):
    """gateway_breakdown.py's figures at LOAD_CONNS connections (the cloud's tenant in DIR/env),
    and how compute's replies were sent meanwhile."""
    here = os.path.dirname(os.path.abspath(__file__))
    s0 = sent(c, bindir)
    r = subprocess.run(["/usr/bin/python3", os.path.join(here, "gateway_breakdown.py"), c.dir, os.path.dirname(bindir),
                        str(LOAD_CONNS), "8"], capture_output=True, text=True, timeout=120, env={**os.environ, **venv})
    s1 = sent(c, bindir)
    out = [ln.strip() for ln in (r.stdout + r.stderr).strip().splitlines()]
    if s1:
        out.append("compute's messages meanwhile: " + ", ".join("%s %d" % (k, s1[k] - s0.get(k, 0)) for k in sorted(s1)))
    return out


def main():
    vs = variants(sys.argv[1:])
    if not vs:
        sys.exit(__doc__)
    env = {"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_GATEWAY_RATE_LIMIT": "0", "VIRGA_GATEWAY_AUTH_FAIL_RATE": "0"}
    gc = BrokerGC()
    os.environ["VIRGA_KAFKA_JVM_OPTS"] = gc.jvm_opts()   # for devcloud's broker, not the services
    c = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True, env=env)
    try:
        ami = c.default_images()["virga-busybox-rootfs"]
        _, key, secret = new_tenant(c, "idle-rtt")
        ec2 = boto3_client(c, "ec2", key, secret)
        ec2.create_key_pair(KeyName="idle-rtt")
        iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                                NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}]
                                )["Instances"][0]["InstanceId"]
        marks = timed_http(ec2)
        kinds = [("DescribeRegions (gateway only)", lambda: ec2.describe_regions()),
                 ("DescribeKeyPairs", lambda: ec2.describe_key_pairs()),
                 ("DescribeInstances instance-id filter",
                  lambda: ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [iid]}]))]
        print("%d sequential calls of each kind per turn, HTTP exchange in ms, CPU per call in us" % CALLS, flush=True)
        for rnd in range(ROUNDS):
            for label, bindir, venv in vs:
                swap(c, bindir, SWAPPED, venv)
                time.sleep(2)
                load = open("/proc/loadavg").read().split()[0]
                if IDLE_S:
                    pids = [c.pid(k) for k in SWAPPED]
                    t0 = sum(ticks(p) for p in pids)
                    time.sleep(IDLE_S)
                    idle = (sum(ticks(p) for p in pids) - t0) * 100.0 / TICK / IDLE_S
                    print("round %d %-12s load %5s | idle CPU of %s: %.2f %% of a core" %
                          (rnd + 1, label, load, "+".join(SWAPPED), idle), flush=True)
                for what, fn in kinds:
                    wire, cpu, pauses, sw = measure(c, fn, marks, gc)
                    print("round %d %-12s load %5s | %-38s | p50 %6.2f p90 %6.2f p99 %6.2f mean %6.2f | "
                          "CPU/call gateway %4.0f compute %4.0f | switches/call (voluntary+involuntary) "
                          "gateway %.1f+%.1f compute %.1f+%.1f | broker GC %s" %
                          (rnd + 1, label, load, what, pct(wire, 50), pct(wire, 90), pct(wire, 99),
                           sum(wire) / len(wire), cpu["gateway"], cpu["compute"], sw["gateway"][0],
                           sw["gateway"][1], sw["compute"][0], sw["compute"][1], pauses), flush=True)
                gc.since_last()
                echo = bus_echo(c, bindir, venv)
                print("round %d %-12s | bus sys.echo: %s | broker GC %s" % (rnd + 1, label, echo, gc.since_last()),
                      flush=True)
                if LOAD_CONNS:
                    for line in loaded(c, bindir, venv):
                        print("round %d %-12s | loaded: %s" % (rnd + 1, label, line), flush=True)
    finally:
        if not os.environ.get("IDLE_RTT_KEEP"):
            c.stop()
            gc.remove()
        else:
            print("cloud kept in %s (the broker's GC log: %s)" % (c.dir, gc.path))


main()
