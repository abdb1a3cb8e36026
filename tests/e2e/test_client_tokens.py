"""Idempotency tokens (ClientToken) on the actions whose AWS model marks one: today's SDKs
fill a token in on every such call and retry with it, so a retried create must answer the
first result instead of making a second resource. The gateway refuses to start when a
mutating row of its action table lacks GW_CLIENT_TOKEN while its model has a token
(services/api-gateway/actions.c); these tests show the handlers behind those rows keep
the promise. RunInstances and CreateNetworkInterface have their own suites; here:
CreateRouteTable, whose token only today's models know (boto3 1.26 refuses the
parameter), so the calls run with today's boto3 (tests/lib/sdk_boto3_ec2.py)."""
import json
import os
import subprocess
import uuid

import pytest

from harness import ROOT, aws_env, boto3_client, new_tenant


@pytest.fixture(scope="module")
def tenant(cloud):
    _, k, s = new_tenant(cloud, "tok-" + uuid.uuid4().hex[:6])
    return k, s


@pytest.fixture(scope="module")
def ec2(cloud, tenant):
    return boto3_client(cloud, "ec2", *tenant)


@pytest.fixture(scope="module")
def vpcs(ec2):
    return [ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"] for cidr in ("10.70.0.0/16", "10.71.0.0/16")]


def today(sdks, cloud, tenant, *calls, **opts):
    env = aws_env(cloud, *tenant)
    env["VIRGA_EC2_URL"] = cloud.env["VIRGA_EC2_URL"]
    spec = dict(opts, calls=[list(c) for c in calls])
    r = subprocess.run([sdks["python"], os.path.join(ROOT, "tests", "lib", "sdk_boto3_ec2.py"), json.dumps(spec)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def tables_of(ec2, vpc):
    return sorted(t["RouteTableId"] for t in ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"] if not t["Associations"])


def test_create_route_table_retry_answers_the_first_table(sdks, cloud, tenant, ec2, vpcs):
    token = "rtb-" + uuid.uuid4().hex
    tags = [{"ResourceType": "route-table", "Tags": [{"Key": "k", "Value": "v"}]}]
    first, again, other_vpc, fewer_tags, long_token, a, b = today(
        sdks, cloud, tenant,
        ("create_route_table", {"VpcId": vpcs[0], "ClientToken": token, "TagSpecifications": tags}),
        ("create_route_table", {"VpcId": vpcs[0], "ClientToken": token, "TagSpecifications": tags}),
        ("create_route_table", {"VpcId": vpcs[1], "ClientToken": token}),
        ("create_route_table", {"VpcId": vpcs[0], "ClientToken": token}),
        ("create_route_table", {"VpcId": vpcs[1], "ClientToken": "x" * 65}),
        ("create_route_table", {"VpcId": vpcs[1]}),
        ("create_route_table", {"VpcId": vpcs[1]}))["results"]
    rtb = first["output"]["RouteTable"]["RouteTableId"]
    assert again["ok"] and again["output"]["RouteTable"]["RouteTableId"] == rtb
    assert again["output"]["ClientToken"] == token
    assert again["output"]["RouteTable"]["Tags"] == [{"Key": "k", "Value": "v"}]
    assert tables_of(ec2, vpcs[0]) == [rtb]
    # the same token with other parameters is refused and makes nothing
    assert other_vpc["code"] == fewer_tags["code"] == "IdempotentParameterMismatch"
    assert long_token["code"] == "InvalidParameterValue"
    # without a token (today's boto3 makes one per call) every call makes a table
    ids = [r["output"]["RouteTable"]["RouteTableId"] for r in (a, b)]
    assert ids[0] != ids[1] and tables_of(ec2, vpcs[1]) == sorted(ids)
    for t in ids:
        ec2.delete_route_table(RouteTableId=t)


def test_concurrent_retries_make_one_table(sdks, cloud, tenant, ec2, vpcs):
    token = "race-" + uuid.uuid4().hex
    before = set(tables_of(ec2, vpcs[1]))
    runs = today(sdks, cloud, tenant, ("create_route_table", {"VpcId": vpcs[1], "ClientToken": token}),
                 parallel=8)["runs"]
    ids = {run[0]["output"]["RouteTable"]["RouteTableId"] for run in runs}
    assert len(ids) == 1, runs
    assert set(tables_of(ec2, vpcs[1])) - before == ids


def test_the_sdks_resend_after_a_lost_answer_makes_nothing_new(sdks, cloud, tenant, ec2, vpcs):
    """Today's boto3 puts a token it made itself in the request; the same signed request
    sent again (what the SDK's retry does when an answer is lost) answers the same table."""
    out = today(sdks, cloud, tenant, ("create_route_table", {"VpcId": vpcs[0]}), resend=True)
    rtb = out["results"][0]["output"]["RouteTable"]["RouteTableId"]
    assert "ClientToken=" in out["sent"]
    assert "<routeTableId>%s</routeTableId>" % rtb in out["again"], out["again"]
    assert tables_of(ec2, vpcs[0]).count(rtb) == 1
