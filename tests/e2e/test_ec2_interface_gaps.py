"""Gaps of the instance <-> interface API closed after the interface work, with
/usr/bin/aws and Debian's boto3 on the shared `sim` cloud (docs/compute.md):

- RunInstances' answer after its wait for the launch tasks' ports timed out
  (compute.run_answer_wait_ms) still has what the launch knew of its network: subnet,
  VPC, groups, state pending (compute restarted with a 1 ms wait, then as before);
- a primary interface's DeleteOnTermination can be changed (ModifyNetworkInterfaceAttribute
  Attachment), as EC2 allows: set false, the interface outlives its instance, available
  with its address, MAC, groups and tags."""
import os
import signal
import time

import pytest

from harness import aws, ec2_tenant, eventually


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    return sim_cloud


@pytest.fixture(scope="module")
def tenant(cloud):
    return ec2_tenant(cloud, "gaps")


def restart_compute(cloud):
    """compute reads its settings at start: SIGTERM, then devcloud up with start_env."""
    pid = cloud.pid("compute")
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    r = cloud.up()
    assert r.returncode == 0, r.stderr
    cloud.wait_healthy("compute")


@pytest.fixture
def short_answer_wait(cloud):
    """compute with compute.run_answer_wait_ms 1: every answer is the one after a timeout.
    The shared cloud gets its default back afterwards (other modules read addresses from
    RunInstances' answer)."""
    cloud.start_env["VIRGA_COMPUTE_RUN_ANSWER_WAIT_MS"] = "1"
    restart_compute(cloud)
    try:
        yield
    finally:
        cloud.start_env.pop("VIRGA_COMPUTE_RUN_ANSWER_WAIT_MS", None)
        restart_compute(cloud)


def test_run_answer_after_its_wait_timed_out_has_the_network(cloud, tenant, short_answer_wait):
    _, key, secret, ec2 = tenant
    ami = cloud.default_images()["virga-busybox-rootfs"]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="gaps-answer", Description="answer", VpcId=vpc)["GroupId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    rc, out, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.nano",
                       "--subnet-id", subnet, "--security-group-ids", sg, "--count", "1",
                       access_key=key, secret_key=secret)
    assert rc == 0, err
    i = out["Instances"][0]
    try:
        assert i["State"]["Name"] == "pending", i["State"]
        assert i.get("SubnetId") == subnet and i.get("VpcId") == vpc, i
        assert [g["GroupId"] for g in i.get("SecurityGroups", [])] == [sg], i
        nic = i["NetworkInterfaces"][0]
        assert nic["SubnetId"] == subnet and nic["VpcId"] == vpc, nic
        assert [g["GroupId"] for g in nic.get("Groups", [])] == [sg], nic
        # a launch without a subnet: the default subnet of the zone it was placed in
        i2 = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0]
        assert i2["State"]["Name"] == "pending", i2["State"]
        assert i2.get("VpcId") == vpc and i2.get("SubnetId", "").startswith("subnet-"), i2
        assert [g["GroupName"] for g in i2.get("SecurityGroups", [])] == ["default"], i2
        ec2.terminate_instances(InstanceIds=[i2["InstanceId"]])
    finally:
        ec2.terminate_instances(InstanceIds=[i["InstanceId"]])


def describe(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def test_primary_kept_at_termination_when_its_delete_on_termination_is_false(cloud, tenant):
    _, key, secret, ec2 = tenant
    ami = cloud.default_images()["virga-busybox-rootfs"]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="gaps-kept", Description="kept", VpcId=vpc)["GroupId"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            SecurityGroupIds=[sg])["Instances"][0]["InstanceId"]
    i = eventually(lambda: describe(ec2, iid), lambda d: d["State"]["Name"] == "running" and d.get("NetworkInterfaces"))
    assert i["State"]["Name"] == "running", i["State"]
    p = i["NetworkInterfaces"][0]
    eni, att = p["NetworkInterfaceId"], p["Attachment"]["AttachmentId"]
    assert p["Attachment"]["DeleteOnTermination"] is True, p
    ec2.create_tags(Resources=[eni], Tags=[{"Key": "keep", "Value": "me"}])
    rc, _, err = aws(cloud, "ec2", "modify-network-interface-attribute", "--network-interface-id", eni,
                     "--attachment", "AttachmentId=%s,DeleteOnTermination=false" % att, access_key=key,
                     secret_key=secret)
    assert rc == 0, err
    n = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert n["Attachment"]["DeleteOnTermination"] is False, n
    shown = eventually(lambda: describe(ec2, iid)["NetworkInterfaces"][0]["Attachment"]["DeleteOnTermination"],
                       lambda v: v is False, 20)
    assert shown is False   # DescribeInstances shows the new flag (compute's copy, pushed)
    ec2.terminate_instances(InstanceIds=[iid])
    n = eventually(lambda: ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0],
                   lambda x: x["Status"] == "available", 60)
    try:
        assert n["Status"] == "available" and "Attachment" not in n, n
        assert (n["PrivateIpAddress"], n["MacAddress"], n["SubnetId"]) == \
            (p["PrivateIpAddress"], p["MacAddress"], p["SubnetId"]), n
        assert [g["GroupId"] for g in n["Groups"]] == [sg], n
        assert {t["Key"]: t["Value"] for t in n.get("TagSet", [])} == {"keep": "me"}, n
        assert describe(ec2, iid)["State"]["Name"] in ("shutting-down", "terminated")
    finally:
        ec2.delete_network_interface(NetworkInterfaceId=eni)
