"""A MaxCount launch's ports in one network.port_create_many (docs/compute.md, "One
network.port_create for a reservation's ports", as built), on a cloud of one sim host:
a MaxCount 20 launch ends with 20 distinct addresses and every instance running, its
ports made in one network transaction (their rows share its now()); kill -9 of compute
right after RunInstances answered, or of the network while the batch is asked, ends
with every instance running and exactly one port each (the network's ports are the
instances' interfaces); siblings terminated while the batch is in flight (the network
frozen) end terminated with no port left; a subnet with fewer free addresses than the
launch fails only the instances it has no address for."""
import concurrent.futures
import os
import signal
import time
import uuid

import pytest

from harness import Cloud, boto3_client, new_tenant

WAIT_S = 120


@pytest.fixture(scope="module")
def cloud():
    c = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True,
                    env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "64",
                         "VIRGA_AGENT_MEMORY_MIB": "65536"})
    try:
        yield c
    finally:
        c.stop_later()


@pytest.fixture(scope="module")
def ami(cloud):
    return cloud.default_images()["virga-busybox-rootfs"]


def tenant(cloud):
    acct, k, s = new_tenant(cloud, "batch-" + uuid.uuid4().hex[:8])
    return acct, boto3_client(cloud, "ec2", k, s)


def states(ec2, ids):
    return {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
            for i in r["Instances"]}


def wait_settled(ec2, ids, allowed=("running",), seconds=WAIT_S):
    deadline = time.time() + seconds
    while True:
        got = states(ec2, ids)
        if len(got) == len(ids) and all(i["State"]["Name"] in allowed for i in got.values()):
            return got
        assert time.time() < deadline, "not settled in %s: %s" % (
            allowed, sorted((i, x["State"]["Name"]) for i, x in got.items()))
        time.sleep(0.3)


def ports_of(cloud, acct):
    """{instance: [eni]} as the network has them, and as compute records them."""
    net, comp = {}, {}
    for line in cloud.psql("SELECT instance_id || ' ' || id FROM network.enis WHERE account_id = '%s' AND "
                           "instance_id IS NOT NULL" % acct).splitlines():
        i, e = line.split()
        net.setdefault(i, []).append(e)
    for line in cloud.psql("SELECT f.instance_id || ' ' || f.eni_id FROM compute.instance_interfaces f JOIN "
                           "compute.instances i ON i.id = f.instance_id WHERE i.account_id = '%s' AND NOT f.deleted"
                           % acct).splitlines():
        i, e = line.split()
        comp.setdefault(i, []).append(e)
    return net, comp


def wait_ports_match(cloud, acct, running):
    """Every running instance has exactly one port, recorded, and no other port is left."""
    deadline = time.time() + WAIT_S
    while True:
        net, comp = ports_of(cloud, acct)
        if net == comp and set(net) == set(running) and all(len(v) == 1 for v in net.values()):
            return net
        if time.time() > deadline:
            left = [i for i in net if i not in running]
            log = open(os.path.join(cloud.dir, "log", "compute.log"), errors="replace").read().splitlines()
            print("\n".join(line for line in log if any(i in line for i in left)))
        assert time.time() < deadline, "ports: network %s, compute %s, running %s" % (net, comp, sorted(running))
        time.sleep(0.5)


def launch(ec2, ami, n, **kw):
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=kw.pop("MinCount", n), MaxCount=n, **kw)
    return [i["InstanceId"] for i in r["Instances"]]


def test_max_count_20_one_transaction_distinct_addresses(cloud, ami):
    acct, ec2 = tenant(cloud)
    ids = launch(ec2, ami, 20)
    got = wait_settled(ec2, ids)
    addrs = [i["PrivateIpAddress"] for i in got.values()]
    assert len(set(addrs)) == 20, addrs
    wait_ports_match(cloud, acct, ids)
    # made in one network transaction: their rows share its now() (one by one, each port
    # was its own transaction); a sibling whose task ran before the batch may have its own
    made = cloud.psql("SELECT count(*) FROM network.enis WHERE account_id = '%s' GROUP BY created_at "
                      "ORDER BY 1 DESC LIMIT 1" % acct)
    assert int(made) >= 10, made
    ec2.terminate_instances(InstanceIds=ids)
    wait_settled(ec2, ids, ("terminated",))
    wait_ports_match(cloud, acct, [])


@pytest.mark.parametrize("victim", ["compute", "network"])
def test_killed_during_the_batch_converges(cloud, ami, victim):
    """kill -9 of compute right after RunInstances answered (the batch's answer in flight
    or being recorded), or of the network while it makes the batch: every instance ends
    running with one port, none left over."""
    acct, ec2 = tenant(cloud)
    ids = launch(ec2, ami, 20)
    os.kill(cloud.pid(victim), signal.SIGKILL)
    assert cloud.up().returncode == 0
    wait_settled(ec2, ids)
    wait_ports_match(cloud, acct, ids)


def test_siblings_terminated_during_the_batch_leave_no_port(cloud, ami):
    acct, ec2 = tenant(cloud)
    warm = launch(ec2, ami, 1)   # the account's launch facts, so RunInstances answers without the network
    wait_settled(ec2, warm)
    net = cloud.pid("network")
    os.kill(net, signal.SIGSTOP)   # the batch's question waits: the siblings' rows are held
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            ids = pool.submit(launch, ec2, ami, 6).result(timeout=60)
            time.sleep(1.5)
            gone = ids[1:4]
            term = pool.submit(ec2.terminate_instances, InstanceIds=gone)
            time.sleep(1.0)
            os.kill(net, signal.SIGCONT)
            term.result(timeout=90)
    finally:
        os.kill(net, signal.SIGCONT)
    kept = [i for i in ids if i not in gone]
    wait_settled(ec2, gone, ("terminated",))
    wait_settled(ec2, kept)
    wait_ports_match(cloud, acct, kept + warm)


def test_a_port_that_cannot_be_made_fails_only_its_instance(cloud, ami):
    acct, ec2 = tenant(cloud)
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    # a /28: 11 usable addresses for 14 instances
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/28")["Subnet"]["SubnetId"]
    ids = launch(ec2, ami, 14, SubnetId=sub)
    got = wait_settled(ec2, ids, ("running", "terminated"))
    running = [i for i, x in got.items() if x["State"]["Name"] == "running"]
    failed = [x for x in got.values() if x["State"]["Name"] == "terminated"]
    assert len(running) == 11, sorted((i, x["State"]) for i, x in got.items())
    assert all("InsufficientFreeAddressesInSubnet" in x["StateReason"]["Message"] for x in failed), failed
    assert len({got[i]["PrivateIpAddress"] for i in running}) == 11
    wait_ports_match(cloud, acct, running)
