"""Gaps of the instance <-> interface API closed after the interface work, with
/usr/bin/aws and Debian's boto3 on the shared `sim` cloud (docs/compute.md):

- RunInstances' answer after its wait for the launch tasks' ports timed out
  (compute.run_answer_wait_ms) still has what the launch knew of its network: subnet,
  VPC, groups, state pending (compute restarted with a 1 ms wait, then as before);
- a primary interface's DeleteOnTermination can be changed (ModifyNetworkInterfaceAttribute
  Attachment), as EC2 allows: set false, the interface outlives its instance, available
  with its address, MAC, groups and tags;
- ModifyInstanceAttribute instanceType and AttachNetworkInterface of the same stopped
  instance at the very same moment: over many rounds, never more interfaces than the
  type written takes (one of the two is refused when both would not fit)."""
import threading

import pytest

from harness import aws, ec2_tenant, eventually


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    return sim_cloud


@pytest.fixture(scope="module")
def tenant(cloud):
    return ec2_tenant(cloud, "gaps")


@pytest.fixture
def short_answer_wait(cloud):
    """compute with compute.run_answer_wait_ms 1: every answer is the one after a timeout.
    The shared cloud gets its default back afterwards (other modules read addresses from
    RunInstances' answer)."""
    cloud.start_env["VIRGA_COMPUTE_RUN_ANSWER_WAIT_MS"] = "1"
    cloud.restart("compute")
    try:
        yield
    finally:
        cloud.start_env.pop("VIRGA_COMPUTE_RUN_ANSWER_WAIT_MS", None)
        cloud.restart("compute")


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


LIMITS = {"t3.nano": 2, "t3.small": 3}


def test_type_change_and_attach_at_once_never_exceed_the_type(cloud, tenant):
    _, _, _, ec2 = tenant
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    i = eventually(lambda: describe(ec2, iid), lambda d: d["State"]["Name"] == "running" and d.get("NetworkInterfaces"))
    ec2.stop_instances(InstanceIds=[iid])
    i = eventually(lambda: describe(ec2, iid), lambda d: d["State"]["Name"] == "stopped")
    assert i["State"]["Name"] == "stopped", i["State"]
    first, second = (ec2.create_network_interface(SubnetId=i["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
                     for _ in range(2))
    ec2.attach_network_interface(NetworkInterfaceId=first, InstanceId=iid, DeviceIndex=1)   # 2 of t3.small's 3
    outcomes = []
    for _ in range(8):
        go = threading.Barrier(2)
        got = {}

        def change():
            go.wait()
            try:
                ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.nano"})
                got["type"] = "ok"
            except Exception as e:   # noqa: BLE001 (the code is asserted below)
                got["type"] = getattr(e, "response", {}).get("Error", {}).get("Code", repr(e))

        def attach():
            go.wait()
            try:
                got["att"] = ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid,
                                                          DeviceIndex=2)["AttachmentId"]
            except Exception as e:   # noqa: BLE001
                got["err"] = getattr(e, "response", {}).get("Error", {}).get("Code", repr(e))

        threads = [threading.Thread(target=change), threading.Thread(target=attach)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        itype = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"]["Value"]
        attached = ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"]
        outcomes.append((got.get("type"), "att" in got, itype, len(attached)))
        assert len(attached) <= LIMITS[itype], outcomes
        assert got.get("type") in ("ok", "AttachmentLimitExceeded"), outcomes
        assert "att" in got or got.get("err") == "AttachmentLimitExceeded", (outcomes, got)
        assert got["type"] == "ok" or "att" in got, outcomes   # one of the two passes
        # back to two interfaces on a t3.small
        if "att" in got:
            ec2.detach_network_interface(AttachmentId=got["att"])
            eventually(lambda: ec2.describe_network_interfaces(NetworkInterfaceIds=[second])["NetworkInterfaces"][0],
                       lambda n: n["Status"] == "available", 30)
        if itype != "t3.small":
            ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.small"})
    ec2.terminate_instances(InstanceIds=[iid])
