"""kill -9 during a launch of real container guests (issue 11, docs/compute.md "Robustness
with real guests"): twenty instances of the default busybox rootfs are launched with one
RunInstances, as the issue asks; while their boots are in flight the host's agent is
killed with SIGKILL and started again, then compute the same way. Every instance still reaches `running`, its
guest ran its user-data (the ready line with its own id on its console), and the host runs
exactly one guest per instance (one PID-1 process in each instance's cgroups, no guest of
an id compute does not know); after TerminateInstances nothing of them is left.

Needs root. Waits are bounded generously; nothing asserts a duration."""
import json
import os
import signal
import subprocess
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Cloud, boto3_client, new_tenant
from host_guests import guest_inits, guests_on_host, primary_enis, wait_gone
from test_instances_real import wait_console

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real guests need root")

N = 20
CONVERGE_S = 600
# a guest asks the metadata service for up to 300 s of uptime (deploy/images/build, md_first)
GUEST_MD_S = 360


@pytest.fixture(scope="module")
def cloud():
    c = Cloud.start(default_images=True, env={"VIRGA_AGENT_DRIVERS": "container", "VIRGA_AGENT_VCPUS": "64",
                                              "VIRGA_AGENT_RECONCILE_INTERVAL_S": "2"})
    try:
        yield c
    finally:
        c.stop_later()


def states(ec2, ids):
    out = {}
    for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in r["Instances"]:
            out[i["InstanceId"]] = i
    return out


def wait_all(ec2, ids, state, seconds=CONVERGE_S):
    deadline = time.time() + seconds
    while True:
        try:
            got = states(ec2, ids)
        except ClientError as err:   # a service still coming back after a kill: asked again
            assert time.time() < deadline, err
            time.sleep(1)
            continue
        if all(i["State"]["Name"] == state for i in got.values()) and len(got) == len(ids):
            return got
        assert time.time() < deadline, "not all %s: %s" % (state, {k: (v["State"]["Name"], v.get("StateReason"))
                                                                  for k, v in got.items()})
        time.sleep(1)


def kill_and_restart(cloud, name):
    os.kill(cloud.pid(name), signal.SIGKILL)
    r = cloud.up()
    assert r.returncode == 0, r.stderr


def test_agent_and_compute_killed_during_a_launch_converge(cloud):
    _, k, s = new_tenant(cloud, "kill-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=N, MaxCount=N,
                          UserData="#!/bin/sh\necho user-data-ran\n")
    ids = [i["InstanceId"] for i in r["Instances"]]
    # the boots are in flight (at most agent.max_parallel_boots at once): kill the agent
    # once some guest is up or being made, then compute while the rest boot
    deadline = time.time() + 120
    while not guests_on_host(cloud) and time.time() < deadline:
        time.sleep(0.2)
    kill_and_restart(cloud, "agent")
    time.sleep(1)
    kill_and_restart(cloud, "compute")

    running = wait_all(ec2, ids, "running")
    for iid in ids:
        wait_console(ec2, iid, ["VIRGA-GUEST-READY instance-id=" + iid, "user-data-ran"], seconds=GUEST_MD_S)
    on_host = guests_on_host(cloud)
    assert {i: on_host.get(i, 0) for i in ids} == {i: 1 for i in ids}, on_host
    assert set(on_host) <= set(ids), "guests compute does not know: %r" % (set(on_host) - set(ids))

    ec2.terminate_instances(InstanceIds=ids)
    wait_all(ec2, ids, "terminated")
    wait_gone(cloud, primary_enis(running))


def test_broker_killed_during_a_launch_converges(cloud):
    """kill -9 of the Kafka broker while twenty container guests boot, then started again:
    every instance still reaches running with its user-data run, one guest each, and
    terminate leaves nothing. The bus is the only way between compute and the agent, so
    reports and launches made while it was away must be made again, not lost."""
    _, k, s = new_tenant(cloud, "killb-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=N, MaxCount=N,
                          UserData="#!/bin/sh\necho broker-user-data-ran\n")
    ids = [i["InstanceId"] for i in r["Instances"]]
    deadline = time.time() + 120
    while not set(guests_on_host(cloud)) & set(ids) and time.time() < deadline:
        time.sleep(0.2)
    pid = cloud.pid("kafka")
    os.kill(pid, signal.SIGKILL)
    while os.path.exists("/proc/%d" % pid) and open("/proc/%d/stat" % pid).read().split()[2] != "Z":
        time.sleep(0.1)
    time.sleep(2)   # a broker that stays away a while: callers time out and must retry
    r = cloud.up()
    assert r.returncode == 0, r.stdout + r.stderr + cloud.logs_tail()
    assert cloud.pid("kafka") != pid

    running = wait_all(ec2, ids, "running")
    for iid in ids:
        wait_console(ec2, iid, ["VIRGA-GUEST-READY instance-id=" + iid, "broker-user-data-ran"], seconds=GUEST_MD_S)
    on_host = guests_on_host(cloud)
    assert {i: on_host.get(i, 0) for i in ids} == {i: 1 for i in ids}, on_host

    ec2.terminate_instances(InstanceIds=ids)
    wait_all(ec2, ids, "terminated")
    wait_gone(cloud, primary_enis(running))


def proc_states(iid):
    """The scheduler states (R, S, T, ...) of the processes in the instance's cgroups."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cgroup" % pid) as f:
                if "/" + iid not in f.read():
                    continue
            with open("/proc/%s/status" % pid) as f:
                out += [ln.split()[1] for ln in f if ln.startswith("State:")]
        except OSError:
            pass
    return out


def test_agent_killed_during_an_export_converges(cloud):
    """kill -9 of the agent while it exports a container for CreateImage (the instance
    paused, tar running): the export is done again by the restarted agent, the image
    becomes available with the bytes the instance had, and the instance runs on (none of
    its processes left stopped)."""
    import glob
    import re
    _, k, s = new_tenant(cloud, "killx-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            UserData="#!/bin/sh\ndd if=/dev/urandom of=/root/blob bs=1048576 count=160 2> /dev/null\n"
                                     "echo \"sum: $(md5sum < /root/blob)\"\n")["Instances"][0]["InstanceId"]
    wait_all(ec2, [iid], "running")
    text = wait_console(ec2, iid, ["sum: "])
    want = re.search(r"sum: ([0-9a-f]{32})", text).group(1)
    new = ec2.create_image(InstanceId=iid, Name="killed-export-" + uuid.uuid4().hex[:6])["ImageId"]
    deadline = time.time() + 120
    while not glob.glob(os.path.join(cloud.dir, "agent", "state", "*", "exports", new + ".*")):
        assert time.time() < deadline, "the export of %s never started" % new
        time.sleep(0.1)
    kill_and_restart(cloud, "agent")
    deadline = time.time() + CONVERGE_S
    while True:
        (img,) = ec2.describe_images(ImageIds=[new])["Images"]
        if img["State"] == "available":
            break
        assert img["State"] == "pending" and time.time() < deadline, img
        time.sleep(1)
    assert states(ec2, [iid])[iid]["State"]["Name"] == "running"
    assert proc_states(iid) and "T" not in proc_states(iid), proc_states(iid)
    nid = ec2.run_instances(ImageId=new, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            UserData="#!/bin/sh\necho \"copy: $(md5sum < /root/blob)\"\n")["Instances"][0]["InstanceId"]
    wait_all(ec2, [nid], "running")
    wait_console(ec2, nid, ["copy: " + want])
    ec2.terminate_instances(InstanceIds=[iid, nid])
    wait_all(ec2, [iid, nid], "terminated")


def test_reboot_restarts_the_guest_init(cloud):
    """RebootInstances of a container guest really restarts it: a new init process (the
    old one gone), a second boot on the console (its ready line again, with the same
    address), the instance running all along from the API's view and one guest after."""
    _, k, s = new_tenant(cloud, "reboot-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            UserData="#!/bin/sh\necho booted-at-uptime $(cut -d' ' -f1 /proc/uptime)\n"
                            )["Instances"][0]["InstanceId"]
    ip = wait_all(ec2, [iid], "running")[iid]["PrivateIpAddress"]
    ready = "VIRGA-GUEST-READY instance-id=%s addr=%s" % (iid, ip)
    first = wait_console(ec2, iid, [ready])
    assert first.count(ready) == 1, first
    (old,) = guest_inits(cloud)[iid]

    ec2.reboot_instances(InstanceIds=[iid])
    deadline = time.time() + CONVERGE_S
    while True:
        text = ec2.get_console_output(InstanceId=iid, Latest=True).get("Output") or ""
        if text.count(ready) >= 2:
            break
        assert time.time() < deadline, "no second boot on the console of %s:\n%s" % (iid, text[-3000:])
        time.sleep(1)
    assert text.count(ready) == 2 and text.count("booted-at-uptime") == 2, text
    got = wait_all(ec2, [iid], "running")[iid]
    assert got["PrivateIpAddress"] == ip
    inits = guest_inits(cloud)[iid]
    assert len(inits) == 1 and inits[0] != old, (old, inits)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_all(ec2, [iid], "terminated")


def test_a_guest_whose_stand_in_is_made_anew_is_started_in_it(cloud):
    """A stand-in whose host-side end lost its label (what an agent killed while it plugged
    an interface leaves) is finished in place by the next agent: the guest keeps running in
    it. One whose pair is gone (the host-side device deleted) is made anew as a new
    namespace of the same name; a container in the old one is cut off for good (no
    interface, no metadata), and the agent starts it again in the new one. Each made here
    on a running guest, then kill -9 of the agent (its next agent's first apply observes
    everything): first the guest and its namespace stay; then it boots a second time, in
    the namespace the stand-in's name now holds, reads its own instance id again, and the
    instance is running from the API's view throughout."""
    _, k, s = new_tenant(cloud, "anew-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            UserData="#!/bin/sh\necho anew-user-data-ran\n")["Instances"][0]["InstanceId"]
    got = wait_all(ec2, [iid], "running")[iid]
    eni = got["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ready = "VIRGA-GUEST-READY instance-id=" + iid
    wait_console(ec2, iid, [ready, "anew-user-data-ran"], seconds=GUEST_MD_S)
    (old,) = guest_inits(cloud)[iid]
    stand_in = next(n for n in os.listdir("/run/netns") if n.startswith("virga-d%d-i-" % cloud.base) and n.endswith(eni))
    old_ns = os.stat("/run/netns/" + stand_in).st_ino
    assert os.stat("/proc/%d/ns/net" % old).st_ino == old_ns
    host_ns = next(n for n in os.listdir("/run/netns") if n.startswith("virga-d%d-h-" % cloud.base))
    links = json.loads(subprocess.run(["ip", "netns", "exec", host_ns, "ip", "-j", "link", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    (dev,) = [x["ifname"] for x in links if x.get("ifalias", "").startswith("eni=%s " % eni)]
    subprocess.run(["ip", "netns", "exec", host_ns, "ip", "link", "set", "dev", dev, "alias", ""], check=True)
    kill_and_restart(cloud, "agent")

    def labelled():
        out = subprocess.run(["ip", "netns", "exec", host_ns, "ip", "-j", "link", "show", "dev", dev],
                             capture_output=True, text=True).stdout
        return out and json.loads(out)[0].get("ifalias", "").startswith("eni=%s " % eni)
    deadline = time.time() + CONVERGE_S
    while not labelled():
        assert time.time() < deadline, "the unlabelled host side of %s was never finished" % eni
        time.sleep(0.5)
    assert os.stat("/run/netns/" + stand_in).st_ino == old_ns, "an unlabelled stand-in was made anew"
    assert guest_inits(cloud)[iid] == [old], "the guest was started again"

    subprocess.run(["ip", "netns", "exec", host_ns, "ip", "link", "del", "dev", dev], check=True)
    kill_and_restart(cloud, "agent")

    deadline = time.time() + CONVERGE_S
    seen = set()
    while True:
        seen.add(states(ec2, [iid])[iid]["State"]["Name"])
        text = ec2.get_console_output(InstanceId=iid, Latest=True).get("Output") or ""
        if text.count(ready) >= 2 and text.count("anew-user-data-ran") >= 2:
            break
        assert time.time() < deadline, "no second boot of %s in its new namespace:\n%s" % (iid, text[-3000:])
        time.sleep(1)
    assert seen == {"running"}, seen
    (new,) = guest_inits(cloud)[iid]
    assert new != old
    assert os.stat("/run/netns/" + stand_in).st_ino != old_ns, "the stand-in was not made anew"
    assert os.stat("/proc/%d/ns/net" % new).st_ino == os.stat("/run/netns/" + stand_in).st_ino
    ec2.terminate_instances(InstanceIds=[iid])
    wait_all(ec2, [iid], "terminated")
    wait_gone(cloud, {iid: eni})


def test_a_cloud_stopped_and_started_again_brings_its_running_guests_back(cloud):
    """`make run`, Ctrl-C, `make run` again: the instances that ran run again, as a tenant
    expects (the database says they should run), and a stopped one stays stopped.
    `devcloud down` kills the guests after the agent; the next agent found them stopped
    and compute took each for a shutdown from inside: they ended `stopped` with
    "Instance initiated shutdown". One guest is also made to look as a reboot of the
    machine leaves it (no marker of devcloud's, its state written before this boot): it
    comes back too. Each boots a second time (its ready line again on its console, the
    same address) and shows no error's state reason; runs last in this module (the cloud
    is down for a while)."""
    _, k, s = new_tenant(cloud, "again-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=3,
                                                       MaxCount=3)["Instances"]]
    got = wait_all(ec2, ids, "running")
    ready = {iid: "VIRGA-GUEST-READY instance-id=%s addr=%s" % (iid, got[iid]["PrivateIpAddress"]) for iid in ids}
    for iid in ids:
        wait_console(ec2, iid, [ready[iid]], seconds=GUEST_MD_S)
    run_again, rebooted, stays_stopped = ids
    ec2.stop_instances(InstanceIds=[stays_stopped])
    wait_all(ec2, [stays_stopped], "stopped")

    cloud.stop(remove=False)
    (inst_dir,) = [os.path.join(root, rebooted) for root, dirs, _ in os.walk(os.path.join(cloud.dir, "agent", "state"))
                   if rebooted in dirs]
    os.unlink(os.path.join(inst_dir, "moving"))   # devcloud's marker: a reboot leaves none
    os.utime(os.path.join(inst_dir, "state.json"), (0, 0))   # written before this boot
    r = cloud.up()
    assert r.returncode == 0, r.stderr

    got = wait_all(ec2, [run_again, rebooted], "running")
    for iid in (run_again, rebooted):
        deadline = time.time() + CONVERGE_S
        while True:
            text = ec2.get_console_output(InstanceId=iid, Latest=True).get("Output") or ""
            if text.count(ready[iid]) >= 2:
                break
            assert time.time() < deadline, "%s did not boot again: %s\n%s" % (
                iid, describe_state(ec2, iid), text[-2000:])
            time.sleep(1)
        assert len(guest_inits(cloud)[iid]) == 1
        # a transient error on the way back (NetworkNotReady while the host's network is
        # made again) is not left as the reason of a running instance
        deadline = time.time() + 60
        while (states(ec2, [iid])[iid].get("StateReason") or {}).get("Code") == "Server.InternalError":
            assert time.time() < deadline, describe_state(ec2, iid)
            time.sleep(1)
    assert states(ec2, [stays_stopped])[stays_stopped]["State"]["Name"] == "stopped"
    assert stays_stopped not in guest_inits(cloud)
    ec2.terminate_instances(InstanceIds=ids)
    wait_all(ec2, ids, "terminated")


def describe_state(ec2, iid):
    i = states(ec2, [iid])[iid]
    return i["State"], i.get("StateReason"), i.get("StateTransitionReason")
