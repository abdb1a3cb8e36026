"""The operator's Virga actions (docs/api.md: DescribeAccounts, DescribeAccountQuotas,
ModifyAccountQuota, DescribeServiceHealth) from a signed client, as the web console's
operator pages use them: the same action table and authorisation as any call. Outside
the operator account they are refused whatever the caller's policies say; inside it,
the administrator may and another user needs an IAM Allow; bad values are refused with
the EC2 code and change nothing; a quota set here is what virgadm shows."""
import json
import re
import uuid

import pytest

from harness import boto3_client, ec2_query, new_tenant


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    """A cloud with one `sim` host, shared with other EC2 suites (tests/conftest.py): every
    test here makes its own accounts and users and looks only at those."""
    return sim_cloud


def code(xml):
    m = re.search(r"<Code>([^<]+)</Code>", xml)
    return m.group(1) if m else None


def admin(cloud):
    return cloud.env["AWS_ACCESS_KEY_ID"], cloud.env["AWS_SECRET_ACCESS_KEY"]


def operator_user(cloud, name, actions):
    """A user of the operator account (not its administrator) allowed only actions."""
    iam = boto3_client(cloud, "iam")
    iam.create_user(UserName=name)
    if actions:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def test_operator_administrator_lists_accounts_and_changes_a_quota(cloud):
    acct, _, _ = new_tenant(cloud, "op-api-" + uuid.uuid4().hex[:6])
    status, xml = ec2_query(cloud, *admin(cloud), {"Action": "DescribeAccounts"})
    assert status == 200, xml
    assert "<accountId>%s</accountId>" % acct in xml and "<isOperator>true</isOperator>" in xml
    status, xml = ec2_query(cloud, *admin(cloud), {"Action": "DescribeAccounts", "AccountId.1": acct})
    assert status == 200 and xml.count("<accountId>") == 1, xml
    status, xml = ec2_query(cloud, *admin(cloud), {"Action": "ModifyAccountQuota", "AccountId": acct,
                                                   "Resource": "elastic_ips", "Value": "7"})
    assert status == 200 and "<resource>elastic_ips</resource><value>7</value>" in xml, xml
    status, xml = ec2_query(cloud, *admin(cloud), {"Action": "DescribeAccountQuotas", "AccountId": acct})
    assert status == 200 and "<resource>elastic_ips</resource><value>7</value>" in xml, xml
    assert json.loads(cloud.virgadm("quota", "show", acct).stdout)["quotas"]["elastic_ips"] == 7


@pytest.mark.parametrize("params, want", [
    ({"Resource": "elastic_ips", "Value": "-1"}, "InvalidParameterValue"),
    ({"Resource": "elastic_ips", "Value": "many"}, "InvalidParameterValue"),
    ({"Resource": "hamsters", "Value": "3"}, "InvalidParameterValue"),
    ({"Resource": "elastic_ips"}, "MissingParameter"),
    ({"Resource": "elastic_ips", "Value": "3", "Max": "3"}, "UnknownParameter"),
])
def test_bad_quota_changes_are_refused_and_change_nothing(cloud, params, want):
    acct, _, _ = new_tenant(cloud, "op-bad-" + uuid.uuid4().hex[:6])
    status, xml = ec2_query(cloud, *admin(cloud), {"Action": "ModifyAccountQuota", "AccountId": acct, **params})
    assert (status, code(xml)) == (400, want), xml
    assert json.loads(cloud.virgadm("quota", "show", acct).stdout)["quotas"]["elastic_ips"] == 5


def test_unknown_account_is_refused(cloud):
    status, xml = ec2_query(cloud, *admin(cloud), {"Action": "DescribeAccountQuotas", "AccountId": "999999999999"})
    assert status == 404 and code(xml) == "NoSuchEntity", xml
    status, xml = ec2_query(cloud, *admin(cloud), {"Action": "DescribeAccountQuotas", "AccountId": "12"})
    assert status == 400 and code(xml) == "InvalidParameterValue", xml


def test_tenant_administrator_is_refused_every_operator_action(cloud):
    acct, key, secret = new_tenant(cloud, "op-tenant-" + uuid.uuid4().hex[:6])
    for params in ({"Action": "DescribeAccounts"}, {"Action": "DescribeAccountQuotas", "AccountId": acct},
                   {"Action": "ModifyAccountQuota", "AccountId": acct, "Resource": "instances", "Value": "999"},
                   {"Action": "DescribeServiceHealth"}):
        status, xml = ec2_query(cloud, key, secret, params)
        assert (status, code(xml)) == (403, "UnauthorizedOperation"), (params, xml)
        assert "for the operator account only" in xml
    # its own quota did not move
    assert json.loads(cloud.virgadm("quota", "show", acct).stdout)["quotas"]["instances"] == 20


def test_operator_account_user_needs_an_allow(cloud):
    k, s = operator_user(cloud, "nobody-" + uuid.uuid4().hex[:6], None)
    status, xml = ec2_query(cloud, k, s, {"Action": "DescribeAccounts"})
    assert (status, code(xml)) == (403, "UnauthorizedOperation"), xml
    assert "for the operator account only" not in xml   # the IAM refusal, not the account's
    k, s = operator_user(cloud, "viewer-" + uuid.uuid4().hex[:6], ["ec2:DescribeAccounts", "ec2:DescribeServiceHealth"])
    status, xml = ec2_query(cloud, k, s, {"Action": "DescribeAccounts"})
    assert status == 200 and "<accountSet>" in xml, xml
    status, xml = ec2_query(cloud, k, s, {"Action": "ModifyAccountQuota", "AccountId": "000000000001",
                                          "Resource": "instances", "Value": "1"})
    assert (status, code(xml)) == (403, "UnauthorizedOperation"), xml


def test_service_health_from_a_signed_client(cloud):
    status, xml = ec2_query(cloud, *admin(cloud), {"Action": "DescribeServiceHealth"})
    assert status == 200, xml
    names = re.findall(r"<serviceName>([^<]+)</serviceName><kind>service</kind>", xml)
    assert names == ["identity", "compute", "image", "network", "objectstore", "gateway", "accounting"]
    assert xml.count("<status>healthy</status>") == 8, xml   # and the one sim host's agent
