"""The agent's network sync on a devcloud (agent.datapath = linux, in the cloud's own prefix
virga-d<port base>-): ports that compute plugs on the agent's host appear as namespaces and
taps, the metadata service answers inside each VPC's router namespace, the applied
generation reaches compute's host inventory, and unplugging everything leaves nothing.
Needs root (namespaces); traffic only within the cloud's own namespaces."""
import json
import os
import re
import subprocess
import time

import pytest

from harness import Cloud, aws, boto3_client, new_tenant

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the linux datapath needs root")

IDLE_S = 5
# the module's cloud: a grace long enough to tell "the VPC went at its deletion" from "at
# the grace's end" (its tests delete their VPCs, so none waits it out)
MODULE_IDLE_S = 40
TICK_S = 2


@pytest.fixture(scope="module")
def cloud():
    # a short reconcile tick so the inventory follows quickly; the doorbell does the rest;
    # a VPC left without interfaces is kept MODULE_IDLE_S (not the default 60 s) before it
    # goes, unless it is deleted; nothing is stored, so the object store is a directory
    # (no Ceph cluster to start)
    c = Cloud.start(extra_args=("--objectstore", "dir"),
                    env={"VIRGA_AGENT_RECONCILE_INTERVAL_S": str(TICK_S),
                         "VIRGA_AGENT_DATAPATH_VPC_IDLE_TEARDOWN_S": str(MODULE_IDLE_S)})
    yield c
    c.stop()
    left = [n for n in os.listdir("/run/netns") if n.startswith("virga-d%d-" % c.base)]
    assert left == [], "devcloud down left %r" % left


def host_of(cloud):
    with open(cloud.config) as f:
        return re.search(r"^  host_id: (\S+)$", f.read(), re.M).group(1)


def as_compute(cloud, mtype, body):
    r = cloud.virgadm("--set", "bus.credential_file=" + os.path.join(cloud.dir, "secrets", "bus", "compute.cred"),
                      "call", "network", mtype, json.dumps(body))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def namespaces(cloud):
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith("virga-d%d-" % cloud.base))
    except FileNotFoundError:
        return []


def wait_for(what, fn, seconds=60):
    """Bounded wait for fn() to be true; returns its last value."""
    end = time.time() + seconds
    while True:
        v = fn()
        if v or time.time() > end:
            assert v, "timed out waiting for " + what
            return v
        time.sleep(0.2)


def delete_vpc(ec2, vid, sid):
    ec2.delete_subnet(SubnetId=sid)
    ec2.delete_vpc(VpcId=vid)


def ns_exec(ns, *args, timeout=20):
    return subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True, timeout=timeout)


def test_ports_become_namespaces_taps_and_metadata_then_go(cloud):
    account, key, secret = new_tenant(cloud, "netagent")
    ec2 = boto3_client(cloud, "ec2", key, secret)
    host = host_of(cloud)
    pfx = "virga-d%d-" % cloud.base
    vid = ec2.create_vpc(CidrBlock="10.81.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.81.1.0/24")["Subnet"]["SubnetId"]
    # a container's port (veth + stand-in) and a QEMU guest's (tap)
    veth = as_compute(cloud, "network.port_create", {"account": account, "subnet": sid,
                                                     "instance_id": "i-0aaaaaaaaaaaaaaa1", "host": host})
    tap = as_compute(cloud, "network.port_create", {"account": account, "subnet": sid, "device_kind": "tap",
                                                    "instance_id": "i-0aaaaaaaaaaaaaaa2", "host": host})
    assert veth["device_kind"] == "veth" and tap["device_kind"] == "tap"
    # compute's retry finds its port; the same instance's port asked with another kind is refused
    assert as_compute(cloud, "network.port_create", {"account": account, "subnet": sid, "host": host,
                                                     "instance_id": "i-0aaaaaaaaaaaaaaa1"}) == veth
    r = cloud.virgadm("--set", "bus.credential_file=" + os.path.join(cloud.dir, "secrets", "bus", "compute.cred"),
                      "call", "network", "network.port_create",
                      json.dumps({"account": account, "subnet": sid, "instance_id": "i-0aaaaaaaaaaaaaaa1",
                                  "device_kind": "tap"}))
    assert r.returncode != 0 and "IdempotentParameterMismatch" in r.stderr
    for p in (veth, tap):
        as_compute(cloud, "network.port_plug", {"eni": p["eni_id"], "host": host})
    desired = as_compute(cloud, "network.host_desired", {"host": host})
    assert sorted(i["device_kind"] for i in desired["interfaces"]) == ["tap", "veth"]

    # the agent applies it: the stand-in with the port's address, the tap on the VPC bridge
    stand_in = "%si-%s.%s" % (pfx, host, veth["eni_id"])
    wait_for("the stand-in namespace", lambda: stand_in in namespaces(cloud))
    # its address comes last, once its host end is on the VPC's bridge
    wait_for("the stand-in's address", lambda: ("inet %s/24" % veth["ip"]) in ns_exec(
        stand_in, "ip", "addr", "show", "dev", "eth0").stdout)
    hns = "%sh-%s" % (pfx, host)
    dev = "vt-" + tap["eni_id"][4:16]
    link = wait_for("the tap", lambda: ns_exec(hns, "ip", "-d", "link", "show", dev).stdout)
    assert "tun type tap" in link and "master vb-" in link
    assert "%si-%s.%s" % (pfx, host, tap["eni_id"]) not in namespaces(cloud)

    # the metadata service answers the instance at 169.254.169.254, in its VPC's router
    # namespace; what it answers is compute's (compute.instance_metadata): this port's
    # instance is none of compute's, so compute refuses it and the guest gets 404 (503
    # would be a metadata service that could not ask; a real instance's 200 and its
    # answers are in tests/e2e/test_instances_real.py)
    def metadata_status():
        r = ns_exec(stand_in, "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                    "http://169.254.169.254/latest/meta-data/instance-id")
        return r.stdout.strip() == "404"
    assert wait_for("compute's refusal (404) through the metadata service", metadata_status)
    # a token's answer depends on the instance's metadata options (its hop limit), so it
    # too is compute's: no instance, no token
    r = ns_exec(stand_in, "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H",
                "X-aws-ec2-metadata-token-ttl-seconds: 60", "http://169.254.169.254/latest/api/token")
    assert r.returncode == 0 and r.stdout.strip() == "404"

    # compute's host inventory shows the generation the agent applied
    def applied():
        out = cloud.psql("SELECT inventory->'network' FROM compute.hosts WHERE host_id = '%s'" % host)
        return out and json.loads(out).get("generation") == desired["generation"] and json.loads(out)
    net = wait_for("the applied generation in the inventory", applied)
    assert net["datapath"] == "linux" and "error" not in net

    # unplugged and deleted: the interfaces go at once; the VPC's router (its DHCP and
    # metadata) stays for the idle grace, so that the next launch into it pays nothing;
    # the VPC deleted, it goes at the agent's next tick, not at the grace's end: then the
    # host has nothing, and nothing of the datapath is left
    router = [n for n in namespaces(cloud) if n.startswith("%sr-%s." % (pfx, host))]
    assert len(router) == 1, namespaces(cloud)
    for p in (veth, tap):
        as_compute(cloud, "network.port_unplug", {"eni": p["eni_id"], "host": host})
        as_compute(cloud, "network.port_delete", {"eni": p["eni_id"]})
    wait_for("the stand-in gone", lambda: stand_in not in namespaces(cloud))
    wait_for("the tap gone", lambda: ns_exec(hns, "ip", "link", "show", dev).returncode != 0)
    assert router[0] in namespaces(cloud), "the VPC went with its last interface: %r" % namespaces(cloud)
    time.sleep(TICK_S + 1)
    assert router[0] in namespaces(cloud), "the VPC went before its grace: %r" % namespaces(cloud)
    delete_vpc(ec2, vid, sid)
    deleted = time.time()
    wait_for("an empty host", lambda: namespaces(cloud) == [] or None, seconds=MODULE_IDLE_S + 60)
    assert time.time() - deleted < MODULE_IDLE_S - 10, "the deleted VPC's datapath waited out its grace"


def port_vni(cloud, port):
    """The VNI of a port's VPC, from its host's document."""
    doc = as_compute(cloud, "network.host_desired", {"host": port["host"]})
    return [v["vni"] for v in doc["vpcs"] if v["vpc_id"] == port["vpc_id"]][0]


def test_a_new_public_address_is_natted_after_the_elastic_ip_goes(cloud):
    """A port made with a public address (a launch's AssociatePublicIpAddress): its VPC's
    router NATs it 1:1; an elastic IP associated through the EC2 API replaces it there;
    disassociated, the interface gets a new auto-assigned address (not the first, as on
    AWS), which the router NATs in its place (docs/network.md)."""
    account, key, secret = new_tenant(cloud, "netpub")
    ec2 = boto3_client(cloud, "ec2", key, secret)
    host = host_of(cloud)
    vid = ec2.create_vpc(CidrBlock="10.85.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.85.1.0/24")["Subnet"]["SubnetId"]
    port = as_compute(cloud, "network.port_create", {"account": account, "subnet": sid, "host": host,
                                                     "instance_id": "i-0aaaaaaaaaaaaaac1", "associate_public_ip": True})
    as_compute(cloud, "network.port_plug", {"eni": port["eni_id"], "host": host})
    router = "virga-d%d-r-%s.%d" % (cloud.base, host, port_vni(cloud, port))

    def public_ip():
        doc = as_compute(cloud, "network.host_desired", {"host": host})
        return [i for i in doc["interfaces"] if i["eni_id"] == port["eni_id"]][0].get("public_ip")

    def natted(pub):
        nat = ns_exec(router, "nft", "list", "table", "ip", "virga_nat").stdout
        return ("ip daddr %s dnat to %s" % (pub, port["ip"])) in nat and nat

    first = public_ip()
    assert first, "the port has no public address"
    wait_for("the first address NATed", lambda: natted(first))
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=port["eni_id"])
    nat = wait_for("the elastic IP NATed", lambda: natted(alloc["PublicIp"]))
    assert first not in nat
    ec2.disassociate_address(PublicIp=alloc["PublicIp"])
    new = public_ip()
    assert new and new not in (first, alloc["PublicIp"]), new
    nat = wait_for("the new address NATed", lambda: natted(new))
    assert alloc["PublicIp"] not in nat
    ec2.release_address(AllocationId=alloc["AllocationId"])
    as_compute(cloud, "network.port_unplug", {"eni": port["eni_id"], "host": host})
    as_compute(cloud, "network.port_delete", {"eni": port["eni_id"]})
    assert cloud.psql("SELECT count(*) FROM network.addresses WHERE host(public_ip) = '%s'" % new) == "0"


def test_stop_and_start_release_and_give_the_public_address(cloud):
    """network.instance_public_ip, what compute's public task asks at a stop (want false)
    and a start (want true): the auto-assigned address leaves the router's 1:1 NAT and the
    host's document, then a new one (not the first) is NATed; asked again, nothing changes;
    the answer carries the interface's facts with the address (docs/network.md, "Stop and
    start")."""
    account, key, secret = new_tenant(cloud, "netstop")
    ec2 = boto3_client(cloud, "ec2", key, secret)
    host = host_of(cloud)
    vid = ec2.create_vpc(CidrBlock="10.86.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.86.1.0/24")["Subnet"]["SubnetId"]
    iid = "i-0aaaaaaaaaaaaaac2"
    port = as_compute(cloud, "network.port_create", {"account": account, "subnet": sid, "host": host,
                                                     "instance_id": iid, "associate_public_ip": True, "plug": True})
    router = "virga-d%d-r-%s.%d" % (cloud.base, host, port_vni(cloud, port))

    def public_ip():
        doc = as_compute(cloud, "network.host_desired", {"host": host})
        return [i for i in doc["interfaces"] if i["eni_id"] == port["eni_id"]][0].get("public_ip")

    def nat():
        return ns_exec(router, "nft", "list", "table", "ip", "virga_nat").stdout

    first = public_ip()
    wait_for("the first address NATed", lambda: ("ip daddr %s dnat to %s" % (first, port["ip"])) in nat())
    for _ in range(2):
        r = as_compute(cloud, "network.instance_public_ip", {"account": account, "instance": iid, "want": False})
        assert [f.get("public_ip") for f in r["facts"]] == [None] and r["without"] == []
        assert public_ip() is None
    wait_for("no NAT of the released address", lambda: first not in nat())
    seen = set()
    for _ in range(2):
        r = as_compute(cloud, "network.instance_public_ip", {"account": account, "instance": iid, "want": True})
        (f,) = r["facts"]
        seen.add(f["public_ip"])
        assert f["public_owner"] == "amazon" and r["without"] == []
    (new,) = seen
    assert new != first and public_ip() == new
    wait_for("the new address NATed", lambda: ("ip daddr %s dnat to %s" % (new, port["ip"])) in nat())
    as_compute(cloud, "network.port_unplug", {"eni": port["eni_id"], "host": host})
    as_compute(cloud, "network.port_delete", {"eni": port["eni_id"]})
    delete_vpc(ec2, vid, sid)


def test_attached_interface_appears_in_the_running_instance(cloud):
    """AttachNetworkInterface through the EC2 API: the agent, woken by the doorbell, plugs
    the interface into the instance's own network namespace (the one its container runs
    in) as eth1 with its MAC and address, its host side on the VPC's bridge;
    DetachNetworkInterface takes it out; the primary is untouched throughout."""
    account, key, secret = new_tenant(cloud, "netattach")
    ec2 = boto3_client(cloud, "ec2", key, secret)
    host = host_of(cloud)
    pfx = "virga-d%d-" % cloud.base
    vid = ec2.create_vpc(CidrBlock="10.84.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.84.1.0/24")["Subnet"]["SubnetId"]
    iid = "i-0aaaaaaaaaaaaaab1"
    port = as_compute(cloud, "network.port_create", {"account": account, "subnet": sid, "instance_id": iid,
                                                     "host": host})
    as_compute(cloud, "network.port_plug", {"eni": port["eni_id"], "host": host})
    ins = "%si-%s.%s" % (pfx, host, port["eni_id"])
    wait_for("the primary's namespace", lambda: ins in namespaces(cloud))
    extra = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]
    att = ec2.attach_network_interface(NetworkInterfaceId=extra["NetworkInterfaceId"], InstanceId=iid,
                                       DeviceIndex=1)["AttachmentId"]
    shown = wait_for("eth1 in the instance", lambda: "inet %s/24" % extra["PrivateIpAddress"] in
                     ns_exec(ins, "ip", "addr", "show", "dev", "eth1").stdout and
                     ns_exec(ins, "ip", "link", "show", "dev", "eth1").stdout)
    assert extra["MacAddress"] in shown
    # the primary kept its address and its default route
    assert "inet %s/24" % port["ip"] in ns_exec(ins, "ip", "addr", "show", "dev", "eth0").stdout
    assert "default via" in ns_exec(ins, "ip", "route").stdout
    # its host side is on the VPC's bridge, like the primary's
    br = ns_exec("%sh-%s" % (pfx, host), "ip", "-o", "link", "show", "master", "vb-%d" % port_vni(cloud, port)).stdout
    assert "vt-" + extra["NetworkInterfaceId"][4:16] in br and "vt-" + port["eni_id"][4:16] in br
    ec2.detach_network_interface(AttachmentId=att)
    wait_for("eth1 gone", lambda: ns_exec(ins, "ip", "link", "show", "dev", "eth1").returncode != 0)
    assert "inet %s/24" % port["ip"] in ns_exec(ins, "ip", "addr", "show", "dev", "eth0").stdout
    as_compute(cloud, "network.port_delete", {"eni": port["eni_id"]})
    wait_for("the namespace gone", lambda: ins not in namespaces(cloud))
    ec2.delete_network_interface(NetworkInterfaceId=extra["NetworkInterfaceId"])
    delete_vpc(ec2, vid, sid)


def test_agent_restart_adopts_the_datapath(cloud):
    """kill -9 of the agent, then up: the datapath it left is adopted as it is (the
    stand-in namespace is the same one, so an instance in it would keep its network)."""
    account, key, secret = new_tenant(cloud, "netagent2")
    ec2 = boto3_client(cloud, "ec2", key, secret)
    host = host_of(cloud)
    pfx = "virga-d%d-" % cloud.base
    vid = ec2.create_vpc(CidrBlock="10.82.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.82.1.0/24")["Subnet"]["SubnetId"]
    p = as_compute(cloud, "network.port_create", {"account": account, "subnet": sid,
                                                  "instance_id": "i-0bbbbbbbbbbbbbbb1", "host": host})
    as_compute(cloud, "network.port_plug", {"eni": p["eni_id"], "host": host})
    stand_in = "%si-%s.%s" % (pfx, host, p["eni_id"])
    wait_for("the stand-in namespace", lambda: stand_in in namespaces(cloud))
    # made whole (its address is set last): before that the name may not be mounted yet
    wait_for("the stand-in's address", lambda: ("inet %s/" % p["ip"]) in ns_exec(
        stand_in, "ip", "addr", "show", "dev", "eth0").stdout)
    inode = os.stat("/run/netns/" + stand_in).st_ino
    os.kill(cloud.pid("agent"), 9)
    r = cloud.up()
    assert r.returncode == 0, r.stderr
    wait_for("the metadata service after the restart", lambda: ns_exec(
        stand_in, "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
        "http://169.254.169.254/latest/meta-data/").stdout.strip() not in ("", "000"))
    assert os.stat("/run/netns/" + stand_in).st_ino == inode
    as_compute(cloud, "network.port_delete", {"eni": p["eni_id"]})
    delete_vpc(ec2, vid, sid)
    wait_for("an empty host", lambda: namespaces(cloud) == [] or None)


# A TCP server that answers every connection with "hi", and a client that exits 0 once
# answered (2 s: a connection the rules refuse has its SYN dropped).
SERVE = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
         "s.bind(('0.0.0.0',8080));s.listen(8)\nwhile 1:\n c,_=s.accept();c.sendall(b'hi');c.close()")
CONNECT = ("import socket,sys\ntry:\n c=socket.create_connection((sys.argv[1],8080),timeout=2);"
           "sys.exit(0 if c.recv(2)==b'hi' else 1)\nexcept OSError:\n sys.exit(1)")


def test_security_group_changes_reach_the_host_in_place(cloud):
    """AuthorizeSecurityGroupIngress / RevokeSecurityGroupIngress through /usr/bin/aws on
    a group whose rule refers to another group: the agent applies each change to the
    host's nftables in place (the group's own chains, the referenced group's set of member
    addresses), never rewriting the host's tables (their handle stays), and traffic
    between two stand-ins on the host follows: refused, allowed, refused again; a third
    member of the referenced group plugged later is allowed at once."""
    account, key, secret = new_tenant(cloud, "netsg")
    host = host_of(cloud)
    pfx = "virga-d%d-" % cloud.base
    hns = "%sh-%s" % (pfx, host)

    def ec2(*args):
        rc, out, err = aws(cloud, "ec2", *args, access_key=key, secret_key=secret)
        assert rc == 0, err
        return out
    vid = ec2("create-vpc", "--cidr-block", "10.85.0.0/16")["Vpc"]["VpcId"]
    sid = ec2("create-subnet", "--vpc-id", vid, "--cidr-block", "10.85.1.0/24")["Subnet"]["SubnetId"]
    web = ec2("create-security-group", "--group-name", "web", "--description", "w", "--vpc-id", vid)["GroupId"]
    cli = ec2("create-security-group", "--group-name", "clients", "--description", "c", "--vpc-id", vid)["GroupId"]
    ports = [as_compute(cloud, "network.port_create", {"account": account, "subnet": sid, "groups": [g],
                                                       "instance_id": "i-0dddddddddddddd%02d" % n, "host": host})
             for n, g in enumerate((web, cli, cli))]
    server, client, late = ports
    for p in (server, client):
        as_compute(cloud, "network.port_plug", {"eni": p["eni_id"], "host": host})
    stand_in = {p["eni_id"]: "%si-%s.%s" % (pfx, host, p["eni_id"]) for p in ports}
    for p in (server, client):
        wait_for("the stand-in's address", lambda: ("inet %s/" % p["ip"]) in ns_exec(
            stand_in[p["eni_id"]], "ip", "addr", "show", "dev", "eth0").stdout)
    srv = subprocess.Popen(["ip", "netns", "exec", stand_in[server["eni_id"]], "/usr/bin/python3", "-c", SERVE],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def reaches(p):
            return ns_exec(stand_in[p["eni_id"]], "/usr/bin/python3", "-c", CONNECT, server["ip"]).returncode == 0

        def table():
            r = ns_exec(hns, "nft", "-a", "list", "table", "inet", "virga_sg")
            assert r.returncode == 0, r.stderr
            return r.stdout.split("\n", 1)[0]      # "table inet virga_sg { # handle N"
        before = table()
        assert not reaches(client)
        perm = "IpProtocol=tcp,FromPort=8080,ToPort=8080,UserIdGroupPairs=[{GroupId=%s}]" % cli
        ec2("authorize-security-group-ingress", "--group-id", web, "--ip-permissions", perm)
        wait_for("the rule applied", lambda: reaches(client))
        chain = ns_exec(hns, "nft", "list", "chain", "inet", "virga_sg", "gi_" + web.replace("-", "_")).stdout
        assert "ip saddr @g_%s tcp dport 8080 accept" % cli.replace("-", "_") in chain
        # the third member of clients: in the set as soon as it is plugged
        as_compute(cloud, "network.port_plug", {"eni": late["eni_id"], "host": host})
        wait_for("the stand-in's address", lambda: ("inet %s/" % late["ip"]) in ns_exec(
            stand_in[late["eni_id"]], "ip", "addr", "show", "dev", "eth0").stdout)
        wait_for("the new member allowed", lambda: reaches(late))
        ec2("revoke-security-group-ingress", "--group-id", web, "--ip-permissions", perm)
        wait_for("the rule revoked", lambda: not reaches(client) and not reaches(late))
        assert table() == before, "the host's tables were rewritten instead of changed in place"
    finally:
        srv.kill()      # our own process, by its handle
        srv.wait(timeout=10)
    for p in ports:
        as_compute(cloud, "network.port_delete", {"eni": p["eni_id"]})
    for g in (web, cli):
        ec2("delete-security-group", "--group-id", g)
    ec2("delete-subnet", "--subnet-id", sid)
    ec2("delete-vpc", "--vpc-id", vid)
    wait_for("an empty host", lambda: namespaces(cloud) == [] or None)


def handled(cloud, service, mtype):
    """How many mtype messages the service has handled (its sys.metrics)."""
    ok, reply = cloud.call(service, "sys.metrics", timeout_ms=5000)
    assert ok, reply
    m = re.search(r'^virga_bus_handled_total\{[^}]*type="%s"[^}]*\} (\S+)$' % re.escape(mtype), reply["text"], re.M)
    return int(float(m.group(1))) if m else 0


def test_the_pushed_document_alone_updates_the_agent():
    """With a reconcile tick of an hour the agent pulls its document once, at its start;
    after that agent.network_changed (published by the network service after the commit)
    carries the document and the agent applies it without asking network.host_desired.
    A document from anyone but the network, or older than the one applied, changes
    nothing."""
    c = Cloud.start(extra_args=("--objectstore", "dir"),
                    env={"VIRGA_AGENT_RECONCILE_INTERVAL_S": "3600",
                         "VIRGA_AGENT_DATAPATH_VPC_IDLE_TEARDOWN_S": str(IDLE_S)})
    try:
        account, key, secret = new_tenant(c, "doorbell")
        ec2 = boto3_client(c, "ec2", key, secret)
        host = host_of(c)
        # the agent's pull at its start: answered, or dropped at its 10 s deadline when the
        # network joined the bus later (the agent then waits for its tick, or a push)
        end = time.time() + 15
        while handled(c, "network", "network.host_desired") < 1 and time.time() < end:
            time.sleep(0.3)
        pulls = handled(c, "network", "network.host_desired")
        vid = ec2.create_vpc(CidrBlock="10.83.0.0/16")["Vpc"]["VpcId"]
        sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.83.1.0/24")["Subnet"]["SubnetId"]

        def plug(instance):
            p = as_compute(c, "network.port_create", {"account": account, "subnet": sid,
                                                      "instance_id": instance, "host": host})
            as_compute(c, "network.port_plug", {"eni": p["eni_id"], "host": host})
            return p, "virga-d%d-i-%s.%s" % (c.base, host, p["eni_id"])
        p, stand_in = plug("i-0ccccccccccccccc1")
        wait_for("the stand-in namespace", lambda: stand_in in namespaces(c))
        assert handled(c, "network", "network.host_desired") == pulls, "the agent pulled instead of applying the push"

        desired = as_compute(c, "network.host_desired", {"host": host})
        gen = desired["generation"]
        empty = {"host": host, "underlay_ip": desired["underlay_ip"], "vpcs": [], "interfaces": [],
                 "security_groups": [], "group_members": {}, "outside": desired["outside"]}
        # forged: virgadm may write to the host's topic, but only the network may send this
        newer = dict(empty, generation=gen + 1000)
        ok, err = c.call("virga.host." + host, "agent.network_changed", {"generation": gen + 1000, "document": newer})
        assert not ok and "AccessDenied" in err, err
        # from the network itself (its own credential), but older than what is applied
        old = dict(empty, generation=gen - 1)
        r = c.virgadm("--set", "bus.credential_file=" + os.path.join(c.dir, "secrets", "bus", "network.cred"),
                      "call", "virga.host." + host, "agent.network_changed",
                      json.dumps({"generation": gen - 1, "document": old}))
        assert r.returncode == 0, r.stderr
        inode = os.stat("/run/netns/" + stand_in).st_ino
        time.sleep(2)   # an apply of either would have torn the host down by now
        # the next real change is applied on the same namespace: it was never torn down
        p2, stand_in2 = plug("i-0ccccccccccccccc2")
        wait_for("the second stand-in namespace", lambda: stand_in2 in namespaces(c))
        assert stand_in in namespaces(c) and os.stat("/run/netns/" + stand_in).st_ino == inode
        for q in (p, p2):
            as_compute(c, "network.port_unplug", {"eni": q["eni_id"], "host": host})
        # the VPC's grace ends with no tick to pull: the agent's own timer
        wait_for("an empty host", lambda: namespaces(c) == [] or None, seconds=IDLE_S + 60)
        assert handled(c, "network", "network.host_desired") == pulls + 1, "only compute's read above was a pull"
    finally:
        c.stop()
    assert namespaces(c) == []
