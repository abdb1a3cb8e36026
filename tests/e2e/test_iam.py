"""The IAM subset with the AWS CLI and boto3: users, access keys, inline policies, and
what they do to EC2 calls (Allow, explicit Deny, deactivated keys)."""
import json
import time

import pytest
from botocore.exceptions import ClientError

from harness import aws, boto3_client, new_tenant

ALLOW_DESCRIBE = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}


def make_user(iam, name, policy=None):
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def test_user_created_with_the_cli_gets_a_key_that_works(cloud):
    rc, out, err = aws(cloud, "iam", "create-user", "--user-name", "cli-user")
    assert rc == 0, err
    assert out["User"]["UserName"] == "cli-user"
    assert out["User"]["Arn"].endswith(":user/cli-user") and out["User"]["UserId"].startswith("AIDA")
    rc, _, err = aws(cloud, "iam", "put-user-policy", "--user-name", "cli-user", "--policy-name", "describe",
                     "--policy-document", json.dumps(ALLOW_DESCRIBE))
    assert rc == 0, err
    rc, out, err = aws(cloud, "iam", "create-access-key", "--user-name", "cli-user")
    assert rc == 0, err
    key = out["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    assert key["Status"] == "Active"
    rc, out, err = aws(cloud, "ec2", "describe-regions", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    assert rc == 0, err
    # not allowed by the policy: an implicit deny
    rc, _, err = aws(cloud, "ec2", "create-key-pair", "--key-name", "nope",
                     access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    assert rc != 0 and "UnauthorizedOperation" in err
    rc, out, _ = aws(cloud, "iam", "get-user", "--user-name", "cli-user")
    assert out["User"]["UserName"] == "cli-user"


def test_deny_policy_gives_unauthorized_operation(cloud):
    iam = boto3_client(cloud, "iam")
    ak, sk = make_user(iam, "denied", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]})
    ec2 = boto3_client(cloud, "ec2", ak, sk)
    assert ec2.describe_key_pairs()["KeyPairs"] is not None
    iam.put_user_policy(UserName="denied", PolicyName="no-keys", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:*KeyPair*", "Resource": "*"}]}))
    with pytest.raises(ClientError) as ei:
        ec2.describe_key_pairs()
    assert ei.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # the explicit Deny covers only key pairs; the Allow still lets the rest through
    assert ec2.describe_regions()["Regions"]
    iam.delete_user_policy(UserName="denied", PolicyName="no-keys")
    assert ec2.describe_key_pairs()["KeyPairs"] is not None


def test_a_deactivated_key_stops_working_at_once(cloud):
    iam = boto3_client(cloud, "iam")
    ak, sk = make_user(iam, "short-lived", ALLOW_DESCRIBE)
    ec2 = boto3_client(cloud, "ec2", ak, sk)
    assert ec2.describe_regions()["Regions"]          # cached in the gateway now
    iam.update_access_key(UserName="short-lived", AccessKeyId=ak, Status="Inactive")
    with pytest.raises(ClientError) as ei:
        ec2.describe_regions()
    assert ei.value.response["Error"]["Code"] == "AuthFailure"
    keys = iam.list_access_keys(UserName="short-lived")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(ak, "Inactive")]
    iam.update_access_key(UserName="short-lived", AccessKeyId=ak, Status="Active")
    assert ec2.describe_regions()["Regions"]
    iam.delete_access_key(UserName="short-lived", AccessKeyId=ak)
    with pytest.raises(ClientError) as ei:
        ec2.describe_regions()
    assert ei.value.response["Error"]["Code"] == "AuthFailure"


def test_a_key_deactivated_by_virgadm_stops_working_through_the_event(cloud):
    iam = boto3_client(cloud, "iam")
    ak, sk = make_user(iam, "ops-target", ALLOW_DESCRIBE)
    ec2 = boto3_client(cloud, "ec2", ak, sk)
    assert ec2.describe_regions()["Regions"]
    r = cloud.virgadm("key", "deactivate", "000000000001", "ops-target", ak)
    assert r.returncode == 0, r.stderr
    # the gateway did not make this change: it learns of it from identity's event
    deadline = time.time() + 5
    while True:
        try:
            ec2.describe_regions()
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AuthFailure"
            break
        assert time.time() < deadline, "the gateway kept accepting a deactivated key"
        time.sleep(0.05)


def test_iam_users_keys_and_policies_lifecycle(cloud):
    iam = boto3_client(cloud, "iam")
    iam.create_user(UserName="life", Path="/team/")
    with pytest.raises(ClientError) as ei:
        iam.create_user(UserName="life")
    assert ei.value.response["Error"]["Code"] == "EntityAlreadyExists"
    users = {u["UserName"]: u for u in iam.list_users()["Users"]}
    assert users["life"]["Path"] == "/team/"
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/team/")["Users"]] == ["life"]
    k1 = iam.create_access_key(UserName="life")["AccessKey"]["AccessKeyId"]
    k2 = iam.create_access_key(UserName="life")["AccessKey"]["AccessKeyId"]
    with pytest.raises(ClientError) as ei:
        iam.create_access_key(UserName="life")
    assert ei.value.response["Error"]["Code"] == "LimitExceeded"
    iam.put_user_policy(UserName="life", PolicyName="b", PolicyDocument=json.dumps(ALLOW_DESCRIBE))
    iam.put_user_policy(UserName="life", PolicyName="a", PolicyDocument=json.dumps(ALLOW_DESCRIBE))
    assert iam.list_user_policies(UserName="life")["PolicyNames"] == ["a", "b"]
    got = iam.get_user_policy(UserName="life", PolicyName="a")
    assert got["PolicyDocument"] == ALLOW_DESCRIBE      # botocore URL-decodes and parses it
    with pytest.raises(ClientError) as ei:
        iam.put_user_policy(UserName="life", PolicyName="bad", PolicyDocument='{"Statement": "nope"}')
    assert ei.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    with pytest.raises(ClientError) as ei:
        iam.delete_user(UserName="life")
    assert ei.value.response["Error"]["Code"] == "DeleteConflict"
    for k in (k1, k2):
        iam.delete_access_key(UserName="life", AccessKeyId=k)
    for p in ("a", "b"):
        iam.delete_user_policy(UserName="life", PolicyName=p)
    iam.delete_user(UserName="life")
    with pytest.raises(ClientError) as ei:
        iam.get_user(UserName="life")
    assert ei.value.response["Error"]["Code"] == "NoSuchEntity"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_iam_errors_use_iam_codes(cloud):
    iam = boto3_client(cloud, "iam", "AKIAAAAAAAAAAAAAAAAA", "x" * 40)
    with pytest.raises(ClientError) as ei:
        iam.list_users()
    assert ei.value.response["Error"]["Code"] == "InvalidClientTokenId"
    iam = boto3_client(cloud, "iam")
    ak, sk = make_user(iam, "no-iam", ALLOW_DESCRIBE)
    with pytest.raises(ClientError) as ei:
        boto3_client(cloud, "iam", ak, sk).list_users()
    assert ei.value.response["Error"]["Code"] == "AccessDenied"


def test_tenants_users_are_separate(cloud):
    _, ka, sa = new_tenant(cloud, "iam-tenant-a")
    _, kb, sb = new_tenant(cloud, "iam-tenant-b")
    a = boto3_client(cloud, "iam", ka, sa)
    b = boto3_client(cloud, "iam", kb, sb)
    a.create_user(UserName="same")
    b.create_user(UserName="same")          # names are per account
    assert [u["UserName"] for u in a.list_users()["Users"]] == ["admin", "same"]
    b.delete_user(UserName="same")
    assert a.get_user(UserName="same")["User"]["UserName"] == "same"
    with pytest.raises(ClientError) as ei:
        b.get_user(UserName="same")
    assert ei.value.response["Error"]["Code"] == "NoSuchEntity"


def test_tags_on_create_need_ec2_create_tags(cloud):
    """EC2 asks for ec2:CreateTags (condition key ec2:CreateAction) when an action tags what
    it creates: allowed to create key pairs and launch, a user may not tag through them."""
    iam = boto3_client(cloud, "iam")
    ak, sk = make_user(iam, "tagless", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:CreateKeyPair", "ec2:DeleteKeyPair", "ec2:Describe*",
                                       "ec2:RunInstances"], "Resource": "*"}]})
    ec2 = boto3_client(cloud, "ec2", ak, sk)
    tags = [{"ResourceType": "key-pair", "Tags": [{"Key": "team", "Value": "blue"}]}]
    with pytest.raises(ClientError) as ei:
        ec2.create_key_pair(KeyName="tagged-kp", TagSpecifications=tags)
    assert ei.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["tagged-kp"]}])["KeyPairs"]
    # the same action without tags is the user's to do
    ec2.create_key_pair(KeyName="plain-kp")
    ec2.delete_key_pair(KeyName="plain-kp")
    launch_tags = [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "blue"}]}]
    with pytest.raises(ClientError) as ei:
        ec2.run_instances(ImageId="ami-00000000000000000", MinCount=1, MaxCount=1, DryRun=True,
                          TagSpecifications=launch_tags)
    assert ei.value.response["Error"]["Code"] == "UnauthorizedOperation"
    with pytest.raises(ClientError) as ei:   # untagged, the launch gets past IAM to compute's own checks
        ec2.run_instances(ImageId="ami-00000000000000000", MinCount=1, MaxCount=1, DryRun=True)
    assert ei.value.response["Error"]["Code"] != "UnauthorizedOperation"
    # ec2:CreateTags for key pairs only, by ec2:CreateAction
    iam.put_user_policy(UserName="tagless", PolicyName="tag-key-pairs", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
                                                 "Condition": {"StringEquals": {"ec2:CreateAction": "CreateKeyPair"}}}]}))
    ec2.create_key_pair(KeyName="tagged-kp", TagSpecifications=tags)
    kp = ec2.describe_key_pairs(KeyNames=["tagged-kp"])["KeyPairs"][0]
    assert kp["Tags"] == [{"Key": "team", "Value": "blue"}]
    with pytest.raises(ClientError) as ei:
        ec2.run_instances(ImageId="ami-00000000000000000", MinCount=1, MaxCount=1, DryRun=True,
                          TagSpecifications=launch_tags)
    assert ei.value.response["Error"]["Code"] == "UnauthorizedOperation"
    ec2.delete_key_pair(KeyName="tagged-kp")
