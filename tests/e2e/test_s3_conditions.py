"""Conditional copies and user metadata, with the unmodified boto3 and AWS CLI on both
storage backends: x-amz-copy-source-if-match / -if-none-match / -if-modified-since /
-if-unmodified-since on CopyObject and UploadPartCopy, combined as S3 combines them
(412 PreconditionFailed, nothing written), and x-amz-meta-* values with non-ASCII text
kept exactly through PUT, HEAD, GET, CopyObject and multipart uploads."""
import base64
import datetime
import email.header
import subprocess

import pytest
from botocore.exceptions import ClientError

from harness import aws_env, error_code, remove_bucket, s3_client, s3_raw

MiB = 1024 * 1024
HOUR = datetime.timedelta(hours=1)


def s3api(cloud, *args):
    """/usr/bin/aws s3api ... against the S3 endpoint."""
    return subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_S3_URL"], "s3api", *args],
                          capture_output=True, text=True, timeout=60, env=aws_env(cloud))


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


def missing(s3, bucket, key):
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key=key)
    return ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.fixture
def src(anycloud):
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="copy-if")
    s3.put_object(Bucket="copy-if", Key="src", Body=b"source bytes")
    head = s3.head_object(Bucket="copy-if", Key="src")
    yield s3, head["ETag"], head["LastModified"]
    remove_bucket(s3, "copy-if")


# (conditions, copied?) with the source's ETag "E" and Last-Modified "LM"
CASES = [
    ({"CopySourceIfMatch": "E"}, True),
    ({"CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"'}, False),
    ({"CopySourceIfMatch": "*"}, True),
    ({"CopySourceIfNoneMatch": "E"}, False),
    ({"CopySourceIfNoneMatch": '"0123456789abcdef0123456789abcdef"'}, True),
    ({"CopySourceIfModifiedSince": "LM-1h"}, True),
    ({"CopySourceIfModifiedSince": "LM"}, False),
    ({"CopySourceIfUnmodifiedSince": "LM"}, True),
    ({"CopySourceIfUnmodifiedSince": "LM-1h"}, False),
    # S3's combinations: a matching ETag condition decides over its date counterpart
    ({"CopySourceIfMatch": "E", "CopySourceIfUnmodifiedSince": "LM-1h"}, True),
    ({"CopySourceIfNoneMatch": '"0123456789abcdef0123456789abcdef"', "CopySourceIfModifiedSince": "LM"}, True),
    ({"CopySourceIfNoneMatch": "E", "CopySourceIfModifiedSince": "LM-1h"}, False),
    ({"CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"', "CopySourceIfUnmodifiedSince": "LM"}, False),
    ({"CopySourceIfMatch": "E", "CopySourceIfNoneMatch": "E"}, False),
]


def resolve(cond, etag, lm):
    values = {"E": etag, "LM": lm, "LM-1h": lm - HOUR}
    return {k: values.get(v, v) for k, v in cond.items()}


@pytest.mark.parametrize("cond,copied", CASES, ids=[",".join("%s=%s" % kv for kv in c.items()) for c, _ in CASES])
def test_copy_object_conditions(src, cond, copied):
    s3, etag, lm = src
    args = resolve(cond, etag, lm)
    if copied:
        s3.copy_object(Bucket="copy-if", Key="dst", CopySource="copy-if/src", **args)
        assert s3.get_object(Bucket="copy-if", Key="dst")["Body"].read() == b"source bytes"
        return
    with pytest.raises(ClientError) as ei:
        s3.copy_object(Bucket="copy-if", Key="dst", CopySource="copy-if/src", **args)
    assert code(ei) == ("PreconditionFailed", 412)
    assert missing(s3, "copy-if", "dst")   # nothing written


@pytest.mark.parametrize("cond,copied", CASES[:9], ids=[",".join(c) for c, _ in CASES[:9]])
def test_upload_part_copy_conditions(src, cond, copied):
    s3, etag, lm = src
    uid = s3.create_multipart_upload(Bucket="copy-if", Key="mp")["UploadId"]
    args = resolve(cond, etag, lm)
    if copied:
        part = s3.upload_part_copy(Bucket="copy-if", Key="mp", UploadId=uid, PartNumber=1,
                                   CopySource="copy-if/src", **args)
        s3.complete_multipart_upload(Bucket="copy-if", Key="mp", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
        assert s3.get_object(Bucket="copy-if", Key="mp")["Body"].read() == b"source bytes"
        return
    with pytest.raises(ClientError) as ei:
        s3.upload_part_copy(Bucket="copy-if", Key="mp", UploadId=uid, PartNumber=1, CopySource="copy-if/src", **args)
    assert code(ei) == ("PreconditionFailed", 412)
    assert s3.list_parts(Bucket="copy-if", Key="mp", UploadId=uid).get("Parts", []) == []


def test_copy_conditions_with_the_cli(src, anycloud):
    s3, etag, _ = src
    r = s3api(anycloud, "copy-object", "--bucket", "copy-if", "--key", "cli", "--copy-source", "copy-if/src",
            "--copy-source-if-none-match", etag)
    assert r.returncode != 0 and "PreconditionFailed" in r.stderr
    assert missing(s3, "copy-if", "cli")
    r = s3api(anycloud, "copy-object", "--bucket", "copy-if", "--key", "cli", "--copy-source", "copy-if/src",
            "--copy-source-if-match", etag)
    assert r.returncode == 0, r.stderr
    assert s3.get_object(Bucket="copy-if", Key="cli")["Body"].read() == b"source bytes"


# ---- user metadata with non-ASCII text ----------------------------------------------

TEXT = "héllo ✓ 日本語 — ünïcødé"


def rfc2047(text):
    """What a boto3 or AWS CLI user sends: both refuse non-ASCII metadata, so the text goes
    as an RFC 2047 encoded word (as S3 itself returns it)."""
    return "=?UTF-8?B?%s?=" % base64.b64encode(text.encode()).decode()


def decoded(value):
    return "".join(p.decode(c or "ascii") if isinstance(p, bytes) else p
                   for p, c in email.header.decode_header(value))


def test_rfc2047_metadata_round_trips_exactly(anycloud):
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="meta-utf8")
    meta = {"title": rfc2047(TEXT), "plain": "ascii stays", "q": "=?utf-8?q?caf=C3=A9?="}
    try:
        s3.put_object(Bucket="meta-utf8", Key="o", Body=b"x", Metadata=meta)
        assert s3.head_object(Bucket="meta-utf8", Key="o")["Metadata"] == meta
        assert s3.get_object(Bucket="meta-utf8", Key="o")["Metadata"] == meta
        assert decoded(s3.head_object(Bucket="meta-utf8", Key="o")["Metadata"]["title"]) == TEXT
        s3.copy_object(Bucket="meta-utf8", Key="copy", CopySource="meta-utf8/o")
        assert s3.head_object(Bucket="meta-utf8", Key="copy")["Metadata"] == meta
        s3.copy_object(Bucket="meta-utf8", Key="replaced", CopySource="meta-utf8/o", MetadataDirective="REPLACE",
                       Metadata={"title": rfc2047(TEXT[::-1])})
        assert s3.head_object(Bucket="meta-utf8", Key="replaced")["Metadata"] == {"title": rfc2047(TEXT[::-1])}
        uid = s3.create_multipart_upload(Bucket="meta-utf8", Key="mp", Metadata=meta)["UploadId"]
        p1 = s3.upload_part(Bucket="meta-utf8", Key="mp", UploadId=uid, PartNumber=1, Body=b"a" * 5 * MiB)
        p2 = s3.upload_part(Bucket="meta-utf8", Key="mp", UploadId=uid, PartNumber=2, Body=b"b")
        s3.complete_multipart_upload(Bucket="meta-utf8", Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
        assert s3.head_object(Bucket="meta-utf8", Key="mp")["Metadata"] == meta
        # and the CLI shows it the same
        r = s3api(anycloud, "head-object", "--bucket", "meta-utf8", "--key", "mp")
        assert r.returncode == 0 and rfc2047(TEXT) in r.stdout
    finally:
        for k in ("o", "copy", "replaced", "mp"):
            s3.delete_object(Bucket="meta-utf8", Key=k)
        s3.delete_bucket(Bucket="meta-utf8")


def test_raw_utf8_metadata_comes_back_as_s3_encodes_it(anycloud):
    # The JavaScript SDK sends non-ASCII metadata as raw UTF-8 bytes; S3 returns such a
    # value as an RFC 2047 word, which decodes to exactly the text sent.
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="meta-raw")
    try:
        status, _, body = s3_raw(anycloud, "PUT", "/meta-raw/o", headers={"x-amz-meta-title": TEXT}, body=b"x",
                                 utf8_headers=True)
        assert status == 200, body
        got = s3.head_object(Bucket="meta-raw", Key="o")["Metadata"]["title"]
        assert got.isascii() and decoded(got) == TEXT
        s3.copy_object(Bucket="meta-raw", Key="copy", CopySource="meta-raw/o")
        assert decoded(s3.get_object(Bucket="meta-raw", Key="copy")["Metadata"]["title"]) == TEXT
    finally:
        for k in ("o", "copy"):
            s3.delete_object(Bucket="meta-raw", Key=k)
        s3.delete_bucket(Bucket="meta-raw")


def test_metadata_that_is_not_utf8_is_refused_not_dropped(anycloud):
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="meta-latin1")
    s3.put_bucket_policy(Bucket="meta-latin1", Policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                         '"Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::meta-latin1/*"}]}')
    try:
        # unsigned (a signature covers UTF-8 text): one Latin-1 byte 0xE9
        status, _, body = s3_raw(anycloud, "PUT", "/meta-latin1/o", headers={"x-amz-meta-title": "caf\xe9"},
                                 body=b"x", sign=False)
        assert (status, error_code(body)) == (400, "InvalidArgument")
        assert missing(s3, "meta-latin1", "o")
    finally:
        s3.delete_bucket(Bucket="meta-latin1")
