"""Two agents on one machine (issue 11, docs/compute.md "Robustness with real guests"):
devcloud --agents 2 runs a second local agent (host <hostname>-2, its own datapath state
directory and image cache, bus principal agent-<hostname>-2). Container guests of the
default busybox rootfs are placed with compute.placement spread, so they land on both
hosts; each reaches running and its console shows it read its own instance id from the
metadata service of its host. kill -9 of one agent: its host goes down (DescribeHosts
under-assessment, its running instances impaired in DescribeInstanceStatus) while the
other host's instances stay ok; started again, it adopts its guests: the same one guest
per instance, no duplicate, and after terminate nothing of them is left.

Needs root. Guests are counted in this cloud's cgroups only (virga-d<port base>-agent-<host>),
never by a global scan: other test workers run clouds with guests at the same time. Waits
are bounded generously; nothing asserts a duration."""
import io
import os
import signal
import tarfile
import time
import uuid

import pytest

from harness import Cloud, boto3_client, new_tenant, s3_client
from host_guests import guest_inits, guests_on_host, primary_enis, wait_gone
from test_instances_real import wait_console
from test_instances_real_kill import states, wait_all

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real guests need root")

N = 6
CONVERGE_S = 600
DEADLINE_S = 45   # compute.launch_deadline_s of this cloud: far above a container's boot (1-3 s)


@pytest.fixture(scope="module")
def cloud():
    c = Cloud.start(default_images=True, extra_args=("--agents", "2"),
                    env={"VIRGA_AGENT_DRIVERS": "container", "VIRGA_AGENT_VCPUS": "64",
                         "VIRGA_AGENT_RECONCILE_INTERVAL_S": "2", "VIRGA_COMPUTE_HOST_DOWN_AFTER_S": "10",
                         "VIRGA_COMPUTE_PLACEMENT": "spread",
                         "VIRGA_COMPUTE_LAUNCH_DEADLINE_S": str(DEADLINE_S)})
    try:
        yield c
    finally:
        c.stop_later()


def hosts(cloud):
    """The operator's DescribeHosts: host id -> the host."""
    ec2 = boto3_client(cloud, "ec2")
    return {h["HostId"]: h for h in ec2.describe_hosts()["Hosts"]}


def host_of(cloud):
    """instance id -> host id, from the operator's DescribeHosts."""
    return {i["InstanceId"]: hid for hid, h in hosts(cloud).items() for i in h.get("Instances", [])}


def statuses(ec2, ids):
    r = ec2.describe_instance_status(InstanceIds=ids, IncludeAllInstances=True)["InstanceStatuses"]
    return {s["InstanceId"]: (s["InstanceStatus"]["Status"], s["SystemStatus"]["Status"]) for s in r}


def wait_for(what, fn, seconds=CONVERGE_S, show=lambda: ""):
    deadline = time.time() + seconds
    while True:
        got = fn()
        if got:
            return got
        assert time.time() < deadline, "never: %s %s" % (what, show())
        time.sleep(1)


def test_two_agents_spread_kill_one_adopts(cloud):
    assert cloud.wait_hosts(2, 120), "the second agent never reported: %r" % list(hosts(cloud))
    names = sorted(hosts(cloud))
    assert len(names) == 2 and names[0].endswith("-1") and names[1].endswith("-2"), names

    _, k, s = new_tenant(cloud, "two-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=N, MaxCount=N,
                          UserData="#!/bin/sh\necho user-data-ran\n")
    ids = [i["InstanceId"] for i in r["Instances"]]
    running = wait_all(ec2, ids, "running", CONVERGE_S)
    where = host_of(cloud)
    assert set(where) >= set(ids), where
    by_host = {h: sorted(i for i in ids if where[i] == h) for h in names}
    assert all(by_host.values()), "spread put every instance on one host: %r" % by_host
    for iid in ids:
        wait_console(ec2, iid, ["VIRGA-GUEST-READY instance-id=" + iid, "user-data-ran"])
    # each host has its own datapath host namespace, under this cloud's prefix
    netns = os.listdir("/run/netns")
    for h in names:
        assert "virga-d%d-h-%s" % (cloud.base, h) in netns, (h, sorted(n for n in netns if str(cloud.base) in n))
    assert {i: guests_on_host(cloud).get(i, 0) for i in ids} == {i: 1 for i in ids}
    # each guest runs in the cgroups of its own host's agent
    for h, mine in by_host.items():
        theirs = guests_on_host(cloud, h)
        assert set(theirs) == set(mine), (h, theirs, mine)

    # kill -9 the second agent: its host goes down, its instances impaired; the first's are not
    victim, other = names[1], names[0]
    before = guest_inits(cloud)
    os.kill(cloud.pid("agent-2"), signal.SIGKILL)
    wait_for("host %s marked down" % victim, lambda: hosts(cloud)[victim]["State"] == "under-assessment")
    st = wait_for("the instances of %s impaired" % victim,
                  lambda: (lambda x: x if all(x[i] == ("impaired", "impaired") for i in by_host[victim]) else None)(
                      statuses(ec2, ids)))
    assert all(st[i] == ("ok", "ok") for i in by_host[other]), st
    assert hosts(cloud)[other]["State"] == "available"
    assert all(v["State"]["Name"] == "running" for v in states(ec2, ids).values())
    # the guests of the killed agent run on (an agent's death is not its guests')
    assert guest_inits(cloud) == before

    # started again, it adopts them: host up, all ok, one guest each, the same processes
    r = cloud.up()
    assert r.returncode == 0, r.stderr
    wait_for("host %s up again" % victim, lambda: hosts(cloud)[victim]["State"] == "available")
    wait_for("every instance ok", lambda: all(v == ("ok", "ok") for v in statuses(ec2, ids).values()))
    # (the same init processes: adopted, not booted again)
    assert guest_inits(cloud) == before, (guest_inits(cloud), before)
    assert {i: host_of(cloud)[i] for i in ids} == where

    ec2.terminate_instances(InstanceIds=ids)
    wait_all(ec2, ids, "terminated")
    wait_gone(cloud, primary_enis(running))


def test_a_local_launch_that_never_boots_ends_at_the_deadline(cloud):
    """A container image that is no root file system (one file, no /proc, no /sbin/init):
    the agent's every boot fails, so the launch
    would stay pending for ever. compute.launch_deadline_s ends it as EC2 ends a failed
    launch: terminated, with a state reason that says it timed out and the driver's error;
    it is never shown running on the way, and nothing of it is left on the host."""
    _, k, s = new_tenant(cloud, "noinit-" + uuid.uuid4().hex[:8])
    s3, ec2 = s3_client(cloud, k, s), boto3_client(cloud, "ec2", k, s)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"no init here\n"
        info = tarfile.TarInfo("etc/motd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    bucket = "noinit-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="rootfs.tar.gz", Body=buf.getvalue())
    ami = ec2.register_image(Name="no-init", ImageLocation=bucket + "/rootfs.tar.gz")["ImageId"]
    wait_for("image available", lambda: ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "available", 180)
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1,
                            MaxCount=1)["Instances"][0]["InstanceId"]
    # the driver's error shows while it is pending
    wait_for("the boot error in the state reason",
             lambda: "start container" in (states(ec2, [iid])[iid].get("StateReason") or {}).get("Message", ""), DEADLINE_S,
             lambda: (states(ec2, [iid])[iid]["State"], states(ec2, [iid])[iid].get("StateReason")))
    # never running on the way: it never booted (a listing taken while a retry of its
    # start was under way once reported it running, and compute believed it)
    deadline = time.time() + DEADLINE_S + 300
    seen = set()
    while True:
        got = states(ec2, [iid])[iid]
        seen.add(got["State"]["Name"])
        assert "running" not in seen, (seen, got.get("StateReason"))
        if got["State"]["Name"] == "terminated":
            break
        assert time.time() < deadline, (seen, got.get("StateReason"))
        time.sleep(1)
    assert seen <= {"pending", "shutting-down", "terminated"}, seen
    msg = got["StateReason"]["Message"]
    assert got["StateReason"]["Code"] == "Server.InternalError", got["StateReason"]
    assert "did not complete within %d s" % DEADLINE_S in msg and "start container" in msg, msg
    assert iid not in host_of(cloud)
    wait_gone(cloud, primary_enis({iid: got}))
