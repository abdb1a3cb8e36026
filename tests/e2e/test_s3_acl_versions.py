"""Access control with versions, as S3 decides it: bucket and IAM policies see the version
forms of each call (s3:GetObjectVersion for GET/HEAD by versionId, s3:DeleteObjectVersion,
s3:Get/PutObjectVersionAcl, s3:GetObjectVersionTagging, s3:ListBucketVersions for
ListObjectVersions, s3:VersionId in conditions); DeleteObjects decides each key and
version on its own; every version keeps its own ACL (PutObjectAcl/GetObjectAcl with
versionId work on that version, a noncurrent version keeps its ACL, a delete marker has
none); reads through a delete marker are decided by the bucket; listings show each
object's own owner."""
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Tenant, call_status as status, error_code, s3_client, s3_raw

SUFFIX = uuid.uuid4().hex[:6]
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture(scope="module")
def a(cloud):
    return Tenant(cloud, "ver-owner-" + SUFFIX)


@pytest.fixture(scope="module")
def b(cloud):
    return Tenant(cloud, "ver-other-" + SUFFIX)


def versioned_bucket(t, acl=None):
    name = "ver-%s-%s" % (uuid.uuid4().hex[:8], SUFFIX)
    t.s3.create_bucket(Bucket=name, **({"ACL": acl} if acl else {}))
    t.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def put_versions(t, name, key, *bodies, **kw):
    return [t.s3.put_object(Bucket=name, Key=key, Body=body, **kw)["VersionId"] for body in bodies]


def allow(name, principal, actions, condition=None):
    st = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions,
          "Resource": ["arn:aws:s3:::%s" % name, "arn:aws:s3:::%s/*" % name]}
    if condition:
        st["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


def grantees(acl):
    return {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]}


def test_bucket_policies_see_the_version_actions(cloud, a, b):
    name = versioned_bucket(a)
    v1, v2 = put_versions(a, name, "k", b"one", b"two")
    a.s3.put_object(Bucket=name, Key="other", Body=b"o")
    a.s3.put_object_tagging(Bucket=name, Key="k", VersionId=v1, Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    # the plain actions allow the plain calls only
    a.s3.put_bucket_policy(Bucket=name, Policy=allow(name, b.account, [
        "s3:GetObject", "s3:GetObjectAcl", "s3:PutObjectAcl", "s3:GetObjectTagging", "s3:ListBucket",
        "s3:DeleteObject"]))
    assert b.s3.get_object(Bucket=name, Key="k")["Body"].read() == b"two"
    assert b.s3.get_object_acl(Bucket=name, Key="k")["Owner"]["ID"] == a.canonical
    assert b.s3.get_object_tagging(Bucket=name, Key="k")["TagSet"] == []
    assert [o["Key"] for o in b.s3.list_objects_v2(Bucket=name)["Contents"]] == ["k", "other"]
    for call, kw in ((b.s3.get_object, {}), (b.s3.head_object, {}), (b.s3.get_object_acl, {}),
                     (b.s3.get_object_tagging, {}), (b.s3.put_object_acl, {"ACL": "public-read"}),
                     (b.s3.delete_object, {})):
        assert status(call, Bucket=name, Key="k", VersionId=v1, **kw) == 403, call.__name__
    assert status(b.s3.list_object_versions, Bucket=name) == 403   # s3:ListBucketVersions
    # DeleteObjects decides each key and version on its own
    r = b.s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "k", "VersionId": v1}, {"Key": "other"}]})
    assert [(e["Key"], e["Code"]) for e in r.get("Errors", [])] == [("k", "AccessDenied")]
    assert [d["Key"] for d in r["Deleted"]] == ["other"]
    assert a.s3.get_object(Bucket=name, Key="k", VersionId=v1)["Body"].read() == b"one"

    # the version actions allow the by-version calls, and only those
    a.s3.put_bucket_policy(Bucket=name, Policy=allow(name, b.account, [
        "s3:GetObjectVersion", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:ListBucketVersions",
        "s3:DeleteObjectVersion"]))
    assert b.s3.get_object(Bucket=name, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert b.s3.head_object(Bucket=name, Key="k", VersionId=v1)["ContentLength"] == 3
    assert b.s3.get_object_acl(Bucket=name, Key="k", VersionId=v1)["Owner"]["ID"] == a.canonical
    assert b.s3.get_object_tagging(Bucket=name, Key="k", VersionId=v1)["TagSet"] == [{"Key": "t", "Value": "1"}]
    listed = b.s3.list_object_versions(Bucket=name)
    assert {v["VersionId"] for v in listed["Versions"] if v["Key"] == "k"} == {v1, v2}
    assert status(b.s3.get_object, Bucket=name, Key="k") == 403
    assert status(b.s3.list_objects_v2, Bucket=name) == 403
    r = b.s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "k", "VersionId": v1}]})
    assert [d["VersionId"] for d in r["Deleted"]] == [v1] and not r.get("Errors")
    assert status(a.s3.head_object, Bucket=name, Key="k", VersionId=v1) == 404

    # s3:VersionId names the version in a condition
    a.s3.put_bucket_policy(Bucket=name, Policy=allow(name, b.account, "s3:GetObjectVersion",
                                                     {"StringEquals": {"s3:VersionId": v2}}))
    assert b.s3.get_object(Bucket=name, Key="k", VersionId=v2)["Body"].read() == b"two"
    v3, = put_versions(a, name, "k", b"three")
    assert status(b.s3.get_object, Bucket=name, Key="k", VersionId=v3) == 403
    # PutObjectAcl by version is s3:PutObjectVersionAcl; DeleteObject by version s3:DeleteObjectVersion
    a.s3.put_bucket_policy(Bucket=name, Policy=allow(name, b.account, ["s3:PutObjectVersionAcl",
                                                                       "s3:DeleteObjectVersion"]))
    assert status(b.s3.put_object_acl, Bucket=name, Key="k", ACL="public-read") == 403
    b.s3.put_object_acl(Bucket=name, Key="k", VersionId=v2, ACL="public-read")
    assert (ALL_USERS, "READ") in grantees(a.s3.get_object_acl(Bucket=name, Key="k", VersionId=v2))
    assert (ALL_USERS, "READ") not in grantees(a.s3.get_object_acl(Bucket=name, Key="k"))
    assert status(b.s3.delete_object, Bucket=name, Key="k") == 403
    b.s3.delete_object(Bucket=name, Key="k", VersionId=v3)
    assert a.s3.get_object(Bucket=name, Key="k")["Body"].read() == b"two"


def test_iam_user_policies_see_the_version_actions(cloud, a):
    iam = a.iam
    user = "ver-reader-" + SUFFIX
    name = versioned_bucket(a)
    v1, _ = put_versions(a, name, "k", b"one", b"two")
    iam.create_user(UserName=user)
    # the policy is there before the key is first used: no cached signing reply to wait out
    iam.put_user_policy(UserName=user, PolicyName="latest-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": "arn:aws:s3:::%s/*" % name}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    u = s3_client(cloud, key["AccessKeyId"], key["SecretAccessKey"])
    assert u.get_object(Bucket=name, Key="k")["Body"].read() == b"two"
    assert status(u.get_object, Bucket=name, Key="k", VersionId=v1) == 403
    assert status(u.head_object, Bucket=name, Key="k", VersionId=v1) == 403
    iam.put_user_policy(UserName=user, PolicyName="versions", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjectVersion",
                                                "Resource": "arn:aws:s3:::%s/*" % name}]}))
    deadline = time.time() + 90   # identity's change event drops cached keys; allow for the cache TTL
    while status(u.get_object, Bucket=name, Key="k", VersionId=v1) != 200 and time.time() < deadline:
        time.sleep(1)
    assert u.get_object(Bucket=name, Key="k", VersionId=v1)["Body"].read() == b"one"


def test_each_version_keeps_its_own_acl(cloud, a):
    name = versioned_bucket(a)
    v1, = put_versions(a, name, "k", b"public one", ACL="public-read")
    v2, = put_versions(a, name, "k", b"private two")

    def anon(vid=None):
        st, hdrs, body = s3_raw(cloud, "GET", "/%s/k%s" % (name, "?versionId=" + vid if vid else ""), sign=False)
        return st, body

    # the noncurrent version kept its public-read; the latest is private
    assert anon(v1) == (200, b"public one")
    assert anon()[0] == 403 and anon(v2)[0] == 403
    assert (ALL_USERS, "READ") in grantees(a.s3.get_object_acl(Bucket=name, Key="k", VersionId=v1))
    assert grantees(a.s3.get_object_acl(Bucket=name, Key="k")) == {(a.canonical, "FULL_CONTROL")}
    # PutObjectAcl with versionId changes that version alone, never the bytes
    a.s3.put_object_acl(Bucket=name, Key="k", VersionId=v2, ACL="public-read")
    a.s3.put_object_acl(Bucket=name, Key="k", VersionId=v1, ACL="private")
    assert anon() == (200, b"private two") and anon(v2) == (200, b"private two")
    assert anon(v1)[0] == 403
    assert a.s3.get_object(Bucket=name, Key="k", VersionId=v1)["Body"].read() == b"public one"
    # a new version starts with its own ACL; v2 keeps its grant as it becomes noncurrent
    v3, = put_versions(a, name, "k", b"three")
    assert anon()[0] == 403 and anon(v2) == (200, b"private two")
    # a delete marker has no ACL: NoSuchKey as the latest, MethodNotAllowed by id
    marker = a.s3.delete_object(Bucket=name, Key="k")["VersionId"]
    with pytest.raises(ClientError) as ei:
        a.s3.get_object_acl(Bucket=name, Key="k")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    for call, kw in ((a.s3.get_object_acl, {}), (a.s3.put_object_acl, {"ACL": "public-read"})):
        with pytest.raises(ClientError) as ei:
            call(Bucket=name, Key="k", VersionId=marker, **kw)
        assert ei.value.response["Error"]["Code"] == "MethodNotAllowed"
    assert anon(v2) == (200, b"private two")
    assert grantees(a.s3.get_object_acl(Bucket=name, Key="k", VersionId=v3)) == {(a.canonical, "FULL_CONTROL")}


def test_reads_through_a_delete_marker_are_decided_by_the_bucket(cloud, a):
    name = versioned_bucket(a)
    put_versions(a, name, "k", b"was public", ACL="public-read")
    marker = a.s3.delete_object(Bucket=name, Key="k")["VersionId"]
    # the marker is no public object: who may not list the bucket learns nothing
    st, hdrs, body = s3_raw(cloud, "GET", "/%s/k" % name, sign=False)
    assert st == 403 and error_code(body) == "AccessDenied" and "x-amz-delete-marker" not in hdrs
    a.s3.put_bucket_acl(Bucket=name, ACL="public-read")
    st, hdrs, body = s3_raw(cloud, "GET", "/%s/k" % name, sign=False)
    assert st == 404 and error_code(body) == "NoSuchKey"
    assert hdrs["x-amz-delete-marker"] == "true" and hdrs["x-amz-version-id"] == marker


def test_listings_show_each_objects_own_owner(cloud, a, b):
    name = versioned_bucket(a)
    a.s3.put_bucket_acl(Bucket=name, GrantFullControl='id="%s"' % a.canonical, GrantWrite='id="%s"' % b.canonical)
    b.s3.put_object(Bucket=name, Key="by-b", Body=b"b")
    a.s3.put_object(Bucket=name, Key="by-a", Body=b"a")
    owners = {o["Key"]: o["Owner"]["ID"] for o in a.s3.list_objects(Bucket=name)["Contents"]}
    assert owners == {"by-a": a.canonical, "by-b": b.canonical}
    owners = {o["Key"]: o["Owner"]["ID"]
              for o in a.s3.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"]}
    assert owners == {"by-a": a.canonical, "by-b": b.canonical}
    assert all("Owner" not in o for o in a.s3.list_objects_v2(Bucket=name)["Contents"])
    a.s3.delete_object(Bucket=name, Key="by-b")   # the bucket owner may delete what others wrote
    listed = a.s3.list_object_versions(Bucket=name)
    assert {(v["Key"], v["Owner"]["ID"]) for v in listed["Versions"]} == {("by-a", a.canonical),
                                                                          ("by-b", b.canonical)}
    assert [(m["Key"], m["Owner"]["ID"]) for m in listed["DeleteMarkers"]] == [("by-b", a.canonical)]
