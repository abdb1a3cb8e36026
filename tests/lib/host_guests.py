"""What of a test cloud's instances runs or is left on this machine, seen from /proc,
/run/netns and /sys/fs/cgroup (the real-guest suites: tests/e2e/test_instances_real*.py,
test_instances_two_agents.py; docs/compute.md "Robustness with real guests").

Guests are counted only in the cloud's own cgroups (<datapath prefix>agent-<host>/<instance
id>, and the prefix virga-d<port base>- names the cloud), never by a scan of the whole
machine: other test workers run clouds with guests at the same time. Leftovers are looked
for by the instance's own id and interface id, which no other cloud has. Each function
reads /proc once however many instances it is given (20 instances polled every half
second would otherwise walk /proc and the cgroup tree 20 times a poll on a loaded host)."""
import os
import time


def _proc(pid, name):
    with open("/proc/%s/%s" % (pid, name), "rb") as f:
        return f.read()


def _guest_init(cg, status, mine):
    """The instance id of a container init (PID 1 of its own pid namespace) in a cgroup
    under mine, else None."""
    nspid = [ln.split()[1:] for ln in status.decode(errors="replace").splitlines() if ln.startswith("NSpid:")]
    if not nspid or len(nspid[0]) < 2 or nspid[0][-1] != "1":
        return None
    return next((part for line in cg.decode(errors="replace").splitlines() if mine in line
                 for part in line.split(":", 2)[2].split("/") if part.startswith("i-")), None)


def _agent_cgroup(cloud, host=""):
    return "/virga-d%d-agent-%s" % (cloud.base, host + "/" if host else "")


def guest_inits(cloud, host=""):
    """{instance id: [pid of each container init]} of this cloud's agents (host: that one
    agent's)."""
    mine = _agent_cgroup(cloud, host)
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            iid = _guest_init(_proc(pid, "cgroup"), _proc(pid, "status"), mine)
        except OSError:
            continue
        if iid:
            found.setdefault(iid, []).append(int(pid))
    return {iid: sorted(pids) for iid, pids in found.items()}


def guests_on_host(cloud, host=""):
    """{instance id: number of container inits in its cgroups}, as guest_inits."""
    return {iid: len(pids) for iid, pids in guest_inits(cloud, host).items()}


def primary_enis(described):
    """{instance id: its primary interface id} from DescribeInstances' instances
    ({instance id: instance}); None for one that never had an interface."""
    return {iid: ((i.get("NetworkInterfaces") or [{}])[0].get("NetworkInterfaceId")) for iid, i in described.items()}


def host_leftovers(cloud, instances):
    """What of these instances ({instance id: interface id or None}) is still on the host:
    processes naming the instance (a QEMU guest's command line) or a container init in its
    cgroups, the stand-in namespace of its interface, cgroups named after it."""
    ids = set(instances)
    mine = _agent_cgroup(cloud)
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = _proc(pid, "cmdline")
            named = [i for i in ids if i.encode() in cmdline]
            guest = _guest_init(_proc(pid, "cgroup"), _proc(pid, "status"), mine)
        except OSError:
            continue
        left += ["process %s of %s" % (pid, i) for i in named]
        if guest in ids and guest not in named:
            left.append("guest %s (pid %s)" % (guest, pid))
    enis = {e for e in instances.values() if e}
    try:
        left += ["netns " + n for n in os.listdir("/run/netns") if any(e in n for e in enis)]
    except FileNotFoundError:
        pass
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        left += ["cgroup " + os.path.join(root, d) for d in dirs if d in ids]
    return left


def wait_gone(cloud, instances, seconds=120):
    """Wait until nothing of these instances ({instance id: interface id or None}) is left
    on the host (host_leftovers); fails with what is left after seconds."""
    deadline = time.time() + seconds
    while True:
        left = host_leftovers(cloud, instances)
        if not left:
            return
        assert time.time() < deadline, "left on the host: %r" % left
        time.sleep(0.5)
