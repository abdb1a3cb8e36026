"""The network control plane through the EC2 API (boto3 and /usr/bin/aws): VPCs,
subnets, security groups and their rules, the default VPC made on first use, tags,
filters, pagination, EC2's error codes, and tenant isolation (a tenant can neither see
nor use another's VPC, subnet or group)."""
import concurrent.futures
import json
import uuid

import pytest

from harness import aws, boto3_client, client_error as code, new_tenant


@pytest.fixture(scope="module")
def tenant(cloud):
    account, k, s = new_tenant(cloud, "net-a-" + uuid.uuid4().hex[:6])
    return account, k, s, boto3_client(cloud, "ec2", k, s)


@pytest.fixture(scope="module")
def other(cloud):
    account, k, s = new_tenant(cloud, "net-b-" + uuid.uuid4().hex[:6])
    return account, k, s, boto3_client(cloud, "ec2", k, s)


def test_default_vpc_subnets_and_group_on_first_use(cloud, tenant):
    account, _, _, ec2 = tenant
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]
    assert vpc["CidrBlock"] == "172.31.0.0/16" and vpc["IsDefault"] and vpc["OwnerId"] == account
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == sorted(zones)
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] for s in subnets)
    assert {s["CidrBlock"] for s in subnets} <= {"172.31.%d.0/20" % (16 * i) for i in range(16)}
    assert all(s["AvailableIpAddressCount"] == 4096 - 5 for s in subnets)
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    g = groups[0]
    assert g["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == g["GroupId"]
    assert g["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    assert g["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    # a second look makes nothing new; the account's attributes name it
    assert len(ec2.describe_vpcs()["Vpcs"]) == 1
    attrs = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"] == [{"AttributeValue": vpc["VpcId"]}]
    assert code(ec2.delete_security_group, GroupId=g["GroupId"]) == "CannotDelete"


def test_default_vpc_race_makes_one(cloud):
    _, k, s = new_tenant(cloud, "net-race-" + uuid.uuid4().hex[:6])
    clients = [boto3_client(cloud, "ec2", k, s) for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda c: [v["VpcId"] for v in c.describe_vpcs()["Vpcs"]], clients))
    assert all(len(v) == 1 for v in seen)
    assert len({v[0] for v in seen}) == 1
    assert len(clients[0].describe_security_groups()["SecurityGroups"]) == 1


def test_vpc_and_subnet_lifecycle_and_errors(tenant):
    _, _, _, ec2 = tenant
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16",
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}])["Vpc"]
    vid = vpc["VpcId"]
    assert vid.startswith("vpc-") and vpc["Tags"] == [{"Key": "Name", "Value": "lab"}]
    assert code(ec2.create_vpc, CidrBlock="10.0.0.0/8") == "InvalidVpc.Range"
    assert code(ec2.create_vpc, CidrBlock="10.0.0.1/16") == "InvalidParameterValue"
    assert code(ec2.describe_vpcs, VpcIds=["vpc-0123456789abcdef0"]) == "InvalidVpcID.NotFound"
    got = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["lab"]}])["Vpcs"]
    assert [v["VpcId"] for v in got] == [vid]

    sub = ec2.create_subnet(VpcId=vid, CidrBlock="10.20.1.0/24")["Subnet"]
    assert sub["AvailableIpAddressCount"] == 251 and not sub["MapPublicIpOnLaunch"]
    assert code(ec2.create_subnet, VpcId=vid, CidrBlock="10.20.1.128/25") == "InvalidSubnet.Conflict"
    assert code(ec2.create_subnet, VpcId=vid, CidrBlock="10.21.0.0/24") == "InvalidSubnet.Range"
    assert code(ec2.create_subnet, VpcId=vid, CidrBlock="10.20.2.0/29") == "InvalidSubnet.Range"
    assert code(ec2.create_subnet, VpcId="vpc-0123456789abcdef0", CidrBlock="10.20.2.0/24") == "InvalidVpcID.NotFound"
    assert code(ec2.create_subnet, VpcId=vid, CidrBlock="10.20.2.0/24", AvailabilityZone="mars-1a") == \
        "InvalidParameterValue"
    ec2.modify_subnet_attribute(SubnetId=sub["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    got = ec2.describe_subnets(SubnetIds=[sub["SubnetId"]])["Subnets"][0]
    assert got["MapPublicIpOnLaunch"] and got["VpcId"] == vid and got["CidrBlock"] == "10.20.1.0/24"
    assert code(ec2.describe_subnets, SubnetIds=["subnet-0123456789abcdef0"]) == "InvalidSubnetID.NotFound"

    assert not ec2.describe_vpc_attribute(VpcId=vid, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    ec2.modify_vpc_attribute(VpcId=vid, EnableDnsHostnames={"Value": True})
    assert ec2.describe_vpc_attribute(VpcId=vid, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=vid, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]

    assert code(ec2.delete_vpc, VpcId=vid) == "DependencyViolation"
    ec2.delete_subnet(SubnetId=sub["SubnetId"])
    assert code(ec2.delete_subnet, SubnetId=sub["SubnetId"]) == "InvalidSubnetID.NotFound"
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vid)["GroupId"]
    assert code(ec2.delete_vpc, VpcId=vid) == "DependencyViolation"
    ec2.delete_security_group(GroupId=sg)
    ec2.delete_vpc(VpcId=vid)
    assert code(ec2.describe_vpcs, VpcIds=[vid]) == "InvalidVpcID.NotFound"
    assert code(ec2.delete_vpc, VpcId=vid) == "InvalidVpcID.NotFound"


def test_vpc_limit(cloud):
    account, k, s = new_tenant(cloud, "net-lim-" + uuid.uuid4().hex[:6])
    ec2 = boto3_client(cloud, "ec2", k, s)
    r = cloud.virgadm("quota", "set", account, "vpcs", "3")
    assert r.returncode == 0, r.stderr
    ec2.describe_vpcs()   # the default VPC counts, as on AWS
    made = [ec2.create_vpc(CidrBlock="10.%d.0.0/16" % i)["Vpc"]["VpcId"] for i in range(2)]
    assert code(ec2.create_vpc, CidrBlock="10.9.0.0/16") == "VpcLimitExceeded"
    ec2.delete_vpc(VpcId=made[0])
    ec2.create_vpc(CidrBlock="10.9.0.0/16")


def test_security_group_rules(tenant):
    account, _, _, ec2 = tenant
    vid = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    web = ec2.create_security_group(GroupName="web", Description="web tier", VpcId=vid)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="db tier", VpcId=vid)["GroupId"]
    assert code(ec2.create_security_group, GroupName="web", Description="x", VpcId=vid) == "InvalidGroup.Duplicate"
    assert code(ec2.create_security_group, GroupName="default", Description="x", VpcId=vid) == "InvalidParameterValue"

    r = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "lan"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "udp", "FromPort": 5000, "ToPort": 5100, "UserIdGroupPairs": [{"GroupId": db}]}])
    assert r["Return"] and len(r["SecurityGroupRules"]) == 3
    assert code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "6", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]) == \
        "InvalidPermission.Duplicate"
    bad = [{"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
           {"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
           {"IpProtocol": "icmp", "FromPort": -1, "ToPort": 3, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
           {"IpProtocol": "bogus", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
           {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.1/8"}]}]
    for perm in bad:
        assert code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[perm]) == "InvalidParameterValue"
    assert code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]}]) \
        == "InvalidGroup.NotFound"
    assert code(ec2.authorize_security_group_ingress, GroupId="sg-0123456789abcdef0", IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]) == \
        "InvalidGroup.NotFound"
    # nothing of a failed request stays: the first rule was new, the second a duplicate
    assert code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]) == \
        "InvalidPermission.Duplicate"

    g = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]
    perms = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")): p for p in g["IpPermissions"]}
    assert set(perms) == {("tcp", 8080, 8080), ("icmp", 8, -1), ("udp", 5000, 5100)}
    assert perms[("tcp", 8080, 8080)]["IpRanges"] == [{"CidrIp": "10.0.0.0/8", "Description": "lan"}]
    assert perms[("udp", 5000, 5100)]["UserIdGroupPairs"][0]["GroupId"] == db
    assert g["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    by_proto = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vid]},
                                                     {"Name": "ip-permission.protocol", "Values": ["udp"]}])
    assert [x["GroupId"] for x in by_proto["SecurityGroups"]] == [web]

    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [web]}])["SecurityGroupRules"]
    assert len(rules) == 4 and sum(r["IsEgress"] for r in rules) == 1
    assert all(r["GroupOwnerId"] == account for r in rules)
    page = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [web]}], MaxResults=5)
    assert len(page["SecurityGroupRules"]) == 4 and "NextToken" not in page

    # the referenced group cannot go while a rule names it
    assert code(ec2.delete_security_group, GroupId=db) == "InvalidGroup.InUse"
    # revoke: by permission, by rule id; a rule that is not there
    ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 5000, "ToPort": 5100, "UserIdGroupPairs": [{"GroupId": db}]}])
    assert code(ec2.revoke_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 5000, "ToPort": 5100, "UserIdGroupPairs": [{"GroupId": db}]}]) == \
        "InvalidPermission.NotFound"
    icmp = [r for r in rules if r["IpProtocol"] == "icmp"][0]
    ec2.revoke_security_group_ingress(GroupId=web, SecurityGroupRuleIds=[icmp["SecurityGroupRuleId"]])
    # egress: revoke the default allow-all, add one
    ec2.revoke_security_group_egress(GroupId=web, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_egress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": db}]}])
    g = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]
    assert [(p["IpProtocol"], p["FromPort"]) for p in g["IpPermissions"]] == [("tcp", 8080)]
    assert [(p["IpProtocol"], p["FromPort"]) for p in g["IpPermissionsEgress"]] == [("tcp", 5432)]
    ec2.revoke_security_group_egress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": db}]}])
    ec2.delete_security_group(GroupId=db)
    assert code(ec2.describe_security_groups, GroupIds=[db]) == "InvalidGroup.NotFound"
    ec2.delete_security_group(GroupId=web)
    ec2.delete_vpc(VpcId=vid)


def test_describe_security_groups_follows_every_change(tenant, other):
    """The network keeps an account's whole listing while nothing in it changed
    (sg_cache.c): every kind of change must show in the next whole listing, including a
    swap that keeps the number of rules, a tag value overwritten, and a rule added and
    revoked again; another account's listing never shows this one's groups."""
    _, _, _, ec2 = tenant
    _, _, _, ec2b = other

    def listing(client=ec2):
        return {g["GroupId"]: g for g in client.describe_security_groups()["SecurityGroups"]}

    def ingress(gid, client=ec2):
        return sorted((p["IpProtocol"], p.get("FromPort")) for p in listing(client)[gid]["IpPermissions"])

    def tags(gid):
        return {t["Key"]: t["Value"] for t in listing()[gid].get("Tags", [])}

    vid = ec2.create_vpc(CidrBlock="10.31.0.0/16")["Vpc"]["VpcId"]
    before = listing()
    gid = ec2.create_security_group(GroupName="cached", Description="c", VpcId=vid)["GroupId"]
    after = listing()
    assert gid not in before and gid in after and after[gid]["GroupName"] == "cached"
    assert ingress(gid) == []

    def perm(port):
        return [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perm(22))
    assert ingress(gid) == [("tcp", 22)]
    # the same number of rules, another rule
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=perm(22))
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perm(80))
    assert ingress(gid) == [("tcp", 80)]
    # added and revoked again: the listing is what it was
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perm(443))
    assert ingress(gid) == [("tcp", 80), ("tcp", 443)]
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=perm(443))
    assert ingress(gid) == [("tcp", 80)]
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert listing()[gid]["IpPermissionsEgress"] == []

    ec2.create_tags(Resources=[gid], Tags=[{"Key": "tier", "Value": "web"}])
    assert tags(gid) == {"tier": "web"}
    ec2.create_tags(Resources=[gid], Tags=[{"Key": "tier", "Value": "db"}])     # the value overwritten
    assert tags(gid) == {"tier": "db"}
    ec2.delete_tags(Resources=[gid], Tags=[{"Key": "tier"}])
    assert tags(gid) == {}

    assert gid not in listing(ec2b)
    ec2.delete_security_group(GroupId=gid)
    assert gid not in listing()
    ec2.delete_vpc(VpcId=vid)


def test_flat_parameters_with_the_aws_cli(cloud, tenant):
    """The old flat form (--protocol/--port/--cidr, --source-group) through awscli,
    on a group of the default VPC named by GroupName."""
    _, k, s, ec2 = tenant
    name = "cli-" + uuid.uuid4().hex[:6]

    def cli(*args):
        return aws(cloud, "ec2", *args, access_key=k, secret_key=s)

    rc, out, err = cli("create-security-group", "--group-name", name, "--description", "from the cli")
    assert rc == 0, err
    gid = out["GroupId"]
    rc, _, err = cli("authorize-security-group-ingress", "--group-name", name, "--protocol", "tcp",
                     "--port", "22-23", "--cidr", "192.0.2.0/24")
    assert rc == 0, err
    rc, _, err = cli("authorize-security-group-ingress", "--group-id", gid, "--protocol", "all",
                     "--source-group", name)
    assert rc == 0, err
    g = ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"][0]
    perms = {p["IpProtocol"]: p for p in g["IpPermissions"]}
    assert perms["tcp"]["FromPort"] == 22 and perms["tcp"]["ToPort"] == 23
    assert perms["tcp"]["IpRanges"] == [{"CidrIp": "192.0.2.0/24"}]
    assert perms["-1"]["UserIdGroupPairs"][0]["GroupId"] == gid
    rc, _, err = cli("authorize-security-group-ingress", "--group-id", gid, "--protocol", "tcp",
                     "--port", "22-23", "--cidr", "192.0.2.0/24")
    assert rc != 0 and "InvalidPermission.Duplicate" in err
    rc, _, err = cli("revoke-security-group-ingress", "--group-id", gid, "--protocol", "tcp",
                     "--port", "22-23", "--cidr", "192.0.2.0/24")
    assert rc == 0, err
    rc, out, err = cli("describe-security-groups", "--group-names", name)
    assert rc == 0, err
    assert [p["IpProtocol"] for p in out["SecurityGroups"][0]["IpPermissions"]] == ["-1"]
    rc, _, err = cli("delete-security-group", "--group-name", name)
    assert rc == 0, err


def test_tags_filters_and_pagination(tenant):
    _, _, _, ec2 = tenant
    vid = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vid, CidrBlock="10.40.%d.0/24" % i)["Subnet"]["SubnetId"] for i in range(7)]
    ec2.create_tags(Resources=[vid, subnets[0]], Tags=[{"Key": "team", "Value": "blue"}])
    tagged = ec2.describe_subnets(Filters=[{"Name": "tag:team", "Values": ["blue"]}])["Subnets"]
    assert [s["SubnetId"] for s in tagged] == [subnets[0]]
    got = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid]}])["Tags"]
    assert got == [{"Key": "team", "ResourceId": vid, "ResourceType": "vpc", "Value": "blue"}]
    seen, token = [], None
    while True:
        kw = {"Filters": [{"Name": "vpc-id", "Values": [vid]}], "MaxResults": 5}
        if token:
            kw["NextToken"] = token
        page = ec2.describe_subnets(**kw)
        assert len(page["Subnets"]) <= 5
        seen += [s["SubnetId"] for s in page["Subnets"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(subnets)
    assert code(ec2.describe_subnets, Filters=[{"Name": "bogus", "Values": ["x"]}]) == "InvalidParameterValue"
    ec2.delete_tags(Resources=[vid], Tags=[{"Key": "team"}])
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid]}])["Tags"] == []
    for s in subnets:
        ec2.delete_subnet(SubnetId=s)
    ec2.delete_vpc(VpcId=vid)


def test_tenant_isolation(tenant, other):
    _, _, _, a = tenant
    _, _, _, b = other
    vid = a.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    sid = a.create_subnet(VpcId=vid, CidrBlock="10.50.0.0/24")["Subnet"]["SubnetId"]
    gid = a.create_security_group(GroupName="private", Description="a's", VpcId=vid)["GroupId"]
    # B sees none of it
    assert vid not in [v["VpcId"] for v in b.describe_vpcs()["Vpcs"]]
    assert sid not in [s["SubnetId"] for s in b.describe_subnets()["Subnets"]]
    assert gid not in [g["GroupId"] for g in b.describe_security_groups()["SecurityGroups"]]
    assert code(b.describe_vpcs, VpcIds=[vid]) == "InvalidVpcID.NotFound"
    assert code(b.describe_subnets, SubnetIds=[sid]) == "InvalidSubnetID.NotFound"
    assert code(b.describe_security_groups, GroupIds=[gid]) == "InvalidGroup.NotFound"
    # ... and can use none of it
    assert code(b.create_subnet, VpcId=vid, CidrBlock="10.50.1.0/24") == "InvalidVpcID.NotFound"
    assert code(b.create_security_group, GroupName="x", Description="x", VpcId=vid) == "InvalidVpcID.NotFound"
    assert code(b.delete_vpc, VpcId=vid) == "InvalidVpcID.NotFound"
    assert code(b.delete_subnet, SubnetId=sid) == "InvalidSubnetID.NotFound"
    assert code(b.modify_subnet_attribute, SubnetId=sid, MapPublicIpOnLaunch={"Value": True}) == \
        "InvalidSubnetID.NotFound"
    assert code(b.modify_vpc_attribute, VpcId=vid, EnableDnsHostnames={"Value": True}) == "InvalidVpcID.NotFound"
    assert code(b.delete_security_group, GroupId=gid) == "InvalidGroup.NotFound"
    perm = [{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    assert code(b.authorize_security_group_ingress, GroupId=gid, IpPermissions=perm) == "InvalidGroup.NotFound"
    assert code(b.revoke_security_group_egress, GroupId=gid, IpPermissions=perm) == "InvalidGroup.NotFound"
    assert code(b.create_tags, Resources=[vid], Tags=[{"Key": "k", "Value": "v"}]) == "InvalidVpcID.NotFound"
    # nor point its own rules at A's group
    bg = b.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    assert code(b.authorize_security_group_ingress, GroupId=bg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": gid}]}]) == \
        "InvalidGroup.NotFound"
    assert b.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"] == []
    # A's own view is intact
    assert a.describe_subnets(SubnetIds=[sid])["Subnets"][0]["VpcId"] == vid
    a.delete_security_group(GroupId=gid)
    a.delete_subnet(SubnetId=sid)
    a.delete_vpc(VpcId=vid)
