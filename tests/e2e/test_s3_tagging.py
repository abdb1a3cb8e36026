"""S3 object tagging with the unmodified boto3 and AWS CLI, on both storage backends:
Put/Get/DeleteObjectTagging (of the latest version and by versionId), x-amz-tagging on
PutObject, CreateMultipartUpload and CopyObject (with the tagging directive),
x-amz-tagging-count, S3's limits and errors, and who may see or change tags. Changing
tags never changes an object's bytes."""
import json
import subprocess

import pytest
from botocore.exceptions import ClientError

from harness import aws_env, error_code, new_tenant, s3_client, s3_raw

BODY = b"bytes that tagging must never touch\n"


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


def tagset(d):
    return {"TagSet": [{"Key": k, "Value": v} for k, v in d.items()]}


def tags_of(s3, bucket, key, **kw):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"]}


@pytest.fixture
def bucket(anycloud):
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="tagging")
    yield "tagging"
    for page in s3.get_paginator("list_object_versions").paginate(Bucket="tagging"):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket="tagging", Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket="tagging")


def test_tagging_round_trip_leaves_the_bytes_alone(anycloud, bucket):
    s3 = s3_client(anycloud)
    etag = s3.put_object(Bucket=bucket, Key="obj", Body=BODY, ContentType="text/plain")["ETag"]
    assert tags_of(s3, bucket, "obj") == {}
    want = {"project": "virga", "owner": "ops team", "empty": "", "unicode \u00e9": "\u65e5\u672c"}
    s3.put_object_tagging(Bucket=bucket, Key="obj", Tagging=tagset(want))
    assert tags_of(s3, bucket, "obj") == want
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == BODY and got["ETag"] == etag and got["TagCount"] == 4
    assert got["ContentType"] == "text/plain"
    status, headers, _ = s3_raw(anycloud, "HEAD", "/%s/obj" % bucket)
    assert status == 200 and headers["x-amz-tagging-count"] == "4"
    # a new tag set replaces the old one
    s3.put_object_tagging(Bucket=bucket, Key="obj", Tagging=tagset({"only": "this"}))
    assert tags_of(s3, bucket, "obj") == {"only": "this"}
    s3.delete_object_tagging(Bucket=bucket, Key="obj")
    assert tags_of(s3, bucket, "obj") == {}
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == BODY and got["ETag"] == etag and "TagCount" not in got
    # an empty tag set is no tags
    s3.put_object_tagging(Bucket=bucket, Key="obj", Tagging={"TagSet": []})
    assert tags_of(s3, bucket, "obj") == {}
    for call, args in ((s3.get_object_tagging, {}), (s3.put_object_tagging, {"Tagging": tagset({"a": "b"})}),
                       (s3.delete_object_tagging, {})):
        with pytest.raises(ClientError) as ei:
            call(Bucket=bucket, Key="missing", **args)
        assert code(ei) == ("NoSuchKey", 404)


def test_tags_given_with_the_object(anycloud, bucket):
    s3 = s3_client(anycloud)
    s3.put_object(Bucket=bucket, Key="put", Body=BODY, Tagging="a=1&b=two%20words&c=")
    assert tags_of(s3, bucket, "put") == {"a": "1", "b": "two words", "c": ""}
    # multipart: the tags wait for the completion
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="stage=upload")["UploadId"]
    p = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=BODY)
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    assert tags_of(s3, bucket, "mp") == {"stage": "upload"}
    # copies take the source's tags, or the request's with REPLACE
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "put"})
    assert tags_of(s3, bucket, "copy") == {"a": "1", "b": "two words", "c": ""}
    s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "put"},
                   TaggingDirective="COPY", Tagging="ignored=yes")
    assert tags_of(s3, bucket, "copy2") == {"a": "1", "b": "two words", "c": ""}
    s3.copy_object(Bucket=bucket, Key="copy3", CopySource={"Bucket": bucket, "Key": "put"},
                   TaggingDirective="REPLACE", Tagging="new=tag")
    assert tags_of(s3, bucket, "copy3") == {"new": "tag"}
    s3.copy_object(Bucket=bucket, Key="copy4", CopySource={"Bucket": bucket, "Key": "put"},
                   TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "copy4") == {}
    assert s3.get_object(Bucket=bucket, Key="copy3")["Body"].read() == BODY
    status, _, body = s3_raw(anycloud, "PUT", "/%s/copy5" % bucket,
                             headers={"x-amz-copy-source": "/%s/put" % bucket, "x-amz-tagging-directive": "MERGE"})
    assert (status, error_code(body)) == (400, "InvalidArgument")


def xml_tags(pairs):
    return ("<Tagging><TagSet>%s</TagSet></Tagging>" % "".join(
        "<Tag><Key>%s</Key><Value>%s</Value></Tag>" % kv for kv in pairs)).encode()


BAD_TAGS = [
    ("eleven tags", [("k%d" % i, "v") for i in range(11)], "InvalidTag"),
    ("key of 129 chars", [("k" * 129, "v")], "InvalidTag"),
    ("value of 257 chars", [("k", "v" * 257)], "InvalidTag"),
    ("empty key", [("", "v")], "InvalidTag"),
    ("duplicate key", [("k", "1"), ("k", "2")], "InvalidTag"),
    ("aws: prefix", [("aws:cloudformation", "x")], "InvalidTag"),
]


@pytest.mark.parametrize("why,pairs,err", BAD_TAGS, ids=[b[0] for b in BAD_TAGS])
def test_tag_limits(anycloud, bucket, why, pairs, err):
    s3 = s3_client(anycloud)
    s3.put_object(Bucket=bucket, Key="obj", Body=BODY, Tagging="keep=me")
    status, _, body = s3_raw(anycloud, "PUT", "/%s/obj?tagging" % bucket, body=xml_tags(pairs))
    assert (status, error_code(body)) == (400, err), why
    assert tags_of(s3, bucket, "obj") == {"keep": "me"}
    # the same limits on the header, before anything is written
    from urllib.parse import quote
    header = "&".join("%s=%s" % (quote(k, safe=""), quote(v, safe="")) for k, v in pairs)
    status, _, body = s3_raw(anycloud, "PUT", "/%s/new" % bucket, headers={"x-amz-tagging": header}, body=BODY)
    assert (status, error_code(body)) == (400, err), why
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="new")
    assert code(ei)[1] == 404


def test_tag_limits_are_counted_in_characters(anycloud, bucket):
    s3 = s3_client(anycloud)
    s3.put_object(Bucket=bucket, Key="obj", Body=BODY)
    ten = {"\u00e9" * 128 if i == 0 else "k%d" % i: "\u65e5" * 256 for i in range(10)}
    s3.put_object_tagging(Bucket=bucket, Key="obj", Tagging=tagset(ten))
    assert tags_of(s3, bucket, "obj") == ten
    for body in (b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
                 b"<Tagging><Other/></Tagging>", b"<Tagging><TagSet><Tag><Key>k",
                 b"<NotTagging/>"):
        status, _, resp = s3_raw(anycloud, "PUT", "/%s/obj?tagging" % bucket, body=body)
        assert (status, error_code(resp)) == (400, "MalformedXML"), body
    assert tags_of(s3, bucket, "obj") == ten
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == BODY


def test_tags_of_versions(anycloud, bucket):
    s3 = s3_client(anycloud)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="obj", Body=b"one", Tagging="gen=1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="obj", Body=b"two")["VersionId"]
    assert tags_of(s3, bucket, "obj") == {}
    assert tags_of(s3, bucket, "obj", VersionId=v1) == {"gen": "1"}
    r = s3.put_object_tagging(Bucket=bucket, Key="obj", VersionId=v1, Tagging=tagset({"gen": "first"}))
    assert r["VersionId"] == v1
    r = s3.put_object_tagging(Bucket=bucket, Key="obj", Tagging=tagset({"gen": "second"}))
    assert r["VersionId"] == v2
    assert tags_of(s3, bucket, "obj", VersionId=v1) == {"gen": "first"}
    assert s3.get_object_tagging(Bucket=bucket, Key="obj")["VersionId"] == v2
    assert s3.get_object(Bucket=bucket, Key="obj", VersionId=v1)["Body"].read() == b"one"
    assert s3.delete_object_tagging(Bucket=bucket, Key="obj", VersionId=v1)["VersionId"] == v1
    assert tags_of(s3, bucket, "obj", VersionId=v1) == {}
    assert tags_of(s3, bucket, "obj") == {"gen": "second"}
    # a delete marker has no tags
    marker = s3.delete_object(Bucket=bucket, Key="obj")["VersionId"]
    with pytest.raises(ClientError) as ei:
        s3.get_object_tagging(Bucket=bucket, Key="obj")
    assert code(ei) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as ei:
        s3.put_object_tagging(Bucket=bucket, Key="obj", VersionId=marker, Tagging=tagset({"a": "b"}))
    assert code(ei) == ("MethodNotAllowed", 405)
    with pytest.raises(ClientError) as ei:
        s3.get_object_tagging(Bucket=bucket, Key="obj", VersionId="0" * 32)
    assert code(ei) == ("NoSuchVersion", 404)


def test_only_the_owner_sees_and_changes_tags(anycloud, bucket):
    s3 = s3_client(anycloud)
    s3.put_object(Bucket=bucket, Key="public", Body=BODY, ACL="public-read", Tagging="secret=tag")
    _, key, secret = new_tenant(anycloud, "tagging-other")
    other = s3_client(anycloud, access_key=key, secret_key=secret)
    assert other.get_object(Bucket=bucket, Key="public")["Body"].read() == BODY   # public-read: the bytes
    for call, args in ((other.get_object_tagging, {}), (other.put_object_tagging, {"Tagging": tagset({"x": "y"})}),
                       (other.delete_object_tagging, {})):
        with pytest.raises(ClientError) as ei:
            call(Bucket=bucket, Key="public", **args)
        assert code(ei) == ("AccessDenied", 403)
    status, _, body = s3_raw(anycloud, "GET", "/%s/public?tagging" % bucket, sign=False)
    assert (status, error_code(body)) == (403, "AccessDenied")
    assert tags_of(s3, bucket, "public") == {"secret": "tag"}


def test_cli_s3api_tagging(anycloud, bucket):
    s3 = s3_client(anycloud)
    s3.put_object(Bucket=bucket, Key="cli", Body=BODY)

    def cli(*args):
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", anycloud.env["VIRGA_S3_URL"], "--output", "json",
                            "s3api", *args, "--bucket", bucket, "--key", "cli"],
                           capture_output=True, text=True, env=aws_env(anycloud), timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout) if r.stdout.strip() else None

    cli("put-object-tagging", "--tagging", "TagSet=[{Key=env,Value=prod},{Key=team,Value=storage}]")
    out = cli("get-object-tagging")
    assert {t["Key"]: t["Value"] for t in out["TagSet"]} == {"env": "prod", "team": "storage"}
    cli("delete-object-tagging")
    assert cli("get-object-tagging")["TagSet"] == []
    assert s3.get_object(Bucket=bucket, Key="cli")["Body"].read() == BODY
