"""Internet gateways and route tables through boto3: the default VPC's gateway and
routes, attach/detach rules, routes only through a gateway of the table's VPC,
associations, the errors EC2 gives, tenant isolation, and the routes reaching a host's
datapath document."""
import uuid

import pytest

from harness import boto3_client, client_error as code, compute_call, new_tenant


@pytest.fixture(scope="module")
def tenant(cloud):
    account, k, s = new_tenant(cloud, "rt-a-" + uuid.uuid4().hex[:6])
    return account, boto3_client(cloud, "ec2", k, s)


@pytest.fixture(scope="module")
def other(cloud):
    account, k, s = new_tenant(cloud, "rt-b-" + uuid.uuid4().hex[:6])
    return account, boto3_client(cloud, "ec2", k, s)


def routes(table):
    return {r["DestinationCidrBlock"]: r["GatewayId"] for r in table["Routes"]}


def test_default_vpc_is_on_the_internet(tenant):
    _, ec2 = tenant
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    [igw] = ec2.describe_internet_gateways()["InternetGateways"]
    assert igw["Attachments"] == [{"VpcId": vpc, "State": "available"}]
    [main] = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    assert routes(main) == {"172.31.0.0/16": "local", "0.0.0.0/0": igw["InternetGatewayId"]}
    assert main["Associations"][0]["Main"]
    assert code(ec2.delete_vpc, VpcId=vpc) == "DependencyViolation"


def test_gateways_tables_routes_and_associations(tenant):
    _, ec2 = tenant
    vid = ec2.create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.70.1.0/24")["Subnet"]["SubnetId"]
    [main] = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vid]},
                                                {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    assert routes(main) == {"10.70.0.0/16": "local"}

    igw = ec2.create_internet_gateway(TagSpecifications=[{"ResourceType": "internet-gateway",
                                                          "Tags": [{"Key": "Name", "Value": "gw"}]}])
    gid = igw["InternetGateway"]["InternetGatewayId"]
    assert igw["InternetGateway"]["Attachments"] == []
    rtb = ec2.create_route_table(VpcId=vid)["RouteTable"]["RouteTableId"]
    # a route needs the gateway attached to the table's VPC
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=gid) == \
        "InvalidParameterValue"
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0",
                GatewayId="igw-0123456789abcdef0") == "InvalidInternetGatewayID.NotFound"
    ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId=vid)
    assert code(ec2.attach_internet_gateway, InternetGatewayId=gid, VpcId=vid) == "Resource.AlreadyAssociated"
    gid2 = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    assert code(ec2.attach_internet_gateway, InternetGatewayId=gid2, VpcId=vid) == "Resource.AlreadyAssociated"
    ec2.delete_internet_gateway(InternetGatewayId=gid2)
    assert code(ec2.delete_internet_gateway, InternetGatewayId=gid) == "DependencyViolation"

    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=gid)
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=gid) == \
        "RouteAlreadyExists"
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.1/0", GatewayId=gid) == \
        "InvalidParameterValue"
    assoc = ec2.associate_route_table(RouteTableId=rtb, SubnetId=sid)["AssociationId"]
    assert code(ec2.associate_route_table, RouteTableId=main["RouteTableId"], SubnetId=sid) == \
        "Resource.AlreadyAssociated"
    [t] = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [sid]}])["RouteTables"]
    assert t["RouteTableId"] == rtb and routes(t) == {"10.70.0.0/16": "local", "0.0.0.0/0": gid}
    assert t["Associations"] == [{"RouteTableAssociationId": assoc, "RouteTableId": rtb, "SubnetId": sid,
                                  "Main": False, "AssociationState": {"State": "associated"}}]

    assert code(ec2.delete_route, RouteTableId=rtb, DestinationCidrBlock="10.70.0.0/16") == "InvalidParameterValue"
    assert code(ec2.delete_route, RouteTableId=rtb, DestinationCidrBlock="192.0.2.0/24") == "InvalidRoute.NotFound"
    assert code(ec2.delete_route_table, RouteTableId=rtb) == "DependencyViolation"
    assert code(ec2.delete_route_table, RouteTableId=main["RouteTableId"]) == "DependencyViolation"
    assert code(ec2.delete_vpc, VpcId=vid) == "DependencyViolation"

    # a mapped public address keeps the gateway attached
    eni = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni)
    assert code(ec2.detach_internet_gateway, InternetGatewayId=gid, VpcId=vid) == "DependencyViolation"
    ec2.disassociate_address(PublicIp=ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]["PublicIp"])
    ec2.release_address(AllocationId=alloc)
    ec2.delete_network_interface(NetworkInterfaceId=eni)

    ec2.disassociate_route_table(AssociationId=assoc)
    assert code(ec2.disassociate_route_table, AssociationId=assoc) == "InvalidAssociationID.NotFound"
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0")
    ec2.delete_route_table(RouteTableId=rtb)
    assert code(ec2.describe_route_tables, RouteTableIds=[rtb]) == "InvalidRouteTableID.NotFound"
    ec2.detach_internet_gateway(InternetGatewayId=gid, VpcId=vid)
    assert code(ec2.detach_internet_gateway, InternetGatewayId=gid, VpcId=vid) == "Gateway.NotAttached"
    got = ec2.describe_internet_gateways(Filters=[{"Name": "tag:Name", "Values": ["gw"]}])["InternetGateways"]
    assert [g["InternetGatewayId"] for g in got] == [gid] and got[0]["Attachments"] == []
    ec2.delete_internet_gateway(InternetGatewayId=gid)
    assert code(ec2.describe_internet_gateways, InternetGatewayIds=[gid]) == "InvalidInternetGatewayID.NotFound"
    ec2.delete_subnet(SubnetId=sid)
    ec2.delete_vpc(VpcId=vid)


def test_tenant_isolation(tenant, other):
    _, a = tenant
    _, b = other
    vid = a.create_vpc(CidrBlock="10.71.0.0/16")["Vpc"]["VpcId"]
    sid = a.create_subnet(VpcId=vid, CidrBlock="10.71.0.0/24")["Subnet"]["SubnetId"]
    gid = a.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    rtb = a.create_route_table(VpcId=vid)["RouteTable"]["RouteTableId"]
    bgw = b.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    brtb = b.describe_route_tables()["RouteTables"][0]["RouteTableId"]
    assert gid not in [g["InternetGatewayId"] for g in b.describe_internet_gateways()["InternetGateways"]]
    assert rtb not in [t["RouteTableId"] for t in b.describe_route_tables()["RouteTables"]]
    assert code(b.describe_route_tables, RouteTableIds=[rtb]) == "InvalidRouteTableID.NotFound"
    assert code(b.attach_internet_gateway, InternetGatewayId=gid, VpcId=vid) == "InvalidInternetGatewayID.NotFound"
    assert code(b.attach_internet_gateway, InternetGatewayId=bgw, VpcId=vid) == "InvalidVpcID.NotFound"
    assert code(b.create_route_table, VpcId=vid) == "InvalidVpcID.NotFound"
    assert code(b.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=bgw) == \
        "InvalidRouteTableID.NotFound"
    assert code(b.associate_route_table, RouteTableId=brtb, SubnetId=sid) == "InvalidSubnetID.NotFound"
    assert code(b.delete_route_table, RouteTableId=rtb) == "InvalidRouteTableID.NotFound"
    assert code(b.delete_internet_gateway, InternetGatewayId=gid) == "InvalidInternetGatewayID.NotFound"
    a.attach_internet_gateway(InternetGatewayId=gid, VpcId=vid)
    assert code(a.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=bgw) == \
        "InvalidInternetGatewayID.NotFound"
    b.delete_internet_gateway(InternetGatewayId=bgw)
    a.detach_internet_gateway(InternetGatewayId=gid, VpcId=vid)
    a.delete_internet_gateway(InternetGatewayId=gid)
    a.delete_route_table(RouteTableId=rtb)
    a.delete_subnet(SubnetId=sid)
    a.delete_vpc(VpcId=vid)


def test_routes_reach_the_host_document(cloud, tenant):
    account, ec2 = tenant
    host = "rt-host-" + uuid.uuid4().hex[:6]

    def call(mtype, body):
        return compute_call(cloud, mtype, body)

    vid = ec2.create_vpc(CidrBlock="10.72.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.72.3.0/24")["Subnet"]["SubnetId"]
    port = call("network.port_create", {"account": account, "subnet": sid, "instance_id": "i-0bbbbbbbbbbbbbbb1"})
    call("network.port_plug", {"eni": port["eni_id"], "host": host})
    d1 = call("network.host_desired", {"host": host})
    assert d1["vpcs"][0]["internet_gateway"] is None
    assert d1["vpcs"][0]["subnets"][0]["routes"] == [{"destination": "10.72.0.0/16", "target": "local"}]
    gid = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId=vid)
    [main] = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vid]}])["RouteTables"]
    ec2.create_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=gid)
    d2 = call("network.host_desired", {"host": host})
    assert d2["generation"] > d1["generation"] and d2["vpcs"][0]["internet_gateway"] == gid
    assert d2["vpcs"][0]["subnets"][0]["routes"] == [{"destination": "0.0.0.0/0", "target": gid},
                                                    {"destination": "10.72.0.0/16", "target": "local"}]
    # a route through a detached gateway is a blackhole, and gone from the datapath
    ec2.detach_internet_gateway(InternetGatewayId=gid, VpcId=vid)
    [main] = ec2.describe_route_tables(RouteTableIds=[main["RouteTableId"]])["RouteTables"]
    assert {r["DestinationCidrBlock"]: r["State"] for r in main["Routes"]} == \
        {"0.0.0.0/0": "blackhole", "10.72.0.0/16": "active"}
    d3 = call("network.host_desired", {"host": host})
    assert d3["generation"] > d2["generation"] and d3["vpcs"][0]["internet_gateway"] is None
    assert d3["vpcs"][0]["subnets"][0]["routes"] == [{"destination": "10.72.0.0/16", "target": "local"}]
    ec2.delete_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")
    ec2.delete_internet_gateway(InternetGatewayId=gid)
    call("network.port_delete", {"eni": port["eni_id"]})
    ec2.delete_subnet(SubnetId=sid)
    ec2.delete_vpc(VpcId=vid)


def test_routes_through_an_interface_or_instance(cloud, tenant, other):
    """NetworkInterfaceId and InstanceId route targets (stored as the interface, shown with
    both ids), ReplaceRoute, a blackhole once the interface is gone, the next hop in the
    host's document, and every other EC2 target refused by name, never stored."""
    account, ec2 = tenant
    host = "rt-eni-" + uuid.uuid4().hex[:6]

    def call(mtype, body):
        return compute_call(cloud, mtype, body)

    vid = ec2.create_vpc(CidrBlock="10.73.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.73.1.0/24")["Subnet"]["SubnetId"]
    iid = "i-0" + uuid.uuid4().hex[:16]
    port = call("network.port_create", {"account": account, "subnet": sid, "instance_id": iid})
    call("network.port_plug", {"eni": port["eni_id"], "host": host})
    appliance = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]
    [main] = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vid]}])["RouteTables"]
    rtb = main["RouteTableId"]

    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.99.0.0/24", InstanceId=iid)
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.98.0.0/24",
                     NetworkInterfaceId=appliance["NetworkInterfaceId"])
    [t] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    by = {r["DestinationCidrBlock"]: r for r in t["Routes"]}
    assert by["10.99.0.0/24"]["NetworkInterfaceId"] == port["eni_id"] and by["10.99.0.0/24"]["InstanceId"] == iid
    assert by["10.99.0.0/24"]["State"] == "active" and "GatewayId" not in by["10.99.0.0/24"]
    assert by["10.98.0.0/24"]["NetworkInterfaceId"] == appliance["NetworkInterfaceId"]
    assert "InstanceId" not in by["10.98.0.0/24"]
    found = ec2.describe_route_tables(Filters=[{"Name": "route.instance-id", "Values": [iid]}])["RouteTables"]
    assert [x["RouteTableId"] for x in found] == [rtb]

    # the host running the instance routes through its address and MAC
    [sub] = call("network.host_desired", {"host": host})["vpcs"][0]["subnets"]
    assert {"destination": "10.99.0.0/24", "target": port["eni_id"], "next_hop": port["ip"],
            "next_hop_mac": port["mac"]} in sub["routes"]
    # an interface plugged nowhere is left out of the document (no next hop to send to)
    assert not [r for r in sub["routes"] if r["target"] == appliance["NetworkInterfaceId"]]

    # ReplaceRoute moves a route to another target; the local route stays
    ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="10.99.0.0/24",
                      NetworkInterfaceId=appliance["NetworkInterfaceId"])
    [t] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    r99 = [r for r in t["Routes"] if r["DestinationCidrBlock"] == "10.99.0.0/24"][0]
    assert r99["NetworkInterfaceId"] == appliance["NetworkInterfaceId"] and "InstanceId" not in r99
    assert code(ec2.replace_route, RouteTableId=rtb, DestinationCidrBlock="10.73.0.0/16",
                InstanceId=iid) == "InvalidRoute.NotFound"
    assert code(ec2.replace_route, RouteTableId=rtb, DestinationCidrBlock="10.97.0.0/24",
                InstanceId=iid) == "InvalidRoute.NotFound"

    # targets this cloud does not have: refused by name, nothing stored
    for kw in ({"NatGatewayId": "nat-0123456789abcdef0"}, {"TransitGatewayId": "tgw-0123456789abcdef0"},
               {"VpcPeeringConnectionId": "pcx-0123456789abcdef0"},
               {"EgressOnlyInternetGatewayId": "eigw-0123456789abcdef0"}):
        assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.96.0.0/24", **kw) == \
            "InvalidParameterValue"
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.96.0.0/24", InstanceId=iid,
                NetworkInterfaceId=port["eni_id"]) == "InvalidParameterCombination"
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.96.0.0/24") == \
        "InvalidParameterCombination"
    assert code(ec2.create_route, RouteTableId=rtb, DestinationIpv6CidrBlock="::/0",
                NetworkInterfaceId=port["eni_id"]) == "InvalidParameterValue"
    [t] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert "10.96.0.0/24" not in {r["DestinationCidrBlock"] for r in t["Routes"]}

    # an interface of another VPC, an unknown instance, another tenant's interface
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.96.0.0/24",
                InstanceId="i-0ffffffffffffffff") == "InvalidInstanceID.NotFound"
    oaccount, o = other
    osub = o.describe_subnets()["Subnets"][0]["SubnetId"]
    theirs = o.create_network_interface(SubnetId=osub)["NetworkInterface"]["NetworkInterfaceId"]
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.96.0.0/24",
                NetworkInterfaceId=theirs) == "InvalidNetworkInterfaceID.NotFound"
    dsub = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    elsewhere = ec2.create_network_interface(SubnetId=dsub)["NetworkInterface"]["NetworkInterfaceId"]
    assert code(ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.96.0.0/24",
                NetworkInterfaceId=elsewhere) == "InvalidParameterValue"

    # the target interface deleted: a blackhole, gone from the document
    ec2.delete_network_interface(NetworkInterfaceId=appliance["NetworkInterfaceId"])
    [t] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert {r["DestinationCidrBlock"]: r["State"] for r in t["Routes"]}["10.99.0.0/24"] == "blackhole"
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="10.99.0.0/24")
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="10.98.0.0/24")
    call("network.port_delete", {"eni": port["eni_id"]})
    ec2.delete_network_interface(NetworkInterfaceId=elsewhere)
    o.delete_network_interface(NetworkInterfaceId=theirs)
    ec2.delete_subnet(SubnetId=sid)
    ec2.delete_vpc(VpcId=vid)


def test_source_dest_check(cloud, tenant, other):
    """ModifyNetworkInterfaceAttribute / DescribeNetworkInterfaceAttribute through
    /usr/bin/aws: SourceDestCheck off and on again (what a NAT instance or a route's
    target needs), shown by DescribeNetworkInterfaces and carried to the host's datapath
    document (which enforces it: tests/integration/test_datapath.py); Description; one
    attribute per call; DryRun; another tenant's interface is not found."""
    from harness import aws
    account, ec2 = tenant
    host = "rt-sdc-" + uuid.uuid4().hex[:6]
    creds = ec2._request_signer._credentials

    def cli(*args, who=creds):
        rc, out, err = aws(cloud, "ec2", *args, access_key=who.access_key, secret_key=who.secret_key)
        return rc, out, (err.split("An error occurred (", 1)[1].split(")", 1)[0] if rc else None)

    vid = ec2.create_vpc(CidrBlock="10.74.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.74.1.0/24")["Subnet"]["SubnetId"]
    port = compute_call(cloud, "network.port_create", {"account": account, "subnet": sid,
                                                       "instance_id": "i-0" + uuid.uuid4().hex[:16]})
    compute_call(cloud, "network.port_plug", {"eni": port["eni_id"], "host": host})
    eni = port["eni_id"]

    def shown():
        [n] = cli("describe-network-interfaces", "--network-interface-ids", eni)[1]["NetworkInterfaces"]
        attr = cli("describe-network-interface-attribute", "--network-interface-id", eni, "--attribute",
                   "sourceDestCheck")[1]
        [f] = [i for i in compute_call(cloud, "network.host_desired", {"host": host})["interfaces"]
               if i["eni_id"] == eni]
        return n["SourceDestCheck"], attr["SourceDestCheck"]["Value"], f["source_dest_check"]

    assert shown() == (True, True, True)
    gen = compute_call(cloud, "network.host_desired", {"host": host})["generation"]
    assert cli("modify-network-interface-attribute", "--network-interface-id", eni, "--no-source-dest-check")[0] == 0
    assert shown() == (False, False, False)
    assert compute_call(cloud, "network.host_desired", {"host": host})["generation"] > gen
    assert cli("modify-network-interface-attribute", "--network-interface-id", eni, "--source-dest-check")[0] == 0
    assert shown() == (True, True, True)
    # DryRun changes nothing
    assert cli("modify-network-interface-attribute", "--dry-run", "--network-interface-id", eni,
               "--no-source-dest-check")[2] == "DryRunOperation"
    assert shown() == (True, True, True)
    # Description
    assert cli("modify-network-interface-attribute", "--network-interface-id", eni, "--description",
               "Value=nat box")[0] == 0
    assert cli("describe-network-interface-attribute", "--network-interface-id", eni, "--attribute",
               "description")[1]["Description"]["Value"] == "nat box"
    # one attribute per call; one this cloud does not change; unknown attribute
    assert cli("modify-network-interface-attribute", "--network-interface-id", eni, "--no-source-dest-check",
               "--description", "Value=x")[2] == "InvalidParameterCombination"
    assert cli("modify-network-interface-attribute", "--network-interface-id", eni, "--groups",
               "sg-0123456789abcdef0")[2] == "InvalidParameterCombination"
    # an attachment's DeleteOnTermination: of the interface's attachment only
    assert cli("modify-network-interface-attribute", "--network-interface-id", eni, "--attachment",
               "AttachmentId=eni-attach-0123456789abcdef0,DeleteOnTermination=true")[2] == \
        "InvalidAttachmentID.NotFound"
    assert cli("describe-network-interface-attribute", "--network-interface-id", eni, "--attribute",
               "attachment")[2] == "InvalidParameterValue"
    # tenant isolation
    o = other[1]._request_signer._credentials
    assert cli("modify-network-interface-attribute", "--network-interface-id", eni, "--no-source-dest-check",
               who=o)[2] == "InvalidNetworkInterfaceID.NotFound"
    assert cli("describe-network-interface-attribute", "--network-interface-id", eni, "--attribute",
               "sourceDestCheck", who=o)[2] == "InvalidNetworkInterfaceID.NotFound"
    assert shown() == (True, True, True)
    compute_call(cloud, "network.port_delete", {"eni": eni})
