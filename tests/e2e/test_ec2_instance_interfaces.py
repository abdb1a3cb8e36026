"""What DescribeInstances shows of an instance's interfaces, with /usr/bin/aws and
Debian's boto3, on a cloud whose one host's agent runs the `sim` driver (the instance's
port is the network service's, made by the launch task for real):

- every attached interface, not only the primary: an interface made with
  CreateNetworkInterface and attached at device index 1 (AttachNetworkInterface) is in
  the instance's NetworkInterfaces with its attachment, device index, private IP and
  groups; detached, the instance shows its primary only;
- SourceDestCheck is the primary interface's: ModifyInstanceAttribute
  --no-source-dest-check / --source-dest-check sets it on that interface (which
  DescribeNetworkInterfaces then shows), DescribeInstances and DescribeInstanceAttribute
  sourceDestCheck show it, and so does a change made with ModifyNetworkInterfaceAttribute
  on the interface itself; another account can neither read nor change it."""
import time
import uuid

import pytest

from harness import aws, boto3_client, client_error, new_tenant

WAIT_S = 60


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    """A `sim` host, default images, the object store in a directory: the cloud this
    module shares with the other EC2 suites of that kind (tests/conftest.py)."""
    return sim_cloud


@pytest.fixture(scope="module")
def tenant(cloud):
    acct, k, s = new_tenant(cloud, "ifs-" + uuid.uuid4().hex[:8])
    return acct, k, s, boto3_client(cloud, "ec2", k, s)


@pytest.fixture(scope="module")
def running(cloud, tenant):
    """A running instance of the tenant: its description."""
    ec2 = tenant[3]
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    deadline = time.time() + WAIT_S
    while True:
        (i,) = describe(ec2, iid)
        if i["State"]["Name"] == "running" and i.get("NetworkInterfaces"):
            return i
        assert time.time() < deadline, i["State"]
        time.sleep(0.2)


def describe(ec2, *ids):
    return [i for r in ec2.describe_instances(InstanceIds=list(ids))["Reservations"] for i in r["Instances"]]


def cli(cloud, who, *args):
    rc, out, err = aws(cloud, "ec2", *args, access_key=who[1], secret_key=who[2])
    assert rc == 0, err
    return out


def test_attached_interfaces_are_listed_and_go_when_detached(cloud, tenant, running):
    ec2 = tenant[3]
    iid = running["InstanceId"]
    (primary,) = running["NetworkInterfaces"]
    group = ec2.create_security_group(GroupName="ifs-" + uuid.uuid4().hex[:6], Description="second",
                                      VpcId=running["VpcId"])["GroupId"]
    extra = ec2.create_network_interface(SubnetId=running["SubnetId"], Groups=[group],
                                         Description="the second one")["NetworkInterface"]
    att = ec2.attach_network_interface(NetworkInterfaceId=extra["NetworkInterfaceId"], InstanceId=iid,
                                       DeviceIndex=1)["AttachmentId"]

    (i,) = describe(ec2, iid)
    ifs = i["NetworkInterfaces"]
    assert [f["NetworkInterfaceId"] for f in ifs] == [primary["NetworkInterfaceId"], extra["NetworkInterfaceId"]]
    second = ifs[1]
    assert second["Attachment"]["AttachmentId"] == att
    assert second["Attachment"]["DeviceIndex"] == 1 and second["Attachment"]["Status"] == "attached"
    assert second["Attachment"]["DeleteOnTermination"] is False
    assert second["PrivateIpAddress"] == extra["PrivateIpAddress"] != i["PrivateIpAddress"]
    assert [p["PrivateIpAddress"] for p in second["PrivateIpAddresses"]] == [extra["PrivateIpAddress"]]
    assert [g["GroupId"] for g in second["Groups"]] == [group]
    assert second["Description"] == "the second one" and second["SubnetId"] == running["SubnetId"]
    assert second["MacAddress"] == extra["MacAddress"] and second["SourceDestCheck"] is True
    # the primary is still the instance's own address and groups
    assert ifs[0]["Attachment"]["DeviceIndex"] == 0 and ifs[0]["PrivateIpAddress"] == i["PrivateIpAddress"]
    assert [g["GroupName"] for g in i["SecurityGroups"]] == ["default"]
    # the primary's attachment id is the one DescribeNetworkInterfaces shows
    shown = ec2.describe_network_interfaces(NetworkInterfaceIds=[primary["NetworkInterfaceId"]])
    assert ifs[0]["Attachment"]["AttachmentId"] == shown["NetworkInterfaces"][0]["Attachment"]["AttachmentId"]

    # the same through awscli, listing every instance of the account (no InstanceId)
    out = cli(cloud, tenant, "describe-instances")
    (mine,) = [x for r in out["Reservations"] for x in r["Instances"] if x["InstanceId"] == iid]
    assert len(mine["NetworkInterfaces"]) == 2

    ec2.detach_network_interface(AttachmentId=att)
    (i,) = describe(ec2, iid)
    assert [f["NetworkInterfaceId"] for f in i["NetworkInterfaces"]] == [primary["NetworkInterfaceId"]]
    ec2.delete_network_interface(NetworkInterfaceId=extra["NetworkInterfaceId"])


def test_source_dest_check_is_the_primary_interfaces(cloud, tenant, running):
    ec2 = tenant[3]
    iid = running["InstanceId"]
    eni = running["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert running["SourceDestCheck"] is True

    def seen():
        (i,) = describe(ec2, iid)
        attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")["SourceDestCheck"]
        on_eni = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni, Attribute="sourceDestCheck")
        return (i["SourceDestCheck"], i["NetworkInterfaces"][0]["SourceDestCheck"], attr["Value"],
                on_eni["SourceDestCheck"]["Value"])

    cli(cloud, tenant, "modify-instance-attribute", "--instance-id", iid, "--no-source-dest-check")
    assert seen() == (False, False, False, False)
    cli(cloud, tenant, "modify-instance-attribute", "--instance-id", iid, "--source-dest-check")
    assert seen() == (True, True, True, True)
    # the interface changed directly: the instance shows it
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
    assert seen() == (False, False, False, False)
    # the Attribute/Value form
    ec2.modify_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck", Value="true")
    assert seen() == (True, True, True, True)
    # a one-instance filter and the account's whole list show it too
    ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": False})
    r = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [iid]}])["Reservations"]
    assert r[0]["Instances"][0]["SourceDestCheck"] is False
    listed = [x for r in ec2.describe_instances()["Reservations"] for x in r["Instances"] if x["InstanceId"] == iid]
    assert listed[0]["SourceDestCheck"] is False
    ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": True})


def test_source_dest_check_errors_and_isolation(cloud, tenant, running):
    ec2 = tenant[3]
    iid = running["InstanceId"]
    assert client_error(lambda: ec2.modify_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck",
                                                              Value="maybe")) == "InvalidParameterValue"
    assert client_error(lambda: ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": False},
                                                              DryRun=True)) == "DryRunOperation"
    assert describe(ec2, iid)[0]["SourceDestCheck"] is True
    _, k, s = new_tenant(cloud, "ifs-other-" + uuid.uuid4().hex[:6])
    other = boto3_client(cloud, "ec2", k, s)
    assert client_error(lambda: other.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": False})) \
        == "InvalidInstanceID.NotFound"
    assert client_error(lambda: other.describe_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")) \
        == "InvalidInstanceID.NotFound"
    assert describe(ec2, iid)[0]["SourceDestCheck"] is True
