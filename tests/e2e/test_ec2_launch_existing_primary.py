"""RunInstances with an existing network interface as the primary (NetworkInterfaces
DeviceIndex 0 with a NetworkInterfaceId), with /usr/bin/aws and Debian's boto3 on the
shared `sim` cloud (docs/compute.md "An existing interface as the primary"):

- the instance takes the interface's subnet, VPC, zone, address and groups: RunInstances'
  answer and DescribeInstances say so, the attachment's DeleteOnTermination is false,
  there is no public address, and the interface is in use by the instance at device 0;
  a stop and start keep it; terminated, the interface is available again with its
  address, description, groups, tags and SourceDestCheck, and a new launch takes it again
  (its retry with the same ClientToken: the same reservation);
- EC2's refusals, before anything is recorded: an unknown interface and another tenant's
  (InvalidNetworkInterfaceID.NotFound), SubnetId or PrivateIpAddress beside it or in its
  entry, DeleteOnTermination true, MaxCount 2 (InvalidParameterCombination), an interface
  another instance has, even one whose launch has not attached it yet
  (InvalidNetworkInterface.InUse); two launches of one interface at once: exactly one
  wins, the other is refused by RunInstances itself."""
import json
import threading
import time
import uuid

import pytest

from harness import aws, boto3_client, client_error, ec2_tenant, new_tenant

WAIT_S = 60


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    return sim_cloud


@pytest.fixture(scope="module")
def tenant(cloud):
    return ec2_tenant(cloud, "lep")


@pytest.fixture(scope="module")
def net(tenant):
    """A subnet of the default VPC of its own (its addresses are this module's) and a group."""
    ec2 = tenant[3]
    first = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    vpc = first["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.251.0/24",
                            AvailabilityZone=first["AvailabilityZone"])["Subnet"]
    group = ec2.create_security_group(GroupName="lep-" + uuid.uuid4().hex[:6], Description="lep",
                                      VpcId=vpc)["GroupId"]
    return {"subnet": sub, "group": group, "vpc": vpc}


def describe(ec2, iid):
    return [i for r in ec2.describe_instances(InstanceIds=[iid])["Reservations"] for i in r["Instances"]][0]


def eni_of(ec2, eni):
    return ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]


def wait(fn, ok, seconds=WAIT_S):
    deadline = time.time() + seconds
    while True:
        v = fn()
        if ok(v) or time.time() > deadline:
            return v
        time.sleep(0.2)


def state(ec2, iid):
    return describe(ec2, iid)["State"]["Name"]


def instance_count(cloud, account):
    return int(cloud.psql("SELECT count(*) FROM compute.instances WHERE account_id = '%s'" % account))


def test_existing_interface_is_the_primary_and_outlives_the_instance(cloud, tenant, net):
    acct, k, s, ec2 = tenant
    ami = cloud.default_images()["virga-busybox-rootfs"]
    sub = net["subnet"]
    eni = ec2.create_network_interface(
        SubnetId=sub["SubnetId"], Groups=[net["group"]], PrivateIpAddress="172.31.251.60", Description="mine",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": "Name", "Value": "kept"}]}],
    )["NetworkInterface"]
    eid, mac = eni["NetworkInterfaceId"], eni["MacAddress"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eid, SourceDestCheck={"Value": False})

    rc, out, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.nano",
                       "--network-interfaces", json.dumps([{"DeviceIndex": 0, "NetworkInterfaceId": eid}]),
                       access_key=k, secret_key=s)
    assert rc == 0, err
    i = out["Instances"][0]
    iid = i["InstanceId"]
    # the answer: the interface's subnet, VPC, zone and address, before the port is adopted
    assert (i["SubnetId"], i["VpcId"], i["PrivateIpAddress"]) == (sub["SubnetId"], net["vpc"], "172.31.251.60"), i
    assert i["Placement"]["AvailabilityZone"] == sub["AvailabilityZone"]
    assert [(f["NetworkInterfaceId"], f["Attachment"]["DeleteOnTermination"]) for f in i["NetworkInterfaces"]] == \
        [(eid, False)], i["NetworkInterfaces"]

    d = wait(lambda: describe(ec2, iid), lambda d: d["State"]["Name"] == "running" and d.get("NetworkInterfaces"))
    assert d["State"]["Name"] == "running", d["State"]
    assert (d["SubnetId"], d["PrivateIpAddress"]) == (sub["SubnetId"], "172.31.251.60")
    assert [g["GroupId"] for g in d["SecurityGroups"]] == [net["group"]], d["SecurityGroups"]
    assert "PublicIpAddress" not in d   # an existing interface gets none from the pool
    (f,) = d["NetworkInterfaces"]
    assert (f["NetworkInterfaceId"], f["MacAddress"], f["Description"]) == (eid, mac, "mine"), f
    assert f["Attachment"]["DeviceIndex"] == 0 and f["Attachment"]["DeleteOnTermination"] is False, f
    assert f["SourceDestCheck"] is False and d["SourceDestCheck"] is False
    n = eni_of(ec2, eid)
    assert n["Status"] == "in-use" and n["Attachment"]["InstanceId"] == iid, n
    assert n["Attachment"]["DeviceIndex"] == 0 and n["Attachment"]["DeleteOnTermination"] is False, n

    # a stop and a start keep it
    ec2.stop_instances(InstanceIds=[iid])
    assert wait(lambda: state(ec2, iid), lambda st: st == "stopped") == "stopped"
    assert eni_of(ec2, eid)["Attachment"]["InstanceId"] == iid
    ec2.start_instances(InstanceIds=[iid])
    d = wait(lambda: describe(ec2, iid), lambda d: d["State"]["Name"] == "running")
    assert d["State"]["Name"] == "running"
    assert [x["NetworkInterfaceId"] for x in d["NetworkInterfaces"]] == [eid]
    assert d["PrivateIpAddress"] == "172.31.251.60" and "PublicIpAddress" not in d

    # terminated: available again, as it was
    rc, _, err = aws(cloud, "ec2", "terminate-instances", "--instance-ids", iid, access_key=k, secret_key=s)
    assert rc == 0, err
    n = wait(lambda: eni_of(ec2, eid), lambda n: n["Status"] == "available")
    assert n["Status"] == "available" and "Attachment" not in n, n
    assert (n["PrivateIpAddress"], n["MacAddress"], n["Description"]) == ("172.31.251.60", mac, "mine"), n
    assert [g["GroupId"] for g in n["Groups"]] == [net["group"]]
    assert n["TagSet"] == [{"Key": "Name", "Value": "kept"}] and n["SourceDestCheck"] is False, n
    assert wait(lambda: state(ec2, iid), lambda st: st == "terminated") == "terminated"

    # and a new launch takes it again (boto3 this time); its retry with the same
    # ClientToken is the same reservation, not a launch refused for the interface in use
    kw = dict(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, ClientToken=uuid.uuid4().hex,
              NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": eid}])
    first = ec2.run_instances(**kw)
    j = first["Instances"][0]
    assert ec2.run_instances(**kw)["ReservationId"] == first["ReservationId"]
    d = wait(lambda: describe(ec2, j["InstanceId"]),
             lambda d: d["State"]["Name"] == "running" and d.get("NetworkInterfaces"))
    assert d["State"]["Name"] == "running" and d["PrivateIpAddress"] == "172.31.251.60", d
    assert eni_of(ec2, eid)["Attachment"]["InstanceId"] == j["InstanceId"]
    ec2.terminate_instances(InstanceIds=[j["InstanceId"]])
    assert wait(lambda: eni_of(ec2, eid)["Status"], lambda st: st == "available") == "available"
    ec2.delete_network_interface(NetworkInterfaceId=eid)


def test_refusals_and_one_launch_per_interface(cloud, tenant, net):
    acct, k, s, ec2 = tenant
    ami = cloud.default_images()["virga-busybox-rootfs"]
    sn = net["subnet"]["SubnetId"]
    free = ec2.create_network_interface(SubnetId=sn)["NetworkInterface"]["NetworkInterfaceId"]
    _, k2, s2 = new_tenant(cloud, "lep2-" + uuid.uuid4().hex[:8])
    other = boto3_client(cloud, "ec2", k2, s2)
    osn = other.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    theirs = other.create_network_interface(SubnetId=osn)["NetworkInterface"]["NetworkInterfaceId"]

    def run(entry=None, **kw):
        ni = dict({"DeviceIndex": 0, "NetworkInterfaceId": free}, **(entry or {}))
        return client_error(ec2.run_instances, ImageId=ami, InstanceType="t3.nano", MinCount=1,
                            MaxCount=kw.pop("MaxCount", 1), NetworkInterfaces=[ni], **kw)

    before = instance_count(cloud, acct)
    assert run({"NetworkInterfaceId": "eni-0123456789abcdef0"}) == "InvalidNetworkInterfaceID.NotFound"
    assert run({"NetworkInterfaceId": theirs}) == "InvalidNetworkInterfaceID.NotFound"
    assert run({"SubnetId": sn}) == "InvalidParameterCombination"
    assert run({"PrivateIpAddress": "172.31.251.70"}) == "InvalidParameterCombination"
    assert run({"DeleteOnTermination": True}) == "InvalidParameterCombination"
    assert run(MaxCount=2) == "InvalidParameterCombination"
    rc, _, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--subnet-id", sn, "--network-interfaces",
                     json.dumps([{"DeviceIndex": 0, "NetworkInterfaceId": free}]), access_key=k, secret_key=s)
    assert rc != 0 and "InvalidParameterCombination" in err, err
    assert instance_count(cloud, acct) == before
    assert eni_of(ec2, free)["Status"] == "available"

    # two launches of one interface at once: one instance, the other refused at once
    answers = []

    def launch():
        try:
            answers.append(ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                                             NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": free}]
                                             )["Instances"][0]["InstanceId"])
        except Exception as x:   # botocore's ClientError
            answers.append(x.response["Error"]["Code"])
    threads = [threading.Thread(target=launch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [a for a in answers if a.startswith("i-")]
    assert len(won) == 1 and answers.count("InvalidNetworkInterface.InUse") == 1, answers
    # and while that instance has it (attached or not yet), a third launch is refused too
    assert run() == "InvalidNetworkInterface.InUse"
    assert instance_count(cloud, acct) == before + 1
    assert wait(lambda: state(ec2, won[0]), lambda st: st == "running") == "running"
    assert run() == "InvalidNetworkInterface.InUse"
    ec2.terminate_instances(InstanceIds=won)
    assert wait(lambda: eni_of(ec2, free)["Status"], lambda st: st == "available") == "available"
    ec2.delete_network_interface(NetworkInterfaceId=free)
    other.delete_network_interface(NetworkInterfaceId=theirs)
