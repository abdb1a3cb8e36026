"""Bursting to public EC2-compatible clouds (docs/hybrid.md), end to end with Debian's
boto3, against two public clouds nobody here wrote the same way: moto's EC2 server
(tests/.venv-moto, tests/moto-setup.sh) and a second Virga cloud (devcloud on its own dir
and port base, sim driver). The private cloud has one sim host with room for one t3.nano;
its hybrid.yaml declares three regions, each run by its own ec2 agent: `moto` (zone b,
at most 3 instances), `vpub` (the second Virga, zone c) and `flaky` (zone d: moto behind a
fault-injecting proxy on loopback that refuses, throttles or stalls on demand).

Covered: a full private cloud with policy private says bursting was not allowed; policy
burst puts the overflow in a public cloud, DescribeInstances in the private cloud shows it
running with the remote id (tag virga:remote-instance-id), the cloud (tag virga:cloud) and
the remote address (ipAddress), the remote cloud shows the instance tagged with the local
id, terminate ends both sides; policy public skips the private host; the capacity error
says the public clouds were full too; the account's policy from config; the hosts of
remote instances carry the cloud's name for accounting (hosts.cloud); kill -9 of an ec2
agent mid-burst and its restart leave exactly one remote instance; an orphan (tagged for
this cloud, owned by no local instance) is terminated by the reconciler; a public cloud
that refuses, throttles or does not answer gives a clear state reason, is retried, and the
instance runs once the cloud is healthy again."""
import base64
import csv
import io
import json
import os
import signal
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import boto3_client, new_tenant
from hybrid import (MOTO_AMI, FaultProxy, Moto, moto_client, moto_region, start_private, start_public_virga,
                    virga_region)
from usage_helpers import shift, start_accounting, stop_accounting, wait_records

WAIT_S = 120
SLOW_DEADLINE_S = 12


@pytest.fixture(scope="module")
def moto():
    m = Moto()
    yield m.url
    m.stop()


@pytest.fixture(scope="module")
def proxy(moto):
    p = FaultProxy(moto)
    yield p
    p.close()


@pytest.fixture(scope="module")
def slow_proxy(moto):
    p = FaultProxy(moto)
    yield p
    p.close()


@pytest.fixture(scope="module")
def moto_group(moto):
    """A security group at moto that the moto region maps the local group `burst-web` to."""
    return moto_client(moto).create_security_group(GroupName="virga-burst-web-" + uuid.uuid4().hex[:6],
                                                   Description="web, for burst instances")["GroupId"]


@pytest.fixture(scope="module")
def vpub():
    pub = start_public_virga()
    yield pub
    pub["cloud"].stop()


@pytest.fixture(scope="module")
def private(moto, proxy, slow_proxy, moto_group, vpub):
    env = {"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "2", "VIRGA_AGENT_MEMORY_MIB": "4096",
           "VIRGA_COMPUTE_CPU_OVERCOMMIT": "1", "VIRGA_AGENT_SYNC_INTERVAL_S": "2",
           "VIRGA_GATEWAY_AVAILABILITY_ZONES": "us-east-1a,us-east-1b,us-east-1c,us-east-1d,us-east-1e"}
    c = start_private([
        moto_region("moto", moto, "us-east-1b", "      max_instances: 3\n      max_vcpus: 64\n"
                    "      security_groups:\n        burst-web: %s\n" % moto_group),
        virga_region("vpub", vpub, "us-east-1c", "      max_instances: 4\n      max_vcpus: 64\n"),
        moto_region("flaky", "http://127.0.0.1:%d" % proxy.port, "us-east-1d",
                    "      max_vcpus: 4\n      timeout_ms: 1000\n      retries: 1\n      retry_base_ms: 50\n"),
        # zone e: a region whose launches fail after a short deadline (compute keeps it)
        moto_region("slow", "http://127.0.0.1:%d" % slow_proxy.port, "us-east-1e",
                    "      max_vcpus: 4\n      timeout_ms: 1000\n      retries: 1\n      retry_base_ms: 50\n"
                    "      launch_deadline_s: %d\n" % SLOW_DEADLINE_S),
    ], env=env)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def tenant(private):
    acct, k, s = new_tenant(private, "burst-" + uuid.uuid4().hex[:8])
    ami = private.default_images()["virga-busybox-rootfs"]
    return {"account": acct, "ec2": boto3_client(private, "ec2", k, s), "ami": ami}


def policy(p):
    return [{"ResourceType": "instance", "Tags": [{"Key": "virga:placement", "Value": p}]}]


def run(t, n=1, pol=None, zone=None, min_count=None):
    kw = {"TagSpecifications": policy(pol)} if pol else {}
    if zone:
        kw["Placement"] = {"AvailabilityZone": zone}
    r = t["ec2"].run_instances(ImageId=t["ami"], InstanceType="t3.nano", MinCount=min_count or n, MaxCount=n, **kw)
    return [i["InstanceId"] for i in r["Instances"]]


def describe(ec2, ids):
    return {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}


def tags(i):
    return {t["Key"]: t["Value"] for t in i.get("Tags", [])}


def wait_for(ec2, ids, pred, what, seconds=WAIT_S):
    deadline = time.time() + seconds
    while True:
        got = describe(ec2, ids)
        if len(got) == len(ids) and all(pred(i) for i in got.values()):
            return got
        assert time.time() < deadline, "not %s: %s" % (what, json.dumps(
            {k: [v["State"]["Name"], v.get("StateReason"), tags(v), v.get("PublicIpAddress")] for k, v in got.items()},
            default=str))
        time.sleep(0.3)


def running_remote(i):
    return (i["State"]["Name"] == "running" and "virga:remote-instance-id" in tags(i) and
            bool(i.get("PublicIpAddress")))


def live_remote(ec2, local_id, owner):
    """Remote instances (not terminated) that carry this local id and owner (the private
    cloud's hybrid.owner; the tag is <owner>/<region>)."""
    out = []
    for r in ec2.describe_instances(Filters=[{"Name": "tag:virga:instance-id", "Values": [local_id]}])["Reservations"]:
        for i in r["Instances"]:
            if i["State"]["Name"] not in ("terminated", "shutting-down") and tags(i).get("virga:owner", "").startswith(owner + "/"):
                out.append(i)
    return out


def terminate_all(t, ids):
    t["ec2"].terminate_instances(InstanceIds=ids)
    wait_for(t["ec2"], ids, lambda i: i["State"]["Name"] == "terminated", "terminated")


def test_private_full_then_burst_to_both_public_clouds(private, tenant, moto, vpub):
    ec2 = tenant["ec2"]
    (local,) = run(tenant, pol="burst")            # the private host has room for one
    got = wait_for(ec2, [local], lambda i: i["State"]["Name"] == "running", "running")
    assert "virga:cloud" not in tags(got[local])

    # full: policy private may not burst, and says so
    with pytest.raises(ClientError) as ei:
        run(tenant, pol="private")
    err = ei.value.response["Error"]
    assert err["Code"] == "InsufficientInstanceCapacity"
    assert "Bursting to a public cloud was not allowed (placement policy private)" in err["Message"], err

    # burst into each public cloud (zone b is moto's, c the second Virga's)
    ids = {"moto": run(tenant, pol="burst", zone="us-east-1b")[0],
           "vpub": run(tenant, pol="burst", zone="us-east-1c")[0]}
    got = wait_for(ec2, list(ids.values()), running_remote, "running remotely")
    mc = moto_client(moto)
    for cloud, lid in ids.items():
        i = got[lid]
        assert tags(i)["virga:cloud"] == cloud
        rid = tags(i)["virga:remote-instance-id"]
        remote_ec2 = mc if cloud == "moto" else vpub["ec2"]
        (r,) = [x for res in remote_ec2.describe_instances(InstanceIds=[rid])["Reservations"] for x in res["Instances"]]
        assert r["State"]["Name"] == "running"
        assert tags(r)["virga:instance-id"] == lid and tags(r)["virga:owner"] == private.owner + "/" + cloud
        assert i["PublicIpAddress"] in (r.get("PublicIpAddress"), r.get("PrivateIpAddress"))
        # the instance's host carries the cloud's name: what accounting prices bursts by
        assert private.psql("SELECT h.cloud FROM compute.instances i JOIN compute.hosts h USING (host_id) "
                            "WHERE i.id = '%s'" % lid) == cloud
    assert r["InstanceType"] == "t3.nano"
    (mr,) = live_remote(mc, ids["moto"], private.owner)
    assert mr["InstanceType"] == "t2.micro"        # the instance-type map
    assert mr["ImageId"] == MOTO_AMI                # the image map

    # the same filters work on the private side
    f = ec2.describe_instances(Filters=[{"Name": "tag:virga:cloud", "Values": ["moto"]}])["Reservations"]
    assert [i["InstanceId"] for r in f for i in r["Instances"]] == [ids["moto"]]

    # the console is the remote's (GetConsoleOutput there, reported by the ec2 agent)
    deadline = time.time() + WAIT_S
    while not ec2.get_console_output(InstanceId=ids["vpub"]).get("Output"):
        assert time.time() < deadline, "no console for the burst instance"
        time.sleep(0.5)

    # stop and start go to the remote instance
    ec2.stop_instances(InstanceIds=[ids["moto"]])
    wait_for(ec2, [ids["moto"]], lambda i: i["State"]["Name"] == "stopped", "stopped")
    assert live_remote(mc, ids["moto"], private.owner)[0]["State"]["Name"] == "stopped"
    ec2.start_instances(InstanceIds=[ids["moto"]])
    wait_for(ec2, [ids["moto"]], running_remote, "running again")

    terminate_all(tenant, [local] + list(ids.values()))
    assert live_remote(mc, ids["moto"], private.owner) == []
    assert live_remote(vpub["ec2"], ids["vpub"], private.owner) == []


def test_policy_public_and_full_everywhere(private, tenant, moto):
    # policy public: never the private host, even with room there
    ids = run(tenant, pol="public", zone="us-east-1b")
    got = wait_for(tenant["ec2"], ids, running_remote, "running remotely")
    assert tags(got[ids[0]])["virga:cloud"] == "moto"
    # the public clouds full too: the error says so (moto allows 3 instances; 2 more do not fit)
    with pytest.raises(ClientError) as ei:
        run(tenant, n=3, pol="burst", zone="us-east-1b")
    msg = ei.value.response["Error"]["Message"]
    assert ei.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert "full too (placement policy burst)" in msg and "moto" in msg, msg
    # a policy the tenant cannot spell
    with pytest.raises(ClientError) as ei:
        run(tenant, pol="anywhere")
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValue"
    terminate_all(tenant, ids)


def test_account_policy_from_config(private, tenant):
    """compute.placement_policy_accounts gives one account burst without a tag."""
    acct, k, s = new_tenant(private, "cfgburst-" + uuid.uuid4().hex[:8])
    private.start_env["VIRGA_COMPUTE_PLACEMENT_POLICY_ACCOUNTS"] = "%s=burst" % acct
    private.restart("compute")                     # compute reads its environment at start
    t = {"ec2": boto3_client(private, "ec2", k, s), "ami": tenant["ami"]}
    ids = run(t, zone="us-east-1c")                # no tag: the account's policy (burst) applies
    got = wait_for(t["ec2"], ids, running_remote, "running remotely")
    assert tags(got[ids[0]])["virga:cloud"] == "vpub"
    # another account keeps the default (private): zone c has no private host
    with pytest.raises(ClientError) as ei:
        run(tenant, zone="us-east-1c")
    assert "not allowed (placement policy private)" in ei.value.response["Error"]["Message"]
    terminate_all(t, ids)


def test_kill_ec2_agent_mid_burst_no_duplicate_no_orphan(private, tenant, moto):
    mc = moto_client(moto)
    ids = run(tenant, n=2, pol="public", zone="us-east-1b")
    # the agent dies as soon as the remote launch has begun (or before): kill -9
    deadline = time.time() + 30
    while not any(live_remote(mc, i, private.owner) for i in ids) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(private.pid("agent-moto"), signal.SIGKILL)
    time.sleep(1)
    r = private.up()                               # devcloud restarts what died
    assert r.returncode == 0, r.stderr
    wait_for(tenant["ec2"], ids, running_remote, "running remotely after the restart")
    for i in ids:
        assert len(live_remote(mc, i, private.owner)) == 1, "duplicate remote instances of %s" % i

    # an orphan: tagged for this cloud, owned by no local instance -> terminated
    orphan_id = "i-0123456789abcdef0"
    (o,) = mc.run_instances(ImageId=MOTO_AMI, MinCount=1, MaxCount=1, TagSpecifications=[{
        "ResourceType": "instance", "Tags": [{"Key": "virga:owner", "Value": private.owner + "/moto"},
                                             {"Key": "virga:instance-id", "Value": orphan_id}]}])["Instances"]
    # someone else's instance (another owner) is never touched
    (other,) = mc.run_instances(ImageId=MOTO_AMI, MinCount=1, MaxCount=1, TagSpecifications=[{
        "ResourceType": "instance", "Tags": [{"Key": "virga:owner", "Value": "another-cloud"},
                                             {"Key": "virga:instance-id", "Value": orphan_id}]}])["Instances"]
    deadline = time.time() + WAIT_S
    while live_remote(mc, orphan_id, private.owner):
        assert time.time() < deadline, "the orphan was not terminated"
        time.sleep(0.5)
    (st,) = [i for r in mc.describe_instances(InstanceIds=[other["InstanceId"]])["Reservations"] for i in r["Instances"]]
    assert st["State"]["Name"] == "running"
    terminate_all(tenant, ids)
    for i in ids:
        assert live_remote(mc, i, private.owner) == []


@pytest.mark.parametrize("mode,words", [("refuse", "InsufficientInstanceCapacity"), ("throttle", "RequestLimitExceeded"),
                                        ("stall", "did not answer")])
def test_public_cloud_faults_give_a_reason_and_a_retry(private, tenant, proxy, moto, mode, words):
    ec2 = tenant["ec2"]
    proxy.mode = mode
    before = dict(proxy.seen)
    try:
        ids = run(tenant, pol="public", zone="us-east-1d")
        got = wait_for(ec2, ids, lambda i: words in (i.get("StateReason") or {}).get("Message", ""),
                       "showing the fault")
        i = got[ids[0]]
        assert i["State"]["Name"] == "pending"
        assert "flaky" in i["StateReason"]["Message"], i["StateReason"]
        # retried: more than one attempt reached the cloud
        action = "RunInstances" if mode == "refuse" else "DescribeInstances"
        deadline = time.time() + WAIT_S
        while proxy.seen.get(action, 0) - before.get(action, 0) < 2:
            assert time.time() < deadline, "no retry: %s" % proxy.seen
            time.sleep(0.2)
    finally:
        proxy.mode = "pass"
    got = wait_for(ec2, ids, running_remote, "running once the cloud is healthy")
    assert tags(got[ids[0]])["virga:cloud"] == "flaky"
    assert len(live_remote(moto_client(moto), ids[0], private.owner)) == 1
    terminate_all(tenant, ids)


def test_terminate_while_public_cloud_throttles_waits_for_it(private, tenant, proxy, moto):
    """A region whose list fails proves nothing: the terminated instance stays
    shutting-down (compute is told the report is incomplete) until the region answers and
    the remote instance is gone, so nothing runs on there unseen."""
    ec2 = tenant["ec2"]
    ids = run(tenant, pol="public", zone="us-east-1d")
    wait_for(ec2, ids, running_remote, "running remotely")
    mc = moto_client(moto)
    proxy.mode = "throttle"
    try:
        ec2.terminate_instances(InstanceIds=ids)
        # several of the agent's passes fail while the instance is shutting-down
        start = proxy.seen.get("DescribeInstances", 0)
        deadline = time.time() + WAIT_S
        while proxy.seen.get("DescribeInstances", 0) - start < 6:
            assert time.time() < deadline, "the agent stopped asking: %s" % proxy.seen
            time.sleep(0.2)
        assert describe(ec2, ids)[ids[0]]["State"]["Name"] == "shutting-down"
        assert len(live_remote(mc, ids[0], private.owner)) == 1
    finally:
        proxy.mode = "pass"
    wait_for(ec2, ids, lambda i: i["State"]["Name"] == "terminated", "terminated")
    assert live_remote(mc, ids[0], private.owner) == []


@pytest.mark.parametrize("code,status", [("InvalidAMIID.NotFound", 400), ("UnauthorizedOperation", 403)])
def test_permanent_refusal_fails_the_launch(private, tenant, proxy, moto, code, status):
    """A launch the public cloud refuses for good is not retried forever: the ec2 driver
    says the error is permanent, the agent reports the instance failed, and compute ends
    it as EC2 ends a failed launch (terminated, the refusal in its state reason)."""
    ec2 = tenant["ec2"]
    proxy.mode, proxy.refuse = "refuse", (code, status)
    before = proxy.seen.get("RunInstances", 0)
    try:
        ids = run(tenant, pol="public", zone="us-east-1d")
        got = wait_for(ec2, ids, lambda i: i["State"]["Name"] == "terminated", "terminated after the refusal")
    finally:
        proxy.mode, proxy.refuse = "pass", ("InsufficientInstanceCapacity", 500)
    reason = got[ids[0]]["StateReason"]
    assert reason["Code"] == "Server.InternalError", reason
    assert code in reason["Message"] and "flaky" in reason["Message"], reason
    # refused for good: not asked again and again (one job, at most one more before compute's verdict)
    assert proxy.seen.get("RunInstances", 0) - before <= 2, proxy.seen
    assert live_remote(moto_client(moto), ids[0], private.owner) == []


def test_retryable_faults_end_at_the_launch_deadline(private, tenant, slow_proxy, moto):
    """Throttling is retried, but not forever: past the region's launch_deadline_s the
    launch fails with a reason that says so, and nothing is left at the public cloud."""
    ec2 = tenant["ec2"]
    slow_proxy.mode = "throttle"
    try:
        ids = run(tenant, pol="public", zone="us-east-1e")
        got = wait_for(ec2, ids, lambda i: i["State"]["Name"] in ("shutting-down", "terminated") and
                       "did not complete within" in (i.get("StateReason") or {}).get("Message", ""),
                       "failed at the deadline", seconds=WAIT_S + SLOW_DEADLINE_S)
        msg = got[ids[0]]["StateReason"]["Message"]
        assert "%d s in the public cloud slow" % SLOW_DEADLINE_S in msg and "RequestLimitExceeded" in msg, msg
        assert slow_proxy.seen.get("DescribeInstances", 0) >= 2   # it was retried meanwhile
    finally:
        slow_proxy.mode = "pass"
    got = wait_for(ec2, ids, lambda i: i["State"]["Name"] == "terminated", "terminated")
    assert "did not complete within" in got[ids[0]]["StateReason"]["Message"], got[ids[0]]["StateReason"]
    assert live_remote(moto_client(moto), ids[0], private.owner) == []


def test_user_data_key_pair_and_groups_reach_the_remote(private, tenant, moto, moto_group):
    """RunInstances at the public cloud carries the tenant's user-data (as given), the key
    pair (imported there under virga-<account>-<name>-<hash>; a second launch with the same
    key imports nothing new) and the security groups the region maps the local ones to."""
    ec2 = tenant["ec2"]
    key = "burst-key-" + uuid.uuid4().hex[:6]
    ec2.create_key_pair(KeyName=key)
    sg = ec2.create_security_group(GroupName="burst-web", Description="web")["GroupId"]   # the default VPC
    user_data = "#!/bin/sh\necho hello from a burst\n"
    r = ec2.run_instances(ImageId=tenant["ami"], InstanceType="t3.nano", MinCount=2, MaxCount=2, KeyName=key,
                          SecurityGroupIds=[sg], UserData=user_data, Placement={"AvailabilityZone": "us-east-1b"},
                          TagSpecifications=policy("public"))
    ids = [i["InstanceId"] for i in r["Instances"]]
    wait_for(ec2, ids, running_remote, "running remotely")
    mc = moto_client(moto)
    names = set()
    for lid in ids:
        (ri,) = live_remote(mc, lid, private.owner)
        assert ri["KeyName"].startswith("virga-%s-%s-" % (tenant["account"], key)), ri.get("KeyName")
        names.add(ri["KeyName"])
        assert [g["GroupId"] for g in ri["SecurityGroups"]] == [moto_group], ri["SecurityGroups"]
        ud = mc.describe_instance_attribute(InstanceId=ri["InstanceId"], Attribute="userData")["UserData"]["Value"]
        assert base64.b64decode(ud).decode() == user_data
    assert len(names) == 1
    (kp,) = mc.describe_key_pairs(KeyNames=list(names))["KeyPairs"]
    assert kp["KeyName"] == names.pop()
    terminate_all(tenant, ids)


def test_usage_shows_private_and_public_apart(private, tenant):
    """A real burst, billed: the private cloud full, one instance overflows to a public
    region; both run and stop. Accounting's records (virgadm usage) carry cloud `private`
    for the local one and the region's name for the burst one, with the seconds each ran
    (the events moved to a fixed past timeline, as tests/e2e/test_usage.py does)."""
    acct, k, s = new_tenant(private, "billburst-" + uuid.uuid4().hex[:8])
    t = {"ec2": boto3_client(private, "ec2", k, s), "ami": tenant["ami"]}
    ec2 = t["ec2"]
    stop_accounting(private)
    try:
        (local,) = run(t, pol="burst")                 # the private host has room for one
        wait_for(ec2, [local], lambda i: i["State"]["Name"] == "running", "running")
        (burst,) = run(t, pol="burst")                 # full: the overflow goes public
        got = wait_for(ec2, [local, burst], lambda i: i["State"]["Name"] == "running", "running")
        assert "virga:cloud" not in tags(got[local])
        region = tags(wait_for(ec2, [burst], running_remote, "running remotely")[burst])["virga:cloud"]
        ec2.stop_instances(InstanceIds=[local, burst])
        wait_for(ec2, [local, burst], lambda i: i["State"]["Name"] == "stopped", "stopped")
        assert shift(private, local, ["2026-02-02T10:00:00", "2026-02-02T10:10:00"]) == ["started", "stopped"]
        assert shift(private, burst, ["2026-02-02T10:02:00", "2026-02-02T10:07:30"]) == ["started", "stopped"]
    finally:
        start_accounting(private)
    for iid, cloud, seconds in ((local, "private", 600.0), (burst, region, 330.0)):
        (rec,) = wait_records(private, iid, 1)
        assert (rec["cloud"], float(rec["quantity"]), rec["usage_type"]) == (cloud, seconds, "instance.running"), rec
    r = private.virgadm("usage", "--account", acct, "--type", "instance.running", "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    got = sorted((row[rows[0].index("resource_id")], row[rows[0].index("cloud")],
                  float(row[rows[0].index("quantity")])) for row in rows[1:])
    assert got == sorted([(local, "private", 600.0), (burst, region, 330.0)])
    terminate_all(t, [local, burst])
