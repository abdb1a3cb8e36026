"""Drive the network datapath (virga-datapath) from tests, inside namespaces it creates.

Every test gets its own namespace prefix (virga-t<pid><n>-) and state directory, so runs
never meet each other or a real deployment; `Datapath.close()` tears everything down and
asserts nothing is left (no namespace, no dnsmasq, no state file). Traffic only flows
between these namespaces. Every wait is bounded."""
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile

from harness import BIN

PY = "/usr/bin/python3"
_seq = itertools.count()

# A TCP echo server: one line in, the same line out, many connections (threads).
ECHO_SERVER = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
print("ready", flush=True)
def serve(c):
    f = c.makefile("rwb")
    for line in f:
        f.write(line); f.flush()
while True:
    c, peer = s.accept(); print("peer", peer[0], flush=True)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# A client that keeps one connection and echoes each stdin line through it ("ok"/"fail").
HELD_CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
f = c.makefile("rwb"); print("connected", flush=True)
for line in sys.stdin:
    try:
        f.write(line.encode()); f.flush(); ok = f.readline().decode() == line
    except OSError:
        ok = False
    print("ok" if ok else "fail", flush=True)
"""

CONNECT = r"""
import socket, sys
try:
    # 4 s: a refused connection costs that long (its SYN is dropped), an allowed one
    # on a machine under heavy load still answers well within it
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4)
    c.sendall(b"hi\n"); c.settimeout(10); sys.exit(0 if c.recv(3) == b"hi\n" else 1)
except OSError:
    sys.exit(1)
"""


def run_in(ns, args, timeout=10, check=False):
    return subprocess.run(["ip", "netns", "exec", ns] + args, capture_output=True, text=True,
                          timeout=timeout, check=check)


class Datapath:
    def __init__(self):
        self.prefix = "virga-t%d%s-" % (os.getpid() % 100000, "abcdefghijklmnopqrstuvwxyz"[next(_seq) % 26])
        self.state = tempfile.mkdtemp(prefix="virga-dp-")
        os.chmod(self.state, 0o755)     # dnsmasq reads its hosts file as nobody
        self.bin = os.path.join(BIN, "virga-datapath")
        self.procs = []

    def cli(self, *args, stdin=None, timeout=180):
        return subprocess.run([self.bin, "--prefix", self.prefix, "--state-dir", self.state] +
                              list(args), input=stdin, capture_output=True, text=True,
                              timeout=timeout)

    def apply(self, doc):
        r = self.cli("apply", "-", stdin=json.dumps(doc))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def observe(self, host):
        r = self.cli("observe", host)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["units"]

    # names of the driver (docs/network.md, "Datapath")
    def inst(self, host, eni):
        return "%si-%s.%s" % (self.prefix, host, eni)

    def host_ns(self, host):
        return "%sh-%s" % (self.prefix, host)

    @property
    def outside(self):
        return self.prefix + "outside"

    def namespaces(self):
        try:
            return sorted(n for n in os.listdir("/run/netns") if n.startswith(self.prefix))
        except FileNotFoundError:
            return []

    def dnsmasqs(self):
        """pids of dnsmasq processes started with a configuration of our state dir."""
        pids = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if "dnsmasq" in cmd and self.state in cmd:
                pids.append(int(p))
        return pids

    # traffic
    def ping(self, ns, ip, count=2, wait=1):
        r = run_in(ns, ["busybox", "ping", "-c", str(count), "-W", str(wait), ip],
                   timeout=count * wait + 30)
        return r.returncode == 0

    def ping_ok(self, ns, ip, tries=3):
        """Reachability, allowing a first ARP/fdb miss: bounded tries."""
        return any(self.ping(ns, ip, 1, wait=3) for _ in range(tries))

    def serve(self, ns, port):
        p = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-c", ECHO_SERVER, str(port)],
                             stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert select.select([p.stdout], [], [], 60)[0], "server did not start"
        assert p.stdout.readline().strip() == "ready"
        return p

    @staticmethod
    def next_peer(server, timeout=5):
        """The source address of the next connection a server accepted (bounded wait)."""
        if not select.select([server.stdout], [], [], timeout)[0]:
            return None
        return server.stdout.readline().split()[-1]

    def connect(self, ns, ip, port):
        return run_in(ns, [PY, "-c", CONNECT, ip, str(port)], timeout=60).returncode == 0

    def hold(self, ns, ip, port):
        p = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-c", HELD_CLIENT, ip, str(port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert select.select([p.stdout], [], [], 60)[0], "client did not connect"
        assert p.stdout.readline().strip() == "connected"
        return p

    @staticmethod
    def exchange(p, text="ping"):
        p.stdin.write(text + "\n")
        p.stdin.flush()
        if not select.select([p.stdout], [], [], 30)[0]:
            return False
        return p.stdout.readline().strip() == "ok"

    def close(self):
        for p in self.procs:       # only processes this test started, by pid
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        r = self.cli("teardown-all")
        left = (self.namespaces(), self.dnsmasqs(), os.listdir(self.state))
        shutil.rmtree(self.state, ignore_errors=True)
        assert r.returncode == 0, r.stderr
        assert left == ([], [], []), "teardown left %r" % (left,)


def vpc(vpc_id, vni, cidr="172.31.0.0/16", peers=(), subnet_cidr="172.31.0.0/20", gw="172.31.0.1"):
    return {"vpc_id": vpc_id, "vni": vni, "cidr": cidr, "peers": list(peers),
            "subnets": [{"subnet_id": "subnet-" + vpc_id[4:], "cidr": subnet_cidr,
                         "gateway": gw, "dns": "172.31.0.2"}]}


def iface(n, vpc_id, ip, groups, public_ip=None, prefix_len=20):
    return {"eni_id": "eni-%d" % n, "vpc_id": vpc_id, "subnet_id": "subnet-" + vpc_id[4:],
            "mac": "02:00:00:00:%02x:%02x" % (n >> 8, n & 0xff), "ip": ip,
            "prefix_len": prefix_len, "device": "vt-%d" % n, "groups": list(groups),
            "public_ip": public_ip}


def rule(protocol="-1", lo=-1, hi=-1, cidrs=(), groups=()):
    return {"protocol": protocol, "from_port": lo, "to_port": hi, "cidrs": list(cidrs),
            "groups": list(groups)}


ALL_OUT = [rule(cidrs=["0.0.0.0/0"])]


def group(gid, ingress=(), egress=None):
    return {"group_id": gid, "ingress": list(ingress),
            "egress": ALL_OUT if egress is None else list(egress)}


def host(name, underlay_ip, vpcs, ifaces, groups, members=None, generation=1):
    return {"host": name, "generation": generation, "underlay_ip": underlay_ip,
            "vpcs": vpcs, "interfaces": ifaces, "security_groups": groups,
            "group_members": members or {}, "outside": {"public_cidr": "198.51.100.0/24"}}
