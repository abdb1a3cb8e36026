"""Tenant isolation of key pairs: a user of the operator account who is not its
administrator sees only the operator account's own key pairs, like any tenant's user;
the operator's administrator sees every account's, each tagged with its owner
(virga:owner-account-id, which EC2 clients show and filter on); tenants never see that
tag."""
import json
import uuid

from harness import boto3_client, new_tenant

OWNER = "virga:owner-account-id"


def tags(kp):
    return {t["Key"]: t["Value"] for t in kp.get("Tags", [])}


def test_operator_users_see_only_their_account_and_the_administrator_sees_owners(cloud):
    suffix = uuid.uuid4().hex[:8]
    tenant, k, s = new_tenant(cloud, "kp-iso-" + suffix)
    t_ec2 = boto3_client(cloud, "ec2", k, s)
    t_ec2.create_key_pair(KeyName="tenant-key-" + suffix, KeyType="ed25519")
    t_ec2.create_tags(Resources=[t_ec2.describe_key_pairs()["KeyPairs"][0]["KeyPairId"]],
                      Tags=[{"Key": OWNER, "Value": "forged"}])

    admin = boto3_client(cloud, "ec2")   # the operator account's administrator
    admin.create_key_pair(KeyName="operator-key-" + suffix, KeyType="ed25519")
    operator_account = boto3_client(cloud, "iam").get_user()["User"]["Arn"].split(":")[4]

    # a non-administrator user of the operator account, allowed every EC2 action
    iam = boto3_client(cloud, "iam")
    user = "kp-viewer-" + suffix
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="ec2", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    viewer = boto3_client(cloud, "ec2", key["AccessKeyId"], key["SecretAccessKey"])

    seen = {kp["KeyName"]: kp for kp in viewer.describe_key_pairs()["KeyPairs"]}
    assert "tenant-key-" + suffix not in seen
    assert "operator-key-" + suffix in seen
    assert OWNER not in tags(seen["operator-key-" + suffix])

    everything = {kp["KeyName"]: kp for kp in admin.describe_key_pairs()["KeyPairs"]}
    assert tags(everything["tenant-key-" + suffix])[OWNER] == tenant      # not the forged value
    assert tags(everything["operator-key-" + suffix])[OWNER] == operator_account
    mine = admin.describe_key_pairs(Filters=[{"Name": "tag:" + OWNER, "Values": [tenant]}])["KeyPairs"]
    assert [kp["KeyName"] for kp in mine] == ["tenant-key-" + suffix]

    own = t_ec2.describe_key_pairs()["KeyPairs"]
    assert [kp["KeyName"] for kp in own] == ["tenant-key-" + suffix]
    assert tags(own[0])[OWNER] == "forged"   # a tenant's own tag is just a tag to it
