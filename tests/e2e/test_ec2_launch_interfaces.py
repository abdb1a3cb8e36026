"""RunInstances with more than one network interface (NetworkInterfaces DeviceIndex 0..N),
with /usr/bin/aws and Debian's boto3, on the shared `sim` cloud (the ports are the network
service's, made by the launch task for real; docs/compute.md "More than one interface at
launch"):

- a new interface at DeviceIndex 1 (its subnet, groups, address, description) and an
  existing available one at 2: DescribeInstances lists the three with their device
  indexes, DescribeNetworkInterfaces shows them in use by the instance, the new one with
  DeleteOnTermination true, the existing one false; the instance gets no public address
  (EC2 gives none to a launch with several interfaces); ModifyNetworkInterfaceAttribute
  --attachment turns the flags around (not the primary's); terminated, the interface
  with the flag is deleted and the other one is available again (an existing one left at
  its default: available again, in the refusals' test); ModifyInstanceAttribute
  SourceDestCheck and groupSet refused with EC2's InvalidInstanceID (several interfaces);
- EC2's refusals, before anything is recorded (no instance, no interface made): one
  device index twice, no index 0, AssociatePublicIpAddress with several interfaces,
  instance-level SubnetId with NetworkInterfaces, an existing interface that is in use,
  in another zone, or given with MaxCount 2, an interface in another VPC;
- an address in use is RunInstances' own refusal (InvalidIPAddress.InUse), and so is an
  interface count past the type's limit (AttachmentLimitExceeded), with nothing recorded;
- RunInstances' answer names the subnet, VPC, address asked and interfaces before the
  launch task made the ports; DescribeInstances shows each DeleteOnTermination."""
import json
import time
import uuid

import pytest

from harness import aws, client_error, ec2_tenant

WAIT_S = 60


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    return sim_cloud


@pytest.fixture(scope="module")
def tenant(cloud):
    return ec2_tenant(cloud, "lif")


@pytest.fixture(scope="module")
def net(tenant):
    """The default VPC's subnet of one zone, a second subnet of the VPC in that zone, a
    group, and a subnet of the default VPC in another zone (when there is one)."""
    ec2 = tenant[3]
    subs = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subs.sort(key=lambda s: s["AvailabilityZone"])
    first = subs[0]
    vpc = first["VpcId"]
    second = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.250.0/24",
                               AvailabilityZone=first["AvailabilityZone"])["Subnet"]
    group = ec2.create_security_group(GroupName="lif-" + uuid.uuid4().hex[:6], Description="lif",
                                      VpcId=vpc)["GroupId"]
    other_zone = subs[1] if len(subs) > 1 else None
    return {"subnet": first, "second": second, "group": group, "other_zone": other_zone, "vpc": vpc}


def describe(ec2, iid):
    return [i for r in ec2.describe_instances(InstanceIds=[iid])["Reservations"] for i in r["Instances"]][0]


def wait(fn, ok, seconds=WAIT_S):
    deadline = time.time() + seconds
    while True:
        v = fn()
        if ok(v) or time.time() > deadline:
            return v
        time.sleep(0.2)


def enis(ec2, **kw):
    return {n["NetworkInterfaceId"]: n for n in ec2.describe_network_interfaces(**kw)["NetworkInterfaces"]}


def instance_count(cloud, account):
    return int(cloud.psql("SELECT count(*) FROM compute.instances WHERE account_id = '%s'" % account))


def test_new_and_existing_interfaces_at_launch_and_at_termination(cloud, tenant, net):
    acct, k, s, ec2 = tenant
    existing = ec2.create_network_interface(SubnetId=net["subnet"]["SubnetId"],
                                            Description="kept")["NetworkInterface"]["NetworkInterfaceId"]
    ami = cloud.default_images()["virga-busybox-rootfs"]
    spec = [{"DeviceIndex": 0, "SubnetId": net["subnet"]["SubnetId"]},
            {"DeviceIndex": 1, "SubnetId": net["second"]["SubnetId"], "Groups": [net["group"]],
             "PrivateIpAddress": "172.31.250.17", "Description": "the second one"},
            {"DeviceIndex": 2, "NetworkInterfaceId": existing}]
    rc, out, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.small",
                       "--network-interfaces", json.dumps(spec), access_key=k, secret_key=s)
    assert rc == 0, err
    iid = out["Instances"][0]["InstanceId"]
    i = wait(lambda: describe(ec2, iid), lambda d: d["State"]["Name"] == "running" and
             len(d.get("NetworkInterfaces", [])) == 3)
    assert i["State"]["Name"] == "running", i["State"]
    ifs = i["NetworkInterfaces"]
    assert [f["Attachment"]["DeviceIndex"] for f in ifs] == [0, 1, 2], ifs
    primary, new, old = ifs
    assert primary["SubnetId"] == i["SubnetId"] == net["subnet"]["SubnetId"]
    assert new["SubnetId"] == net["second"]["SubnetId"] and new["PrivateIpAddress"] == "172.31.250.17"
    assert [g["GroupId"] for g in new["Groups"]] == [net["group"]] and new["Description"] == "the second one"
    assert old["NetworkInterfaceId"] == existing and old["Description"] == "kept"
    assert "PublicIpAddress" not in i   # several interfaces: no public address
    # each attachment's DeleteOnTermination as the launch set it (the primary's always true)
    assert [f["Attachment"]["DeleteOnTermination"] for f in ifs] == [True, True, False], ifs
    shown = enis(ec2, NetworkInterfaceIds=[new["NetworkInterfaceId"], existing])
    assert shown[new["NetworkInterfaceId"]]["Attachment"]["DeleteOnTermination"] is True
    assert shown[existing]["Attachment"]["DeleteOnTermination"] is False
    assert {n["Status"] for n in shown.values()} == {"in-use"}
    assert {n["Attachment"]["InstanceId"] for n in shown.values()} == {iid}

    # the new one's flag turned off, the existing one's on
    for eni, att, dot in ((new["NetworkInterfaceId"], new["Attachment"]["AttachmentId"], "false"),
                          (existing, old["Attachment"]["AttachmentId"], "true")):
        rc, _, err = aws(cloud, "ec2", "modify-network-interface-attribute", "--network-interface-id", eni,
                         "--attachment", "AttachmentId=%s,DeleteOnTermination=%s" % (att, dot),
                         access_key=k, secret_key=s)
        assert rc == 0, err
    shown = enis(ec2, NetworkInterfaceIds=[new["NetworkInterfaceId"], existing])
    assert shown[new["NetworkInterfaceId"]]["Attachment"]["DeleteOnTermination"] is False
    assert shown[existing]["Attachment"]["DeleteOnTermination"] is True
    flags = wait(lambda: [f["Attachment"]["DeleteOnTermination"] for f in describe(ec2, iid)["NetworkInterfaces"]],
                 lambda v: v == [True, False, True], 20)
    assert flags == [True, False, True], flags   # and DescribeInstances shows the new flags
    # the primary's may be changed too, as on EC2 (its effect: test_ec2_interface_gaps.py)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=primary["NetworkInterfaceId"],
                                           Attachment={"AttachmentId": primary["Attachment"]["AttachmentId"],
                                                       "DeleteOnTermination": True})
    assert client_error(ec2.modify_network_interface_attribute, NetworkInterfaceId=existing,
                        Attachment={"AttachmentId": new["Attachment"]["AttachmentId"],
                                    "DeleteOnTermination": False}) == "InvalidAttachmentID.NotFound"

    # instance-wide SourceDestCheck and groupSet name no interface: with several, EC2
    # asks for the interface's own call, and so do we
    for args in (["--no-source-dest-check"], ["--groups", net["group"]]):
        rc, _, err = aws(cloud, "ec2", "modify-instance-attribute", "--instance-id", iid, *args,
                         access_key=k, secret_key=s)
        assert rc and "(InvalidInstanceID)" in err and "multiple interfaces attached to instance '%s'" % iid in err, err

    rc, _, err = aws(cloud, "ec2", "terminate-instances", "--instance-ids", iid, access_key=k, secret_key=s)
    assert rc == 0, err
    kept = new["NetworkInterfaceId"]
    left = wait(lambda: enis(ec2, Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}]),
                lambda d: existing not in d and primary["NetworkInterfaceId"] not in d and
                d.get(kept, {}).get("Status") == "available")
    assert existing not in left and primary["NetworkInterfaceId"] not in left
    assert left[kept]["Status"] == "available" and "Attachment" not in left[kept]
    ec2.delete_network_interface(NetworkInterfaceId=kept)


def test_refusals_record_nothing(cloud, tenant, net):
    acct, k, s, ec2 = tenant
    ami = cloud.default_images()["virga-busybox-rootfs"]
    sn, second = net["subnet"]["SubnetId"], net["second"]["SubnetId"]
    free = ec2.create_network_interface(SubnetId=sn)["NetworkInterface"]["NetworkInterfaceId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.93.0.0/16")["Vpc"]["VpcId"]
    other_sn = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.93.1.0/24",
                                 AvailabilityZone=net["subnet"]["AvailabilityZone"])["Subnet"]["SubnetId"]

    def run(ni, **kw):
        return client_error(ec2.run_instances, ImageId=ami, InstanceType="t3.nano", MinCount=1,
                            MaxCount=kw.pop("MaxCount", 1), NetworkInterfaces=ni, **kw)

    before_instances, before_enis = instance_count(cloud, acct), set(enis(ec2))
    assert run([{"DeviceIndex": 0, "SubnetId": sn}, {"DeviceIndex": 0, "SubnetId": second}]) == "InvalidParameterValue"
    assert run([{"DeviceIndex": 1, "SubnetId": sn}]) == "InvalidParameterValue"
    assert run([{"DeviceIndex": 0, "SubnetId": sn, "AssociatePublicIpAddress": True},
                {"DeviceIndex": 1, "SubnetId": second}]) == "InvalidParameterCombination"
    assert run([{"DeviceIndex": 0}, {"DeviceIndex": 1, "SubnetId": second}],
               SubnetId=sn) == "InvalidParameterCombination"
    assert run([{"DeviceIndex": 0, "SubnetId": sn}, {"DeviceIndex": 1, "NetworkInterfaceId": free}],
               MaxCount=2) == "InvalidParameterCombination"
    assert run([{"DeviceIndex": 0, "SubnetId": sn},
                {"DeviceIndex": 1, "SubnetId": other_sn}]) == "InvalidParameterCombination"
    assert run([{"DeviceIndex": 0, "SubnetId": sn},
                {"DeviceIndex": 1, "NetworkInterfaceId": "eni-0123456789abcdef0"}]) == \
        "InvalidNetworkInterfaceID.NotFound"
    if net["other_zone"]:
        assert run([{"DeviceIndex": 0, "SubnetId": net["other_zone"]["SubnetId"]},
                    {"DeviceIndex": 1, "NetworkInterfaceId": free}]) == "InvalidParameterCombination"
    # the same through the aws CLI: the message EC2 gives
    rc, _, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--network-interfaces",
                     json.dumps([{"DeviceIndex": 0, "SubnetId": sn, "AssociatePublicIpAddress": True},
                                 {"DeviceIndex": 1, "SubnetId": second}]), access_key=k, secret_key=s)
    assert rc != 0 and "cannot be specified when launching with multiple network interfaces" in err, err
    # an interface in use by an instance
    busy = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": sn}, {"DeviceIndex": 1, "NetworkInterfaceId": free}])["Instances"][0]
    # compute knows it attached once the network's push is stored (DescribeInstances shows it)
    wait(lambda: describe(ec2, busy["InstanceId"]), lambda d: len(d.get("NetworkInterfaces", [])) == 2)
    assert run([{"DeviceIndex": 0, "SubnetId": sn},
                {"DeviceIndex": 1, "NetworkInterfaceId": free}]) == "InvalidNetworkInterface.InUse"
    assert instance_count(cloud, acct) == before_instances + 1   # the one that had it
    ec2.terminate_instances(InstanceIds=[busy["InstanceId"]])
    made = wait(lambda: set(enis(ec2)), lambda d: d - {free} <= before_enis)
    assert made - {free} <= before_enis, made - before_enis
    # attached at launch without DeleteOnTermination: detached, available again
    assert wait(lambda: enis(ec2, NetworkInterfaceIds=[free])[free]["Status"], lambda st: st == "available") == \
        "available"
    ec2.delete_subnet(SubnetId=other_sn)
    ec2.delete_vpc(VpcId=other_vpc)


def test_address_in_use_is_refused_by_run_instances_itself(cloud, tenant, net):
    """A PrivateIpAddress an interface holds: RunInstances answers InvalidIPAddress.InUse
    in EC2's words (top level, at DeviceIndex 0, at a later index); more interfaces than
    the instance type takes: AttachmentLimitExceeded; and nothing is recorded: no
    instance, no interface. (A launch that takes the address after that
    answer is still refused by the network at its task: the instance ends terminated with
    that reason, as before.)"""
    acct, k, s, ec2 = tenant
    ami = cloud.default_images()["virga-busybox-rootfs"]
    sn, second = net["subnet"]["SubnetId"], net["second"]["SubnetId"]
    holder = ec2.create_network_interface(SubnetId=second, PrivateIpAddress="172.31.250.30")["NetworkInterface"]
    before, before_instances = set(enis(ec2)), instance_count(cloud, acct)
    rc, _, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.nano", "--subnet-id",
                     second, "--private-ip-address", "172.31.250.30", access_key=k, secret_key=s)
    assert rc != 0 and "InvalidIPAddress.InUse" in err and "Address 172.31.250.30 is in use." in err, err
    for ni in ([{"DeviceIndex": 0, "SubnetId": second, "PrivateIpAddress": "172.31.250.30"}],
               [{"DeviceIndex": 0, "SubnetId": sn}, {"DeviceIndex": 1, "SubnetId": second},
                {"DeviceIndex": 2, "SubnetId": second, "PrivateIpAddress": "172.31.250.30"}]):
        assert client_error(ec2.run_instances, ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1,
                            NetworkInterfaces=ni) == "InvalidIPAddress.InUse"
    # more interfaces than the type takes (t3.nano: 2, as DescribeInstanceTypes says)
    nano = ec2.describe_instance_types(InstanceTypes=["t3.nano"])["InstanceTypes"][0]
    assert nano["NetworkInfo"]["MaximumNetworkInterfaces"] == 2, nano["NetworkInfo"]
    rc, _, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.nano",
                     "--network-interfaces", json.dumps([{"DeviceIndex": i, "SubnetId": sn} for i in range(3)]),
                     access_key=k, secret_key=s)
    assert rc != 0 and "AttachmentLimitExceeded" in err and "Interface count 3 exceeds the limit for t3.nano" in err, err
    assert instance_count(cloud, acct) == before_instances
    assert set(enis(ec2)) == before
    assert "Attachment" not in enis(ec2, NetworkInterfaceIds=[holder["NetworkInterfaceId"]])[holder["NetworkInterfaceId"]]
    ec2.delete_network_interface(NetworkInterfaceId=holder["NetworkInterfaceId"])


def test_run_instances_answer_shows_the_network(cloud, tenant, net):
    """RunInstances' own answer names the subnet, the VPC, the address and the interfaces
    (an existing one by id), as EC2's does: it is given once the launch task has made the
    ports (compute.run_answer_wait_ms); with no subnet named, the default subnet of the
    zone the instance was placed in and the address the network chose."""
    acct, k, s, ec2 = tenant
    ami = cloud.default_images()["virga-busybox-rootfs"]
    second = net["second"]["SubnetId"]
    rc, out, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.nano", "--subnet-id",
                       second, "--private-ip-address", "172.31.250.41", access_key=k, secret_key=s)
    assert rc == 0, err
    i = out["Instances"][0]
    assert (i["SubnetId"], i["VpcId"], i["PrivateIpAddress"]) == (second, net["vpc"], "172.31.250.41"), i
    assert [(f["SubnetId"], f["PrivateIpAddress"], f["Attachment"]["DeviceIndex"]) for f in i["NetworkInterfaces"]] \
        == [(second, "172.31.250.41", 0)], i["NetworkInterfaces"]
    ids = [i["InstanceId"]]
    free = ec2.create_network_interface(SubnetId=net["subnet"]["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
    j = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0}, {"DeviceIndex": 1, "NetworkInterfaceId": free}])["Instances"][0]
    ids.append(j["InstanceId"])
    assert j["VpcId"] == net["vpc"] and j["SubnetId"] == net["subnet"]["SubnetId"], j
    assert [f.get("NetworkInterfaceId") for f in j["NetworkInterfaces"]][1:] == [free], j["NetworkInterfaces"]
    m = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0]
    ids.append(m["InstanceId"])
    # the address the launch task took, in the answer itself (it waits for the port)
    assert m["VpcId"] == net["vpc"] and m["PrivateIpAddress"].startswith("172.31."), m
    assert [f["PrivateIpAddress"] for f in m["NetworkInterfaces"]] == [m["PrivateIpAddress"]], m
    shown = describe(ec2, m["InstanceId"])
    assert (shown["SubnetId"], shown["PrivateIpAddress"]) == (m["SubnetId"], m["PrivateIpAddress"]), shown
    ec2.terminate_instances(InstanceIds=ids)
    assert wait(lambda: enis(ec2, NetworkInterfaceIds=[free])[free]["Status"], lambda st: st == "available") == \
        "available"
    ec2.delete_network_interface(NetworkInterfaceId=free)
