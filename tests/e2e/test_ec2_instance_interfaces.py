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
  on the interface itself; another account can neither read nor change it;
- compute keeps what it shows of interfaces in its own table (docs/compute.md): the
  network pushes each change after its commit, so an attach or a SourceDestCheck changed
  on the interface is in DescribeInstances within SHORT_S; with the network service
  killed, DescribeInstances and DescribeInstanceAttribute still answer in full at once;
  a change whose push was lost (made while the network service was down) is repaired by
  compute's pull (compute.interface_sync_s, 2 s here) once the network is back; and
  compute takes those pushes from the network's principal only;
- public addresses: the one a launch gets from the operator's pool (a default subnet's
  MapPublicIpOnLaunch, NetworkInterfaces AssociatePublicIpAddress) and an elastic IP
  associated with the instance, as PublicIpAddress, the interfaces' association and the
  metadata's public-ipv4; released with the instance, replaced by an elastic IP, and a
  new one given when that elastic IP leaves the instance (none with the pool empty)."""
import ipaddress
import os
import signal
import time
import uuid

import pytest

from harness import agent_call, aws, boto3_client, client_error, new_tenant, public_dns

WAIT_S = 60
SHORT_S = 5      # from a change's answer to DescribeInstances showing it (a push: ~10-100 ms)


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


def eventually(fn, ok, seconds=SHORT_S):
    """fn() until ok(value), at most seconds: (value, seconds it took). A change reaches
    DescribeInstances by the network's push, so right after the call that made it the
    instance may still show the state before (as on EC2, eventually consistent)."""
    t0 = time.time()
    while True:
        v = fn()
        if ok(v) or time.time() > t0 + seconds:
            return v, time.time() - t0
        time.sleep(0.05)


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

    (i,), took = eventually(lambda: describe(ec2, iid), lambda d: len(d[0]["NetworkInterfaces"]) == 2)
    ifs = i["NetworkInterfaces"]
    assert len(ifs) == 2, "the attached interface not shown after %.1f s" % took
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
    (i,), _ = eventually(lambda: describe(ec2, iid), lambda d: len(d[0]["NetworkInterfaces"]) == 1)
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

    # through compute: its answer stores the network's new facts, so it shows at once
    cli(cloud, tenant, "modify-instance-attribute", "--instance-id", iid, "--no-source-dest-check")
    assert seen() == (False, False, False, False)
    cli(cloud, tenant, "modify-instance-attribute", "--instance-id", iid, "--source-dest-check")
    assert seen() == (True, True, True, True)
    # the interface changed directly: the network's push brings it to the instance
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
    got, took = eventually(seen, lambda v: v == (False, False, False, False))
    assert got == (False, False, False, False), "after %.1f s: %s" % (took, got)
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


def interfaces(ec2, iid):
    (i,) = describe(ec2, iid)
    return i


def test_changes_on_the_interfaces_reach_describe_instances_within_a_short_wait(cloud, tenant, running):
    """Made on the network's side (the gateway sends these to the network, not to
    compute): an attach, a description and SourceDestCheck of the attached interface, a
    detach, each in DescribeInstances within SHORT_S by the network's push."""
    ec2 = tenant[3]
    iid = running["InstanceId"]
    extra = ec2.create_network_interface(SubnetId=running["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
    att = ec2.attach_network_interface(NetworkInterfaceId=extra, InstanceId=iid, DeviceIndex=2)["AttachmentId"]
    i, took = eventually(lambda: interfaces(ec2, iid), lambda i: len(i["NetworkInterfaces"]) == 2)
    assert [f["NetworkInterfaceId"] for f in i["NetworkInterfaces"]][1:] == [extra], "after %.1f s" % took
    assert i["NetworkInterfaces"][1]["Attachment"]["DeviceIndex"] == 2
    print("attach shown after %.3f s" % took)

    ec2.modify_network_interface_attribute(NetworkInterfaceId=extra, Description={"Value": "renamed"})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=extra, SourceDestCheck={"Value": False})
    i, took = eventually(lambda: interfaces(ec2, iid),
                         lambda i: [(f["Description"], f["SourceDestCheck"]) for f in i["NetworkInterfaces"]][1:]
                         == [("renamed", False)])
    assert [(f["Description"], f["SourceDestCheck"]) for f in i["NetworkInterfaces"]][1:] == [("renamed", False)], \
        "after %.1f s: %s" % (took, i["NetworkInterfaces"])
    assert i["SourceDestCheck"] is True   # the instance's is its primary's

    ec2.detach_network_interface(AttachmentId=att)
    i, took = eventually(lambda: interfaces(ec2, iid), lambda i: len(i["NetworkInterfaces"]) == 1)
    assert len(i["NetworkInterfaces"]) == 1, "after %.1f s" % took
    ec2.delete_network_interface(NetworkInterfaceId=extra)


def test_compute_takes_interface_facts_from_the_network_only(cloud, tenant, running):
    """compute.network_interfaces from another principal (virgadm here) is refused before
    its handler runs, and changes nothing."""
    ec2 = tenant[3]
    iid = running["InstanceId"]
    eni = running["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ok, err = cloud.call("compute", "compute.network_interfaces",
                         {"interfaces": [{"eni": eni, "instance": iid, "index": 0, "sdc": False,
                                          "version": 2 ** 62}]})
    assert not ok and "AccessDenied" in err, err
    assert interfaces(ec2, iid)["SourceDestCheck"] is True


def test_describe_instances_answers_with_the_network_service_killed(cloud, tenant, running):
    """kill -9 of the network service: DescribeInstances (by id and the account's list)
    and DescribeInstanceAttribute still show every interface and SourceDestCheck, from
    compute's own table, without waiting for the network (it used to wait 2 s for it,
    then answered the primary alone with the check on). A change made while the network
    was down (by hand in its table: no push, since nobody listened) reaches
    DescribeInstances by compute's pull once the network is back."""
    ec2 = tenant[3]
    iid = running["InstanceId"]
    # the instance's check set while it has one interface (with two, EC2 asks for the
    # interface's own call)
    ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": False})
    extra = ec2.create_network_interface(SubnetId=running["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
    att = ec2.attach_network_interface(NetworkInterfaceId=extra, InstanceId=iid, DeviceIndex=3)["AttachmentId"]
    want = lambda i: len(i["NetworkInterfaces"]) == 2 and i["SourceDestCheck"] is False  # noqa: E731
    i, took = eventually(lambda: interfaces(ec2, iid), want)
    assert want(i), "after %.1f s: %s" % (took, i["NetworkInterfaces"])

    os.kill(cloud.pid("network"), signal.SIGKILL)
    try:
        t0 = time.time()
        i = interfaces(ec2, iid)
        took = time.time() - t0
        assert want(i), i["NetworkInterfaces"]
        assert i["NetworkInterfaces"][1]["NetworkInterfaceId"] == extra
        assert took < 1.5, "DescribeInstances took %.2f s with the network down" % took
        listed = [x for r in ec2.describe_instances()["Reservations"] for x in r["Instances"]
                  if x["InstanceId"] == iid]
        assert want(listed[0])
        attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")
        assert attr["SourceDestCheck"]["Value"] is False
        # a change the network's push cannot carry: nobody listens to its notification
        cloud.psql("UPDATE network.enis SET description = 'changed while down' WHERE id = '%s'" % extra)
    finally:
        r = cloud.up()
        assert r.returncode == 0, r.stderr
    cloud.wait_healthy("network")
    i, took = eventually(lambda: interfaces(ec2, iid),
                         lambda i: [f["Description"] for f in i["NetworkInterfaces"]][1:] == ["changed while down"],
                         seconds=30)
    assert [f["Description"] for f in i["NetworkInterfaces"]][1:] == ["changed while down"], \
        "not repaired after %.1f s" % took
    print("repaired by the pull after %.1f s" % took)

    ec2.detach_network_interface(AttachmentId=att)
    eventually(lambda: interfaces(ec2, iid), lambda i: len(i["NetworkInterfaces"]) == 1)
    ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": True})
    ec2.delete_network_interface(NetworkInterfaceId=extra)


# ---- public addresses (docs/network.md "Public addresses of instances") ----

def launch(ec2, cloud, **kw):
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            **kw)["Instances"][0]["InstanceId"]
    (i,), _ = eventually(lambda: describe(ec2, iid),
                         lambda d: d[0]["State"]["Name"] == "running" and d[0].get("NetworkInterfaces"), WAIT_S)
    assert i["State"]["Name"] == "running", i["State"]
    return i


def public_ip_of(ec2, iid, ok):
    """The instance's description once ok(PublicIpAddress or None) (a push away)."""
    (i,), took = eventually(lambda: describe(ec2, iid), lambda d: ok(d[0].get("PublicIpAddress")))
    assert ok(i.get("PublicIpAddress")), "after %.1f s: %s" % (took, i.get("PublicIpAddress"))
    return i


def address_rows(cloud, ip):
    return cloud.psql("SELECT count(*) FROM network.addresses WHERE host(public_ip) = '%s'" % ip)


def test_default_subnet_instance_gets_a_public_address_shown_and_served(cloud, tenant):
    """A default subnet maps public addresses on launch (as on AWS): the instance has one
    from the operator's pool, shown as PublicIpAddress and as its interface's association
    (owner "amazon": not an elastic IP), served by the metadata service as public-ipv4,
    not listed by DescribeAddresses; its release with the instance's termination frees it,
    and its usage events are marked auto-assigned."""
    acct, ec2 = tenant[0], tenant[3]
    iid = launch(ec2, cloud)["InstanceId"]
    i = public_ip_of(ec2, iid, lambda ip: ip is not None)
    pub = i["PublicIpAddress"]
    assert ipaddress.ip_address(pub) in ipaddress.ip_network("198.51.100.0/24")
    (f,) = i["NetworkInterfaces"]
    assert f["Association"] == {"PublicIp": pub, "IpOwnerId": "amazon", "PublicDnsName": public_dns(cloud, pub)}
    assert f["PrivateIpAddresses"][0]["Association"] == f["Association"]
    assert pub not in [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]]
    assert [x["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "ip-address", "Values": [pub]}])[
        "Reservations"] for x in r["Instances"]] == [iid]
    shown = ec2.describe_network_interfaces(NetworkInterfaceIds=[f["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    assert shown["Association"]["PublicIp"] == pub and shown["Association"]["IpOwnerId"] == "amazon"
    # the same through awscli
    out = cli(cloud, tenant, "describe-instances", "--instance-ids", iid)
    assert out["Reservations"][0]["Instances"][0]["PublicIpAddress"] == pub

    ok, md = agent_call(cloud, "compute.instance_metadata", {"vpc_id": i["VpcId"], "ip": i["PrivateIpAddress"]})
    assert ok, md
    assert md["meta_data"]["public-ipv4"] == pub
    assert md["meta_data"]["network/interfaces/macs/%s/public-ipv4s" % f["MacAddress"]] == pub

    ec2.terminate_instances(InstanceIds=[iid])
    deadline = time.time() + WAIT_S
    while address_rows(cloud, pub) != "0":
        assert time.time() < deadline, "the auto-assigned address is still held after terminate"
        time.sleep(0.2)
    events = cloud.psql("SELECT event || ' ' || auto_assigned || ' ' || account_id FROM network.address_events "
                        "WHERE public_ip = '%s' ORDER BY seq DESC LIMIT 4" % pub).split("\n")[::-1]
    assert events == ["%s true %s" % (e, acct) for e in ("allocated", "associated", "disassociated", "released")]


def test_associate_public_ip_address_false_true_and_the_subnet_attribute(cloud, tenant):
    """NetworkInterfaces AssociatePublicIpAddress false: no public address in a default
    subnet; true: one in a subnet that does not map them; neither: the subnet decides."""
    ec2 = tenant[3]
    none = launch(ec2, cloud, NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}])
    time.sleep(0.5)   # a push away: still none
    assert "PublicIpAddress" not in describe(ec2, none["InstanceId"])[0]
    assert "Association" not in describe(ec2, none["InstanceId"])[0]["NetworkInterfaces"][0]

    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    assert ec2.describe_subnets(SubnetIds=[sub])["Subnets"][0]["MapPublicIpOnLaunch"] is False
    plain = launch(ec2, cloud, SubnetId=sub)
    asked = launch(ec2, cloud, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": sub,
                                                   "AssociatePublicIpAddress": True}])
    public_ip_of(ec2, asked["InstanceId"], lambda ip: ip is not None)
    assert "PublicIpAddress" not in describe(ec2, plain["InstanceId"])[0]
    ec2.modify_subnet_attribute(SubnetId=sub, MapPublicIpOnLaunch={"Value": True})
    mapped = launch(ec2, cloud, SubnetId=sub)
    public_ip_of(ec2, mapped["InstanceId"], lambda ip: ip is not None)
    ids = [x["InstanceId"] for x in (none, plain, asked, mapped)]
    ec2.terminate_instances(InstanceIds=ids)
    eventually(lambda: describe(ec2, *ids), lambda d: all(x["State"]["Name"] == "terminated" for x in d), WAIT_S)
    # a VPC whose instances are gone (their interfaces deleted with them) can go
    eventually(lambda: cloud.psql("SELECT count(*) FROM network.enis WHERE vpc_id = '%s'" % vpc),
               lambda n: n == "0", WAIT_S)
    ec2.delete_subnet(SubnetId=sub)
    ec2.delete_vpc(VpcId=vpc)


def served_public_ip(cloud, i):
    """What the metadata service serves the instance as public-ipv4 (None: nothing)."""
    ok, md = agent_call(cloud, "compute.instance_metadata", {"vpc_id": i["VpcId"], "ip": i["PrivateIpAddress"]})
    assert ok, md
    return md["meta_data"].get("public-ipv4")


def test_elastic_ip_replaces_the_auto_assigned_address(cloud, tenant):
    """AssociateAddress to an instance that has an auto-assigned address: the elastic IP is
    its PublicIpAddress (owner: the account) and the auto one is released (as on AWS);
    disassociated, the instance gets a new auto-assigned address (not the one it had), as
    on AWS, in DescribeInstances and the metadata (the datapath's NAT of it:
    tests/integration/test_agent_network.py); moved to another instance (AllowReassociation), the same; an instance launched
    without a public address has none after its elastic IP goes. The auto one cannot be
    disassociated, released or associated by the tenant (not an elastic IP)."""
    acct, ec2 = tenant[0], tenant[3]
    iid = launch(ec2, cloud)["InstanceId"]
    auto = public_ip_of(ec2, iid, lambda ip: ip is not None)["PublicIpAddress"]
    assert client_error(ec2.disassociate_address, PublicIp=auto) == "InvalidAddress.NotFound"
    assert client_error(ec2.release_address, PublicIp=auto) == "InvalidAddress.NotFound"
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=iid)
    i = public_ip_of(ec2, iid, lambda ip: ip == alloc["PublicIp"])
    assert i["NetworkInterfaces"][0]["Association"] == {"PublicIp": alloc["PublicIp"], "IpOwnerId": acct,
                                                        "PublicDnsName": public_dns(cloud, alloc["PublicIp"])}
    assert address_rows(cloud, auto) == "0"
    assert served_public_ip(cloud, i) == alloc["PublicIp"]
    (listed,) = ec2.describe_addresses(AllocationIds=[alloc["AllocationId"]])["Addresses"]
    assert listed["InstanceId"] == iid

    ec2.disassociate_address(PublicIp=alloc["PublicIp"])
    i = public_ip_of(ec2, iid, lambda ip: ip not in (None, alloc["PublicIp"]))
    second = i["PublicIpAddress"]
    assert second != auto and ipaddress.ip_address(second) in ipaddress.ip_network("198.51.100.0/24")
    assert i["NetworkInterfaces"][0]["Association"] == {"PublicIp": second, "IpOwnerId": "amazon",
                                                        "PublicDnsName": public_dns(cloud, second)}
    assert served_public_ip(cloud, i) == second
    assert second not in [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]]
    assert cloud.psql("SELECT event || ' ' || auto_assigned FROM network.address_events WHERE public_ip = '%s' "
                      "ORDER BY seq" % second).split("\n")[-2:] == ["allocated true", "associated true"]

    # moved to an instance launched without a public address: the first gets a third
    # address, the other has none once the elastic IP is disassociated from it
    bare = launch(ec2, cloud, NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}])
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=iid)
    public_ip_of(ec2, iid, lambda ip: ip == alloc["PublicIp"])
    out = cli(cloud, tenant, "associate-address", "--allocation-id", alloc["AllocationId"], "--instance-id",
              bare["InstanceId"], "--allow-reassociation")
    assert out["AssociationId"].startswith("eipassoc-")
    public_ip_of(ec2, bare["InstanceId"], lambda ip: ip == alloc["PublicIp"])
    third = public_ip_of(ec2, iid, lambda ip: ip not in (None, alloc["PublicIp"]))["PublicIpAddress"]
    assert third != second
    cli(cloud, tenant, "disassociate-address", "--public-ip", alloc["PublicIp"])
    i = public_ip_of(ec2, bare["InstanceId"], lambda ip: ip is None)
    assert "Association" not in i["NetworkInterfaces"][0]
    assert served_public_ip(cloud, i) is None
    ec2.release_address(AllocationId=alloc["AllocationId"])
    ec2.terminate_instances(InstanceIds=[iid, bare["InstanceId"]])


def fill_pool(cloud):
    """Every free address of the pool taken by a made-up account (undone by unfill_pool);
    new allocation ids each time (the usage log keeps the ids of earlier fills)."""
    cloud.psql("INSERT INTO network.addresses (id, account_id, public_ip) SELECT 'eipalloc-f1%s' || lpad(s::text, 9, "
               "'0'), '000000000001', '198.51.100.0'::inet + s FROM generate_series(1, 254) s WHERE NOT EXISTS "
               "(SELECT 1 FROM network.addresses a WHERE a.public_ip = '198.51.100.0'::inet + s)" % uuid.uuid4().hex[:6])


def unfill_pool(cloud):
    cloud.psql("DELETE FROM network.addresses WHERE account_id = '000000000001'")


def test_disassociation_with_the_pool_empty_leaves_no_public_address(cloud, tenant):
    """The pool empty when an elastic IP leaves an instance whose launch gave it a public
    address: the disassociation succeeds and the instance has none (as on AWS), shown so
    and served so."""
    ec2 = tenant[3]
    iid = launch(ec2, cloud)["InstanceId"]
    public_ip_of(ec2, iid, lambda ip: ip is not None)
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=iid)
    public_ip_of(ec2, iid, lambda ip: ip == alloc["PublicIp"])
    fill_pool(cloud)
    try:
        ec2.disassociate_address(AssociationId=ec2.describe_addresses(AllocationIds=[alloc["AllocationId"]])[
            "Addresses"][0]["AssociationId"])
        i = public_ip_of(ec2, iid, lambda ip: ip is None)
        assert "Association" not in i["NetworkInterfaces"][0]
        assert served_public_ip(cloud, i) is None
    finally:
        unfill_pool(cloud)
    ec2.release_address(AllocationId=alloc["AllocationId"])
    ec2.terminate_instances(InstanceIds=[iid])


def test_a_launch_that_finds_the_pool_empty_fails_visibly(cloud, tenant):
    """The operator's pool empty (filled here by hand with addresses of a made-up account,
    for the length of the test): a launch into a default subnet is not made silently
    without its public address, it fails as a launch whose port is refused, terminated
    with the reason InsufficientAddressCapacity; AssociatePublicIpAddress false still
    launches."""
    ec2 = tenant[3]
    fill_pool(cloud)
    try:
        ami = cloud.default_images()["virga-busybox-rootfs"]
        iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"]
        (i,), _ = eventually(lambda: describe(ec2, iid), lambda d: d[0]["State"]["Name"] == "terminated", WAIT_S)
        assert i["State"]["Name"] == "terminated", i["State"]
        assert "InsufficientAddressCapacity" in i["StateReason"]["Message"], i["StateReason"]
        ok = launch(ec2, cloud, NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}])
        ec2.terminate_instances(InstanceIds=[ok["InstanceId"]])
    finally:
        unfill_pool(cloud)


def wait_state(ec2, iid, name):
    (i,), _ = eventually(lambda: describe(ec2, iid), lambda d: d[0]["State"]["Name"] == name, WAIT_S)
    assert i["State"]["Name"] == name, i["State"]
    return i


def address_log(cloud, ip):
    return cloud.psql("SELECT event || ' ' || auto_assigned FROM network.address_events WHERE public_ip = '%s' "
                      "ORDER BY seq" % ip).split("\n")


def test_stop_releases_the_auto_assigned_address_and_start_gives_a_new_one(cloud, tenant):
    """As on AWS: a stopped instance has no public address (its auto-assigned one goes back
    to the pool, its billing log ends with disassociated, released), DescribeInstances and
    the metadata show none; started, it gets a new one (not the one it had), shown,
    served and logged as a new allocation. An elastic IP stays through stop and start."""
    ec2 = tenant[3]
    iid = launch(ec2, cloud)["InstanceId"]
    first = public_ip_of(ec2, iid, lambda ip: ip is not None)["PublicIpAddress"]
    pinned = launch(ec2, cloud)["InstanceId"]
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=pinned)
    public_ip_of(ec2, pinned, lambda ip: ip == alloc["PublicIp"])

    cli(cloud, tenant, "stop-instances", "--instance-ids", iid, pinned)
    wait_state(ec2, iid, "stopped")
    i = public_ip_of(ec2, iid, lambda ip: ip is None)
    assert "Association" not in i["NetworkInterfaces"][0]
    assert served_public_ip(cloud, i) is None
    assert address_rows(cloud, first) == "0"
    assert address_log(cloud, first)[-2:] == ["disassociated true", "released true"]
    assert wait_state(ec2, pinned, "stopped")["PublicIpAddress"] == alloc["PublicIp"]

    ec2.start_instances(InstanceIds=[iid, pinned])
    wait_state(ec2, iid, "running")
    i = public_ip_of(ec2, iid, lambda ip: ip is not None)
    second = i["PublicIpAddress"]
    assert second != first and ipaddress.ip_address(second) in ipaddress.ip_network("198.51.100.0/24")
    assert i["NetworkInterfaces"][0]["Association"] == {"PublicIp": second, "IpOwnerId": "amazon",
                                                        "PublicDnsName": public_dns(cloud, second)}
    assert served_public_ip(cloud, i) == second
    assert address_log(cloud, second)[-2:] == ["allocated true", "associated true"]
    assert wait_state(ec2, pinned, "running")["PublicIpAddress"] == alloc["PublicIp"]
    # started again: nothing more changes (the network's answer is idempotent)
    ec2.start_instances(InstanceIds=[iid])
    time.sleep(0.5)
    assert describe(ec2, iid)[0]["PublicIpAddress"] == second
    assert cloud.psql("SELECT count(*) FROM network.addresses a JOIN network.enis n ON n.id = a.eni_id "
                      "WHERE n.instance_id = '%s'" % iid) == "1"
    ec2.terminate_instances(InstanceIds=[iid, pinned])
    wait_state(ec2, pinned, "terminated")
    ec2.release_address(AllocationId=alloc["AllocationId"])


def test_start_with_the_pool_empty_runs_without_a_public_address(cloud, tenant):
    """The pool empty when a stopped instance starts: it starts (StartInstances does not
    fail for it) and runs without a public address, shown and served so; it gets one at
    its next start once the pool has one (docs/network.md)."""
    ec2 = tenant[3]
    iid = launch(ec2, cloud)["InstanceId"]
    public_ip_of(ec2, iid, lambda ip: ip is not None)
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    public_ip_of(ec2, iid, lambda ip: ip is None)
    fill_pool(cloud)
    try:
        ec2.start_instances(InstanceIds=[iid])
        i = wait_state(ec2, iid, "running")
        time.sleep(0.5)   # its public task has run (a push away at most)
        i = public_ip_of(ec2, iid, lambda ip: ip is None)
        assert served_public_ip(cloud, i) is None
    finally:
        unfill_pool(cloud)
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    public_ip_of(ec2, iid, lambda ip: ip is not None)
    ec2.terminate_instances(InstanceIds=[iid])


def test_a_stop_with_the_network_down_converges_once_it_is_back(cloud, tenant):
    """kill -9 of the network service, then a stop: the instance stops, keeps its address
    while nobody can release it, and its metadata answers 503 (not the address it is
    losing) for at most compute.public_address_wait_s; the network back, the public task's
    retry releases it, shown and served so (docs/network.md, "Stop and start")."""
    ec2 = tenant[3]
    iid = launch(ec2, cloud)["InstanceId"]
    first = public_ip_of(ec2, iid, lambda ip: ip is not None)["PublicIpAddress"]
    os.kill(cloud.pid("network"), signal.SIGKILL)
    try:
        ec2.stop_instances(InstanceIds=[iid])
        i = wait_state(ec2, iid, "stopped")
        ok, err = agent_call(cloud, "compute.instance_metadata", {"vpc_id": i["VpcId"], "ip": i["PrivateIpAddress"]})
        assert not ok and "Unavailable" in err, err
        assert describe(ec2, iid)[0]["PublicIpAddress"] == first
    finally:
        r = cloud.up()
        assert r.returncode == 0, r.stderr
    cloud.wait_healthy("network")
    (i,), took = eventually(lambda: describe(ec2, iid), lambda d: d[0].get("PublicIpAddress") is None, seconds=WAIT_S)
    assert i.get("PublicIpAddress") is None, "still %s after %.1f s" % (i.get("PublicIpAddress"), took)
    assert address_rows(cloud, first) == "0"
    assert served_public_ip(cloud, i) is None
    ec2.terminate_instances(InstanceIds=[iid])
