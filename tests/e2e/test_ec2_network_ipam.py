"""Addresses: network interfaces with private addresses from their subnet (AWS's five
reserved, no double allocation under concurrency, a clear error when the subnet is
full), elastic IPs from the operator's public pool with the elastic_ips quota, the port
API compute uses (idempotent, compute's principal only), and the datapath document
network.host_desired gives each host. Tenant isolation throughout."""
import concurrent.futures
import ipaddress
import json
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import boto3_client, client_error as code, new_tenant


@pytest.fixture(scope="module")
def tenant(cloud):
    account, k, s = new_tenant(cloud, "ipam-a-" + uuid.uuid4().hex[:6])
    return account, boto3_client(cloud, "ec2", k, s)


@pytest.fixture(scope="module")
def other(cloud):
    account, k, s = new_tenant(cloud, "ipam-b-" + uuid.uuid4().hex[:6])
    return account, boto3_client(cloud, "ec2", k, s)


def call(cloud, mtype, body, principal="compute"):
    """A bus call as compute makes it, signed with compute's own credential (or, with
    principal=None, as virgadm, the operator): (ok, reply or error text)."""
    extra = ("--set", "bus.credential_file=" + os.path.join(cloud.dir, "secrets", "bus", principal + ".cred")) \
        if principal else ()
    r = cloud.virgadm(*extra, "call", "network", mtype, json.dumps(body))
    if r.returncode == 0:
        return True, json.loads(r.stdout)
    return False, r.stderr.strip()


def test_interfaces_and_addresses_in_a_small_subnet(tenant):
    _, ec2 = tenant
    vid = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.60.0.16/28")["Subnet"]["SubnetId"]
    first = ec2.create_network_interface(SubnetId=sid, Description="first")["NetworkInterface"]
    assert first["PrivateIpAddress"] == "10.60.0.20"          # .16-.19 and .31 are reserved
    assert first["MacAddress"].startswith("02:") and first["Status"] == "available"
    default_sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vid]},
                                                       {"Name": "group-name", "Values": ["default"]}])
    assert [g["GroupId"] for g in first["Groups"]] == [default_sg["SecurityGroups"][0]["GroupId"]]
    web = ec2.create_security_group(GroupName="web", Description="w", VpcId=vid)["GroupId"]
    fixed = ec2.create_network_interface(SubnetId=sid, PrivateIpAddress="10.60.0.30", Groups=[web])["NetworkInterface"]
    assert fixed["PrivateIpAddress"] == "10.60.0.30" and fixed["Groups"][0]["GroupId"] == web
    assert code(ec2.create_network_interface, SubnetId=sid, PrivateIpAddress="10.60.0.30") == "InvalidIPAddress.InUse"
    for bad in ("10.60.0.17", "10.60.0.31", "10.60.1.5"):
        assert code(ec2.create_network_interface, SubnetId=sid, PrivateIpAddress=bad) == "InvalidParameterValue"
    assert code(ec2.create_network_interface, SubnetId="subnet-0123456789abcdef0") == "InvalidSubnetID.NotFound"
    tok = uuid.uuid4().hex
    a = ec2.create_network_interface(SubnetId=sid, ClientToken=tok)["NetworkInterface"]
    b = ec2.create_network_interface(SubnetId=sid, ClientToken=tok)["NetworkInterface"]
    assert a["NetworkInterfaceId"] == b["NetworkInterfaceId"]
    # the same token with other parameters is refused, as on EC2, and makes nothing
    assert code(ec2.create_network_interface, SubnetId=sid, ClientToken=tok,
                Description="other") == "IdempotentParameterMismatch"
    assert code(ec2.create_network_interface, SubnetId=sid, ClientToken=tok,
                Groups=[web]) == "IdempotentParameterMismatch"
    made = [first, fixed, a]
    while True:
        try:
            made.append(ec2.create_network_interface(SubnetId=sid)["NetworkInterface"])
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InsufficientFreeAddressesInSubnet"
            break
        assert len(made) <= 11
    ips = [m["PrivateIpAddress"] for m in made]
    assert len(made) == 11 and len(set(ips)) == 11                 # a /28 has 16 - 5 usable
    assert ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]["AvailableIpAddressCount"] == 0
    got = ec2.describe_network_interfaces(Filters=[{"Name": "private-ip-address", "Values": ["10.60.0.30"]}])
    assert [n["NetworkInterfaceId"] for n in got["NetworkInterfaces"]] == [fixed["NetworkInterfaceId"]]
    got = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [web]}])["NetworkInterfaces"]
    assert [n["NetworkInterfaceId"] for n in got] == [fixed["NetworkInterfaceId"]]
    assert code(ec2.delete_subnet, SubnetId=sid) == "DependencyViolation"
    assert code(ec2.delete_security_group, GroupId=web) == "DependencyViolation"
    for m in made:
        ec2.delete_network_interface(NetworkInterfaceId=m["NetworkInterfaceId"])
    assert code(ec2.delete_network_interface, NetworkInterfaceId=first["NetworkInterfaceId"]) == \
        "InvalidNetworkInterfaceID.NotFound"
    ec2.delete_security_group(GroupId=web)
    ec2.delete_subnet(SubnetId=sid)
    ec2.delete_vpc(VpcId=vid)


def test_concurrent_allocations_in_one_slash24(tenant):
    """260 creates at once, 32 in flight, in a /24 (251 usable addresses): 251 distinct
    addresses and 9 InsufficientFreeAddressesInSubnet, nothing else."""
    _, ec2 = tenant
    vid = ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.61.7.0/24")["Subnet"]["SubnetId"]

    def one(_):
        try:
            n = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]
            return n["NetworkInterfaceId"], n["PrivateIpAddress"]
        except ClientError as e:
            return None, e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(260)))
    ok = [r for r in results if r[0]]
    errors = [r[1] for r in results if not r[0]]
    ips = [ipaddress.ip_address(ip) for _, ip in ok]
    assert len(ok) == 251 and len(set(ips)) == 251
    assert errors == ["InsufficientFreeAddressesInSubnet"] * 9
    net = ipaddress.ip_network("10.61.7.0/24")
    assert all(ip in net and net.network_address + 4 <= ip <= net.broadcast_address - 1 for ip in ips)
    listed = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [sid]}])["NetworkInterfaces"]
    assert len(listed) == 251
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda r: ec2.delete_network_interface(NetworkInterfaceId=r[0]), ok))
    ec2.delete_subnet(SubnetId=sid)
    ec2.delete_vpc(VpcId=vid)


def test_elastic_ips(cloud, tenant, other):
    account, ec2 = tenant
    _, b = other
    assert cloud.virgadm("quota", "set", account, "elastic_ips", "2").returncode == 0
    sid = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    eni2 = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    a1 = ec2.allocate_address(Domain="vpc")
    a2 = ec2.allocate_address(Domain="vpc")
    assert ipaddress.ip_address(a1["PublicIp"]) in ipaddress.ip_network("198.51.100.0/24")
    assert a1["PublicIp"] != a2["PublicIp"] and a1["AllocationId"].startswith("eipalloc-")
    assert code(ec2.allocate_address, Domain="vpc") == "AddressLimitExceeded"

    assoc = ec2.associate_address(AllocationId=a1["AllocationId"], NetworkInterfaceId=eni)["AssociationId"]
    got = ec2.describe_addresses(AllocationIds=[a1["AllocationId"]])["Addresses"][0]
    assert got["AssociationId"] == assoc and got["NetworkInterfaceId"] == eni and got["PublicIp"] == a1["PublicIp"]
    n = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert n["Association"]["PublicIp"] == a1["PublicIp"]
    assert code(ec2.associate_address, AllocationId=a1["AllocationId"], NetworkInterfaceId=eni2) == \
        "Resource.AlreadyAssociated"
    assert code(ec2.release_address, AllocationId=a1["AllocationId"]) == "InvalidIPAddress.InUse"
    ec2.associate_address(AllocationId=a1["AllocationId"], NetworkInterfaceId=eni2, AllowReassociation=True)
    assert ec2.describe_addresses(PublicIps=[a1["PublicIp"]])["Addresses"][0]["NetworkInterfaceId"] == eni2

    # tenant B: sees none of it, uses none of it
    assert a1["PublicIp"] not in [x["PublicIp"] for x in b.describe_addresses()["Addresses"]]
    assert code(b.describe_addresses, AllocationIds=[a1["AllocationId"]]) == "InvalidAllocationID.NotFound"
    assert code(b.release_address, AllocationId=a2["AllocationId"]) == "InvalidAllocationID.NotFound"
    assert code(b.disassociate_address, AssociationId=assoc) == "InvalidAssociationID.NotFound"
    assert code(b.describe_network_interfaces, NetworkInterfaceIds=[eni]) == "InvalidNetworkInterfaceID.NotFound"
    assert code(b.delete_network_interface, NetworkInterfaceId=eni) == "InvalidNetworkInterfaceID.NotFound"
    assert code(b.create_network_interface, SubnetId=sid) == "InvalidSubnetID.NotFound"
    b_alloc = b.allocate_address(Domain="vpc")
    assert code(b.associate_address, AllocationId=b_alloc["AllocationId"], NetworkInterfaceId=eni) == \
        "InvalidNetworkInterfaceID.NotFound"
    assert code(b.associate_address, AllocationId=a2["AllocationId"], NetworkInterfaceId=eni) == \
        "InvalidAllocationID.NotFound"
    b.release_address(AllocationId=b_alloc["AllocationId"])

    ec2.disassociate_address(PublicIp=a1["PublicIp"])
    assert "AssociationId" not in ec2.describe_addresses(AllocationIds=[a1["AllocationId"]])["Addresses"][0]
    assert code(ec2.disassociate_address, AssociationId=assoc) == "InvalidAssociationID.NotFound"
    ec2.release_address(AllocationId=a1["AllocationId"])
    ec2.release_address(PublicIp=a2["PublicIp"])
    assert code(ec2.release_address, AllocationId=a1["AllocationId"]) == "InvalidAllocationID.NotFound"
    assert ec2.describe_addresses()["Addresses"] == []
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_network_interface(NetworkInterfaceId=eni2)


def test_port_create_plugged(cloud, tenant):
    """A launch's port made and plugged on its host in one call (plug true), as compute's
    launch task asks; a retry is the same port, plugged, with no new generation; a port
    made before without the plug is plugged by the retry that asks for it."""
    account, ec2 = tenant
    host = "hp-" + uuid.uuid4().hex[:6]
    vid = ec2.create_vpc(CidrBlock="10.63.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.63.1.0/24")["Subnet"]["SubnetId"]
    req = {"account": account, "subnet": sid, "instance_id": "i-0bbbbbbbbbbbbbbb1", "host": host, "plug": True}
    ok, err = call(cloud, "network.port_create", dict(req, host=None))
    assert not ok and "InvalidParameterValue" in err
    ok, err = call(cloud, "network.port_create", dict(req, plug="yes"))
    assert not ok and "InvalidParameterValue" in err
    ok, p = call(cloud, "network.port_create", req)
    assert ok and p["plugged"] and p["host"] == host, p
    ok, d = call(cloud, "network.host_desired", {"host": host})
    assert ok and [i["eni_id"] for i in d["interfaces"]] == [p["eni_id"]] and d["vpcs"][0]["vpc_id"] == vid
    ok, again = call(cloud, "network.port_create", req)
    assert ok and again["eni_id"] == p["eni_id"] and again["plugged"]
    ok, d2 = call(cloud, "network.host_desired", {"host": host})
    assert d2["generation"] == d["generation"]
    # made unplugged first (an older compute's create), then asked with the plug
    ok, q = call(cloud, "network.port_create", dict(req, instance_id="i-0bbbbbbbbbbbbbbb2", plug=False))
    assert ok and not q["plugged"]
    ok, q2 = call(cloud, "network.port_create", dict(req, instance_id="i-0bbbbbbbbbbbbbbb2"))
    assert ok and q2["eni_id"] == q["eni_id"] and q2["plugged"] and q2["host"] == host
    ok, d3 = call(cloud, "network.host_desired", {"host": host})
    assert sorted(i["eni_id"] for i in d3["interfaces"]) == sorted([p["eni_id"], q["eni_id"]])
    for port in (p, q):
        ok, r = call(cloud, "network.port_delete", {"eni": port["eni_id"]})
        assert ok and r["deleted"]


def test_port_adopt_and_give_back(cloud, tenant, other):
    """network.port_adopt, as compute's launch task asks it for an existing interface as
    the primary: only compute may ask; the interface attached at index 0, plugged on the
    host, with its own address, MAC and groups and DeleteOnTermination false; a retry is
    the same port with no new generation; another instance is refused (InUse), and so is
    another account's interface (NotFound). port_delete with another instance's id leaves
    it; with its own, detaches it (available again, as it was); asked again, nothing."""
    account, ec2 = tenant
    host = "ha-" + uuid.uuid4().hex[:6]
    vid = ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.64.1.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="w", VpcId=vid)["GroupId"]
    eni = ec2.create_network_interface(SubnetId=sid, Groups=[web], PrivateIpAddress="10.64.1.50",
                                       Description="mine")["NetworkInterface"]
    eid = eni["NetworkInterfaceId"]
    req = {"account": account, "eni": eid, "instance_id": "i-0ccccccccccccccc1", "host": host, "plug": True,
           "device_kind": "tap"}
    ok, err = call(cloud, "network.port_adopt", req, principal=None)
    assert not ok and "AccessDenied" in err
    ok, err = call(cloud, "network.port_adopt", dict(req, account=other[0]))
    assert not ok and "InvalidNetworkInterfaceID.NotFound" in err
    ok, p = call(cloud, "network.port_adopt", req)
    assert ok, p
    assert (p["eni_id"], p["ip"], p["mac"], p["device_kind"]) == (eid, "10.64.1.50", eni["MacAddress"], "tap"), p
    assert p["plugged"] and p["host"] == host and [g["groupId"] for g in p["groups"]] == [web]
    assert p["facts"]["index"] == 0 and p["facts"]["dot"] is False and p["facts"]["instance"] == req["instance_id"]
    ok, d = call(cloud, "network.host_desired", {"host": host})
    assert ok and [i["eni_id"] for i in d["interfaces"]] == [eid]
    ok, again = call(cloud, "network.port_adopt", req)
    assert ok and again["eni_id"] == eid and again["facts"]["attachment"] == p["facts"]["attachment"]
    ok, d2 = call(cloud, "network.host_desired", {"host": host})
    assert d2["generation"] == d["generation"]
    ok, err = call(cloud, "network.port_adopt", dict(req, instance_id="i-0ccccccccccccccc2"))
    assert not ok and "InvalidNetworkInterface.InUse" in err
    n = ec2.describe_network_interfaces(NetworkInterfaceIds=[eid])["NetworkInterfaces"][0]
    assert n["Status"] == "in-use" and n["Attachment"]["DeviceIndex"] == 0
    assert n["Attachment"]["DeleteOnTermination"] is False
    ok, r = call(cloud, "network.port_delete", {"eni": eid, "instance_id": "i-0ccccccccccccccc2"})
    assert ok and not r["deleted"] and not r["detached"] and r["facts"]["instance"] == req["instance_id"], r
    ok, r = call(cloud, "network.port_delete", {"eni": eid, "instance_id": req["instance_id"]})
    assert ok and not r["deleted"] and r["detached"] and r["facts"]["instance"] is None, r
    n = ec2.describe_network_interfaces(NetworkInterfaceIds=[eid])["NetworkInterfaces"][0]
    assert n["Status"] == "available" and "Attachment" not in n and n["PrivateIpAddress"] == "10.64.1.50", n
    assert n["Description"] == "mine" and [g["GroupId"] for g in n["Groups"]] == [web]
    ok, d3 = call(cloud, "network.host_desired", {"host": host})
    assert ok and d3["interfaces"] == [], d3
    ok, r = call(cloud, "network.port_delete", {"eni": eid, "instance_id": req["instance_id"]})
    assert ok and not r["deleted"] and not r["detached"]
    ec2.delete_network_interface(NetworkInterfaceId=eid)


def test_port_api_and_host_desired(cloud, tenant):
    account, ec2 = tenant
    suffix = uuid.uuid4().hex[:6]
    h1, h2 = "h1-" + suffix, "h2-" + suffix
    vid = ec2.create_vpc(CidrBlock="10.62.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.62.1.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="w", VpcId=vid)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="d", VpcId=vid)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
         "UserIdGroupPairs": [{"GroupId": db}]}])

    req = {"account": account, "subnet": sid, "groups": [web], "instance_id": "i-0aaaaaaaaaaaaaaa1", "host": h1}
    # only compute's principal may make ports
    ok, err = call(cloud, "network.port_create", req, principal=None)
    assert not ok and "AccessDenied" in err and "may not send" in err
    r = cloud.virgadm("call", "network", "network.port_create", json.dumps(req), "--as", account)
    assert r.returncode != 0 and "AccessDenied" in r.stderr
    ok, p1 = call(cloud, "network.port_create", req)
    assert ok, p1
    assert p1["ip"] == "10.62.1.4" and p1["prefix_len"] == 24 and p1["gateway"] == "10.62.1.1" and not p1["plugged"]
    assert p1["device_kind"] == "veth"
    ok, err = call(cloud, "network.port_create", dict(req, instance_id="i-0aaaaaaaaaaaaaaa9", device_kind="macvtap"))
    assert not ok and "InvalidParameterValue" in err
    ok, again = call(cloud, "network.port_create", req)          # a retry: the same port
    assert ok and again["eni_id"] == p1["eni_id"] and again["mac"] == p1["mac"] and again["ip"] == p1["ip"]
    ok, p2 = call(cloud, "network.port_create", {"account": account, "subnet": sid, "groups": [db],
                                                  "instance_id": "i-0aaaaaaaaaaaaaaa2"})
    assert ok and p2["ip"] == "10.62.1.5"
    ok, dflt = call(cloud, "network.port_create", {"account": account, "instance_id": "i-0aaaaaaaaaaaaaaa3"})
    assert ok and ipaddress.ip_address(dflt["ip"]) in ipaddress.ip_network("172.31.0.0/16")
    n = ec2.describe_network_interfaces(NetworkInterfaceIds=[p1["eni_id"]])["NetworkInterfaces"][0]
    assert n["Attachment"]["InstanceId"] == "i-0aaaaaaaaaaaaaaa1" and n["Status"] == "in-use"
    assert code(ec2.delete_network_interface, NetworkInterfaceId=p1["eni_id"]) == "InvalidNetworkInterface.InUse"

    ok, d0 = call(cloud, "network.host_desired", {"host": h1})
    assert ok and d0["interfaces"] == [] and d0["vpcs"] == [] and d0["host"] == h1
    assert ipaddress.ip_address(d0["underlay_ip"]) in ipaddress.ip_network("10.254.0.0/24")
    assert d0["outside"] == {"public_cidr": "198.51.100.0/24"}
    ok, err = call(cloud, "network.host_desired", {"host": h1}, principal=None)
    assert not ok and "AccessDenied" in err
    for bad in ("", "a/b", "x" * 64, "../etc"):
        ok, err = call(cloud, "network.host_desired", {"host": bad})
        assert not ok and "InvalidParameterValue" in err, bad
        ok, err = call(cloud, "network.port_plug", {"eni": p1["eni_id"], "host": bad})
        assert not ok and "InvalidParameterValue" in err, bad

    ok, plugged = call(cloud, "network.port_plug", {"eni": p1["eni_id"], "host": h1})
    assert ok and plugged["plugged"] and plugged["host"] == h1
    ok, d1 = call(cloud, "network.host_desired", {"host": h1})
    assert ok and d1["generation"] > d0["generation"]
    ok, same = call(cloud, "network.port_plug", {"eni": p1["eni_id"], "host": h1})   # idempotent, no change
    ok, d1b = call(cloud, "network.host_desired", {"host": h1})
    assert d1b["generation"] == d1["generation"]
    [iface] = d1["interfaces"]
    assert iface == {"eni_id": p1["eni_id"], "vpc_id": vid, "subnet_id": sid, "mac": p1["mac"], "ip": "10.62.1.4",
                     "prefix_len": 24, "device": "vt-" + p1["eni_id"][4:16], "groups": [web], "public_ip": None,
                     "device_kind": "veth", "source_dest_check": True}
    [v] = d1["vpcs"]
    assert v["vpc_id"] == vid and v["cidr"] == "10.62.0.0/16" and v["peers"] == [] and v["vni"] >= 1001
    assert v["internet_gateway"] is None
    assert v["subnets"] == [{"subnet_id": sid, "cidr": "10.62.1.0/24", "gateway": "10.62.1.1", "dns": "10.62.1.2",
                             "routes": [{"destination": "10.62.0.0/16", "target": "local"}]}]
    [g] = d1["security_groups"]
    assert g["group_id"] == web
    ingress = sorted(g["ingress"], key=lambda r: r["cidrs"])
    assert ingress == [{"protocol": "tcp", "from_port": 8080, "to_port": 8080, "cidrs": [], "groups": [db]},
                       {"protocol": "tcp", "from_port": 8080, "to_port": 8080, "cidrs": ["10.0.0.0/8"], "groups": []}]
    assert g["egress"] == [{"protocol": "-1", "from_port": -1, "to_port": -1, "cidrs": ["0.0.0.0/0"], "groups": []}]
    assert d1["group_members"] == {}                          # db has no plugged member yet

    # a member of db plugged on another host: h1 learns the address and the peer
    ok, _ = call(cloud, "network.port_plug", {"eni": p2["eni_id"], "host": h2})
    ok, d2 = call(cloud, "network.host_desired", {"host": h1})
    assert d2["generation"] > d1["generation"]
    assert d2["group_members"] == {db: ["10.62.1.5"]}
    ok, h2doc = call(cloud, "network.host_desired", {"host": h2})
    assert d2["vpcs"][0]["peers"] == [h2doc["underlay_ip"]]
    assert h2doc["vpcs"][0]["peers"] == [d2["underlay_ip"]] and h2doc["vpcs"][0]["vni"] == v["vni"]

    # a rule change and an elastic IP reach the host's document in the same transaction
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ok, d3 = call(cloud, "network.host_desired", {"host": h1})
    assert d3["generation"] > d2["generation"] and len(d3["security_groups"][0]["ingress"]) == 3
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=p1["eni_id"])
    ok, d4 = call(cloud, "network.host_desired", {"host": h1})
    assert d4["generation"] > d3["generation"] and d4["interfaces"][0]["public_ip"] == alloc["PublicIp"]
    ec2.disassociate_address(PublicIp=alloc["PublicIp"])
    ec2.release_address(AllocationId=alloc["AllocationId"])

    # unplug: gone from the host; idempotent; delete: idempotent
    ok, u = call(cloud, "network.port_unplug", {"eni": p1["eni_id"], "host": h1})
    assert ok and not u["plugged"]
    ok, d5 = call(cloud, "network.host_desired", {"host": h1})
    assert d5["interfaces"] == [] and d5["vpcs"] == [] and d5["generation"] > d4["generation"]
    ok, _ = call(cloud, "network.port_unplug", {"eni": p1["eni_id"], "host": h1})
    assert ok
    for p in (p1, p2, dflt):
        ok, r = call(cloud, "network.port_delete", {"eni": p["eni_id"]})
        assert ok and r["deleted"]
        ok, r = call(cloud, "network.port_delete", {"eni": p["eni_id"]})
        assert ok and not r["deleted"]
    ok, h2doc = call(cloud, "network.host_desired", {"host": h2})
    assert h2doc["interfaces"] == []
    ec2.delete_security_group(GroupId=web)
    ec2.delete_security_group(GroupId=db)
    ec2.delete_subnet(SubnetId=sid)
    ec2.delete_vpc(VpcId=vid)
