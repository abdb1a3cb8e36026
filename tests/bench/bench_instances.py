"""The figures bench_instances.sh prints (see there). Uses the real client (boto3) against
a cloud of its own whose one host runs the driver asked for:

- sim (the default): the guest is simulated, every part of the control plane runs for
  real (gateway, compute, its tasks, the network's ports, the agent's sync loop);
- container (root): real containers of the default busybox rootfs image on the linux
  datapath (namespaces, veths, cgroups);
- qemu (root): real QEMU guests of the default machine image (virga-tiny), TCG when the
  machine has no KVM; a few rounds only.

`bench_instances.py [sim|container|qemu] [--rounds N] [--rate N] [--batch-calls C
--batch-count N]`. The rate phase launches one instance a call from six clients; the
batched phase (only when --batch-calls is given) C calls of MaxCount N at once, as
`run-instances --count N` does; each prints instances/s and the machine's CPU a launch. Every loop is bounded in
count and time; everything launched is terminated and, for real guests, proven gone from
the host (cgroups under the cloud's prefix virga-d<port base>-) before the cloud stops."""
import argparse
import concurrent.futures
import datetime
import os
import re
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Cloud, boto3_client  # noqa: E402

POLL_S = 0.1         # the client polls DescribeInstances this often, as issue 11 says
RATE_CLIENTS = 6
IDLE_SETTLE_S, IDLE_SAMPLE_S = 2, 3   # the cloud's CPU at rest: after this pause, over this long

# per driver: the default image, rounds, instances for the rate (0: none), one wait's bound
PROFILES = {
    "sim": ("virga-busybox-rootfs", 30, 60, 60),
    "container": ("virga-busybox-rootfs", 20, 30, 120),
    "qemu": ("virga-tiny", 3, 0, 240),
}
BENCH_BUDGET_S = 900   # the whole run, whatever the rounds


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def machine_busy_s():
    """CPU seconds the whole machine has spent busy (/proc/stat), and this process's own."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    own = os.times()
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK"), own.user + own.system


def cpu_by_name(cloud=None):
    """CPU seconds of every process by (pid, name (comm)), its reaped children's included
    (the datapath's ip and nft runs count to the agent); the kernel's workers as one.
    With cloud: only the cloud's own processes, those started from the pids in its run/
    directory (its services, agent, broker, PostgreSQL and their children) or in its
    cgroups (virga-d<base>-, the containers): on a machine other clouds load, the
    machine's total says little about this one."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    stats, parent = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        if name.startswith("kworker"):
            name = "kworker"   # its name says the work of the moment, not what the time went to
        v = raw.rsplit(")", 1)[1].split()
        stats[pid] = (name, sum(int(x) for x in v[11:15]) / tick)
        parent[pid] = v[1]
    keep = set(stats)
    if cloud is not None:
        roots, prefix = set(), "virga-d%d-" % cloud.base
        run = os.path.join(cloud.dir, "run")
        for f in os.listdir(run) if os.path.isdir(run) else ():
            try:
                with open(os.path.join(run, f)) as fh:
                    roots.add(fh.read().split()[0])
            except (OSError, IndexError):
                pass
        keep = set()
        for pid in stats:
            p, seen = pid, 0
            while p in parent and p not in roots and seen < 64:
                p, seen = parent[p], seen + 1
            if p in roots:
                keep.add(pid)
                continue
            try:
                with open("/proc/%s/cgroup" % pid) as f:
                    if prefix in f.read():
                        keep.add(pid)
            except OSError:
                pass
    for pid in keep:
        out[(pid, stats[pid][0])] = stats[pid][1]
    return out


def wait(ec2, iid, state, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        r = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        if r["State"]["Name"] == state:
            return
        time.sleep(POLL_S)
    raise RuntimeError("bench_instances: %s never %s" % (iid, state))


def wait_all(ec2, ids, state, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
               for i in r["Instances"]]
        if got.count(state) == len(ids):
            return True
        time.sleep(POLL_S)
    return False


def host_leftovers(cloud):
    """Instance cgroups still under this cloud's agent cgroups (named virga-d<base>-agent-*):
    only this cloud's prefix is looked at, never another cloud's."""
    prefix = "virga-d%d-" % cloud.base
    left = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if root.count(os.sep) > 6:
            dirs[:] = []
            continue
        if os.path.basename(root).startswith(prefix):
            left += [os.path.join(root, d) for d in dirs]
            dirs[:] = []
    return left


def one_launch(ec2, ami, itype, bound):
    """(instance id, sent, answered, seen running): wall-clock times."""
    t0 = time.time()
    iid = ec2.run_instances(ImageId=ami, InstanceType=itype, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    t1 = time.time()
    wait(ec2, iid, "running", bound)
    return iid, t0, t1, time.time()


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z \w+ +[a-z-]+\[\d+\] (.*)$")


def agent_events(cloud, name="agent"):
    """(time, text) of every line of one of the cloud's logs (the agent's by default)."""
    out = []
    try:
        with open(os.path.join(cloud.dir, "log", name + ".log"), errors="replace") as f:
            for line in f:
                m = LOG_LINE.match(line)
                if m:
                    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
                    out.append((t.replace(tzinfo=datetime.timezone.utc).timestamp(), m.group(2)))
    except OSError:
        pass
    return out


def breakdown(cloud, rounds):
    """Where one launch's time goes, from the client's clock and the agent's log (same
    machine, same clock): RunInstances answered -> the agent's first ensure attempt that
    found no network yet (if any) -> the datapath's applies meanwhile -> the driver's
    ensure done -> the client's poll seeing running (the agent's report, compute's state
    change and the poll interval). Medians over the measured rounds."""
    ev = agent_events(cloud)
    cev = agent_events(cloud, "compute")
    parts = {"answered -> compute's launch task done": [], "compute's launch task itself": [],
             "launch task done -> the successful ensure began (doorbell, pull, queue)": [],
             "answered -> ensure done": [], "the driver's ensure itself (boot)": [],
             "answered -> the successful ensure began": [], "ensure done -> client sees running": [],
             "answered -> first ensure found no network": [], "datapath applies per launch": [],
             "datapath apply time (as the agent logs it)": []}
    for iid, t0, t1, t2 in rounds:
        done = [(t, x) for t, x in ev if x.startswith("ensured %s: done" % iid)]
        if not done:
            continue
        m = re.search(r"done \((\d+) ms", done[0][1])
        took = int(m.group(1)) / 1000.0 if m else 0.0
        done = [done[0][0]]
        parts["answered -> ensure done"].append(done[0] - t1)
        if m:
            parts["the driver's ensure itself (boot)"].append(took)
            parts["answered -> the successful ensure began"].append(done[0] - took - t1)
        parts["ensure done -> client sees running"].append(t2 - done[0])
        prep = [(t, x) for t, x in cev if x.startswith("launch %s: prepared in " % iid)]
        if prep:
            parts["answered -> compute's launch task done"].append(prep[0][0] - t1)
            m2 = re.search(r"prepared in (\d+) ms", prep[0][1])
            if m2:
                parts["compute's launch task itself"].append(int(m2.group(1)) / 1000.0)
            if m:
                parts["launch task done -> the successful ensure began (doorbell, pull, queue)"].append(
                    done[0] - took - prep[0][0])
        nn = [t for t, x in ev if x.startswith("ensure %s: NetworkNotReady" % iid)]
        if nn:
            parts["answered -> first ensure found no network"].append(nn[0] - t1)
        applies = [x for t, x in ev if t0 - 0.5 <= t <= done[0] and x.startswith("datapath generation")]
        parts["datapath applies per launch"].append(len(applies))
        for x in applies:
            m = re.search(r"(\d+) ms$", x)
            if m:
                parts["datapath apply time (as the agent logs it)"].append(int(m.group(1)) / 1000.0)
    for k, v in parts.items():
        if not v:
            continue
        if k == "datapath applies per launch":
            print("  %s: median %d" % (k, statistics.median(v)))
        else:
            print("  %s: p50 %.0f ms (%d samples)" % (k, statistics.median(v) * 1000, len(v)))


TIMELINE_STEPS = (
    # (step, service whose log says it, how the line starts once "{iid}" and "{rid}" are known)
    ("recorded (the handler's transaction)", "compute", None),
    ("the launch task claimed", "compute", "task launch:{iid} "),
    ("the network's port_create in", "network", "port_create {iid}: in"),
    ("the network's port made", "network", "port_create {iid}: eni"),
    ("the waiter woken (port recorded, prepared)", "compute", "RunInstances: {iid} launched"),
    ("the handler again (after the wait)", "compute", None),
    ("the answer built", "compute", None),
    ("the gateway's HTTP answer out", "gateway", None),
    ("the client has the answer", "client", None),
    ("the agent's first ensure", "agent", ("ensure {iid}: NetworkNotReady", "{iid}: made")),
    ("the agent's ensure done", "agent", "ensured {iid}: done"),
    ("its report sent", "agent", None),
    ("compute applied it (running)", "compute", None),
    ("the client's poll sees running", "client", None),
)


def timeline(cloud, rounds):
    """A lone launch's steps from the debug lines (VIRGA_LOG_LEVEL=debug: compute's, the
    network's, the gateway's and the agent's logs; same machine, same clock, ms): median
    ms after compute's RunInstances handler began, and the client's RunInstances call
    began before it. Nothing printed without the debug lines."""
    logs = {n: agent_events(cloud, n) for n in ("agent", "compute", "network", "gateway")}
    rid_of = re.compile(r"^\[([^\]]+)\] (.*)$")

    def split(text):
        m = rid_of.match(text)
        return (m.group(1), m.group(2)) if m else ("", text)
    comp = [(t,) + split(x) for t, x in logs["compute"]]
    if not any(x.endswith(" recorded") for _, _, x in comp):
        return
    rows = []
    for iid, t0, t1, t2 in rounds:
        woke = [t for t, _, x in comp if x.startswith("RunInstances: %s launched" % iid)]
        rec = [(t, r) for t, r, x in comp if x.startswith("RunInstances ") and x.endswith(" recorded")
               and woke and t <= woke[0]]
        if not woke or not rec:
            continue
        t_rec, req = rec[-1]
        runs = [t for t, r, x in comp if r == req and x.endswith(": run")]
        if not runs:
            continue
        at = {"client call": t0, "recorded (the handler's transaction)": t_rec, "the client has the answer": t1,
              "the client's poll sees running": t2}
        if len(runs) > 1:
            at["the handler again (after the wait)"] = runs[1]
        built = [t for t, r, x in comp if r == req and x.startswith("RunInstances ") and "instance(s) of" in x]
        if built:
            at["the answer built"] = built[0]
        out = [t for t, x in logs["gateway"] if x.startswith("[%s] " % req) and "POST / ->" in x]
        if out:
            at["the gateway's HTTP answer out"] = out[0]
        for step, svc, start in TIMELINE_STEPS:
            if start is None:
                continue
            starts = tuple(s.format(iid=iid) for s in (start if isinstance(start, tuple) else (start,)))
            hit = [t for t, x in logs[svc] if split(x)[1].startswith(starts)]
            if hit:
                at[step] = hit[0]
        done = at.get("the agent's ensure done")
        if done:
            sent = [t for t, x in logs["agent"] if x.startswith("report ") and " sent" in x and t >= done]
            if sent:
                at["its report sent"] = sent[0]
                applied = [t for t, _, x in comp if x.startswith("report ") and x.endswith(" applied") and t >= sent[0]]
                if applied:
                    at["compute applied it (running)"] = applied[0]
        rows.append((runs[0], at))
    if not rows:
        return
    print("a lone launch's timeline (debug lines; median ms after compute's RunInstances handler began, %d rounds):"
          % len(rows))
    v = [(t0 - at["client call"]) * 1000 for t0, at in rows]
    print("  %-46s %6.1f" % ("the client's call (before the handler)", statistics.median(v)))
    for step, _, _ in TIMELINE_STEPS:
        v = [(at[step] - t0) * 1000 for t0, at in rows if step in at]
        if v:
            print("  %-46s %6.1f  (%d)" % (step, statistics.median(v), len(v)))


def pool_map(fn, clients):
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        return [i for part in pool.map(fn, clients) for i in part]


def postgres_backends(cloud):
    """{backend pid: the name of the process at the other end of its connection}: so
    PostgreSQL's CPU is told by the service it works for (its backends stay for the
    service's life; a connection made and closed within a phase is left as postgres)."""
    import subprocess
    out = {}
    try:
        rows = cloud.psql("SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL")
        ss = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, timeout=30).stdout
    except Exception:  # noqa: BLE001 - a figure's detail only
        return out
    owner = {}
    for line in ss.splitlines():
        m = re.search(r"127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:%d\s+users:\(\(\"([^\"]+)\"" % cloud.base, line)
        if m:
            owner[m.group(1)] = m.group(2)
    for line in rows.strip().splitlines():
        pid, _, port = line.partition("|")
        if port in owner:
            out[pid] = owner[port]
    return out


def idle_cpu_rate(cloud):
    """The cloud's CPU seconds a second at rest (timers, pollers, the broker's own), after
    a pause for what the last terminations left to do on the host: on a loaded machine a
    phase lasts longer and that part grows with it, so the phases also give their figure
    above it."""
    time.sleep(IDLE_SETTLE_S)
    idle0, t_idle = sum(cpu_by_name(cloud).values()), time.time()
    time.sleep(IDLE_SAMPLE_S)
    return (sum(cpu_by_name(cloud).values()) - idle0) / (time.time() - t_idle)


BUS_SERVICES = ("gateway", "compute", "network", "image", "identity", "objectstore", "accounting")


def bus_counts(cloud):
    """{("sent", service): n, (service, message type): handled n}: every service's
    virga_bus_sent_total and virga_bus_handled_total (sys.metrics)."""
    out = {}
    for svc in BUS_SERVICES:
        ok, reply = cloud.call(svc, "sys.metrics", timeout_ms=5000)
        if not ok:
            continue
        for line in reply["text"].splitlines():
            m = re.match(r'virga_bus_(sent|handled)_total\{service="([^"]+)",(?:producer|type)="([^"]+)"\} (\S+)', line)
            if m:
                key = ("sent", m.group(2)) if m.group(1) == "sent" else (m.group(2), m.group(3))
                out[key] = out.get(key, 0) + int(float(m.group(4)))
    return out


class StatementCount:
    """--count: PostgreSQL logs every statement (log_statement = all, each line prefixed by
    its backend's pid), and a phase's lines are counted by the service each backend serves
    and by kind (COMMIT, the rest); with the bus's counters of every service. Logging costs
    CPU, so a counting run's CPU figures are not comparable with another's."""

    def __init__(self, cloud):
        self.cloud = cloud
        with open(os.path.join(cloud.dir, "run", "postgres.pid")) as f:
            self.log = os.readlink("/proc/%s/fd/2" % f.read().split()[0])
        cloud.psql("ALTER SYSTEM SET log_statement = 'all'")
        cloud.psql("ALTER SYSTEM SET log_line_prefix = '%p|'")
        if os.environ.get("BENCH_DURATIONS"):
            # each statement's time too (the line after it, "duration: x ms"): where
            # PostgreSQL's time a launch goes, by statement (wall time: the load's too)
            cloud.psql("ALTER SYSTEM SET log_min_duration_statement = 0")
        cloud.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)

    # the Kafka API keys a cloud's clients use (the broker's request log names them by number)
    KAFKA_APIS = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
                  10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
                  17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 22: "InitProducerId",
                  36: "SaslAuthenticate", 60: "DescribeCluster", 71: "GetTelemetrySubscriptions"}

    def kafka_requests(self, n):
        """The broker's requests in the phase by type and by principal (VIRGA_KAFKA_REQUEST_LOG=1
        when the cloud started: deploy/kafka/broker logs every request it completed)."""
        if not os.path.exists(self.kreq):
            return
        with open(self.kreq, errors="replace") as f:
            f.seek(self.kreq_offset)
            lines = f.readlines()
        by_api, by_who, local = {}, {}, {}
        for line in lines:
            m = re.search(r'"requestApiKey":(\d+)', line)
            if not m:
                continue
            api = self.KAFKA_APIS.get(int(m.group(1)), m.group(1))
            who = re.search(r'"principal":"User:([^"]*)"', line)
            who = re.sub(r"-.*", "", who.group(1)) if who else "?"
            by_api[api] = by_api.get(api, 0) + 1
            by_who[(who, api)] = by_who.get((who, api), 0) + 1
            t = re.search(r'"localTimeMs":([0-9.]+)', line)
            if t:
                local[api] = local.get(api, 0.0) + float(t.group(1))
        print("  the broker's requests per launch + terminate: %.1f (%s)" % (
            sum(by_api.values()) / n, ", ".join("%s %.2f" % (k, v / n) for k, v in
                                                 sorted(by_api.items(), key=lambda kv: -kv[1]))))
        print("    by principal and type: " + ", ".join(
            "%s %s %.2f" % (k[0], k[1], v / n) for k, v in sorted(by_who.items(), key=lambda kv: -kv[1])[:16]))
        print("    the broker's local time per launch + terminate (ms, wall, as logged): " + ", ".join(
            "%s %.2f" % (k, v / n) for k, v in sorted(local.items(), key=lambda kv: -kv[1]) if v))

    def xacts(self):
        return int(self.cloud.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'virga'") or 0)

    def start(self):
        self.xact0 = self.xacts()
        self.offset = os.path.getsize(self.log)
        self.bus0 = bus_counts(self.cloud)
        self.kreq = os.path.join(self.cloud.dir, "log", "kafka-requests.log")
        self.kreq_offset = os.path.getsize(self.kreq) if os.path.exists(self.kreq) else 0

    def report(self, n):
        time.sleep(1.0)   # what the phase's last commits still log
        backends = postgres_backends(self.cloud)
        stmts, commits, texts = {}, {}, {}
        keep = os.environ.get("BENCH_STATEMENT_LOG")
        with open(self.log, errors="replace") as f:
            f.seek(self.offset)
            lines = f.readlines()
        if keep:
            with open(keep, "a") as out:
                out.writelines("%s %s" % (backends.get(x.split("|")[0], "other"), x) for x in lines)
        last, spent = {}, {}
        for line in lines:
            d = re.match(r"(\d+)\|LOG:  duration: ([0-9.]+) ms", line)
            if d and d.group(1) in last:
                spent[last[d.group(1)]] = spent.get(last[d.group(1)], 0) + float(d.group(2))
                continue
            m = re.match(r"(\d+)\|LOG:  (?:statement|execute [^:]*): (.*)", line)
            if not m:
                continue
            who = backends.get(m.group(1), "other")
            last[m.group(1)] = (who, m.group(2).strip()[:90])
            stmts[who] = stmts.get(who, 0) + 1
            q = m.group(2).strip()
            if q.upper() in ("COMMIT", "END"):
                commits[who] = commits.get(who, 0) + 1
            key = (who, q[:90])
            texts[key] = texts.get(key, 0) + 1
        self.kafka_requests(n)
        bus1 = bus_counts(self.cloud)
        sent = {k[1]: v - self.bus0.get(k, 0) for k, v in bus1.items() if k[0] == "sent"}
        handled = {k: v - self.bus0.get(k, 0) for k, v in bus1.items() if k[0] != "sent"}
        xacts = self.xacts() - self.xact0
        print("  counted per launch + terminate (%d): statements %.1f (%s), transactions committed %.1f, of them "
              "with BEGIN and COMMIT %.1f (%s), bus messages the services sent %.1f (%s)" % (
                  n, sum(stmts.values()) / n,
                  ", ".join("%s %.1f" % (k, v / n) for k, v in sorted(stmts.items(), key=lambda kv: -kv[1])),
                  xacts / n, sum(commits.values()) / n,
                  ", ".join("%s %.1f" % (k, v / n) for k, v in sorted(commits.items(), key=lambda kv: -kv[1])),
                  sum(sent.values()) / n,
                  ", ".join("%s %.1f" % (k, v / n) for k, v in sorted(sent.items(), key=lambda kv: -kv[1]) if v)))
        print("  requests handled per launch + terminate, by type: " +
              ", ".join("%s %.2f" % (k[1], v / n) for k, v in sorted(handled.items(), key=lambda kv: -kv[1])
                        if v / n >= 0.05))
        if os.environ.get("BENCH_STATEMENTS"):
            for (who, q), v in sorted(texts.items(), key=lambda kv: -kv[1])[:int(os.environ["BENCH_STATEMENTS"])]:
                print("    %6.2f %s %s" % (v / n, who, q))
        if spent:
            print("  statement time per launch + terminate (ms, wall, as logged), the most first:")
            for (who, q), v in sorted(spent.items(), key=lambda kv: -kv[1])[:int(os.environ.get("BENCH_STATEMENTS", 25))]:
                print("    %7.3f %s %s" % (v / n, who, q))


def rate_phase(cloud, ec2, driver, launched, label, launch_all, idle_rate, counter=None):
    """Launch by launch_all() (-> instance ids), wait for all running; print the rate, the
    machine's CPU per launch (this client's own excluded) and its split by process (each
    PostgreSQL backend by the service it serves); terminate them all."""
    if counter:
        counter.start()
    t0 = time.time()
    busy0, own0 = machine_busy_s()
    procs0, mine0 = cpu_by_name(), cpu_by_name(cloud)
    ids = launch_all()
    launched += ids
    ok = wait_all(ec2, ids, "running", 300)
    took = time.time() - t0
    busy1, own1 = machine_busy_s()
    print("%s to all running (%s): %s" % (label, driver, "%.1f instances/s" % (len(ids) / took) if ok
                                            else "not all running in 300 s"))
    # what a launch costs the machine, all of it (the cloud's processes, the broker,
    # PostgreSQL, the datapath's commands, the containers' starts) but this client:
    # the CPU bound of the rate on this machine's cores
    cloud_s = max(0.0, (busy1 - busy0) - (own1 - own0))
    if ok and ids:
        per = cloud_s / len(ids)
        print("  machine CPU per launch during it, this client's own excluded: %.0f ms "
              "(%d cores busy all the time at that cost: %.0f instances/s)"
              % (per * 1000, os.cpu_count(), os.cpu_count() / per if per else 0))
        by = {}
        for (pid, name), t in cpu_by_name().items():
            if pid != str(os.getpid()):
                by[name] = by.get(name, 0.0) + t - procs0.get((pid, name), 0.0)
        top = sorted(by.items(), key=lambda kv: -kv[1])[:8]
        print("  of it, by process name (ms per launch): " +
              ", ".join("%s %.0f" % (n, t * 1000 / len(ids)) for n, t in top if t > 0))
        backends, mine, pg = postgres_backends(cloud), {}, {}
        for (pid, name), t in cpu_by_name(cloud).items():
            d = t - mine0.get((pid, name), 0.0)
            mine[name] = mine.get(name, 0.0) + d
            if name == "postgres":   # its own processes (checkpointer, WAL writer...) as "postgres"
                who = backends.get(pid, "postgres")
                pg[who] = pg.get(who, 0.0) + d
        total = sum(mine.values())
        print("  this cloud's own processes' CPU per launch (its services, agent and children, broker, "
              "PostgreSQL, containers; no kernel worker): %.0f ms, %.0f above its idle %.0f ms/s over the %.1f s: "
              % (total * 1000 / len(ids), max(0.0, total - idle_rate * took) * 1000 / len(ids), idle_rate * 1000,
                 took) +
              ", ".join("%s %.0f" % (n, t * 1000 / len(ids)) for n, t in sorted(mine.items(), key=lambda kv: -kv[1])[:9]
                        if t > 0))
        print("  of PostgreSQL's, by the process it serves (ms per launch): " +
              ", ".join("%s %.1f" % (n, t * 1000 / len(ids)) for n, t in sorted(pg.items(), key=lambda kv: -kv[1])
                        if t > 0))
    t0 = time.time()
    ec2.terminate_instances(InstanceIds=ids)
    if wait_all(ec2, ids, "terminated", 300):
        print("terminate of those %d to all terminated (%s): %.1f instances/s"
              % (len(ids), driver, len(ids) / (time.time() - t0)))
    if counter and ids:
        counter.report(len(ids))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("driver", nargs="?", default="sim", choices=sorted(PROFILES))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--rate", type=int, help="instances launched for the rate (0: skip)")
    ap.add_argument("--batch-calls", type=int, default=0, help="the batched phase: this many RunInstances at once "
                    "(0: skip)")
    ap.add_argument("--batch-count", type=int, default=10, help="the batched phase: MaxCount of each call")
    ap.add_argument("--count", action="store_true", help="count PostgreSQL's statements and commits and the bus's "
                    "messages per launch + terminate in each rate phase (PostgreSQL logs every statement: the CPU "
                    "figures of such a run compare only with another counting run)")
    ap.add_argument("--keep-log", metavar="PATH", help="copy the agent's log there (compute's, the network's and the gateway's to PATH.compute, PATH.network, PATH.gateway) "
                    "before the cloud stops")
    a = ap.parse_args()
    image, rounds, rate_n, bound = PROFILES[a.driver]
    rounds = min(a.rounds if a.rounds is not None else rounds, 200)
    rate_n = min(a.rate if a.rate is not None else rate_n, 200)
    if a.driver != "sim" and os.geteuid() != 0:
        raise SystemExit("bench_instances: the %s driver needs root" % a.driver)
    env = {"VIRGA_AGENT_DRIVERS": a.driver, "VIRGA_GATEWAY_RATE_LIMIT": "0", "VIRGA_QUOTA_INSTANCES": "1000",
           "VIRGA_QUOTA_VCPUS": "4000", "VIRGA_QUOTA_MEMORY_MIB": "10000000",
           # a host that takes the rate's instances at once: containers' CPU and memory are
           # cgroup limits, not reservations, and the QEMU rounds run one at a time
           "VIRGA_AGENT_VCPUS": "256", "VIRGA_AGENT_MEMORY_MIB": "262144"}
    started = time.time()
    cloud = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True, env=env)
    launched = []
    try:
        ami = cloud.default_images()[image]
        ec2 = boto3_client(cloud, "ec2")
        # one unmeasured round: the first use of each service's consumer group and caches,
        # and for real guests the image's fetch and unpack (once per SHA-256)
        iid = one_launch(ec2, ami, "t3.nano", bound * 2)[0]
        launched.append(iid)
        ec2.terminate_instances(InstanceIds=[iid])
        wait(ec2, iid, "terminated", bound)
        up, down, answer, timed = [], [], [], []
        for _ in range(rounds):
            if time.time() - started > BENCH_BUDGET_S:
                print("bench_instances: time budget spent, %d rounds measured" % len(up))
                break
            iid, t0, t1, t2 = one_launch(ec2, ami, "t3.nano", bound)
            launched.append(iid)
            timed.append((iid, t0, t1, t2))
            answer.append(t1 - t0)
            up.append(t2 - t0)
            t0 = time.time()
            ec2.terminate_instances(InstanceIds=[iid])
            wait(ec2, iid, "terminated", bound)
            down.append(time.time() - t0)
        print("RunInstances answered (%s, %d rounds): p50 %.0f ms, p99 %.0f ms"
              % (a.driver, len(up), statistics.median(answer) * 1000, pct(answer, 99) * 1000))
        print("RunInstances to running (%s, polling every %.1f s, %d rounds): p50 %.0f ms, p99 %.0f ms"
              % (a.driver, POLL_S, len(up), statistics.median(up) * 1000, pct(up, 99) * 1000))
        print("TerminateInstances to terminated (%s): p50 %.0f ms, p99 %.0f ms"
              % (a.driver, statistics.median(down) * 1000, pct(down, 99) * 1000))
        print("where a launch's time goes (client clock and the agent's log):")
        breakdown(cloud, timed)
        timeline(cloud, timed)

        counter = StatementCount(cloud) if a.count else None
        idle_rate = idle_cpu_rate(cloud) if rate_n > 0 or a.batch_calls > 0 else 0.0
        if rate_n > 0:
            clients = [boto3_client(cloud, "ec2") for _ in range(RATE_CLIENTS)]
            per = max(1, rate_n // RATE_CLIENTS)

            def launch(c):
                return [c.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)[
                    "Instances"][0]["InstanceId"] for _ in range(per)]

            rate_phase(cloud, ec2, a.driver, launched, "launch rate, %d instances by %d clients"
                       % (per * RATE_CLIENTS, RATE_CLIENTS), lambda: pool_map(launch, clients), idle_rate, counter)
        if a.batch_calls > 0 and a.batch_count > 0:
            # the same, launched as a user's `run-instances --count N` does: MaxCount N a
            # call, the calls at once (one client each)
            n_calls, count = min(a.batch_calls, 20), min(a.batch_count, 50)
            bclients = [boto3_client(cloud, "ec2") for _ in range(n_calls)]

            def launch_many(c):
                return [i["InstanceId"] for i in c.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=count,
                                                                  MaxCount=count)["Instances"]]

            rate_phase(cloud, ec2, a.driver, launched, "batched launch rate (MaxCount), %d calls of %d at once"
                       % (n_calls, count), lambda: pool_map(launch_many, bclients), idle_rate, counter)
    finally:
        try:
            if launched:
                ec2.terminate_instances(InstanceIds=launched)
                wait_all(ec2, launched, "terminated", 300)
            if a.driver != "sim":
                deadline = time.time() + 120
                while host_leftovers(cloud) and time.time() < deadline:
                    time.sleep(0.5)
                left = host_leftovers(cloud)
                if left:
                    print("bench_instances: left on the host after terminate: %s" % left)
        finally:
            if a.keep_log:
                shutil.copyfile(os.path.join(cloud.dir, "log", "agent.log"), a.keep_log)
                for other in ("compute", "network", "gateway"):
                    shutil.copyfile(os.path.join(cloud.dir, "log", other + ".log"), a.keep_log + "." + other)
            cloud.stop()


if __name__ == "__main__":
    main()
