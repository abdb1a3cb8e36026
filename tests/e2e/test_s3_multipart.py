"""Multipart upload edge cases with the unmodified boto3 on both storage backends, as S3
answers them: a completion sent twice (the same answer while the key holds that upload's
object, NoSuchUpload after), a part sent again (the last one counts), a part list with a
wrong ETag (InvalidPart), out of order (InvalidPartOrder), with a small part before the
last (EntityTooSmall), completing over an existing key (replaced, or a new version), and
who may list and abort an upload: its initiator and the bucket owner (or whom the bucket
policy allows), not everyone with WRITE on the bucket."""
import hashlib
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Tenant, remove_bucket, s3_client

MiB = 1024 * 1024


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def bucket(anycloud):
    s3 = s3_client(anycloud)
    name = "mp-edge-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=name)
    yield s3, name
    remove_bucket(s3, name)


def upload(s3, bucket, key, *bodies):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [{"PartNumber": i + 1, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i + 1,
                                                          Body=b)["ETag"]} for i, b in enumerate(bodies)]
    return uid, parts


def complete(s3, bucket, key, uid, parts):
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts})


def test_complete_twice_answers_the_same_until_the_key_changes(bucket):
    s3, b = bucket
    uid, parts = upload(s3, b, "k", b"a" * 5 * MiB, b"tail")
    first = complete(s3, b, "k", uid, parts)
    again = complete(s3, b, "k", uid, parts)   # a client retrying after a lost answer
    assert again["ETag"] == first["ETag"] and again["Key"] == "k"
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"a" * 5 * MiB + b"tail"
    s3.put_object(Bucket=b, Key="k", Body=b"newer")
    with pytest.raises(ClientError) as ei:
        complete(s3, b, "k", uid, parts)
    assert code(ei) == ("NoSuchUpload", 404)
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"newer"


def test_complete_twice_in_a_versioned_bucket_names_the_same_version(bucket):
    s3, b = bucket
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    uid, parts = upload(s3, b, "k", b"only part")
    first = complete(s3, b, "k", uid, parts)
    again = complete(s3, b, "k", uid, parts)
    assert first["VersionId"] and again["VersionId"] == first["VersionId"] and again["ETag"] == first["ETag"]
    assert len(s3.list_object_versions(Bucket=b)["Versions"]) == 1   # no second version made


def test_a_part_sent_again_replaces_the_first(bucket):
    s3, b = bucket
    uid = s3.create_multipart_upload(Bucket=b, Key="k")["UploadId"]
    old = s3.upload_part(Bucket=b, Key="k", UploadId=uid, PartNumber=1, Body=b"x" * 5 * MiB)["ETag"]
    new = s3.upload_part(Bucket=b, Key="k", UploadId=uid, PartNumber=1, Body=b"y" * (5 * MiB + 1))["ETag"]
    last = s3.upload_part(Bucket=b, Key="k", UploadId=uid, PartNumber=2, Body=b"z")["ETag"]
    listed = s3.list_parts(Bucket=b, Key="k", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, new, 5 * MiB + 1), (2, last, 1)]
    with pytest.raises(ClientError) as ei:   # the replaced part is gone
        complete(s3, b, "k", uid, [{"PartNumber": 1, "ETag": old}, {"PartNumber": 2, "ETag": last}])
    assert code(ei) == ("InvalidPart", 400)
    complete(s3, b, "k", uid, [{"PartNumber": 1, "ETag": new}, {"PartNumber": 2, "ETag": last}])
    got = s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == b"y" * (5 * MiB + 1) + b"z"
    md5s = b"".join(hashlib.md5(d).digest() for d in (b"y" * (5 * MiB + 1), b"z"))
    assert got["ETag"] == '"%s-2"' % hashlib.md5(md5s).hexdigest()


def test_wrong_etag_order_and_small_parts_are_refused(bucket):
    s3, b = bucket
    uid, parts = upload(s3, b, "k", b"1" * 5 * MiB, b"2" * MiB, b"3")
    cases = [
        ([parts[0], {"PartNumber": 2, "ETag": '"0123456789abcdef0123456789abcdef"'}, parts[2]], "InvalidPart"),
        ([parts[0], parts[1], {"PartNumber": 4, "ETag": parts[2]["ETag"]}], "InvalidPart"),   # never uploaded
        ([parts[1], parts[0], parts[2]], "InvalidPartOrder"),
        ([parts[0], parts[0], parts[2]], "InvalidPartOrder"),                               # a number twice
        (parts, "EntityTooSmall"),                                                         # 1 MiB before the last
    ]
    for listed, want in cases:
        with pytest.raises(ClientError) as ei:
            complete(s3, b, "k", uid, listed)
        assert code(ei) == (want, 400), listed
    with pytest.raises(ClientError) as ei:   # nothing became visible
        s3.head_object(Bucket=b, Key="k")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    complete(s3, b, "k", uid, [parts[0], parts[2]])   # the small one last is fine, and parts may be skipped
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"1" * 5 * MiB + b"3"


def test_complete_over_an_existing_key(bucket):
    s3, b = bucket
    s3.put_object(Bucket=b, Key="k", Body=b"before")
    uid, parts = upload(s3, b, "k", b"after")
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"before"   # until completed
    complete(s3, b, "k", uid, parts)
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"after"
    vs = s3.list_object_versions(Bucket=b)["Versions"]
    assert [v["VersionId"] for v in vs] == ["null"]   # replaced, not kept
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    uid, parts = upload(s3, b, "k", b"versioned")
    vid = complete(s3, b, "k", uid, parts)["VersionId"]
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"versioned"
    assert s3.get_object(Bucket=b, Key="k", VersionId="null")["Body"].read() == b"after"
    vs = s3.list_object_versions(Bucket=b)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in vs] == [(vid, True), ("null", False)]


# ---- who may list and abort an upload -------------------------------------------------

def test_upload_initiator_and_bucket_owner_list_and_abort_not_other_writers(cloud):
    suffix = uuid.uuid4().hex[:8]
    owner, b, c = (Tenant(cloud, "mp-%s-%s" % (n, suffix)) for n in ("owner", "initiator", "writer"))
    name = "mp-access-" + suffix
    owner.s3.create_bucket(Bucket=name)
    owner.s3.put_bucket_acl(Bucket=name, GrantFullControl='id="%s"' % owner.canonical,
                            GrantWrite='id="%s", id="%s"' % (b.canonical, c.canonical))
    uid = b.s3.create_multipart_upload(Bucket=name, Key="k")["UploadId"]
    b.s3.upload_part(Bucket=name, Key="k", UploadId=uid, PartNumber=1, Body=b"part")
    # another writer of the bucket may neither list nor abort it (S3: WRITE is not enough)
    for call in (c.s3.list_parts, c.s3.abort_multipart_upload):
        with pytest.raises(ClientError) as ei:
            call(Bucket=name, Key="k", UploadId=uid)
        assert code(ei) == ("AccessDenied", 403)
    # its initiator and the bucket owner may
    assert [p["PartNumber"] for p in b.s3.list_parts(Bucket=name, Key="k", UploadId=uid)["Parts"]] == [1]
    assert [p["PartNumber"] for p in owner.s3.list_parts(Bucket=name, Key="k", UploadId=uid)["Parts"]] == [1]
    b.s3.abort_multipart_upload(Bucket=name, Key="k", UploadId=uid)
    uid2 = b.s3.create_multipart_upload(Bucket=name, Key="k2")["UploadId"]
    owner.s3.abort_multipart_upload(Bucket=name, Key="k2", UploadId=uid2)
    # the bucket owner may let others abort through the bucket policy
    uid3 = b.s3.create_multipart_upload(Bucket=name, Key="k3")["UploadId"]
    owner.s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % c.account},
        "Action": ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        "Resource": "arn:aws:s3:::%s/*" % name}]}))
    assert c.s3.list_parts(Bucket=name, Key="k3", UploadId=uid3).get("Parts", []) == []
    c.s3.abort_multipart_upload(Bucket=name, Key="k3", UploadId=uid3)
    with pytest.raises(ClientError) as ei:
        owner.s3.list_parts(Bucket=name, Key="k3", UploadId=uid3)
    assert code(ei) == ("NoSuchUpload", 404)
    owner.s3.delete_bucket(Bucket=name)


def test_list_multipart_uploads_pages_groups_and_names_initiators(anycloud):
    """ListMultipartUploads as S3 answers it: key order (then start order), max-uploads
    with NextKeyMarker/NextUploadIdMarker followed to the end by the paginator, prefix and
    delimiter (CommonPrefixes), and each upload's Initiator: the IAM user's ARN or the
    account's canonical id, with the initiating account as Owner; ListParts names them too."""
    t = Tenant(anycloud, "mp-list-" + uuid.uuid4().hex[:8])
    b = "mp-list-" + uuid.uuid4().hex[:8]
    t.s3.create_bucket(Bucket=b)
    t.iam.create_user(UserName="uploader")
    t.iam.put_user_policy(UserName="uploader", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    k = t.iam.create_access_key(UserName="uploader")["AccessKey"]
    user_s3 = s3_client(anycloud, k["AccessKeyId"], k["SecretAccessKey"])
    keys = ["a/1", "a/2", "b", "c/x/1", "d"]
    ids = {}
    for key in keys:
        ids[key] = t.s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    time.sleep(1.1)   # upload times have a resolution of a second, as S3's Initiated
    second_b = user_s3.create_multipart_upload(Bucket=b, Key="b")["UploadId"]   # a second upload of b, later
    want = [("a/1", ids["a/1"]), ("a/2", ids["a/2"]), ("b", ids["b"]), ("b", second_b), ("c/x/1", ids["c/x/1"]),
            ("d", ids["d"])]
    pages = list(t.s3.get_paginator("list_multipart_uploads").paginate(Bucket=b, MaxUploads=2))
    assert len(pages) == 3 and all(p["IsTruncated"] for p in pages[:2]) and not pages[2]["IsTruncated"]
    got = [(u["Key"], u["UploadId"]) for p in pages for u in p.get("Uploads", [])]
    assert got == want
    ups = {u["UploadId"]: u for p in pages for u in p["Uploads"]}
    assert ups[ids["b"]]["Initiator"]["ID"] == t.canonical and ups[ids["b"]]["Owner"]["ID"] == t.canonical
    assert ups[second_b]["Initiator"]["ID"] == "arn:aws:iam::%s:user/uploader" % t.account
    assert ups[second_b]["Owner"]["ID"] == t.canonical
    parts = t.s3.list_parts(Bucket=b, Key="b", UploadId=second_b)
    assert parts["Initiator"]["ID"] == "arn:aws:iam::%s:user/uploader" % t.account
    # delimiter: a/ and c/ fold into CommonPrefixes; prefix narrows
    r = t.s3.list_multipart_uploads(Bucket=b, Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["b", "b", "d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "c/"]
    r = t.s3.list_multipart_uploads(Bucket=b, Prefix="c/", Delimiter="/")
    assert "Uploads" not in r and [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/x/"]
    # markers: after key b's first upload comes its second
    r = t.s3.list_multipart_uploads(Bucket=b, KeyMarker="b", UploadIdMarker=ids["b"])
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == want[3:]
    with pytest.raises(ClientError) as ei:
        t.s3.list_multipart_uploads(Bucket=b, MaxUploads=-1)
    assert code(ei) == ("InvalidArgument", 400)
    for key, uid in want:
        t.s3.abort_multipart_upload(Bucket=b, Key=key, UploadId=uid)
    t.s3.delete_bucket(Bucket=b)
