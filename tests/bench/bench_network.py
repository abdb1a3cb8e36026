"""The network control plane's figures (docs/network.md, "Figures"), against a throwaway
devcloud of its own, through the EC2 API as a tenant uses it (boto3 1.26):

1. A security group change reaching N SIMULATED hosts (default 100): one port per host,
   all in the group, plugged on hosts named sim-net-hNNN that run no agent. Each round
   authorizes one more ingress rule; per host it measures, from just before the API call,
   (a) the event: agent.network_changed on the host's topic as the network service
   published it (--protocol push or doorbell), or the network's NOTIFY that becomes that
   event (--protocol notify, the first passes' method), and (b) applied: the host's
   document with the new rule in it applied with the datapath's fake driver, pushed in
   the event (push) or pulled with network.host_desired over the bus (doorbell: the
   network configured with network.push_document_max_bytes = 0, the protocol before;
   notify). tests/bench/net_fanout.c is the N simulated hosts (one process, 8 threads;
   for push and doorbell the bench gives each simulated host an agent key and its topic,
   as a host added to the cloud gets, and net_fanout checks every event with that key);
   no kernel datapath is involved (bench_datapath.py and bench_agent_network.py measure
   that part).
2. Address allocations per second: CreateNetworkInterface from 16 threads into one /20.
3. DescribeSecurityGroups with 1,000 groups in the account: p50/p99 of the whole
   listing, boto3 end to end (request signing, the gateway, the bus, the network, the XML
   and boto3's parsing of it).

  /usr/bin/python3 tests/bench/bench_network.py [--count 100] [--rounds 20] [--groups 1000]
                                                 [--allocs 400] [--build build]
                                                 [--only fanout|allocs|describe]
                                                 [--protocol push|doorbell|notify]

Bounded: every wait has a deadline; the cloud is stopped at the end."""
import concurrent.futures
import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from bench_common import bench_args, pct  # noqa: E402


def extra(ap):
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--allocs", type=int, default=400)
    ap.add_argument("--threads", type=int, default=8, help="net_fanout's pulling threads")
    ap.add_argument("--only", choices=["fanout", "allocs", "describe"], help="run one figure only")
    ap.add_argument("--readers", default="0",
                    help="consumers net_fanout reads the hosts' topics with: 0 one per host, as the agents do "
                         "(default); 1 one for all; a list (0,1,0,1) runs the rounds for each in turn on the "
                         "same cloud, to compare them in the same conditions")
    ap.add_argument("--broker-jit", choices=["full", "c1"], default="c1",
                    help="the broker's JIT: C1 only, as a throwaway test cloud starts it (default), or full, "
                         "as a lasting cloud runs it (its compiling costs CPU during the bench's setup)")
    ap.add_argument("--raw", help="write net_fanout's lines here (one per applied document, with the round)")
    ap.add_argument("--protocol", choices=["push", "doorbell", "notify"], default="push",
                    help="how the simulated hosts learn of a change (see above)")


args = bench_args("network bench", 100, needs_root=False, extra=extra)
from harness import Cloud, boto3_client, compute_call, new_tenant  # noqa: E402


def ms(x):
    return "%.1f ms" % (x * 1000)


def pool_map(fn, items, threads=8):
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(fn, items))


def cpu_ticks(c, extra_pids=()):
    """CPU time (clock ticks) so far of the cloud's processes by name (postgres with its
    backends), and of extra_pids: where a figure's work is done, on this shared machine."""
    def ticks(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                v = f.read().rsplit(")", 1)[1].split()
            return int(v[11]) + int(v[12])
        except OSError:
            return 0
    out = dict(extra_pids)
    for name in ("network", "gateway", "kafka", "postgres"):
        try:
            pid = c.pid(name)
        except (OSError, ValueError):
            continue
        out[name] = ticks(pid)
        if name == "postgres":
            for d in os.listdir("/proc"):
                if d.isdigit():
                    try:
                        with open("/proc/%s/stat" % d) as f:
                            if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                                out[name] += ticks(int(d))
                    except OSError:
                        pass
    for k, pid in extra_pids:
        out[k] = ticks(pid)
    return out


def cpu_report(before, after, what):
    hz = os.sysconf("SC_CLK_TCK")
    print("  CPU during %s: %s" % (what, ", ".join("%s %.0f ms" % (k, (after[k] - before.get(k, 0)) * 1000.0 / hz)
                                                  for k in after)))


def fanout(c, ec2, account):
    vid = ec2.create_vpc(CidrBlock="10.86.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.86.0.0/20")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="fanout", Description="bench", VpcId=vid)["GroupId"]
    hosts = ["sim-net-h%03d" % i for i in range(args.count)]

    def again(mtype, body):
        # both calls are idempotent (port_create's client token is the instance): a timeout
        # on a loaded machine is asked again, at most 3 times
        for attempt in range(3):
            try:
                return compute_call(c, mtype, body)
            except AssertionError:
                if attempt == 2:
                    raise

    def place(h):
        p = again("network.port_create", {"account": account, "subnet": sid, "groups": [sg],
                                          "instance_id": "i-0sim%013d" % int(h[-3:]), "host": h})
        again("network.port_plug", {"eni": p["eni_id"], "host": h})
    secrets = os.path.join(c.dir, "secrets", "bus")
    events = args.protocol != "notify"
    if events:
        # what adding hosts to a cloud gives them: an agent key (the network MACs its
        # events to it) and a topic the network may write (virga-busctl's plan)
        busctl = os.path.join(args.build, "bin", "virga-busctl")
        for i in range(0, len(hosts), 50):      # busctl takes up to 63 names or agents at once
            subprocess.run([busctl, "credentials", secrets] + ["agent-" + h for h in hosts[i:i + 50]], check=True,
                           timeout=120)
            subprocess.run([busctl, "-c", c.config, "--set", "log.level=error", "provision", "--admin",
                            os.path.join(secrets, "admin.cred"), "--agents", ",".join(hosts[i:i + 50])],
                           check=True, timeout=300)
    pool_map(place, hosts)
    for n, readers in enumerate(int(x) for x in args.readers.split(",")):
        rounds(c, ec2, sg, hosts, secrets, events, readers, n * args.rounds)


def rounds(c, ec2, sg, hosts, secrets, events, readers, first):
    fan = subprocess.Popen([os.path.join(args.build, "bench", "net_fanout"), "-c", c.config, "--set",
                            "bus.credential_file=" + os.path.join(secrets, "compute.cred"),
                            "--group", sg, "--threads", str(args.threads), "--seconds", str(60 + 30 * args.rounds)] +
                           (["--events", secrets, "--hosts", ",".join(hosts), "--readers", str(readers)]
                            if events else []),
                           stdout=subprocess.PIPE, bufsize=0)
    buf = b""

    def lines(deadline):
        nonlocal buf
        while time.time() < deadline and select.select([fan.stdout], [], [], max(0, deadline - time.time()))[0]:
            chunk = os.read(fan.stdout.fileno(), 65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.decode()
    try:
        # a consumer per host logs in and finds its topic's end before "ready": on a loaded
        # machine that is over a minute for a hundred
        if "ready" not in lines(time.time() + 240):
            raise SystemExit("net_fanout was not ready within 240 s")
        bell, applied, api, waits, pulls, applies, sizes, published, transit = [], [], [], [], [], [], [], [], []
        raw = open(args.raw, "w") if args.raw else None
        cpu0, t_rounds = cpu_ticks(c, [("net_fanout", fan.pid)]), time.time()
        for r in range(first, first + args.rounds):
            t0 = time.time()
            ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": 1000 + r, "ToPort": 1000 + r, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
            api.append(time.time() - t0)
            seen = {}
            for line in lines(time.time() + 60):
                if raw:
                    raw.write("%d %.6f %s\n" % (r, t0, line))
                h, _, tb, ta, rules, ts, pull, apply, _, size, sent = line.split()
                if int(rules) == r + 1 and h not in seen:
                    seen[h] = (float(tb) - t0, float(ta) - t0)
                    if float(sent):
                        published.append(float(sent) - t0)
                        transit.append(float(tb) - float(sent))
                    waits.append(float(ts) - float(tb))
                    pulls.append(float(pull))
                    applies.append(float(apply))
                    sizes.append(int(size))
                if len(seen) == len(hosts):
                    break
            if len(seen) < len(hosts):
                raise SystemExit("round %d: %d of %d hosts applied the change within 60 s" % (r, len(seen), len(hosts)))
            bell += [b for b, _ in seen.values()]
            applied += [a for _, a in seen.values()]
        how = {"push": "agent.network_changed with the document",
               "doorbell": "agent.network_changed without a document, then host_desired over the bus",
               "notify": "the NOTIFY, then host_desired over the bus"}[args.protocol]
        print("== security group change -> %d simulated hosts (net_fanout, --protocol %s: %s; fake-driver apply; "
              "%s), %d rounds, load average %s" %
              (len(hosts), args.protocol, how, "one consumer per host" if readers in (0, len(hosts)) else
               "%d consumer(s) for all hosts" % readers, args.rounds, " ".join(open("/proc/loadavg").read().split()[:3])))
        print("AuthorizeSecurityGroupIngress answered: p50 %s, p99 %s" % (ms(pct(api, 50)), ms(pct(api, 99))))
        print("API call -> each host's %s: p50 %s, p99 %s, max %s" %
              ("event" if events else "NOTIFY", ms(pct(bell, 50)), ms(pct(bell, 99)), ms(max(bell))))
        if published:
            print("  of which: API call -> the network published the host's event p50 %s, p99 %s; published -> "
                  "received (the broker) p50 %s, p99 %s" % (ms(pct(published, 50)), ms(pct(published, 99)),
                                                             ms(pct(transit, 50)), ms(pct(transit, 99))))
        print("API call -> each host's document applied with the rule: p50 %s, p99 %s, max %s" %
              (ms(pct(applied, 50)), ms(pct(applied, 99)), ms(max(applied))))
        print("  of which: waiting for a thread p50 %s, p99 %s; the pull over the bus p50 %s, p99 %s; "
              "parse and apply p50 %s, p99 %s; document p50 %d bytes" %
              (ms(pct(waits, 50)), ms(pct(waits, 99)), ms(pct(pulls, 50)), ms(pct(pulls, 99)),
               ms(pct(applies, 50)), ms(pct(applies, 99)), pct(sizes, 50)))
        cpu_report(cpu0, cpu_ticks(c, [("net_fanout", fan.pid)]),
                   "the %d rounds (%.1f s)" % (args.rounds, time.time() - t_rounds))
    finally:
        fan.kill()      # our own process, by its handle
        fan.wait(timeout=10)


def allocations(c, key, secret):
    cl = [boto3_client(c, "ec2", key, secret) for _ in range(16)]
    vid = cl[0].create_vpc(CidrBlock="10.87.0.0/16")["Vpc"]["VpcId"]
    sid = cl[0].create_subnet(VpcId=vid, CidrBlock="10.87.0.0/20")["Subnet"]["SubnetId"]
    lat = []

    def one(i):
        t = time.time()
        n = cl[i % 16].create_network_interface(SubnetId=sid)["NetworkInterface"]
        lat.append(time.time() - t)
        return n["PrivateIpAddress"]
    t0 = time.time()
    ips = pool_map(one, range(args.allocs), threads=16)
    wall = time.time() - t0
    assert len(set(ips)) == len(ips), "an address was given twice"
    print("== address allocations (CreateNetworkInterface, 16 threads, one /20)")
    print("%d allocations in %.1f s: %.0f allocations/s, each p50 %s, p99 %s" %
          (len(ips), wall, len(ips) / wall, ms(pct(lat, 50)), ms(pct(lat, 99))))


def describe_groups(c, ec2, key, secret):
    cl = [boto3_client(c, "ec2", key, secret) for _ in range(8)]
    vid = ec2.create_vpc(CidrBlock="10.88.0.0/16")["Vpc"]["VpcId"]
    pool_map(lambda i: cl[i % 8].create_security_group(GroupName="g%04d" % i, Description="bench", VpcId=vid),
             range(args.groups))
    n = len(ec2.describe_security_groups()["SecurityGroups"])
    lat, wire = [], []
    send = ec2._endpoint._send      # the HTTP exchange alone: timed apart from boto3's parsing

    def timed_send(request):
        t = time.time()
        r = send(request)
        r.content               # the whole body read
        wire.append(time.time() - t)
        return r
    ec2._endpoint._send = timed_send
    idle0 = cpu_ticks(c)
    time.sleep(5)       # what the cloud burns doing nothing, to tell from the calls' own CPU
    cpu_report(idle0, cpu_ticks(c), "5 s idle before the calls")
    cpu0 = cpu_ticks(c)
    t_calls = time.time()
    deadline = time.time() + 120
    for _ in range(100):
        if time.time() > deadline:
            break
        t = time.time()
        ec2.describe_security_groups()
        lat.append(time.time() - t)
    ec2._endpoint._send = send
    cpu1, t_calls = cpu_ticks(c), time.time() - t_calls
    print("== DescribeSecurityGroups, the whole listing of %d groups, %d calls" % (n, len(lat)))
    print("HTTP request to last byte of the answer (gateway, bus, network, XML): p50 %s, p99 %s, max %s" %
          (ms(pct(wire, 50)), ms(pct(wire, 99)), ms(max(wire))))
    print("boto3 end to end (signing, the above, parsing %d groups): p50 %s, p99 %s" %
          (n, ms(pct(lat, 50)), ms(pct(lat, 99))))
    cpu_report(cpu0, cpu1, "the %d calls (%.1f s)" % (len(lat), t_calls))


def handler_times(c, types):
    """Mean queue wait and handler time in the network service per bus message type (its
    sys.metrics histograms), to tell the network's own time from the rest of the path."""
    import json
    r = c.virgadm("call", "network", "sys.metrics")
    if r.returncode:
        return
    text = json.loads(r.stdout).get("text", "")
    for t in types:
        got = {}
        for line in text.splitlines():
            if 'type="%s"' % t not in line:
                continue
            name, value = line.rsplit(" ", 1)
            for m in ("queue_wait", "handler"):
                for part in ("sum", "count"):
                    if name.startswith("virga_bus_%s_seconds_%s" % (m, part)):
                        got[m + part] = float(value)
        if got.get("handlercount"):
            n = got["handlercount"]
            print("network %s: %d handled, mean queue wait %s, mean handler %s" %
                  (t, n, ms(got.get("queue_waitsum", 0) / n), ms(got.get("handlersum", 0) / n)))


# doorbell: the network sends every event without its document (the protocol before)
env = {"VIRGA_NETWORK_PUSH_DOCUMENT_MAX_BYTES": "0"} if args.protocol == "doorbell" else {}
if args.broker_jit == "full":
    env["VIRGA_KAFKA_FULL_JIT"] = "1"     # the compilers a lasting cloud's broker runs with
c = Cloud.start(env=env)
try:
    account, key, secret = new_tenant(c, "bench-network")
    # room for the bench: 3 VPCs besides the default, 1,000+ groups, 400+ interfaces
    c.virgadm("quota", "set", account, "vpcs", "10")
    ec2 = boto3_client(c, "ec2", key, secret)
    if args.only in (None, "fanout"):
        fanout(c, ec2, account)
    if args.only in (None, "allocs"):
        allocations(c, key, secret)
    if args.only in (None, "describe"):
        describe_groups(c, ec2, key, secret)
    handler_times(c, ["network.host_desired", "network.DescribeSecurityGroups", "network.CreateNetworkInterface"])
finally:
    c.stop()
