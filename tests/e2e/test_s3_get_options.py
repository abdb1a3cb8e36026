"""What a GetObject or HeadObject may ask besides the bytes, and GetObjectAttributes, with
the unmodified boto3 and AWS CLI (and today's boto3 where Debian's lacks a parameter) on
both storage backends: response-* header overrides (signed requests and presigned URLs;
anonymous ones are InvalidRequest), partNumber (one part of a multipart object, its
Content-Range and x-amz-mp-parts-count; part 1 of a simple object is the whole; past the
last part 416 InvalidPartNumber), GetObjectAttributes (ETag, Checksum, ObjectParts paged,
StorageClass, ObjectSize, by version) and the checksum algorithm in listings."""
import base64
import datetime
import email.utils
import hashlib
import json
import subprocess
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Tenant, aws_env, error_code, remove_bucket, s3_client, s3_raw

MiB = 1024 * 1024
PARTS = [b"1" * 5 * MiB, b"2" * (5 * MiB + 7), b"3" * 1024]


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def bucket(anycloud):
    s3 = s3_client(anycloud)
    name = "get-opts-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=name)
    yield s3, name
    remove_bucket(s3, name)


def multipart(s3, bucket, key, **create):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    parts = []
    for i, body in enumerate(PARTS):
        args = {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}
        p = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i + 1, Body=body, **args)
        parts.append({"PartNumber": i + 1, "ETag": p["ETag"],
                      **({"ChecksumCRC32": p["ChecksumCRC32"]} if "ChecksumCRC32" in p else {})})
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts})


# ---- response-* overrides ---------------------------------------------------------------

OVERRIDES = {"ResponseContentType": "text/x-override", "ResponseContentLanguage": "fr",
             "ResponseCacheControl": "max-age=60", "ResponseContentDisposition": 'attachment; filename="a b.txt"',
             "ResponseContentEncoding": "identity"}


def test_response_overrides_on_get_and_head(bucket, anycloud):
    s3, b = bucket
    s3.put_object(Bucket=b, Key="o", Body=b"body", ContentType="text/plain", CacheControl="no-cache")
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    got = s3.get_object(Bucket=b, Key="o", ResponseExpires=expires, **OVERRIDES)
    h = got["ResponseMetadata"]["HTTPHeaders"]
    assert got["Body"].read() == b"body"
    assert h["content-type"] == "text/x-override" and h["content-language"] == "fr"
    assert h["cache-control"] == "max-age=60"   # the override, not the stored value, and only once
    assert h["content-disposition"] == 'attachment; filename="a b.txt"' and h["content-encoding"] == "identity"
    assert email.utils.parsedate_to_datetime(h["expires"]) == expires
    # HEAD takes them too (today's SDKs send them; Debian's boto3 has no such parameter)
    status, hh, _ = s3_raw(anycloud, "HEAD", "/%s/o?response-content-type=a%%2Fb&response-cache-control=private" % b)
    assert status == 200 and hh["content-type"] == "a/b" and hh["cache-control"] == "private"
    # the stored headers are unchanged
    head = s3.head_object(Bucket=b, Key="o")
    assert head["ContentType"] == "text/plain" and head["CacheControl"] == "no-cache"
    assert "ContentDisposition" not in head


def test_response_overrides_in_a_presigned_url_and_never_anonymous(bucket, anycloud):
    s3, b = bucket
    s3.put_object(Bucket=b, Key="o", Body=b"body", ACL="public-read")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "o",
                                                          "ResponseContentDisposition": "attachment; filename=x.bin"})
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.headers["Content-Disposition"] == "attachment; filename=x.bin" and r.read() == b"body"
    status, _, body = s3_raw(anycloud, "GET", "/%s/o?response-content-type=text%%2Fhtml" % b, sign=False)
    assert (status, error_code(body)) == (400, "InvalidRequest")
    assert s3_raw(anycloud, "GET", "/%s/o" % b, sign=False)[0] == 200   # the public object itself is readable


# ---- partNumber ----------------------------------------------------------------------------

def test_part_number_reads_one_part(bucket):
    s3, b = bucket
    multipart(s3, b, "mp")
    offsets = [0, len(PARTS[0]), len(PARTS[0]) + len(PARTS[1])]
    total = sum(len(p) for p in PARTS)
    for n, body in enumerate(PARTS, 1):
        got = s3.get_object(Bucket=b, Key="mp", PartNumber=n)
        assert got["Body"].read() == body
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206 and got["PartsCount"] == 3
        assert got["ContentRange"] == "bytes %d-%d/%d" % (offsets[n - 1], offsets[n - 1] + len(body) - 1, total)
        head = s3.head_object(Bucket=b, Key="mp", PartNumber=n)
        assert head["ContentLength"] == len(body) and head["PartsCount"] == 3
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=b, Key="mp", PartNumber=4)
    assert code(ei) == ("InvalidPartNumber", 416)
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=b, Key="mp", PartNumber=1, Range="bytes=0-1")
    assert code(ei) == ("InvalidRequest", 400)


def test_part_number_of_a_simple_object(bucket, anycloud):
    s3, b = bucket
    s3.put_object(Bucket=b, Key="simple", Body=b"whole")
    got = s3.get_object(Bucket=b, Key="simple", PartNumber=1)
    assert got["Body"].read() == b"whole" and "PartsCount" not in got
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=b, Key="simple", PartNumber=2)
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    for bad in ("0", "abc", "10001"):
        status, _, body = s3_raw(anycloud, "GET", "/%s/simple?partNumber=%s" % (b, bad))
        assert (status, error_code(body)) == (400, "InvalidArgument"), bad


# ---- GetObjectAttributes --------------------------------------------------------------------

ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def test_get_object_attributes_of_a_multipart_object(bucket):
    s3, b = bucket
    done = multipart(s3, b, "mp", ChecksumAlgorithm="CRC32")
    a = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=ALL)
    assert a["ETag"] == done["ETag"].strip('"') and a["ObjectSize"] == sum(len(p) for p in PARTS)
    assert a["StorageClass"] == "STANDARD" and a["Checksum"]["ChecksumCRC32"] == done["ChecksumCRC32"]
    parts = a["ObjectParts"]
    assert parts["TotalPartsCount"] == 3 and parts["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"]) for p in parts["Parts"]] == [(i + 1, len(p)) for i, p in enumerate(PARTS)]
    page = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=2)["ObjectParts"]
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2] and page["IsTruncated"] is True
    assert page["NextPartNumberMarker"] == 2
    rest = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=2,
                                    PartNumberMarker=2)["ObjectParts"]
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and rest["IsTruncated"] is False
    only = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == a["ObjectSize"] and "ETag" not in only and "ObjectParts" not in only


def test_get_object_attributes_by_version_and_access(bucket, anycloud):
    s3, b = bucket
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=b, Key="o", Body=b"first", ChecksumAlgorithm="SHA256")["VersionId"]
    s3.put_object(Bucket=b, Key="o", Body=b"second!")
    a = s3.get_object_attributes(Bucket=b, Key="o", VersionId=v1, ObjectAttributes=["ObjectSize", "Checksum"])
    assert a["ObjectSize"] == 5 and a["VersionId"] == v1
    assert a["Checksum"]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"first").digest()).decode()
    assert "ObjectParts" not in s3.get_object_attributes(Bucket=b, Key="o", ObjectAttributes=["ObjectParts"])
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", anycloud.env["VIRGA_S3_URL"], "s3api",
                        "get-object-attributes", "--bucket", b, "--key", "o", "--object-attributes", "ObjectSize",
                        "ETag"], capture_output=True, text=True, timeout=60, env=aws_env(anycloud))
    assert r.returncode == 0 and json.loads(r.stdout)["ObjectSize"] == 7, r.stderr
    status, _, body = s3_raw(anycloud, "GET", "/%s/o?attributes" % b, headers={"x-amz-object-attributes": "Bogus"})
    assert (status, error_code(body)) == (400, "InvalidArgument")
    s3.delete_object(Bucket=b, Key="o")   # a delete marker is the latest now
    with pytest.raises(ClientError) as ei:
        s3.get_object_attributes(Bucket=b, Key="o", ObjectAttributes=["ObjectSize"])
    assert code(ei) == ("NoSuchKey", 404)


def test_get_object_attributes_needs_read_access(cloud):
    owner, other = (Tenant(cloud, "attrs-%s-%s" % (n, uuid.uuid4().hex[:6])) for n in ("owner", "other"))
    name = "attrs-" + uuid.uuid4().hex[:8]
    owner.s3.create_bucket(Bucket=name)
    owner.s3.put_object(Bucket=name, Key="o", Body=b"private")
    with pytest.raises(ClientError) as ei:
        other.s3.get_object_attributes(Bucket=name, Key="o", ObjectAttributes=["ObjectSize"])
    assert code(ei) == ("AccessDenied", 403)
    owner.s3.put_object_acl(Bucket=name, Key="o", GrantRead='id="%s"' % other.canonical)
    assert other.s3.get_object_attributes(Bucket=name, Key="o", ObjectAttributes=["ObjectSize"])["ObjectSize"] == 7
    owner.s3.delete_object(Bucket=name, Key="o")
    owner.s3.delete_bucket(Bucket=name)


# ---- listings --------------------------------------------------------------------------------

def test_listings_name_each_version_checksum_algorithm(bucket):
    s3, b = bucket
    s3.put_object(Bucket=b, Key="default", Body=b"x")
    s3.put_object(Bucket=b, Key="crc32", Body=b"x", ChecksumAlgorithm="CRC32")
    by_key = {o["Key"]: o for o in s3.list_objects_v2(Bucket=b)["Contents"]}
    assert by_key["default"]["ChecksumAlgorithm"] == ["CRC64NVME"]
    assert by_key["crc32"]["ChecksumAlgorithm"] == ["CRC32"]
    versions = {v["Key"]: v for v in s3.list_object_versions(Bucket=b)["Versions"]}
    assert versions["crc32"]["ChecksumAlgorithm"] == ["CRC32"]
    assert {o["Key"]: o["ChecksumAlgorithm"] for o in s3.list_objects(Bucket=b)["Contents"]} == \
        {"default": ["CRC64NVME"], "crc32": ["CRC32"]}
