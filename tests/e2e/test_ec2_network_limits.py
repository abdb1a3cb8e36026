"""The network's per-VPC and per-group limits through boto3, on a cloud configured with small
ones (network.groups_per_vpc = 3, network.rules_per_group = 3): EC2's error codes, exact
under concurrency (the VPC's and the group's row locks), and nothing half-made."""
import concurrent.futures
import uuid

import pytest

from harness import boto3_client, client_error as code, new_tenant


@pytest.fixture(scope="module")
def ec2(limits_cloud):
    # the shared limits_cloud (tests/conftest.py) has those limits; a tenant of this module's own
    _, key, secret = new_tenant(limits_cloud, "net-limits-" + uuid.uuid4().hex[:6])
    return boto3_client(limits_cloud, "ec2", key, secret)


def test_groups_per_vpc(ec2):
    vid = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    # the VPC's default group counts: two more fit, of eight asked for at once
    def make(i):
        try:
            return ec2.create_security_group(GroupName="g%d" % i, Description="d", VpcId=vid)["GroupId"]
        except Exception as ex:   # botocore ClientError
            return ex.response["Error"]["Code"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(make, range(8)))
    assert sorted(g for g in got if not g.startswith("sg-")) == ["SecurityGroupLimitExceeded"] * 6
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vid]}])["SecurityGroups"]
    assert len(groups) == 3
    # deleting one makes room again
    made = [g for g in got if g.startswith("sg-")]
    ec2.delete_security_group(GroupId=made[0])
    ec2.create_security_group(GroupName="again", Description="d", VpcId=vid)


def test_rules_per_group(ec2):
    vid = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="web", Description="d", VpcId=vid)["GroupId"]
    perm = lambda port: {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm(80), perm(81)])
    # a request that would pass the limit is refused whole: nothing of it is added
    assert code(ec2.authorize_security_group_ingress, GroupId=gid,
                IpPermissions=[perm(82), perm(83)]) == "RulesPerSecurityGroupLimitExceeded"
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm(82)])
    assert code(ec2.authorize_security_group_ingress, GroupId=gid,
                IpPermissions=[perm(84)]) == "RulesPerSecurityGroupLimitExceeded"
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert sorted(r["FromPort"] for r in rules if not r["IsEgress"]) == [80, 81, 82]
    # egress is counted on its own: the group has one egress rule (all traffic), two more fit
    ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[perm(443), perm(444)])
    assert code(ec2.authorize_security_group_egress, GroupId=gid,
                IpPermissions=[perm(445)]) == "RulesPerSecurityGroupLimitExceeded"
