"""Bucket policies and PublicAccessBlock, evaluated with the ACLs and the caller's IAM
policies as S3 does: another account allowed to read one prefix (and to list it, with an
s3:prefix condition), a user of the owner's own account denied, aws:SourceIp conditions
(the tests run on 127.0.0.1), explicit Deny winning, the owner never locked out of its
policy, GetBucketPolicyStatus, malformed documents, PublicAccessBlock's four switches,
grants other services ask for decided the same way, and IAM user policies with
conditions (accepted now, and evaluated by the gateway and the object store)."""
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Tenant, aws, call_status as status, s3_client, s3_raw

SUFFIX = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def a(cloud):
    return Tenant(cloud, "pol-owner-" + SUFFIX)


@pytest.fixture(scope="module")
def b(cloud):
    return Tenant(cloud, "pol-other-" + SUFFIX)


def code(ei):
    return ei.value.response["Error"]["Code"]


def anon(cloud, method, path):
    return s3_raw(cloud, method, path, sign=False)[0]


def new_bucket(t):
    name = "pol-%s-%s" % (uuid.uuid4().hex[:8], SUFFIX)
    t.s3.create_bucket(Bucket=name)
    for k in ("pub/a", "pub/b", "priv/c"):
        t.s3.put_object(Bucket=name, Key=k, Body=k.encode())
    return name


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_another_account_reads_one_prefix(cloud, a, b):
    name = new_bucket(a)
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Sid": "ReadPub", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % b.account},
         "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::%s/pub/*" % name},
        {"Sid": "ListPub", "Effect": "Allow", "Principal": {"AWS": b.account}, "Action": "s3:ListBucket",
         "Resource": "arn:aws:s3:::%s" % name, "Condition": {"StringLike": {"s3:prefix": "pub/*"}}}))
    assert b.s3.get_object(Bucket=name, Key="pub/a")["Body"].read() == b"pub/a"
    assert status(b.s3.get_object, Bucket=name, Key="priv/c") == 403
    assert status(b.s3.put_object, Bucket=name, Key="pub/new", Body=b"x") == 403
    assert anon(cloud, "GET", "/%s/pub/a" % name) == 403      # the account, not everyone
    keys = [o["Key"] for o in b.s3.list_objects_v2(Bucket=name, Prefix="pub/")["Contents"]]
    assert keys == ["pub/a", "pub/b"]
    assert status(b.s3.list_objects_v2, Bucket=name) == 403   # s3:prefix absent: the condition fails
    assert status(b.s3.list_objects_v2, Bucket=name, Prefix="priv/") == 403
    got = json.loads(a.s3.get_bucket_policy(Bucket=name)["Policy"])
    assert got["Statement"][0]["Sid"] == "ReadPub"
    # only the owner sees or changes the policy
    assert status(b.s3.get_bucket_policy, Bucket=name) == 403
    assert status(b.s3.delete_bucket_policy, Bucket=name) == 403
    a.s3.delete_bucket_policy(Bucket=name)
    assert status(b.s3.get_object, Bucket=name, Key="pub/a") == 403
    with pytest.raises(ClientError) as ei:
        a.s3.get_bucket_policy(Bucket=name)
    assert code(ei) == "NoSuchBucketPolicy"


def wait_allowed(fn, **kw):
    """Identity's change event drops cached keys and policies; allow for the cache anyway."""
    deadline = time.time() + 90
    while status(fn, **kw) != 200 and time.time() < deadline:
        time.sleep(1)


def test_deny_for_a_user_of_the_owners_account(cloud, a):
    name = new_bucket(a)
    a.iam.create_user(UserName="ops-" + SUFFIX)
    a.iam.put_user_policy(UserName="ops-" + SUFFIX, PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = a.iam.create_access_key(UserName="ops-" + SUFFIX)["AccessKey"]
    u = s3_client(cloud, key["AccessKeyId"], key["SecretAccessKey"])
    wait_allowed(u.get_object, Bucket=name, Key="priv/c")
    assert u.get_object(Bucket=name, Key="priv/c")["Body"].read() == b"priv/c"
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::%s:user/ops-%s" % (a.account, SUFFIX)},
         "Action": ["s3:DeleteObject", "s3:PutBucketPolicy"], "Resource": ["arn:aws:s3:::%s/*" % name,
                                                                             "arn:aws:s3:::%s" % name]}))
    assert u.get_object(Bucket=name, Key="priv/c")["Body"].read() == b"priv/c"   # still allowed
    assert status(u.delete_object, Bucket=name, Key="priv/c") == 403             # explicit Deny wins
    # DeleteObjects is decided key by key
    r = u.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "pub/a"}]})
    assert r["Errors"][0]["Code"] == "AccessDenied" and "Deleted" not in r
    assert status(u.put_bucket_policy, Bucket=name, Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % name})) == 403
    a.s3.delete_object(Bucket=name, Key="priv/c")   # the account itself is not named
    # a Deny naming the account reaches its users too
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Deny", "Principal": {"AWS": a.account}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/pub/*" % name}))
    assert status(u.get_object, Bucket=name, Key="pub/a") == 403
    assert status(a.s3.get_object, Bucket=name, Key="pub/a") == 403


def test_the_owner_cannot_lock_itself_out(cloud, a):
    name = new_bucket(a)
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::%s" % name,
                                                                             "arn:aws:s3:::%s/*" % name]}))
    assert status(a.s3.get_object, Bucket=name, Key="pub/a") == 403
    assert status(a.s3.list_objects_v2, Bucket=name) == 403
    a.s3.get_bucket_policy(Bucket=name)
    a.s3.delete_bucket_policy(Bucket=name)
    assert a.s3.get_object(Bucket=name, Key="pub/a")["Body"].read() == b"pub/a"
    # and the operator's administrator is never refused
    op = s3_client(cloud)
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % name}))
    assert op.get_object(Bucket=name, Key="pub/a")["Body"].read() == b"pub/a"


def test_source_ip_conditions(cloud, a):
    name = new_bucket(a)
    def public_read_from(cidr):
        a.s3.put_bucket_policy(Bucket=name, Policy=policy(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/pub/*" % name,
             "Condition": {"IpAddress": {"aws:SourceIp": cidr}}}))
    public_read_from("127.0.0.1/32")
    assert anon(cloud, "GET", "/%s/pub/a" % name) == 200
    assert anon(cloud, "GET", "/%s/priv/c" % name) == 403
    public_read_from(["10.0.0.0/8", "192.0.2.7"])
    assert anon(cloud, "GET", "/%s/pub/a" % name) == 403
    # a Deny for every address but one other keeps even the owner out
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % name,
         "Condition": {"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}))
    assert status(a.s3.get_object, Bucket=name, Key="pub/a") == 403
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % name,
         "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}))
    assert a.s3.get_object(Bucket=name, Key="pub/a")["Body"].read() == b"pub/a"


def test_policy_status(cloud, a):
    name = new_bucket(a)
    with pytest.raises(ClientError) as ei:
        a.s3.get_bucket_policy_status(Bucket=name)
    assert code(ei) == "NoSuchBucketPolicy"
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % name}))
    assert a.s3.get_bucket_policy_status(Bucket=name)["PolicyStatus"]["IsPublic"] is True
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % name,
         "Condition": {"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}}}))
    assert a.s3.get_bucket_policy_status(Bucket=name)["PolicyStatus"]["IsPublic"] is False


def test_malformed_policies(cloud, a):
    name = new_bucket(a)
    good = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % name}
    cases = [
        ("not json", "MalformedPolicy"),
        ("[]", "MalformedPolicy"),
        (policy(dict(good, Principal=None)), "MalformedPolicy"),
        (json.dumps({"Version": "2012-10-17", "Statement": [{k: v for k, v in good.items() if k != "Principal"}]}),
         "MalformedPolicy"),
        (policy(dict(good, Action="ec2:RunInstances")), "MalformedPolicy"),
        (policy(dict(good, Resource="arn:aws:s3:::someone-elses-bucket/*")), "MalformedPolicy"),
        (policy(dict(good, Effect="Permit")), "MalformedPolicy"),
        (policy(dict(good, Condition={"StringEquals": {"ec2:Region": "x"}})), "MalformedPolicy"),
        (policy(dict(good, Condition={"IpAddress": {"aws:SourceIp": "not-an-address"}})), "MalformedPolicy"),
        (policy(dict(good, Principal={"AWS": "12345"})), "MalformedPolicy"),
        (policy(*[dict(good, Sid="s%05d" % i) for i in range(200)]), "PolicyTooLarge"),
    ]
    for doc, want in cases:
        with pytest.raises(ClientError) as ei:
            a.s3.put_bucket_policy(Bucket=name, Policy=doc)
        assert code(ei) == want, doc[:200]
        assert "Message" in ei.value.response["Error"]
    with pytest.raises(ClientError) as ei:
        a.s3.get_bucket_policy(Bucket=name)
    assert code(ei) == "NoSuchBucketPolicy"   # nothing was stored
    # the message says what is wrong
    with pytest.raises(ClientError) as ei:
        a.s3.put_bucket_policy(Bucket=name, Policy=policy(dict(good, Action="ec2:RunInstances")))
    assert "invalid action" in ei.value.response["Error"]["Message"]


def test_public_access_block(cloud, a, b):
    name = new_bucket(a)
    with pytest.raises(ClientError) as ei:
        a.s3.get_public_access_block(Bucket=name)
    assert code(ei) == "NoSuchPublicAccessBlockConfiguration"
    a.s3.put_object(Bucket=name, Key="was-public", Body=b"w", ACL="public-read")
    assert anon(cloud, "GET", "/%s/was-public" % name) == 200
    a.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True})
    got = a.s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert got == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
                   "RestrictPublicBuckets": False}
    assert anon(cloud, "GET", "/%s/was-public" % name) == 403                 # IgnorePublicAcls
    for call, kw in [(a.s3.put_object, {"Key": "x", "Body": b"x", "ACL": "public-read"}),
                     (a.s3.put_object_acl, {"Key": "was-public", "ACL": "authenticated-read"}),
                     (a.s3.put_bucket_acl, {"ACL": "public-read"})]:
        with pytest.raises(ClientError) as ei:                                 # BlockPublicAcls
            call(Bucket=name, **kw)
        assert code(ei) == "AccessDenied"
    a.s3.put_object(Bucket=name, Key="x", Body=b"x", ACL="private")
    public = policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                     "Resource": "arn:aws:s3:::%s/*" % name})
    a.s3.put_bucket_policy(Bucket=name, Policy=public)
    assert anon(cloud, "GET", "/%s/pub/a" % name) == 200
    a.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    assert anon(cloud, "GET", "/%s/pub/a" % name) == 403                      # RestrictPublicBuckets
    assert status(b.s3.get_object, Bucket=name, Key="pub/a") == 403
    assert anon(cloud, "GET", "/%s/was-public" % name) == 200                 # ACLs count again
    a.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={"BlockPublicPolicy": True})
    with pytest.raises(ClientError) as ei:                                     # BlockPublicPolicy
        a.s3.put_bucket_policy(Bucket=name, Policy=public)
    assert code(ei) == "AccessDenied"
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Allow", "Principal": {"AWS": b.account}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/*" % name}))
    assert status(b.s3.put_public_access_block, Bucket=name, PublicAccessBlockConfiguration={}) == 403
    st, _, body = s3_raw(cloud, "PUT", "/%s?publicAccessBlock" % name, access_key=a.key, secret_key=a.secret,
                         body=b"<PublicAccessBlockConfiguration><BlockPublicAcls>maybe</BlockPublicAcls>"
                              b"</PublicAccessBlockConfiguration>")
    assert st == 400 and b"MalformedXML" in body
    a.s3.delete_public_access_block(Bucket=name)
    with pytest.raises(ClientError) as ei:
        a.s3.get_public_access_block(Bucket=name)
    assert code(ei) == "NoSuchPublicAccessBlockConfiguration"


def test_grants_for_other_services_follow_the_same_rules(cloud, a, b):
    name = new_bucket(a)
    def grant(account, key, method="GET"):
        r = cloud.virgadm("call", "objectstore", "objectstore.grant",
                          json.dumps({"bucket": name, "key": key, "method": method, "ttl_s": 60}), "--as", account)
        return r.returncode == 0, r.stdout + r.stderr
    assert grant(a.account, "priv/c")[0]
    ok, out = grant(b.account, "pub/a")
    assert not ok and "AccessDenied" in out
    a.s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Allow", "Principal": {"AWS": b.account}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/pub/*" % name}))
    ok, out = grant(b.account, "pub/a")
    assert ok and json.loads(out)["size"] == 5
    assert not grant(b.account, "priv/c")[0]
    assert not grant(b.account, "pub/new", "PUT")[0]
    a.s3.put_object_acl(Bucket=name, Key="priv/c", GrantRead='id="%s"' % __import__("hashlib").sha256(
        ("virga-canonical-user:" + b.account).encode()).hexdigest())
    assert grant(b.account, "priv/c")[0]


def test_iam_user_policies_with_conditions(cloud, a):
    name = new_bucket(a)
    def user(uname, cidr):
        a.iam.create_user(UserName=uname)
        a.iam.put_user_policy(UserName=uname, PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "ec2:DescribeRegions"], "Resource": "*",
                 "Condition": {"IpAddress": {"aws:SourceIp": cidr}}}]}))
        k = a.iam.create_access_key(UserName=uname)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]
    kin, sin = user("near-" + SUFFIX, "127.0.0.0/8")
    kout, sout = user("far-" + SUFFIX, "10.0.0.0/8")
    near, far = s3_client(cloud, kin, sin), s3_client(cloud, kout, sout)
    wait_allowed(near.get_object, Bucket=name, Key="pub/a")
    assert near.get_object(Bucket=name, Key="pub/a")["Body"].read() == b"pub/a"
    assert status(far.get_object, Bucket=name, Key="pub/a") == 403
    # the gateway evaluates the same conditions for EC2
    rc, _, err = aws(cloud, "ec2", "describe-regions", access_key=kin, secret_key=sin)
    assert rc == 0, err
    rc, _, err = aws(cloud, "ec2", "describe-regions", access_key=kout, secret_key=sout)
    assert rc != 0 and "UnauthorizedOperation" in err
    # and IAM refuses a condition it would not evaluate
    with pytest.raises(ClientError) as ei:
        a.iam.put_user_policy(UserName="near-" + SUFFIX, PolicyName="q", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
                                                    "Condition": {"StringEquals": {"ec2:Region": "x"}}}]}))
    assert code(ei) == "MalformedPolicyDocument"


def test_the_cli(cloud, a, b, tmp_path):
    """/usr/bin/aws s3api put-bucket-policy (from a file), get-bucket-policy-status,
    put-public-access-block, as scripts use them."""
    import subprocess
    from harness import aws_env
    name = new_bucket(a)
    doc = tmp_path / "policy.json"
    doc.write_text(policy({"Effect": "Allow", "Principal": {"AWS": b.account}, "Action": "s3:GetObject",
                           "Resource": "arn:aws:s3:::%s/pub/*" % name}))

    def s3api(*args):
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_S3_URL"], "--output", "json", "s3api",
                            *args], capture_output=True, text=True, env=aws_env(cloud, a.key, a.secret), timeout=60)
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr
    rc, _, err = s3api("put-bucket-policy", "--bucket", name, "--policy", "file://%s" % doc)
    assert rc == 0, err
    assert b.s3.get_object(Bucket=name, Key="pub/b")["Body"].read() == b"pub/b"
    rc, out, err = s3api("get-bucket-policy-status", "--bucket", name)
    assert rc == 0 and out["PolicyStatus"]["IsPublic"] is False, err
    rc, out, err = s3api("get-bucket-policy", "--bucket", name)
    assert rc == 0 and json.loads(out["Policy"]) == json.loads(doc.read_text())
    rc, _, err = s3api("put-public-access-block", "--bucket", name, "--public-access-block-configuration",
                       "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true")
    assert rc == 0, err
    rc, _, err = s3api("put-object", "--bucket", name, "--key", "x", "--acl", "public-read")
    assert rc != 0 and "AccessDenied" in err
    rc, _, err = s3api("put-bucket-policy", "--bucket", name, "--policy", "{not json")
    assert rc != 0 and "MalformedPolicy" in err
