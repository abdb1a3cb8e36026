"""EC2 instances end to end (docs/compute.md), with /usr/bin/aws and Debian's boto3, on a
cloud whose one host's agent runs the `sim` driver (simulated instances: the whole
control plane runs for real, with the agent's sync loop, the network's ports and IPAM and
the image service's grants; only the guest is simulated). Real guests (qemu, container)
are covered by the drivers' own suites.

Covered: RunInstances answers pending and the instance reaches running with an address of
its default subnet; the AWS shapes of DescribeInstances (reservation, groups, interfaces,
tags) and their filters and pagination; stop/start/reboot/terminate state flow with the
console text the agent reported; terminated instances stay visible, their ports gone
by then (their group deleted at once);
ClientToken retries answer the same reservation (and another request with the token is
refused); a launch larger than the hosts' capacity fails naming how many hosts each
filter rejected; 50 concurrent launches against a quota of 10 start exactly 10; another
account can neither see nor change an instance; instance attributes
(disableApiTermination, instanceType only while stopped, userData); instance types and
offerings from config; DryRun; the EC2 error codes of bad input; tags on instances through
the tag actions; the agent contract (host_instances, the order of instances_observed,
instance_metadata) called with the agent's own credential; a frozen agent makes its host down (status impaired, the host-up
filter named); kill -9 of compute during a launch and during a termination converges;
a frozen network service only delays launches (task retries with backoff)."""
import base64
import concurrent.futures
import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from harness import Cloud, agent_call, aws, boto3_client, bus_waiting, client_error, new_tenant

HOST_VCPUS = 16         # x compute.cpu_overcommit (4.0) = 64 vCPUs to place
HOST_MEMORY_MIB = 32768  # x compute.ram_overcommit (1.0)
WAIT_S = 60
# test_silent_host_is_down_and_its_instances_impaired waits for a frozen agent's host to be
# down, then lost: the agent reports every 3 s (10 by default), down after 15 s without a
# report (30: five reports missed, as three of the default), lost 10 s later (as before),
# so the test waits about half as long; compute's reconcile pass (10 s) is unchanged
AGENT_REPORT_S = 3
HOST_DOWN_AFTER_S = 15
HOST_LOST_AFTER_S = 25


@pytest.fixture(scope="module")
def cloud():
    c = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True,
                    env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": str(HOST_VCPUS),
                         "VIRGA_AGENT_MEMORY_MIB": str(HOST_MEMORY_MIB),
                         # a launch on a cold row waits for identity as long as the test
                         # keeps it frozen (test_cold_launch_facts_do_not_hold_compute_workers)
                         "VIRGA_COMPUTE_LAUNCH_FACTS_WAIT_MS": "60000",
                         # test_silent_host_is_down_and_its_instances_impaired (above)
                         "VIRGA_AGENT_RECONCILE_INTERVAL_S": str(AGENT_REPORT_S),
                         "VIRGA_COMPUTE_HOST_DOWN_AFTER_S": str(HOST_DOWN_AFTER_S),
                         "VIRGA_COMPUTE_HOST_LOST_AFTER_S": str(HOST_LOST_AFTER_S)})
    try:
        yield c
    finally:
        c.stop_later()


def default_image(cloud):
    return cloud.default_images()["virga-busybox-rootfs"]


@pytest.fixture(scope="module")
def ami(cloud):
    return default_image(cloud)


@pytest.fixture(scope="module")
def tenant(cloud):
    acct, k, s = new_tenant(cloud, "inst-" + uuid.uuid4().hex[:8])
    return acct, k, s, boto3_client(cloud, "ec2", k, s)


def wait_state(ec2, ids, state, seconds=WAIT_S):
    """Poll DescribeInstances until every instance is in state; returns the instances."""
    deadline = time.time() + seconds
    while True:
        got = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
        if len(got) == len(ids) and all(i["State"]["Name"] == state for i in got):
            return got
        assert time.time() < deadline, "not all %s: %s" % (state, [(i["InstanceId"], i["State"]) for i in got])
        time.sleep(0.2)


def run(ec2, ami, n=1, **kw):
    r = ec2.run_instances(ImageId=ami, InstanceType=kw.pop("InstanceType", "t3.nano"), MinCount=n, MaxCount=n, **kw)
    return r, [i["InstanceId"] for i in r["Instances"]]


def test_run_instances_reaches_running_with_aws_shapes(cloud, ami, tenant):
    acct, _, _, ec2 = tenant
    ec2.create_key_pair(KeyName="inst-key", KeyType="ed25519")
    r, ids = run(ec2, ami, 2, KeyName="inst-key", UserData="#!/bin/sh\necho hello\n",
                 TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}])
    assert r["ReservationId"].startswith("r-") and len(r["ReservationId"]) == 19
    assert r["OwnerId"] == acct
    assert len(ids) == 2 and all(i.startswith("i-") and len(i) == 19 for i in ids)
    answered = {}
    for i in r["Instances"]:
        assert i["State"] == {"Code": 0, "Name": "pending"}
        answered[i["InstanceId"]] = i["PrivateIpAddress"]   # as EC2's answer, not only Describe's
        assert i["ImageId"] == ami and i["InstanceType"] == "t3.nano" and i["KeyName"] == "inst-key"
        assert {"Key": "role", "Value": "web"} in i["Tags"]
    assert sorted(i["AmiLaunchIndex"] for i in r["Instances"]) == [0, 1]

    running = wait_state(ec2, ids, "running")
    res = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    assert len(res) == 1 and res[0]["ReservationId"] == r["ReservationId"] and res[0]["OwnerId"] == acct
    ips = set()
    for i in running:
        assert i["State"] == {"Code": 16, "Name": "running"}
        assert i["PrivateIpAddress"].startswith("172.31.") and i["PrivateIpAddress"] == answered[i["InstanceId"]]
        ips.add(i["PrivateIpAddress"])
        assert i["PrivateDnsName"] == "ip-%s.ec2.internal" % i["PrivateIpAddress"].replace(".", "-")
        assert i["SubnetId"].startswith("subnet-") and i["VpcId"].startswith("vpc-")
        assert [g["GroupName"] for g in i["SecurityGroups"]] == ["default"]
        (eni,) = i["NetworkInterfaces"]
        assert eni["PrivateIpAddress"] == i["PrivateIpAddress"] and eni["Attachment"]["DeviceIndex"] == 0
        assert i["Placement"]["AvailabilityZone"] == cloud.env["AWS_DEFAULT_REGION"] + "a"
    assert len(ips) == 2
    # the interfaces are the network service's, seen by the tenant
    enis = ec2.describe_network_interfaces()["NetworkInterfaces"]
    assert {e["PrivateIpAddress"] for e in enis} >= ips
    # user data as given, through DescribeInstanceAttribute
    ud = ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(ud) == b"#!/bin/sh\necho hello\n"
    ec2.terminate_instances(InstanceIds=ids)


def test_filters_and_pagination(cloud, ami, tenant):
    _, _, _, ec2 = tenant
    _, ids = run(ec2, ami, 6, TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": "batch", "Value": "pages"}]}])
    wait_state(ec2, ids, "running")
    f = [{"Name": "tag:batch", "Values": ["pages"]}]
    got = [i["InstanceId"] for r in ec2.describe_instances(Filters=f)["Reservations"] for i in r["Instances"]]
    assert sorted(got) == sorted(ids)
    seen, token = [], None
    while True:
        kw = {"Filters": f, "MaxResults": 5}
        if token:
            kw["NextToken"] = token
        page = ec2.describe_instances(**kw)
        n = [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
        assert len(n) <= 5
        seen += n
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    one = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [ids[3]]},
                                          {"Name": "instance-state-name", "Values": ["running"]}])
    assert [i["InstanceId"] for r in one["Reservations"] for i in r["Instances"]] == [ids[3]]
    ip = one["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
    by_ip = ec2.describe_instances(Filters=[{"Name": "private-ip-address", "Values": [ip]}])
    assert [i["InstanceId"] for r in by_ip["Reservations"] for i in r["Instances"]] == [ids[3]]
    none = ec2.describe_instances(Filters=[{"Name": "instance-type", "Values": ["m5.large"]}, *f])
    assert none["Reservations"] == []
    assert client_error(ec2.describe_instances, Filters=[{"Name": "no-such-filter", "Values": ["x"]}]) \
        == "InvalidParameterValue"
    # filters SQL applies itself, with a page size (compute then reads one page per call)
    seen, token = [], None
    while True:
        kw = {"Filters": [{"Name": "instance-state-name", "Values": ["running"]},
                          {"Name": "instance-type", "Values": ["t3.nano"]}], "MaxResults": 5}
        if token:
            kw["NextToken"] = token
        page = ec2.describe_instances(**kw)
        n = [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
        assert 0 < len(n) <= 5 or not token
        seen += n
        token = page.get("NextToken")
        if not token:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    # values that would break an array literal are only values
    odd = [{"Name": "instance-type", "Values": ['t3."nano\\', "x,y}", "{"]}]
    assert ec2.describe_instances(Filters=odd)["Reservations"] == []
    # the filters EC2 documents on the instance's groups and interfaces (they answered
    # "The filter 'instance.group-id' is invalid")
    inst = one["Reservations"][0]["Instances"][0]
    eni = inst["NetworkInterfaces"][0]
    group = inst["SecurityGroups"][0]
    for name, value in [("network-interface.network-interface-id", eni["NetworkInterfaceId"]),
                        ("network-interface.addresses.private-ip-address", ip),
                        ("network-interface.private-dns-name", inst["PrivateDnsName"]),
                        ("network-interface.mac-address", eni["MacAddress"]),
                        ("network-interface.attachment.attachment-id", eni["Attachment"]["AttachmentId"])]:
        got = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}, *f])
        assert [i["InstanceId"] for r in got["Reservations"] for i in r["Instances"]] == [ids[3]], name
    for name, value in [("instance.group-id", group["GroupId"]), ("instance.group-name", group["GroupName"]),
                        ("network-interface.group-id", group["GroupId"]),
                        ("network-interface.subnet-id", inst["SubnetId"]), ("network-interface.vpc-id", inst["VpcId"]),
                        ("network-interface.status", "in-use"), ("root-device-type", "instance-store"),
                        ("virtualization-type", "hvm"), ("tenancy", "default"), ("monitoring-state", "disabled"),
                        ("launch-time", inst["LaunchTime"].strftime("%Y-%m-%dT*"))]:
        got = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}, *f])
        assert sorted(i["InstanceId"] for r in got["Reservations"] for i in r["Instances"]) == sorted(ids), name
    ec2.terminate_instances(InstanceIds=ids)


def test_instance_status_pages_leave_out_the_terminated(cloud, ami):
    """DescribeInstanceStatus pages: full pages of the live instances even where terminated
    ones (still visible to DescribeInstances) sit between them, and a terminated one asked
    for by id is no error (compute reads only what it answers: SQL leaves them out)."""
    _, k, s = new_tenant(cloud, "status-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    _, ids = run(ec2, ami, 8)
    wait_state(ec2, ids, "running")
    ids.sort()
    gone = [ids[1], ids[3]]
    ec2.terminate_instances(InstanceIds=gone)
    wait_state(ec2, gone, "terminated")
    live = [i for i in ids if i not in gone]
    pages, token = [], None
    while True:
        kw = {"IncludeAllInstances": True, "MaxResults": 5}
        if token:
            kw["NextToken"] = token
        page = ec2.describe_instance_status(**kw)
        pages.append([st["InstanceId"] for st in page["InstanceStatuses"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [5, 1] and sum(pages, []) == live
    running = ec2.describe_instance_status()["InstanceStatuses"]
    assert sorted(st["InstanceId"] for st in running) == live
    assert ec2.describe_instance_status(InstanceIds=[gone[0]])["InstanceStatuses"] == []
    # the status filters EC2 documents (they answered "The filter 'instance-status.status'
    # is invalid": DescribeInstances' own filters were applied first)
    for name, value, want in [("instance-status.status", "ok", live), ("system-status.status", "ok", live),
                              ("instance-status.reachability", "passed", live),
                              ("system-status.reachability", "passed", live),
                              ("instance-status.status", "impaired", []), ("event.code", "system-reboot", [])]:
        got = ec2.describe_instance_status(Filters=[{"Name": name, "Values": [value]}])["InstanceStatuses"]
        assert sorted(st["InstanceId"] for st in got) == want, name
    assert client_error(ec2.describe_instance_status, InstanceIds=[live[0]], MaxResults=5) \
        == "InvalidParameterCombination"
    # tag filters, as DescribeInstances has them (the status items carry no tags)
    ec2.create_tags(Resources=[live[0]], Tags=[{"Key": "pick", "Value": "me"}])
    for f in ({"Name": "tag:pick", "Values": ["me"]}, {"Name": "tag-key", "Values": ["pick"]}):
        got = ec2.describe_instance_status(Filters=[f])["InstanceStatuses"]
        assert [st["InstanceId"] for st in got] == [live[0]] and "Tags" not in got[0], (f, got)
    ec2.terminate_instances(InstanceIds=live)


def test_stop_start_reboot_terminate_with_awscli(cloud, ami, tenant):
    _, k, s, ec2 = tenant
    group = ec2.create_security_group(GroupName="sst-" + uuid.uuid4().hex[:8], Description="deleted at once")["GroupId"]
    _, (iid,) = run(ec2, ami, SecurityGroupIds=[group])
    wait_state(ec2, [iid], "running")

    rc, out, err = aws(cloud, "ec2", "stop-instances", "--instance-ids", iid, access_key=k, secret_key=s)
    assert rc == 0, err
    (change,) = out["StoppingInstances"]
    assert change["PreviousState"]["Name"] == "running" and change["CurrentState"]["Name"] == "stopping"
    (i,) = wait_state(ec2, [iid], "stopped")
    assert i["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert i["StateTransitionReason"].startswith("User initiated (")
    # a stopped instance cannot be rebooted; stopping it again changes nothing
    assert client_error(ec2.reboot_instances, InstanceIds=[iid]) == "IncorrectInstanceState"
    again = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert again["PreviousState"]["Name"] == again["CurrentState"]["Name"] == "stopped"

    rc, out, err = aws(cloud, "ec2", "start-instances", "--instance-ids", iid, access_key=k, secret_key=s)
    assert rc == 0, err
    assert out["StartingInstances"][0]["CurrentState"]["Name"] == "pending"
    (i,) = wait_state(ec2, [iid], "running")
    # started again: EC2 clears the reasons of the stop
    assert i["StateTransitionReason"] == "" and "StateReason" not in i, i

    rc, _, err = aws(cloud, "ec2", "reboot-instances", "--instance-ids", iid, access_key=k, secret_key=s)
    assert rc == 0, err
    deadline = time.time() + WAIT_S
    while True:   # the agent reports its console: the simulated guest booted three times
        # polled with boto3 (botocore decodes the base64 as the CLI does): a process of
        # /usr/bin/aws a poll cost about a CPU-second; the CLI reads the same console below
        out = ec2.get_console_output(InstanceId=iid).get("Output", "")
        if out.count("READY") >= 3:
            break
        assert time.time() < deadline, out
        time.sleep(0.3)
    rc, out, err = aws(cloud, "ec2", "get-console-output", "--instance-id", iid, access_key=k, secret_key=s)
    assert rc == 0, err
    assert out.get("Output", "").count("READY") >= 3, out
    assert "instance-id=%s" % iid in out["Output"]
    st = ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]
    assert st["InstanceState"]["Name"] == "running" and st["InstanceStatus"]["Status"] == "ok"

    rc, out, err = aws(cloud, "ec2", "terminate-instances", "--instance-ids", iid, access_key=k, secret_key=s)
    assert rc == 0, err
    assert out["TerminatingInstances"][0]["CurrentState"]["Name"] == "shutting-down"
    (i,) = wait_state(ec2, [iid], "terminated")
    assert i["State"]["Code"] == 48
    # stays visible, terminating again is no error, starting it is
    again = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert again["CurrentState"]["Name"] == "terminated"
    assert client_error(ec2.start_instances, InstanceIds=[iid]) == "IncorrectInstanceState"
    # terminated means its interface is gone, as on EC2: nothing holds its group any more
    assert not any(e.get("Attachment", {}).get("InstanceId") == iid
                   for e in ec2.describe_network_interfaces()["NetworkInterfaces"])
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["NetworkInterfaces"] == []
    rc, _, err = aws(cloud, "ec2", "delete-security-group", "--group-id", group, access_key=k, secret_key=s)
    assert rc == 0, err


def test_client_token_answers_the_same_reservation(cloud, ami, tenant):
    _, _, _, ec2 = tenant
    token = "tok-" + uuid.uuid4().hex
    first, ids = run(ec2, ami, 2, ClientToken=token)
    second, ids2 = run(ec2, ami, 2, ClientToken=token)
    assert second["ReservationId"] == first["ReservationId"] and sorted(ids2) == sorted(ids)
    assert all(i["ClientToken"] == token for i in second["Instances"])
    err = client_error(ec2.run_instances, ImageId=ami, InstanceType="t3.micro", MinCount=2, MaxCount=2,
                       ClientToken=token)
    assert err == "IdempotentParameterMismatch"
    got = [i for r in ec2.describe_instances(Filters=[{"Name": "client-token", "Values": [token]}])["Reservations"]
           for i in r["Instances"]]
    assert sorted(i["InstanceId"] for i in got) == sorted(ids)
    ec2.terminate_instances(InstanceIds=ids)


def test_launch_larger_than_capacity_names_the_filters(cloud, ami, tenant):
    acct, _, _, ec2 = tenant
    # m5.xlarge is 16 GiB: the host's 32 GiB fits 2, and nothing asked for 3 is placed
    before = len(ec2.describe_instances()["Reservations"])
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, InstanceType="m5.xlarge", MinCount=3, MaxCount=3)
    err = e.value.response["Error"]
    assert err["Code"] == "InsufficientInstanceCapacity"
    assert "of 1 host(s)" in err["Message"] and "capacity rejected 1" in err["Message"], err
    assert "host-up rejected 0" in err["Message"] and "driver rejected 0" in err["Message"], err
    assert len(ec2.describe_instances()["Reservations"]) == before   # nothing half-made
    # a zone with no host: the zone filter says so
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": cloud.env["AWS_DEFAULT_REGION"] + "b"})
    assert e.value.response["Error"]["Code"] in ("InsufficientInstanceCapacity", "InvalidParameterValue")
    # MaxCount above what fits launches what fits
    r, ids = None, []
    r = ec2.run_instances(ImageId=ami, InstanceType="m5.xlarge", MinCount=1, MaxCount=5)
    ids = [i["InstanceId"] for i in r["Instances"]]
    assert 1 <= len(ids) <= 2
    ec2.terminate_instances(InstanceIds=ids)
    wait_state(ec2, ids, "terminated")


def test_fifty_concurrent_launches_against_a_quota_of_ten_start_ten(cloud, ami):
    acct, k, s = new_tenant(cloud, "inst-quota-" + uuid.uuid4().hex[:8])
    r = cloud.virgadm("quota", "set", acct, "instances", "10")
    assert r.returncode == 0, r.stderr
    clients = [boto3_client(cloud, "ec2", k, s) for _ in range(50)]
    for c in clients:
        c.describe_instance_types(InstanceTypes=["t3.nano"])
    barrier = threading.Barrier(len(clients))

    def launch(c):
        barrier.wait()
        try:
            return c.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0][
                "InstanceId"]
        except ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        out = list(pool.map(launch, clients))
    started = [o for o in out if o.startswith("i-")]
    assert len(started) == 10, out
    assert out.count("InstanceLimitExceeded") == 40, out
    ec2 = clients[0]
    got = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert sorted(got) == sorted(started)
    wait_state(ec2, started, "running", seconds=120)
    ec2.terminate_instances(InstanceIds=started)


def test_other_accounts_cannot_see_or_change_an_instance(cloud, ami, tenant):
    _, _, _, ec2 = tenant
    _, (iid,) = run(ec2, ami)
    _, k2, s2 = new_tenant(cloud, "inst-other-" + uuid.uuid4().hex[:8])
    other = boto3_client(cloud, "ec2", k2, s2)
    assert other.describe_instances()["Reservations"] == []
    assert client_error(other.describe_instances, InstanceIds=[iid]) == "InvalidInstanceID.NotFound"
    for call in (other.stop_instances, other.start_instances, other.reboot_instances, other.terminate_instances):
        assert client_error(call, InstanceIds=[iid]) == "InvalidInstanceID.NotFound", call
    assert client_error(other.get_console_output, InstanceId=iid) == "InvalidInstanceID.NotFound"
    assert client_error(other.describe_instance_attribute, InstanceId=iid, Attribute="userData") \
        == "InvalidInstanceID.NotFound"
    assert client_error(other.modify_instance_attribute, InstanceId=iid,
                        DisableApiTermination={"Value": True}) == "InvalidInstanceID.NotFound"
    assert client_error(other.create_tags, Resources=[iid], Tags=[{"Key": "x", "Value": "y"}]) \
        == "InvalidInstanceID.NotFound"
    assert other.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"] == []
    # and the instance is untouched
    (i,) = wait_state(ec2, [iid], "running")
    ec2.terminate_instances(InstanceIds=[iid])


def test_attributes(cloud, ami, tenant):
    _, _, _, ec2 = tenant
    _, (iid,) = run(ec2, ami, DisableApiTermination=True)
    wait_state(ec2, [iid], "running")
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
        "DisableApiTermination"]["Value"] is True
    assert client_error(ec2.terminate_instances, InstanceIds=[iid]) == "OperationNotPermitted"
    # one attribute per call: two were answered with success and one of them dropped
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid, DisableApiTermination={"Value": False},
                        SourceDestCheck={"Value": False}) == "InvalidParameterCombination"
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")["SourceDestCheck"]["Value"]
    # what cannot change here says so (it was "No attribute specified")
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid,
                        InstanceInitiatedShutdownBehavior={"Value": "terminate"}) == "Unsupported"
    # every attribute EC2 names is described (these were "Value (productCodes) ... invalid")
    fixed = {"productCodes": ("ProductCodes", []), "ebsOptimized": ("EbsOptimized", {"Value": False}),
             "enaSupport": ("EnaSupport", {"Value": True}), "disableApiStop": ("DisableApiStop", {"Value": False}),
             "enclaveOptions": ("EnclaveOptions", {"Enabled": False}),
             "instanceInitiatedShutdownBehavior": ("InstanceInitiatedShutdownBehavior", {"Value": "stop"})}
    for attr, (key, value) in fixed.items():
        assert ec2.describe_instance_attribute(InstanceId=iid, Attribute=attr).get(key, []) == value, attr
    for attr in ("blockDeviceMapping", "sriovNetSupport"):
        ec2.describe_instance_attribute(InstanceId=iid, Attribute=attr)
    # the type changes only while stopped
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid,
                        InstanceType={"Value": "t3.small"}) == "IncorrectInstanceState"
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "stopped")
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid,
                        InstanceType={"Value": "no.such"}) == "InvalidInstanceAttributeValue"
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.small"})
    ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"new data"})
    assert base64.b64decode(ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")[
        "UserData"]["Value"]) == b"new data"
    ec2.start_instances(InstanceIds=[iid])
    (i,) = wait_state(ec2, [iid], "running")
    assert i["InstanceType"] == "t3.small"
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    # a terminated instance changes no more (protecting it answered success)
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid,
                        DisableApiTermination={"Value": True}) == "IncorrectInstanceState"


def test_instance_types_and_offerings(cloud, tenant):
    _, _, _, ec2 = tenant
    types = ec2.describe_instance_types()["InstanceTypes"]
    by = {t["InstanceType"]: t for t in types}
    assert by["t3.micro"]["VCpuInfo"]["DefaultVCpus"] == 2 and by["t3.micro"]["MemoryInfo"]["SizeInMiB"] == 1024
    assert by["m5.large"]["MemoryInfo"]["SizeInMiB"] == 8192
    one = ec2.describe_instance_types(InstanceTypes=["t3.nano"])["InstanceTypes"]
    assert [t["InstanceType"] for t in one] == ["t3.nano"]
    assert client_error(ec2.describe_instance_types, InstanceTypes=["x9.huge"]) == "InvalidInstanceType"
    # the filters EC2 documents on what every type here shares (they were "invalid"), and
    # the root device type of the images and instances (it said ebs)
    for name, value in [("supported-root-device-type", "instance-store"), ("free-tier-eligible", "false"),
                        ("supported-virtualization-type", "hvm"), ("bare-metal", "false"),
                        ("network-info.ena-support", "supported")]:
        got = ec2.describe_instance_types(Filters=[{"Name": name, "Values": [value]}])["InstanceTypes"]
        assert {t["InstanceType"] for t in got} == set(by), name
    offers = ec2.describe_instance_type_offerings(LocationType="availability-zone")["InstanceTypeOfferings"]
    assert {"InstanceType": "t3.nano", "LocationType": "availability-zone",
            "Location": cloud.env["AWS_DEFAULT_REGION"] + "a"} in offers
    # by zone id, the ids DescribeAvailabilityZones gives (they were the zone names)
    zone_ids = {z["ZoneId"] for z in ec2.describe_availability_zones()["AvailabilityZones"]}
    by_id = ec2.describe_instance_type_offerings(LocationType="availability-zone-id")["InstanceTypeOfferings"]
    assert {o["Location"] for o in by_id} == zone_ids
    some = sorted(zone_ids)[0]
    assert {o["InstanceType"] for o in ec2.describe_instance_type_offerings(
        LocationType="availability-zone-id", Filters=[{"Name": "location", "Values": [some]}])[
        "InstanceTypeOfferings"]} == set(by)
    rc, out, err = aws(cloud, "ec2", "describe-instance-type-offerings")
    assert rc == 0, err
    assert {o["InstanceType"] for o in out["InstanceTypeOfferings"]} == set(by)


def test_dry_run_changes_nothing(cloud, ami, tenant):
    _, _, _, ec2 = tenant
    def instance_ids():   # ids only: another test's terminated instance still loses its interface
        return {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    before = instance_ids()
    assert client_error(ec2.run_instances, ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                        DryRun=True) == "DryRunOperation"
    assert instance_ids() == before
    _, (iid,) = run(ec2, ami)
    wait_state(ec2, [iid], "running")
    assert client_error(ec2.stop_instances, InstanceIds=[iid], DryRun=True) == "DryRunOperation"
    assert client_error(ec2.terminate_instances, InstanceIds=[iid], DryRun=True) == "DryRunOperation"
    # the reads too: EC2 answers DryRunOperation (the permission check), never the data
    # (they answered as if DryRun were not given: a --dry-run permission probe "passed"
    # with the console text in hand)
    for fn, kw in [(ec2.describe_instances, {}), (ec2.describe_instance_status, {"InstanceIds": [iid]}),
                   (ec2.describe_instance_attribute, {"InstanceId": iid, "Attribute": "instanceType"}),
                   (ec2.get_console_output, {"InstanceId": iid}), (ec2.describe_instance_types, {}),
                   (ec2.describe_instance_type_offerings, {}), (ec2.describe_tags, {}),
                   (ec2.describe_availability_zones, {})]:
        assert client_error(fn, DryRun=True, **kw) == "DryRunOperation", fn.__name__
    wait_state(ec2, [iid], "running")
    ec2.terminate_instances(InstanceIds=[iid])


def test_bad_input_gets_ec2_errors(cloud, ami, tenant):
    _, _, _, ec2 = tenant
    missing = "i-" + "0" * 17
    assert client_error(ec2.describe_instances, InstanceIds=["i-nothex"]) == "InvalidInstanceID.Malformed"
    assert client_error(ec2.describe_instances, InstanceIds=[missing]) == "InvalidInstanceID.NotFound"
    assert client_error(ec2.terminate_instances, InstanceIds=[missing]) == "InvalidInstanceID.NotFound"
    assert client_error(ec2.stop_instances, InstanceIds=["bogus"]) == "InvalidInstanceID.Malformed"
    assert client_error(ec2.get_console_output, InstanceId=missing) == "InvalidInstanceID.NotFound"
    launch = dict(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)
    assert client_error(ec2.run_instances, **{**launch, "ImageId": "ami-" + "0" * 17}) == "InvalidAMIID.NotFound"
    assert client_error(ec2.run_instances, **{**launch, "ImageId": "bogus"}) == "InvalidAMIID.Malformed"
    assert client_error(ec2.run_instances, **{**launch, "InstanceType": "x9.huge"}) == "InvalidParameterValue"
    assert client_error(ec2.run_instances, **{**launch, "KeyName": "no-such-key"}) == "InvalidKeyPair.NotFound"
    assert client_error(ec2.run_instances, **{**launch, "UserData": "x" * (16 * 1024 + 1)}) \
        == "InvalidParameterValue"
    assert client_error(ec2.run_instances, **{**launch, "MinCount": 3, "MaxCount": 2}) == "InvalidParameterValue"
    assert client_error(ec2.run_instances, **{**launch, "PrivateIpAddress": "300.1.1.1"}) == "InvalidParameterValue"
    assert client_error(ec2.run_instances, **{**launch, "SubnetId": "bogus"}) == "InvalidSubnetID.Malformed"
    # the subnet belongs to the network service; compute holds its answer (launch facts),
    # so an unknown one is RunInstances' own error, as in EC2
    assert client_error(ec2.run_instances, **{**launch, "SubnetId": "subnet-" + "0" * 17}) \
        == "InvalidSubnetID.NotFound"
    assert client_error(ec2.describe_instance_attribute, InstanceId=missing, Attribute="nonsense") \
        == "InvalidParameterValue"
    # nothing was left behind by any of them
    assert all(i["State"]["Name"] in ("terminated", "shutting-down")
               for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])


def test_instance_tags_through_the_tag_actions(cloud, ami, tenant):
    _, _, _, ec2 = tenant
    _, (iid,) = run(ec2, ami)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "env", "Value": "test"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
    assert tags == [{"Key": "env", "ResourceId": iid, "ResourceType": "instance", "Value": "test"}]
    got = ec2.describe_instances(Filters=[{"Name": "tag:env", "Values": ["test"]}])["Reservations"]
    assert [i["InstanceId"] for r in got for i in r["Instances"]] == [iid]
    # several tags, values JSON and XML escape: a page (every filter in SQL: compute writes
    # its tags from their text) and InstanceIds (the in-memory pass) show the same tagSet
    more = [{"Key": "b", "Value": 'q"uote\\ <&> \u00e9 \u2713'}, {"Key": "a", "Value": ""}, {"Key": "z z", "Value": "1"}]
    ec2.create_tags(Resources=[iid], Tags=more)
    paged = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [iid]}], MaxResults=5)
    by_id = ec2.describe_instances(InstanceIds=[iid])
    tag_sets = [r["Reservations"][0]["Instances"][0]["Tags"] for r in (paged, by_id)]
    assert tag_sets[0] == tag_sets[1]
    assert sorted(tag_sets[0], key=lambda t: t["Key"]) == sorted(more + [{"Key": "env", "Value": "test"}],
                                                                   key=lambda t: t["Key"])
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "env"}] + [{"Key": t["Key"]} for t in more])
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Tags"] == []
    ec2.terminate_instances(InstanceIds=[iid])


def test_compute_killed_during_a_launch_converges(cloud, ami):
    """kill -9 of compute right after RunInstances answered (its launch tasks in flight),
    then a restart: every instance reaches running with one port, none twice; then the
    same during TerminateInstances: every instance ends terminated with its port gone."""
    import os
    import signal
    _, k, s = new_tenant(cloud, "inst-crash-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    _, ids = run(ec2, ami, 20)
    os.kill(cloud.pid("compute"), signal.SIGKILL)
    r = cloud.up()
    assert r.returncode == 0, r.stderr
    running = wait_state(ec2, ids, "running", seconds=120)
    enis = [n for n in ec2.describe_network_interfaces()["NetworkInterfaces"]]
    mine = [n for n in enis if n.get("Attachment", {}).get("InstanceId") in ids]
    assert len(mine) == 20 and {n["Attachment"]["InstanceId"] for n in mine} == set(ids)
    assert all(len(i["NetworkInterfaces"]) == 1 for i in running)

    ec2.terminate_instances(InstanceIds=ids)
    os.kill(cloud.pid("compute"), signal.SIGKILL)
    r = cloud.up()
    assert r.returncode == 0, r.stderr
    wait_state(ec2, ids, "terminated", seconds=120)
    deadline = time.time() + 120
    while [n for n in ec2.describe_network_interfaces()["NetworkInterfaces"]
           if n.get("Attachment", {}).get("InstanceId") in ids]:
        assert time.time() < deadline, "ports of terminated instances left"
        time.sleep(0.5)


def test_agent_contract_host_instances_and_metadata(cloud, ami, tenant):
    acct, _, _, ec2 = tenant
    ec2.import_key_pair(KeyName="md-key", PublicKeyMaterial=b"ssh-ed25519 "
                        b"AAAAC3NzaC1lZDI1NTE5AAAAIOTU9XEBvADCsRPlXduU2nfJXLyNo47PQDT0rmKNH8M1 md@test")
    _, (iid,) = run(ec2, ami, KeyName="md-key", UserData=b"user data \x00\xff")
    (i,) = wait_state(ec2, [iid], "running")
    ok, doc = agent_call(cloud, "compute.host_instances", {})
    assert ok, doc
    (mine,) = [x for x in doc["instances"] if x["instance_id"] == iid]
    assert mine["driver"] == "sim" and mine["power"] == "running" and mine["vcpus"] == 2
    assert mine["image"]["image_id"] == ami and mine["image"]["type"] == "container-rootfs"
    assert mine["image"]["url"].startswith("http") and len(mine["image"]["sha256"]) == 64
    (f,) = mine["interfaces"]
    assert f["ip"] == i["PrivateIpAddress"] and f["device"] == "vt-" + f["eni_id"][4:16]
    assert mine["hostname"] == "ip-" + i["PrivateIpAddress"].replace(".", "-")
    assert mine["changed_gen"] <= doc["generation"] and doc["observed_seq"] > 0

    # the agent's reports are one-way and may reach compute in any order: one numbered
    # before the last applied is not applied (this one would take the guest for stopped)
    late = {"generation": doc["generation"] + 1000, "seq": doc["observed_seq"] - 1,
            "instances": [{"instance_id": iid, "power": "stopped", "reboot_seq": 0}]}
    ok, r = agent_call(cloud, "compute.instances_observed", late)
    assert ok and r.get("stale") is True, r
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"

    ok, md = agent_call(cloud, "compute.instance_metadata", {"vpc_id": i["VpcId"], "ip": i["PrivateIpAddress"]})
    assert ok, md
    m = md["meta_data"]
    assert md["instance_id"] == iid and m["instance-id"] == iid and m["ami-id"] == ami
    assert m["local-ipv4"] == i["PrivateIpAddress"] and m["instance-type"] == "t3.nano"
    assert m["public-keys/0/openssh-key"].startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOTU9XEBvADCsRPl")
    assert m["public-keys"] == "0=md-key"      # what public-keys/ lists, as on EC2
    assert m["security-groups"] == "default"
    assert base64.b64decode(md["user_data"]) == b"user data \x00\xff"
    assert md["identity_document"]["accountId"] == acct and md["identity_document"]["instanceId"] == iid
    # an address no instance of this host has; and the operator is not an agent
    ok, err = agent_call(cloud, "compute.instance_metadata", {"vpc_id": i["VpcId"], "ip": "172.31.255.254"})
    assert not ok and "NotFound" in err
    ok, err = cloud.call("compute", "compute.instance_metadata", {"vpc_id": i["VpcId"], "ip": i["PrivateIpAddress"]})
    assert not ok and "AccessDenied" in err
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    ok, doc = agent_call(cloud, "compute.host_instances", {})
    assert iid not in [x["instance_id"] for x in doc["instances"]]


def test_instance_metadata_options(cloud, ami, tenant):
    """RunInstances' MetadataOptions and ModifyInstanceMetadataOptions: what DescribeInstances
    shows and what the host's metadata server is told for the instance (its own options
    over the host's defaults: tests/unit/test_metadata_http.c serves them)."""
    _, _, _, ec2 = tenant
    _, (iid,) = run(ec2, ami, MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2})
    (i,) = wait_state(ec2, [iid], "running")
    assert i["MetadataOptions"] == {"State": "applied", "HttpTokens": "required", "HttpPutResponseHopLimit": 2,
                                    "HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled",
                                    "InstanceMetadataTags": "disabled"}
    where = {"vpc_id": i["VpcId"], "ip": i["PrivateIpAddress"]}
    ok, md = agent_call(cloud, "compute.instance_metadata", where)
    assert ok and md["metadata_options"] == {"http_tokens": "required", "hop_limit": 2}, md
    r = ec2.modify_instance_metadata_options(InstanceId=iid, HttpEndpoint="disabled")
    assert r["InstanceId"] == iid
    assert r["InstanceMetadataOptions"] == {"State": "pending", "HttpTokens": "required", "HttpPutResponseHopLimit": 2,
                                            "HttpEndpoint": "disabled", "HttpProtocolIpv6": "disabled",
                                            "InstanceMetadataTags": "disabled"}
    ok, md = agent_call(cloud, "compute.instance_metadata", where)
    assert md["metadata_options"] == {"http_tokens": "required", "hop_limit": 2, "http_endpoint": "disabled"}
    r = ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="optional", HttpEndpoint="enabled")
    assert r["InstanceMetadataOptions"]["HttpTokens"] == "optional"
    (i,) = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"]
    assert (i["MetadataOptions"]["HttpTokens"], i["MetadataOptions"]["HttpEndpoint"]) == ("optional", "enabled")
    ok, md = agent_call(cloud, "compute.instance_metadata", where)
    assert md["metadata_options"] == {"http_tokens": "optional", "hop_limit": 2}
    for bad, code in (({"HttpTokens": "maybe"}, "InvalidParameterValue"),
                      ({"HttpPutResponseHopLimit": 65}, "InvalidParameterValue"),
                      ({"InstanceMetadataTags": "maybe"}, "InvalidParameterValue"),
                      ({"HttpProtocolIpv6": "enabled"}, "Unsupported")):
        with pytest.raises(ClientError) as e:
            ec2.modify_instance_metadata_options(InstanceId=iid, **bad)
        assert e.value.response["Error"]["Code"] == code, (bad, e.value.response)
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required", DryRun=True)
    assert e.value.response["Error"]["Code"] == "DryRunOperation"
    # another tenant's instance is not there for this one
    _, k, s = new_tenant(cloud, "inst-md-" + uuid.uuid4().hex[:8])
    with pytest.raises(ClientError) as e:
        boto3_client(cloud, "ec2", k, s).modify_instance_metadata_options(InstanceId=iid, HttpTokens="required")
    assert e.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    # the AWS CLI, as the other tenant and as the owner
    rc, _, err = aws(cloud, "ec2", "modify-instance-metadata-options", "--instance-id", iid, "--http-tokens",
                     "required", access_key=k, secret_key=s)
    assert rc != 0 and "InvalidInstanceID.NotFound" in err
    acct, ok_k, ok_s, _ = tenant
    rc, out, err = aws(cloud, "ec2", "modify-instance-metadata-options", "--instance-id", iid, "--http-put-response-hop-limit",
                       "3", access_key=ok_k, secret_key=ok_s)
    assert rc == 0, err
    assert out["InstanceMetadataOptions"]["HttpPutResponseHopLimit"] == 3
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required")
    assert e.value.response["Error"]["Code"] == "IncorrectInstanceState"


def test_instance_metadata_tags(cloud, ami, tenant):
    """InstanceMetadataTags (off by default, as on AWS): turned on at launch or by
    ModifyInstanceMetadataOptions, the instance's tags are in what its host's metadata
    server is told (tags/instance/KEY: tests/unit/test_metadata_http.c serves them as EC2
    does), and a tag added or deleted shows up there (compute reads them at each lookup);
    turned off, they are not. A tag key AWS does not allow in the metadata (a space, a
    slash) makes the launch and the modification fail with AWS's InvalidParameterValue."""
    acct, k, s, ec2 = tenant
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web 1"}, {"Key": "env", "Value": ""}]}]
    _, (iid,) = run(ec2, ami, MetadataOptions={"InstanceMetadataTags": "enabled"}, TagSpecifications=tags)
    (i,) = wait_state(ec2, [iid], "running")
    assert i["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
    where = {"vpc_id": i["VpcId"], "ip": i["PrivateIpAddress"]}

    def shown():
        ok, md = agent_call(cloud, "compute.instance_metadata", where)
        assert ok, md
        return {key[len("tags/instance/"):]: v for key, v in md["meta_data"].items() if key.startswith("tags/")}
    assert shown() == {"Name": "web 1", "env": ""}
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "role", "Value": "db"}])
    # while the tags are in the metadata, CreateTags refuses a key it cannot hold (nothing added)
    for bad in ("a/b", "..", "Patch Group"):
        assert client_error(ec2.create_tags, Resources=[iid], Tags=[{"Key": "ok", "Value": "1"},
                                                                   {"Key": bad, "Value": "x"}]) == "InvalidParameterValue"
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "env"}])
    assert shown() == {"Name": "web 1", "role": "db"}
    rc, out, err = aws(cloud, "ec2", "modify-instance-metadata-options", "--instance-id", iid,
                       "--instance-metadata-tags", "disabled", access_key=k, secret_key=s)
    assert rc == 0 and out["InstanceMetadataOptions"]["InstanceMetadataTags"] == "disabled", err
    assert shown() == {}
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["MetadataOptions"][
        "InstanceMetadataTags"] == "disabled"

    # keys the metadata cannot hold: refused at launch (nothing launched) and at the change
    before = len(ec2.describe_instances()["Reservations"])
    for bad in ("Patch Group", "k8s.io/cluster", "_index"):
        with pytest.raises(ClientError) as e:
            run(ec2, ami, MetadataOptions={"InstanceMetadataTags": "enabled"},
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": bad, "Value": "x"}]}])
        err = e.value.response["Error"]
        assert err["Code"] == "InvalidParameterValue" and err["Message"].startswith(
            "'%s' is not a valid tag key. Tag keys must match pattern" % bad), err
    assert len(ec2.describe_instances()["Reservations"]) == before
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "Patch Group", "Value": "a"}])
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_metadata_options(InstanceId=iid, InstanceMetadataTags="enabled")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "'Patch Group' is not a valid tag key" in e.value.response["Error"]["Message"]
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "Patch Group"}])
    r = ec2.modify_instance_metadata_options(InstanceId=iid, InstanceMetadataTags="enabled")
    assert r["InstanceMetadataOptions"]["InstanceMetadataTags"] == "enabled"
    assert shown() == {"Name": "web 1", "role": "db"}
    ec2.terminate_instances(InstanceIds=[iid])


def test_silent_host_is_down_and_its_instances_impaired(cloud, ami, tenant):
    """The agent frozen (SIGSTOP) stops heartbeating: after compute.host_down_after_s
    the host is down, its running instance's status impaired, and a launch names the
    host-up filter. A terminate and a stop asked of it meanwhile end without it once it is
    lost (compute.host_lost_after_s), while the running instance stays running. Thawed, it
    reports again, all is well, and the stopped instance starts."""
    import os
    import signal
    _, _, _, ec2 = tenant
    _, ids = run(ec2, ami, 3)
    keep, ended, stopped = ids
    wait_state(ec2, ids, "running")
    agent = cloud.pid("agent")
    os.kill(agent, signal.SIGSTOP)
    try:
        deadline = time.time() + HOST_DOWN_AFTER_S + 60
        while True:
            st = ec2.describe_instance_status(InstanceIds=[keep])["InstanceStatuses"][0]
            if st["SystemStatus"]["Status"] == "impaired":
                break
            assert time.time() < deadline, st
            time.sleep(1)
        assert st["InstanceStatus"]["Status"] == "impaired" and st["InstanceState"]["Name"] == "running"
        with pytest.raises(ClientError) as e:
            ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)
        assert e.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
        assert "host-up rejected 1" in e.value.response["Error"]["Message"]
        ec2.terminate_instances(InstanceIds=[ended])
        ec2.stop_instances(InstanceIds=[stopped])
        states = {i["InstanceId"]: i["State"]["Name"]
                  for r in ec2.describe_instances(InstanceIds=[ended, stopped])["Reservations"]
                  for i in r["Instances"]}
        assert states == {ended: "shutting-down", stopped: "stopping"}   # the host is not lost yet
        wait_state(ec2, [ended], "terminated", seconds=HOST_LOST_AFTER_S + 30)
        wait_state(ec2, [stopped], "stopped", seconds=15)
        assert wait_state(ec2, [keep], "running", seconds=1)
    finally:
        os.kill(agent, signal.SIGCONT)
    deadline = time.time() + 60
    while ec2.describe_instance_status(InstanceIds=[keep])["InstanceStatuses"][0]["SystemStatus"]["Status"] != "ok":
        assert time.time() < deadline
        time.sleep(0.5)
    ok, doc = agent_call(cloud, "compute.host_instances", {})
    assert ended not in [x["instance_id"] for x in doc["instances"]]
    ec2.start_instances(InstanceIds=[stopped])
    wait_state(ec2, [stopped], "running")
    ec2.terminate_instances(InstanceIds=[keep, stopped])
    wait_state(ec2, [keep, stopped], "terminated")


def test_launch_waits_out_a_frozen_network_service(cloud, ami, tenant):
    """The network service frozen (SIGSTOP) while instances launch: their launch tasks'
    port calls time out and are tried again with backoff; thawed, every instance reaches
    running with its port, none made twice."""
    import os
    import signal
    _, _, _, ec2 = tenant
    net = cloud.pid("network")
    os.kill(net, signal.SIGSTOP)
    try:
        _, ids = run(ec2, ami, 3)
        time.sleep(3)
        got = [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
               for i in r["Instances"]]
        assert got == ["pending"] * 3
    finally:
        os.kill(net, signal.SIGCONT)
    running = wait_state(ec2, ids, "running", seconds=120)
    assert all(len(i["NetworkInterfaces"]) == 1 for i in running)
    mine = [n for n in ec2.describe_network_interfaces()["NetworkInterfaces"]
            if n.get("Attachment", {}).get("InstanceId") in ids]
    assert len(mine) == 3
    ec2.terminate_instances(InstanceIds=ids)
    wait_state(ec2, ids, "terminated")


def test_vcpu_and_memory_quotas(cloud, ami):
    acct, k, s = new_tenant(cloud, "inst-vcpu-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    assert cloud.virgadm("quota", "set", acct, "vcpus", "4").returncode == 0
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=3, MaxCount=3)
    assert e.value.response["Error"]["Code"] == "VcpuLimitExceeded"
    # MaxCount past the quota launches what fits: 2 x 2 vCPUs
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1,
                                                      MaxCount=3)["Instances"]]
    assert len(ids) == 2
    assert client_error(ec2.run_instances, ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1) \
        == "VcpuLimitExceeded"
    # terminated instances no longer count
    ec2.terminate_instances(InstanceIds=ids)
    wait_state(ec2, ids, "terminated")
    assert cloud.virgadm("quota", "set", acct, "memory_mib", "1024").returncode == 0
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1)
    assert e.value.response["Error"]["Code"] == "InstanceLimitExceeded" and "memory" in str(e.value)
    (iid,) = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1,
                                                         MaxCount=1)["Instances"]]
    ec2.terminate_instances(InstanceIds=[iid])


def test_run_instances_answers_with_the_image_and_identity_services_frozen(cloud, ami):
    """RunInstances decides from what compute holds (docs/compute.md, launch facts): with the
    image and identity services frozen (SIGSTOP) it still answers pending at once, where it
    used to wait for their answers on a bus worker and fail with RequestTimeout. The launch
    task asks the image service for the grant; thawed, the instance reaches running. (A
    launch task reuses the grant of a launch of the same image by the same account for
    compute.grant_reuse_s, 2 s: the frozen launches come after it.)"""
    import os
    import signal
    _, k, s = new_tenant(cloud, "inst-frozen-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    _, (first,) = run(ec2, ami)        # compute learns the image and the quotas
    wait_state(ec2, [first], "running")
    time.sleep(2.2)                    # its grant (asked before it ran) is no longer reused
    frozen = [cloud.pid("image"), cloud.pid("identity")]
    for p in frozen:
        os.kill(p, signal.SIGSTOP)
    try:
        r, ids = run(ec2, ami, 2)
        assert [i["State"]["Name"] for i in r["Instances"]] == ["pending", "pending"]
        time.sleep(2)   # the launch tasks wait for the image service
        got = [i["State"]["Name"] for x in ec2.describe_instances(InstanceIds=ids)["Reservations"]
               for i in x["Instances"]]
        assert got == ["pending", "pending"]
    finally:
        for p in frozen:
            os.kill(p, signal.SIGCONT)
    wait_state(ec2, ids, "running", seconds=120)
    ec2.terminate_instances(InstanceIds=ids + [first])
    wait_state(ec2, ids + [first], "terminated")


def test_cold_launch_facts_do_not_hold_compute_workers(cloud, ami, tenant):
    """A first launch of an account makes compute learn its quotas from identity (a cold
    launch-facts row). With identity frozen, more first launches than compute has bus
    workers (bus.workers, 4) are set aside waiting for that answer, none holding a worker:
    compute still answers another tenant's DescribeInstances and its own metrics. Before,
    each held a worker for up to compute.launch_facts_wait_ms, and the rest of compute
    waited behind them. Thawed, every launch is answered."""
    import os
    import signal
    from botocore.config import Config
    n = 6
    fresh = []
    for i in range(n):
        _, k, s = new_tenant(cloud, "inst-cold-%d-%s" % (i, uuid.uuid4().hex[:6]))
        c = boto3_client(cloud, "ec2", k, s)
        c.describe_instances()   # the gateway knows the key from now on: only compute waits
        fresh.append(boto3.client("ec2", endpoint_url=c.meta.endpoint_url, region_name=c.meta.region_name,
                                  aws_access_key_id=k, aws_secret_access_key=s,
                                  config=Config(retries={"max_attempts": 10, "mode": "standard"},
                                                read_timeout=120)))
    warm = tenant[3]
    warm.describe_instances()   # its key known to the gateway too
    identity = cloud.pid("identity")
    os.kill(identity, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            launches = [pool.submit(c.run_instances, ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)
                        for c in fresh]
            deadline = time.time() + 60
            while (bus_waiting(cloud, "compute") or 0) < 5:
                assert time.time() < deadline, "compute never set the launches aside: %r" % bus_waiting(cloud, "compute")
                assert not any(f.done() for f in launches), [f.exception() for f in launches if f.done()]
                time.sleep(0.2)
            warm.describe_instances()   # served meanwhile, by a free worker
            assert not any(f.done() for f in launches)
            os.kill(identity, signal.SIGCONT)
            identity = None
            ids = [f.result(timeout=300)["Instances"][0]["InstanceId"] for f in launches]
    finally:
        if identity:
            os.kill(identity, signal.SIGCONT)
    for c, iid in zip(fresh, ids):
        c.terminate_instances(InstanceIds=[iid])


def test_launch_permissions_reach_run_instances(cloud, ami):
    """Compute's image facts follow the image service's changes (image.changed): another
    account's private image is InvalidAMIID.NotFound for RunInstances itself, launchable
    once shared, refused again once unshared, and a deregistered image is refused to its
    owner too."""
    from harness import s3_client
    acct_a, ka, sa = new_tenant(cloud, "inst-img-a-" + uuid.uuid4().hex[:8])
    acct_b, kb, sb = new_tenant(cloud, "inst-img-b-" + uuid.uuid4().hex[:8])
    a, b = boto3_client(cloud, "ec2", ka, sa), boto3_client(cloud, "ec2", kb, sb)
    bucket = "inst-img-" + uuid.uuid4().hex[:8]
    s3 = s3_client(cloud, ka, sa)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="disk.raw", Body=b"\0" * 65536)
    img = a.register_image(Name="facts", ImageLocation=bucket + "/disk.raw")["ImageId"]
    a.get_waiter("image_available").wait(ImageIds=[img], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert client_error(b.run_instances, ImageId=img, InstanceType="t3.nano", MinCount=1, MaxCount=1) \
        == "InvalidAMIID.NotFound"
    a.modify_image_attribute(ImageId=img, LaunchPermission={"Add": [{"UserId": acct_b}]})
    _, (iid,) = run(b, img)
    a.modify_image_attribute(ImageId=img, LaunchPermission={"Remove": [{"UserId": acct_b}]})
    assert client_error(b.run_instances, ImageId=img, InstanceType="t3.nano", MinCount=1, MaxCount=1) \
        == "InvalidAMIID.NotFound"
    _, (own,) = run(a, img)
    a.deregister_image(ImageId=img)
    assert client_error(a.run_instances, ImageId=img, InstanceType="t3.nano", MinCount=1, MaxCount=1) \
        == "InvalidAMIID.NotFound"
    b.terminate_instances(InstanceIds=[iid])
    a.terminate_instances(InstanceIds=[own])
    wait_state(b, [iid], "terminated")
    wait_state(a, [own], "terminated")


def test_network_refusals_come_from_run_instances(cloud, ami):
    """An unknown subnet or group, another account's subnet, a group of another VPC, a
    name not in the default VPC, an address outside the subnet: RunInstances itself
    answers EC2's error (it used to answer pending and the instance ended terminated)."""
    _, ka, sa = new_tenant(cloud, "inst-net-a-" + uuid.uuid4().hex[:8])
    _, kb, sb = new_tenant(cloud, "inst-net-b-" + uuid.uuid4().hex[:8])
    a, b = boto3_client(cloud, "ec2", ka, sa), boto3_client(cloud, "ec2", kb, sb)
    launch = {"ImageId": ami, "InstanceType": "t3.nano", "MinCount": 1, "MaxCount": 1}
    vpc = a.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    sub = a.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    other = a.create_security_group(GroupName="other", Description="x", VpcId=vpc)["GroupId"]
    assert client_error(a.run_instances, SubnetId="subnet-0123456789abcdef0", **launch) == "InvalidSubnetID.NotFound"
    assert client_error(b.run_instances, SubnetId=sub, **launch) == "InvalidSubnetID.NotFound"
    assert client_error(a.run_instances, SecurityGroupIds=["sg-0123456789abcdef0"], **launch) \
        == "InvalidGroup.NotFound"
    assert client_error(a.run_instances, SecurityGroupIds=[other], **launch) == "InvalidParameter"  # default VPC
    assert client_error(a.run_instances, SecurityGroups=["nope"], **launch) == "InvalidGroup.NotFound"
    assert client_error(a.run_instances, SubnetId=sub, SecurityGroups=["other"], **launch) \
        == "InvalidParameterCombination"
    assert client_error(a.run_instances, SubnetId=sub, PrivateIpAddress="10.40.2.9", **launch) \
        == "InvalidParameterValue"
    # the subnet's reserved addresses (network, router, DNS, future, broadcast): they were
    # answered pending and the instance ended terminated with Server.InternalError
    for reserved in ("10.40.1.0", "10.40.1.1", "10.40.1.3", "10.40.1.255"):
        assert client_error(a.run_instances, SubnetId=sub, PrivateIpAddress=reserved, **launch) \
            == "InvalidParameterValue", reserved
    assert a.describe_instances()["Reservations"] == []   # nothing was made
    a.delete_security_group(GroupId=other)
    a.delete_subnet(SubnetId=sub)
    a.delete_vpc(VpcId=vpc)


def test_launch_after_the_default_vpc_was_deleted(cloud, ami):
    """A launch's port in the default subnet of its zone, which the network keeps once
    looked up (services/network/default_subnets.c): the default VPC deleted (its subnets,
    gateway and VPC), the next launch gets a new default VPC and runs in its subnet, not
    InvalidSubnetID.NotFound for the subnet kept."""
    _, k, s = new_tenant(cloud, "inst-defvpc-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    _, (first,) = run(ec2, ami)
    (inst,) = wait_state(ec2, [first], "running")
    old_vpc, old_subnet, zone = inst["VpcId"], inst["SubnetId"], inst["Placement"]["AvailabilityZone"]
    ec2.terminate_instances(InstanceIds=[first])
    wait_state(ec2, [first], "terminated")
    for igw in ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [old_vpc]}])["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=old_vpc)
        ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    for sub in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [old_vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=sub["SubnetId"])
    ec2.delete_vpc(VpcId=old_vpc)
    _, (second,) = run(ec2, ami, Placement={"AvailabilityZone": zone})
    (inst,) = wait_state(ec2, [second], "running")
    assert inst["VpcId"] != old_vpc and inst["SubnetId"] != old_subnet
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert inst["VpcId"] == vpc["VpcId"]
    ec2.terminate_instances(InstanceIds=[second])
    wait_state(ec2, [second], "terminated")


def test_security_groups_by_name_and_network_interfaces(cloud, ami):
    """SecurityGroups by name in the default VPC; NetworkInterfaces with the primary
    interface's subnet, groups, address and AssociatePublicIpAddress; both show in
    DescribeInstances as asked (each with a public address: the default subnet's, the
    one asked for)."""
    _, k, s = new_tenant(cloud, "inst-sgname-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    dvpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=dvpc)["GroupId"]
    _, (by_name,) = run(ec2, ami, SecurityGroups=["web"])
    vpc = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.41.3.0/24")["Subnet"]["SubnetId"]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    nic = {"DeviceIndex": 0, "SubnetId": sub, "Groups": [app], "PrivateIpAddress": "10.41.3.77"}
    launch = {"ImageId": ami, "InstanceType": "t3.nano", "MinCount": 1, "MaxCount": 1}
    assert client_error(ec2.run_instances, NetworkInterfaces=[nic], SubnetId=sub, **launch) \
        == "InvalidParameterCombination"
    assert client_error(ec2.run_instances, NetworkInterfaces=[{**nic, "DeviceIndex": 1}], **launch) \
        == "InvalidParameterValue"
    # a subnet that maps no public addresses on launch, asked for one
    _, (by_nic,) = run(ec2, ami, NetworkInterfaces=[{**nic, "AssociatePublicIpAddress": True}])
    got = {i["InstanceId"]: i for i in wait_state(ec2, [by_name, by_nic], "running")}
    assert [(g["GroupName"], g["GroupId"]) for g in got[by_name]["SecurityGroups"]] == [("web", web)]
    assert got[by_name]["VpcId"] == dvpc
    i = got[by_nic]
    assert (i["SubnetId"], i["VpcId"], i["PrivateIpAddress"]) == (sub, vpc, "10.41.3.77")
    assert [g["GroupId"] for g in i["SecurityGroups"]] == [app]
    deadline = time.time() + 10   # the public address: a push away from running at most
    while not all(x.get("PublicIpAddress") for x in got.values()) and time.time() < deadline:
        time.sleep(0.2)
        got = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=[by_name, by_nic])["Reservations"]
               for i in r["Instances"]}
    assert all(x.get("PublicIpAddress") for x in got.values()), "no public address after 10 s"
    ec2.terminate_instances(InstanceIds=[by_name, by_nic])
    wait_state(ec2, [by_name, by_nic], "terminated")


def test_instance_type_change_rechecks_quota_and_host_capacity(cloud, ami):
    """ModifyInstanceAttribute instanceType of a stopped instance: the account's vCPU quota
    and its host's capacity (stopped instances keep their room) must hold the new size."""
    acct, k, s = new_tenant(cloud, "inst-resize-" + uuid.uuid4().hex[:8])
    for res, n in (("instances", "50"), ("vcpus", "3")):
        assert cloud.virgadm("quota", "set", acct, res, n).returncode == 0
    ec2 = boto3_client(cloud, "ec2", k, s)
    _, (iid,) = run(ec2, ami)
    wait_state(ec2, [iid], "running")
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "stopped")
    big = {"InstanceId": iid, "InstanceType": {"Value": "m5.xlarge"}}   # 4 vCPUs
    assert client_error(ec2.modify_instance_attribute, **big) == "VcpuLimitExceeded"
    assert cloud.virgadm("quota", "set", acct, "vcpus", "500").returncode == 0
    # fill the one host's vCPUs (16 x 4.0 overcommit) with what fits besides the stopped one
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=40)
    fill = [i["InstanceId"] for i in r["Instances"]]
    assert len(fill) < 40   # the host is full
    err = client_error(ec2.modify_instance_attribute, **big)
    assert err == "InsufficientInstanceCapacity"
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"]["Value"] \
        == "t3.nano"
    ec2.terminate_instances(InstanceIds=fill)
    wait_state(ec2, fill, "terminated")
    ec2.modify_instance_attribute(**big)
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"]["Value"] \
        == "m5.xlarge"
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")


def test_modify_instance_group_set(cloud, ami):
    """ModifyInstanceAttribute Groups (groupSet) on a running instance: checked at once
    (unknown: InvalidGroup.NotFound, another VPC's: InvalidParameter), then on its port:
    DescribeInstances, DescribeInstanceAttribute and the network's interface show them."""
    _, k, s = new_tenant(cloud, "inst-groupset-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    _, (iid,) = run(ec2, ami)
    (i,) = wait_state(ec2, [iid], "running")
    assert [g["GroupName"] for g in i["SecurityGroups"]] == ["default"]
    g1 = ec2.create_security_group(GroupName="g1", Description="x", VpcId=i["VpcId"])["GroupId"]
    g2 = ec2.create_security_group(GroupName="g2", Description="x", VpcId=i["VpcId"])["GroupId"]
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_security_group(GroupName="o", Description="x", VpcId=vpc)["GroupId"]
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid, Groups=["sg-0123456789abcdef0"]) \
        == "InvalidGroup.NotFound"
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid, Groups=[other]) == "InvalidParameter"
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[g1, g2])
    deadline = time.time() + WAIT_S
    while True:
        (i,) = [x for r in ec2.describe_instances(InstanceIds=[iid])["Reservations"] for x in r["Instances"]]
        if sorted(g["GroupId"] for g in i["SecurityGroups"]) == sorted([g1, g2]):
            break
        assert time.time() < deadline, i["SecurityGroups"]
        time.sleep(0.2)
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="groupSet")["Groups"]
    assert sorted(g["GroupId"] for g in attr) == sorted([g1, g2])
    (eni,) = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])[
        "NetworkInterfaces"]
    assert sorted(g["GroupId"] for g in eni["Groups"]) == sorted([g1, g2])
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid, Groups=[g1]) == "IncorrectInstanceState"


def test_run_instances_refuses_what_it_does_not_honour(cloud, ami):
    """A parameter RunInstances would ignore is refused with Unsupported naming it, and
    nothing is launched; the hints that change nothing here (defaults, EbsOptimized,
    CreditSpecification) are accepted."""
    _, k, s = new_tenant(cloud, "inst-unsup-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    base = dict(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)
    refused = [
        ({"InstanceMarketOptions": {"MarketType": "spot"}}, "InstanceMarketOptions"),
        ({"MetadataOptions": {"HttpProtocolIpv6": "enabled"}}, "HttpProtocolIpv6 'enabled'"),
        ({"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 100}}]}, "BlockDeviceMapping"),
        ({"Placement": {"Tenancy": "dedicated"}}, "Placement.Tenancy 'dedicated'"),
        ({"Placement": {"HostId": "h-0123456789abcdef0"}}, "Placement.HostId"),
        ({"IamInstanceProfile": {"Name": "web"}}, "IamInstanceProfile"),
        ({"LaunchTemplate": {"LaunchTemplateName": "web"}}, "LaunchTemplate"),
        ({"InstanceInitiatedShutdownBehavior": "terminate"}, "InstanceInitiatedShutdownBehavior 'terminate'"),
        ({"Monitoring": {"Enabled": True}}, "Monitoring.Enabled 'true'"),
        ({"Ipv6AddressCount": 1}, "Ipv6AddressCount '1'"),
    ]
    for extra, named in refused:
        with pytest.raises(ClientError) as e:
            ec2.run_instances(**base, **extra)
        err = e.value.response["Error"]
        assert err["Code"] == "Unsupported" and err["Message"].startswith(named), (extra, err)
    assert ec2.describe_instances()["Reservations"] == []
    _, ids = run(ec2, ami, EbsOptimized=False, Monitoring={"Enabled": False},
                 CreditSpecification={"CpuCredits": "standard"}, Placement={"Tenancy": "default"},
                 MetadataOptions={"HttpTokens": "optional", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"})
    ec2.terminate_instances(InstanceIds=ids)
