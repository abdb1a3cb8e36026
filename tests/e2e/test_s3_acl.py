"""S3 access control lists as users' tools use them: every canned ACL's effect on anonymous
callers, another account and the owner; grants by canonical id, by e-mail and to groups
(x-amz-grant-* headers and AccessControlPolicy documents); Owner with the account's
canonical id and display name; put-object-acl changing who may read without touching the
bytes; ACLs on CopyObject and multipart uploads; object ownership (ObjectWriter, the
default here, BucketOwnerPreferred, BucketOwnerEnforced); IAM users of the owner's
account, who need their own policies."""
import json
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Tenant, aws_env, call_status as status, canonical_id as canonical, error_code, s3_client, s3_raw

SUFFIX = uuid.uuid4().hex[:6]
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"


@pytest.fixture(scope="module")
def a(cloud):
    return Tenant(cloud, "acl-owner-" + SUFFIX, "owner-%s@example.com" % SUFFIX)


@pytest.fixture(scope="module")
def b(cloud):
    return Tenant(cloud, "acl-other-" + SUFFIX, "Other-%s@Example.com" % SUFFIX)


def code(ei):
    return ei.value.response["Error"]["Code"]


def anon(cloud, method, path, body=b""):
    return s3_raw(cloud, method, path, body=body, sign=False)[0]


def grants(acl):
    out = set()
    for g in acl["Grants"]:
        who = g["Grantee"].get("URI") or g["Grantee"].get("ID")
        out.add((who, g["Permission"]))
    return out


def bucket(tenant, acl=None):
    name = "acl-%s-%s" % (uuid.uuid4().hex[:8], SUFFIX)
    kw = {"ACL": acl} if acl else {}
    tenant.s3.create_bucket(Bucket=name, **kw)
    return name


def test_owner_is_the_accounts_canonical_id_with_its_name(cloud, a):
    name = bucket(a)
    acl = a.s3.get_bucket_acl(Bucket=name)
    assert acl["Owner"] == {"ID": a.canonical, "DisplayName": a.name}
    assert grants(acl) == {(a.canonical, "FULL_CONTROL")}
    assert acl["Grants"][0]["Grantee"]["DisplayName"] == a.name
    assert a.s3.list_buckets()["Owner"] == {"ID": a.canonical, "DisplayName": a.name}
    a.s3.put_object(Bucket=name, Key="k", Body=b"x")
    assert a.s3.get_object_acl(Bucket=name, Key="k")["Owner"]["ID"] == a.canonical
    listed = a.s3.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"][0]
    assert listed["Owner"]["ID"] == a.canonical
    # identity knows the same id (and the address) for the account
    accounts = json.loads(cloud.virgadm("account", "list").stdout)["accounts"]
    mine = [x for x in accounts if x["account_id"] == a.account][0]
    assert mine["canonical_id"] == a.canonical and mine["email"] == a.email


# canned ACL on an object the bucket owner writes -> (anonymous GET, other account GET)
OBJECT_CANNED = {
    "private": (403, 403),
    "public-read": (200, 200),
    "public-read-write": (200, 200),
    "authenticated-read": (403, 200),
    "aws-exec-read": (403, 403),
    "bucket-owner-read": (403, 403),
    "bucket-owner-full-control": (403, 403),
}


@pytest.mark.parametrize("canned", sorted(OBJECT_CANNED))
def test_canned_acl_on_objects(cloud, a, b, canned):
    name = bucket(a)
    a.s3.put_object(Bucket=name, Key="obj", Body=b"payload", ACL=canned)
    want_anon, want_other = OBJECT_CANNED[canned]
    assert anon(cloud, "GET", "/%s/obj" % name) == want_anon
    assert anon(cloud, "HEAD", "/%s/obj" % name) == want_anon
    assert status(b.s3.get_object, Bucket=name, Key="obj") == want_other
    assert a.s3.get_object(Bucket=name, Key="obj")["Body"].read() == b"payload"
    # nobody but the owner may change the ACL or read it, whatever the canned ACL
    assert status(b.s3.get_object_acl, Bucket=name, Key="obj") == 403
    assert status(b.s3.put_object_acl, Bucket=name, Key="obj", ACL="public-read") == 403
    assert anon(cloud, "GET", "/%s/obj?acl" % name) == 403
    # the ACL reads back as S3 spells it
    got = grants(a.s3.get_object_acl(Bucket=name, Key="obj"))
    assert (a.canonical, "FULL_CONTROL") in got
    extra = {
        "private": set(), "public-read": {(ALL_USERS, "READ")},
        "public-read-write": {(ALL_USERS, "READ"), (ALL_USERS, "WRITE")},
        "authenticated-read": {(AUTH_USERS, "READ")}, "bucket-owner-read": set(),
        "bucket-owner-full-control": set(),
    }
    if canned == "aws-exec-read":   # the operator account's services read AMI bundles, as EC2 does on AWS
        accounts = json.loads(cloud.virgadm("account", "list").stdout)["accounts"]
        operator = [x["account_id"] for x in accounts if x["is_operator"]][0]
        extra[canned] = {(canonical(operator), "READ")}
    assert got == {(a.canonical, "FULL_CONTROL")} | extra[canned]


def test_canned_acl_on_buckets(cloud, a, b):
    for canned, anon_list, other_list, other_put in [("private", 403, 403, 403), ("public-read", 200, 200, 403),
                                                     ("public-read-write", 200, 200, 200),
                                                     ("authenticated-read", 403, 200, 403),
                                                     ("log-delivery-write", 403, 403, 403)]:
        name = bucket(a, canned)
        assert anon(cloud, "GET", "/%s" % name) == anon_list, canned
        assert anon(cloud, "HEAD", "/%s" % name) == anon_list, canned
        assert status(b.s3.list_objects_v2, Bucket=name) == other_list, canned
        assert status(b.s3.put_object, Bucket=name, Key="from-b", Body=b"b") == other_put, canned
        assert status(b.s3.get_bucket_acl, Bucket=name) == 403, canned
        assert status(b.s3.delete_bucket, Bucket=name) == 403, canned
        if canned == "log-delivery-write":
            assert grants(a.s3.get_bucket_acl(Bucket=name)) == {
                (a.canonical, "FULL_CONTROL"), (LOG_DELIVERY, "WRITE"), (LOG_DELIVERY, "READ_ACP")}
    # anonymous writes into a public-read-write bucket belong to the bucket's owner
    name = bucket(a, "public-read-write")
    assert anon(cloud, "PUT", "/%s/anon" % name, b"from nobody") == 200
    assert a.s3.get_object(Bucket=name, Key="anon")["Body"].read() == b"from nobody"
    assert a.s3.get_object_acl(Bucket=name, Key="anon")["Owner"]["ID"] == a.canonical
    assert anon(cloud, "DELETE", "/%s/anon" % name) == 204
    # and the owner can always take it back
    a.s3.put_bucket_acl(Bucket=name, ACL="private")
    assert anon(cloud, "PUT", "/%s/anon" % name, b"again") == 403
    assert anon(cloud, "GET", "/%s" % name) == 403


def test_grant_headers_by_id_email_and_group(cloud, a, b):
    name = bucket(a)
    a.s3.put_object(Bucket=name, Key="by-id", Body=b"1", GrantRead='id="%s"' % b.canonical)
    assert b.s3.get_object(Bucket=name, Key="by-id")["Body"].read() == b"1"
    assert anon(cloud, "GET", "/%s/by-id" % name) == 403
    # grant headers replace the default: the owner is not listed unless named (and still owns it)
    assert grants(a.s3.get_object_acl(Bucket=name, Key="by-id")) == {(b.canonical, "READ")}
    assert a.s3.get_object(Bucket=name, Key="by-id")["Body"].read() == b"1"
    # e-mail grantees are matched without regard to case and stored as the account
    a.s3.put_object(Bucket=name, Key="by-mail", Body=b"2", GrantRead='emailAddress="%s"' % b.email.upper(),
                    GrantFullControl='id="%s"' % a.canonical)
    assert grants(a.s3.get_object_acl(Bucket=name, Key="by-mail")) == {
        (b.canonical, "READ"), (a.canonical, "FULL_CONTROL")}
    assert b.s3.get_object(Bucket=name, Key="by-mail")["Body"].read() == b"2"
    a.s3.put_object(Bucket=name, Key="group", Body=b"3", GrantRead='uri="%s"' % AUTH_USERS)
    assert b.s3.get_object(Bucket=name, Key="group")["Body"].read() == b"3"
    assert anon(cloud, "GET", "/%s/group" % name) == 403
    # several grantees in one header; READ_ACP lets B read the ACL and nothing else
    a.s3.put_object(Bucket=name, Key="acp", Body=b"4",
                    GrantReadACP='id="%s", emailAddress="%s"' % (b.canonical, a.email))
    assert b.s3.get_object_acl(Bucket=name, Key="acp")["Owner"]["ID"] == a.canonical
    assert status(b.s3.get_object, Bucket=name, Key="acp") == 403

    for args, want in [({"GrantRead": 'emailAddress="nobody-%s@example.com"' % SUFFIX},
                        "UnresolvableGrantByEmailAddress"),
                       ({"GrantRead": 'id="%s"' % ("0" * 64)}, "InvalidArgument"),
                       ({"GrantRead": 'id="not-hex"'}, "InvalidArgument"),
                       ({"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/Everybody"'}, "InvalidArgument"),
                       ({"GrantRead": 'id="%s"' % b.canonical, "ACL": "public-read"}, "InvalidRequest"),
                       ({"ACL": "world-readable"}, "InvalidArgument")]:
        with pytest.raises(ClientError) as ei:
            a.s3.put_object(Bucket=name, Key="refused", Body=b"x", **args)
        assert code(ei) == want, args
        assert status(a.s3.head_object, Bucket=name, Key="refused") == 404   # nothing was written
    # on the bucket too: B may list with a READ grant by e-mail
    a.s3.put_bucket_acl(Bucket=name, GrantRead='emailAddress="%s"' % b.email,
                        GrantFullControl='id="%s"' % a.canonical)
    assert "Contents" in b.s3.list_objects_v2(Bucket=name)
    assert status(b.s3.put_object, Bucket=name, Key="nope", Body=b"x") == 403


def test_put_object_acl_changes_access_not_bytes(cloud, a, b):
    name = bucket(a)
    body = b"the bytes stay as they are\n" * 1000
    a.s3.put_object(Bucket=name, Key="doc", Body=body, ContentType="text/plain", Metadata={"colour": "blue"})
    before = a.s3.head_object(Bucket=name, Key="doc")
    # the CLI, canned
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_S3_URL"], "s3api", "put-object-acl",
                        "--bucket", name, "--key", "doc", "--acl", "public-read"],
                       capture_output=True, text=True, env=aws_env(cloud, a.key, a.secret), timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_S3_URL"], "s3api", "get-object-acl",
                        "--bucket", name, "--key", "doc"],
                       capture_output=True, text=True, env=aws_env(cloud, a.key, a.secret), timeout=60)
    assert r.returncode == 0, r.stderr
    assert (ALL_USERS, "READ") in grants(json.loads(r.stdout))
    status_, _, got = s3_raw(cloud, "GET", "/%s/doc" % name, sign=False)
    assert status_ == 200 and got == body
    after = a.s3.head_object(Bucket=name, Key="doc")
    for k in ("ETag", "LastModified", "ContentLength", "ContentType", "Metadata"):
        assert after[k] == before[k], k
    # an AccessControlPolicy document (boto3 sends the XML): B may read, the public no more
    policy = {"Owner": {"ID": a.canonical},
              "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": a.canonical}, "Permission": "FULL_CONTROL"},
                         {"Grantee": {"Type": "CanonicalUser", "ID": b.canonical}, "Permission": "READ"}]}
    a.s3.put_object_acl(Bucket=name, Key="doc", AccessControlPolicy=policy)
    assert grants(a.s3.get_object_acl(Bucket=name, Key="doc")) == {
        (a.canonical, "FULL_CONTROL"), (b.canonical, "READ")}
    assert anon(cloud, "GET", "/%s/doc" % name) == 403
    assert b.s3.get_object(Bucket=name, Key="doc")["Body"].read() == body
    assert a.s3.get_object(Bucket=name, Key="doc")["Body"].read() == body
    # by e-mail in a document, and WRITE_ACP handed to B lets B change it
    policy["Grants"][1] = {"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": b.email},
                           "Permission": "WRITE_ACP"}
    a.s3.put_object_acl(Bucket=name, Key="doc", AccessControlPolicy=policy)
    assert status(b.s3.get_object, Bucket=name, Key="doc") == 403
    b.s3.put_object_acl(Bucket=name, Key="doc", ACL="public-read")
    assert anon(cloud, "GET", "/%s/doc" % name) == 200
    assert a.s3.head_object(Bucket=name, Key="doc")["ETag"] == before["ETag"]

    # errors
    def put_acl_raw(xml):
        return s3_raw(cloud, "PUT", "/%s/doc?acl" % name, body=xml.encode(), access_key=a.key, secret_key=a.secret)
    st, _, resp = put_acl_raw("<AccessControlPolicy><AccessControlList><Grant>")
    assert st == 400 and error_code(resp) == "MalformedACLError"
    st, _, resp = put_acl_raw('<AccessControlPolicy><AccessControlList><Grant><Grantee '
                              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
                              '<ID>%s</ID></Grantee><Permission>EVERYTHING</Permission></Grant>'
                              '</AccessControlList></AccessControlPolicy>' % b.canonical)
    assert st == 400 and error_code(resp) == "MalformedACLError"
    st, _, resp = put_acl_raw('<AccessControlPolicy><AccessControlList><Grant><Grantee '
                              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
                              '<ID>%s</ID></Grantee><Permission>READ</Permission></Grant>'
                              '</AccessControlList></AccessControlPolicy>' % ("ab" * 32))
    assert st == 400 and error_code(resp) == "InvalidArgument"
    with pytest.raises(ClientError) as ei:
        a.s3.put_object_acl(Bucket=name, Key="missing", ACL="public-read")
    assert code(ei) == "NoSuchKey"
    with pytest.raises(ClientError) as ei:
        a.s3.put_object_acl(Bucket=name, Key="doc", ACL="public-read", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert code(ei) == "InvalidArgument"
    a.s3.put_object_acl(Bucket=name, Key="doc", ACL="private", VersionId="null")
    assert anon(cloud, "GET", "/%s/doc" % name) == 403
    assert a.s3.get_object(Bucket=name, Key="doc")["Body"].read() == body


def test_bucket_acl_document_and_acp_permissions(cloud, a, b):
    name = bucket(a)
    a.s3.put_bucket_acl(Bucket=name, AccessControlPolicy={
        "Owner": {"ID": a.canonical},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": a.canonical}, "Permission": "FULL_CONTROL"},
                   {"Grantee": {"Type": "CanonicalUser", "ID": b.canonical}, "Permission": "READ_ACP"},
                   {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]})
    assert b.s3.get_bucket_acl(Bucket=name)["Owner"]["ID"] == a.canonical
    assert status(b.s3.put_bucket_acl, Bucket=name, ACL="private") == 403
    assert anon(cloud, "GET", "/%s" % name) == 200
    # an Owner that is not the bucket's cannot be written
    with pytest.raises(ClientError) as ei:
        a.s3.put_bucket_acl(Bucket=name, AccessControlPolicy={"Owner": {"ID": b.canonical}, "Grants": []})
    assert code(ei) == "AccessDenied"
    a.s3.put_bucket_acl(Bucket=name, GrantWriteACP='id="%s"' % b.canonical, GrantFullControl='id="%s"' % a.canonical)
    b.s3.put_bucket_acl(Bucket=name, ACL="public-read")
    assert anon(cloud, "GET", "/%s" % name) == 200
    # the owner keeps its bucket whatever the ACL says
    a.s3.put_bucket_acl(Bucket=name, GrantRead='id="%s"' % b.canonical)
    a.s3.put_object(Bucket=name, Key="still-mine", Body=b"x")
    a.s3.get_bucket_acl(Bucket=name)


def test_object_writer_owns_what_it_writes(cloud, a, b):
    name = bucket(a)
    with pytest.raises(ClientError) as ei:   # the default: no ownership controls (ObjectWriter)
        a.s3.get_bucket_ownership_controls(Bucket=name)
    assert code(ei) == "OwnershipControlsNotFoundError"
    a.s3.put_bucket_acl(Bucket=name, GrantWrite='id="%s"' % b.canonical, GrantFullControl='id="%s"' % a.canonical)
    b.s3.put_object(Bucket=name, Key="bs", Body=b"written by b")
    acl = b.s3.get_object_acl(Bucket=name, Key="bs")
    assert acl["Owner"]["ID"] == b.canonical
    # the bucket owner cannot read an object it does not own, but may delete it
    assert status(a.s3.get_object, Bucket=name, Key="bs") == 403
    b.s3.put_object(Bucket=name, Key="handed", Body=b"for a", ACL="bucket-owner-full-control")
    assert a.s3.get_object(Bucket=name, Key="handed")["Body"].read() == b"for a"
    assert a.s3.get_object_acl(Bucket=name, Key="handed")["Owner"]["ID"] == b.canonical
    b.s3.put_object(Bucket=name, Key="readable", Body=b"r", ACL="bucket-owner-read")
    assert a.s3.get_object(Bucket=name, Key="readable")["Body"].read() == b"r"
    assert status(a.s3.put_object_acl, Bucket=name, Key="readable", ACL="public-read") == 403
    a.s3.delete_object(Bucket=name, Key="bs")
    assert status(a.s3.head_object, Bucket=name, Key="bs") == 404
    assert status(b.s3.head_object, Bucket=name, Key="bs") == 403   # B may write, not list: no answer

    # BucketOwnerPreferred: handed over with bucket-owner-full-control, the bucket owner owns it
    a.s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    assert a.s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerPreferred"}]
    b.s3.put_object(Bucket=name, Key="preferred", Body=b"p", ACL="bucket-owner-full-control")
    assert a.s3.get_object_acl(Bucket=name, Key="preferred")["Owner"]["ID"] == a.canonical
    b.s3.put_object(Bucket=name, Key="kept", Body=b"k")
    assert b.s3.get_object_acl(Bucket=name, Key="kept")["Owner"]["ID"] == b.canonical

    # BucketOwnerEnforced is refused while the bucket ACL grants others anything
    with pytest.raises(ClientError) as ei:
        a.s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert code(ei) == "InvalidBucketAclWithObjectOwnership"
    with pytest.raises(ClientError) as ei:
        a.s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "Mine"}]})
    assert code(ei) == "MalformedXML"
    a.s3.delete_bucket_ownership_controls(Bucket=name)
    with pytest.raises(ClientError) as ei:
        a.s3.get_bucket_ownership_controls(Bucket=name)
    assert code(ei) == "OwnershipControlsNotFoundError"


def test_bucket_owner_enforced_disables_acls(cloud, a, b):
    name = "acl-enf-%s" % SUFFIX
    with pytest.raises(ClientError) as ei:
        a.s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced", ACL="public-read")
    assert code(ei) == "InvalidBucketAclWithObjectOwnership"
    a.s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced")
    assert a.s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    for call, kw in [(a.s3.put_bucket_acl, {"ACL": "public-read"}),
                     (a.s3.put_object, {"Key": "o", "Body": b"x", "ACL": "public-read"}),
                     (a.s3.put_object, {"Key": "o", "Body": b"x", "GrantRead": 'id="%s"' % b.canonical})]:
        with pytest.raises(ClientError) as ei:
            call(Bucket=name, **kw)
        assert code(ei) == "AccessControlListNotSupported"
    a.s3.put_object(Bucket=name, Key="o", Body=b"x", ACL="bucket-owner-full-control")
    a.s3.put_object(Bucket=name, Key="p", Body=b"y")
    assert grants(a.s3.get_bucket_acl(Bucket=name)) == {(a.canonical, "FULL_CONTROL")}
    # another account writes through the bucket policy; the bucket owner owns what it writes
    a.s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": b.account}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::%s/*" % name}]}))
    b.s3.put_object(Bucket=name, Key="from-b", Body=b"b")
    assert a.s3.get_object(Bucket=name, Key="from-b")["Body"].read() == b"b"
    assert a.s3.get_object_acl(Bucket=name, Key="from-b")["Owner"]["ID"] == a.canonical
    assert status(b.s3.get_object, Bucket=name, Key="from-b") == 403


def test_acls_on_copy_and_multipart(cloud, a, b):
    name = bucket(a)
    a.s3.put_object(Bucket=name, Key="src", Body=b"source", ACL="public-read")
    # a copy is a new object: it gets the ACL the copy asks for, never the source's
    a.s3.copy_object(Bucket=name, Key="copy-private", CopySource={"Bucket": name, "Key": "src"})
    assert anon(cloud, "GET", "/%s/copy-private" % name) == 403
    a.s3.copy_object(Bucket=name, Key="copy-public", CopySource={"Bucket": name, "Key": "src"},
                     ACL="public-read", MetadataDirective="REPLACE")
    assert anon(cloud, "GET", "/%s/copy-public" % name) == 200
    # another account may copy what it may read, into its own bucket
    theirs = bucket(b)
    b.s3.copy_object(Bucket=theirs, Key="got", CopySource={"Bucket": name, "Key": "src"})
    assert b.s3.get_object(Bucket=theirs, Key="got")["Body"].read() == b"source"
    with pytest.raises(ClientError) as ei:
        b.s3.copy_object(Bucket=theirs, Key="got2", CopySource={"Bucket": name, "Key": "copy-private"})
    assert code(ei) == "AccessDenied"
    # a multipart upload's ACL applies when it completes
    up = a.s3.create_multipart_upload(Bucket=name, Key="mp", ACL="public-read")
    part = a.s3.upload_part(Bucket=name, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"multi")
    assert anon(cloud, "GET", "/%s/mp" % name) == 403   # not there yet, and the public may not list
    a.s3.complete_multipart_upload(Bucket=name, Key="mp", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    status_, _, got = s3_raw(cloud, "GET", "/%s/mp" % name, sign=False)
    assert status_ == 200 and got == b"multi"
    up = a.s3.create_multipart_upload(Bucket=name, Key="mp2", GrantRead='id="%s"' % b.canonical)
    part = a.s3.upload_part(Bucket=name, Key="mp2", UploadId=up["UploadId"], PartNumber=1, Body=b"m2")
    a.s3.complete_multipart_upload(Bucket=name, Key="mp2", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert b.s3.get_object(Bucket=name, Key="mp2")["Body"].read() == b"m2"


def test_missing_keys_are_not_revealed_to_those_who_cannot_list(cloud, a, b):
    name = bucket(a)
    assert anon(cloud, "GET", "/%s/missing" % name) == 403
    assert status(b.s3.head_object, Bucket=name, Key="missing") == 403
    assert status(a.s3.head_object, Bucket=name, Key="missing") == 404
    a.s3.put_bucket_acl(Bucket=name, ACL="public-read")
    assert anon(cloud, "GET", "/%s/missing" % name) == 404


def test_iam_users_of_the_owner_need_their_own_policies(cloud, a):
    iam = a.iam
    user = "reader-" + SUFFIX
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    u = s3_client(cloud, key["AccessKeyId"], key["SecretAccessKey"])
    name = bucket(a)
    a.s3.put_object(Bucket=name, Key="private", Body=b"p")
    a.s3.put_object(Bucket=name, Key="public", Body=b"q", ACL="public-read")
    # no policy: nothing, not even what the public may read (S3 asks the user's account first)
    assert status(u.get_object, Bucket=name, Key="private") == 403
    assert status(u.get_object, Bucket=name, Key="public") == 403
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": "arn:aws:s3:::%s/*" % name}]}))
    import time
    deadline = time.time() + 90   # identity's change event drops cached keys; allow for the cache TTL
    while status(u.get_object, Bucket=name, Key="private") != 200 and time.time() < deadline:
        time.sleep(1)
    assert u.get_object(Bucket=name, Key="private")["Body"].read() == b"p"
    assert status(u.put_object, Bucket=name, Key="new", Body=b"x") == 403
    assert status(u.list_objects_v2, Bucket=name) == 403
