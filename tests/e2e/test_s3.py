"""The S3 API with the unmodified AWS CLI and boto3, on both storage backends: the
session cloud stores objects in Ceph RADOS, a second cloud in a local directory."""
import hashlib
import os
import random
import signal
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from harness import aws_s3, new_tenant, s3_client

MiB = 1024 * 1024


def code(ei):
    return ei.value.response["Error"]["Code"]


def test_cli_mb_cp_ls_sync_rm_rb(anycloud):
    c = anycloud
    assert aws_s3(c, "mb", "s3://cli-bucket")[0] == 0
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "src")
        os.makedirs(os.path.join(src, "sub dir"))
        files = {"a.txt": b"hello\n", "sub dir/b+c.bin": os.urandom(300000), "empty": b""}
        for name, data in files.items():
            with open(os.path.join(src, name), "wb") as f:
                f.write(data)
            # S3 times have whole seconds: a file written in the second of its upload
            # would look newer than its copy to the next sync
            os.utime(os.path.join(src, name), (time.time() - 60, time.time() - 60))
        rc, _, err = aws_s3(c, "sync", src, "s3://cli-bucket/tree/")
        assert rc == 0, err
        rc, out, err = aws_s3(c, "ls", "s3://cli-bucket/tree/", "--recursive")
        assert rc == 0, err
        assert sorted(line.split(None, 3)[3] for line in out.splitlines()) == sorted("tree/" + n for n in files)
        rc, out, _ = aws_s3(c, "ls", "s3://cli-bucket/tree/")
        assert "PRE sub dir/" in out
        dst = os.path.join(d, "dst")
        assert aws_s3(c, "sync", "s3://cli-bucket/tree/", dst)[0] == 0
        for name, data in files.items():
            with open(os.path.join(dst, name), "rb") as f:
                assert f.read() == data, name
        # a second sync has nothing to do (sizes and times match what ls reported)
        rc, out, err = aws_s3(c, "sync", src, "s3://cli-bucket/tree/", "--dryrun")
        assert rc == 0 and "upload" not in out, out + err
    rc, _, err = aws_s3(c, "rb", "s3://cli-bucket")
    assert rc != 0 and "BucketNotEmpty" in err
    assert aws_s3(c, "rm", "s3://cli-bucket", "--recursive")[0] == 0
    assert aws_s3(c, "rb", "s3://cli-bucket")[0] == 0
    assert "cli-bucket" not in aws_s3(c, "ls")[1]


def test_multipart_100_mib_round_trip(anycloud):
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="mp-bucket")
    data = random.Random(7).randbytes(100 * MiB)
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        from boto3.s3.transfer import TransferConfig
        cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
        s3.upload_file(f.name, "mp-bucket", "big/object.bin", Config=cfg)
    head = s3.head_object(Bucket="mp-bucket", Key="big/object.bin")
    assert head["ContentLength"] == 100 * MiB
    # the S3 multipart ETag: md5 of the concatenated part md5s, "-<parts>"
    md5s = b"".join(hashlib.md5(data[i:i + 8 * MiB]).digest() for i in range(0, len(data), 8 * MiB))
    assert head["ETag"] == '"%s-%d"' % (hashlib.md5(md5s).hexdigest(), 13)
    got = s3.get_object(Bucket="mp-bucket", Key="big/object.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    part = s3.get_object(Bucket="mp-bucket", Key="big/object.bin", Range="bytes=%d-%d" % (50 * MiB - 3, 50 * MiB + 4))
    assert part["Body"].read() == data[50 * MiB - 3:50 * MiB + 5]
    assert part["ContentRange"] == "bytes %d-%d/%d" % (50 * MiB - 3, 50 * MiB + 4, 100 * MiB)
    s3.delete_object(Bucket="mp-bucket", Key="big/object.bin")
    s3.delete_bucket(Bucket="mp-bucket")


def test_multipart_api_by_hand(anycloud):
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="mp-hand")
    up = s3.create_multipart_upload(Bucket="mp-hand", Key="k", ContentType="text/plain", Metadata={"a": "b"})
    uid = up["UploadId"]
    p1 = s3.upload_part(Bucket="mp-hand", Key="k", UploadId=uid, PartNumber=1, Body=b"1" * (5 * MiB))
    p2 = s3.upload_part(Bucket="mp-hand", Key="k", UploadId=uid, PartNumber=2, Body=b"2" * 100)
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="mp-hand")["Uploads"]] == [uid]
    parts = s3.list_parts(Bucket="mp-hand", Key="k", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, 100)]
    # not visible before Complete
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket="mp-hand", Key="k")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket="mp-hand", Key="k", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": '"0123456789abcdef0123456789abcdef"'}]})
    assert code(ei) == "InvalidPart"
    s3.complete_multipart_upload(Bucket="mp-hand", Key="k", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
    obj = s3.get_object(Bucket="mp-hand", Key="k")
    assert obj["Body"].read() == b"1" * (5 * MiB) + b"2" * 100
    assert obj["Metadata"] == {"a": "b"} and obj["ContentType"] == "text/plain"
    up2 = s3.create_multipart_upload(Bucket="mp-hand", Key="gone")
    s3.upload_part(Bucket="mp-hand", Key="gone", UploadId=up2["UploadId"], PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket="mp-hand", Key="gone", UploadId=up2["UploadId"])
    with pytest.raises(ClientError) as ei:
        s3.list_parts(Bucket="mp-hand", Key="gone", UploadId=up2["UploadId"])
    assert code(ei) == "NoSuchUpload"
    s3.delete_object(Bucket="mp-hand", Key="k")
    s3.delete_bucket(Bucket="mp-hand")


def test_ranges_conditionals_metadata_copy(anycloud):
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="rcm")
    body = bytes(range(256)) * 40
    put = s3.put_object(Bucket="rcm", Key="o", Body=body, ContentType="application/x-test",
                        Metadata={"color": "blue", "n": "1"}, CacheControl="no-cache")
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    assert s3.get_object(Bucket="rcm", Key="o", Range="bytes=10-19")["Body"].read() == body[10:20]
    assert s3.get_object(Bucket="rcm", Key="o", Range="bytes=-5")["Body"].read() == body[-5:]
    assert s3.get_object(Bucket="rcm", Key="o", Range="bytes=10000-")["Body"].read() == body[10000:]
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket="rcm", Key="o", Range="bytes=20000-20001")
    assert code(ei) == "InvalidRange"
    head = s3.head_object(Bucket="rcm", Key="o")
    assert head["Metadata"] == {"color": "blue", "n": "1"}
    assert head["ContentType"] == "application/x-test" and head["CacheControl"] == "no-cache"
    assert head["ContentLength"] == len(body)
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket="rcm", Key="o", IfNoneMatch=put["ETag"])
    assert ei.value.response["Error"]["Code"] == "304"
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket="rcm", Key="o", IfMatch='"nope"')
    assert code(ei) == "PreconditionFailed"
    s3.copy_object(Bucket="rcm", Key="copy", CopySource={"Bucket": "rcm", "Key": "o"})
    cp = s3.get_object(Bucket="rcm", Key="copy")
    assert cp["Body"].read() == body and cp["Metadata"] == {"color": "blue", "n": "1"}
    s3.copy_object(Bucket="rcm", Key="copy2", CopySource="rcm/o", MetadataDirective="REPLACE", Metadata={"x": "y"})
    assert s3.head_object(Bucket="rcm", Key="copy2")["Metadata"] == {"x": "y"}
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket="rcm", Key="bad", Body=b"abc", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")
    assert code(ei) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket="rcm", Key="bad")          # nothing was stored
    for k in ("o", "copy", "copy2"):
        s3.delete_object(Bucket="rcm", Key=k)
    s3.delete_bucket(Bucket="rcm")


@pytest.mark.parametrize("sigver", ["s3v4", "default"])
def test_presigned_get_and_put(anycloud, sigver):
    """boto3's default presigned S3 URLs are still SigV2 (AWSAccessKeyId/Signature/
    Expires); with signature_version="s3v4" they are SigV4. Both must work."""
    s3 = s3_client(anycloud, signature_version="s3v4") if sigver == "s3v4" else s3_client(anycloud)
    bucket = "presign-" + sigver
    s3.create_bucket(Bucket=bucket)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=60)
    # the URL was signed for no Content-Type: send none (urllib would add a form type)
    req = urllib.request.Request(url, data=b"via presigned put", method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"via presigned put"
    tampered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=600") if sigver == "s3v4" else \
        url.replace("Expires=", "Expires=1")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(tampered, timeout=10)
    assert ei.value.code == 403 and b"SignatureDoesNotMatch" in ei.value.read()
    s3.delete_object(Bucket=bucket, Key="up")
    s3.delete_bucket(Bucket=bucket)


def test_s3_errors(cloud):
    s3 = s3_client(cloud)
    with pytest.raises(ClientError) as ei:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert code(ei) == "NoSuchBucket"
    s3.create_bucket(Bucket="errs")
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket="errs", Key="missing")
    assert code(ei) == "NoSuchKey"
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket="errs")
    assert code(ei) == "BucketAlreadyOwnedByYou"
    _, k, sk = new_tenant(cloud, "s3-other")
    with pytest.raises(ClientError) as ei:
        s3_client(cloud, k, sk).create_bucket(Bucket="errs")
    assert code(ei) == "BucketAlreadyExists"
    with pytest.raises(ClientError) as ei:   # the cloud's own names cannot be taken by a tenant
        s3_client(cloud, k, sk).create_bucket(Bucket="virga-images")
    assert code(ei) == "InvalidBucketName" and "reserved" in str(ei.value)
    with pytest.raises(ClientError) as ei:
        s3_client(cloud, cloud.env["AWS_ACCESS_KEY_ID"], "x" * 40).list_buckets()
    assert code(ei) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket="Bad_Name")
    assert code(ei) == "InvalidBucketName"
    s3.put_object(Bucket="errs", Key="k", Body=b"1")
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket="errs")
    assert code(ei) == "BucketNotEmpty"
    s3.delete_object(Bucket="errs", Key="k")
    s3.delete_bucket(Bucket="errs")


def test_entity_too_large(dir_cloud):
    s3 = s3_client(dir_cloud)
    s3.create_bucket(Bucket="limits")
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket="limits", Key="huge", Body=b"\0" * (64 * MiB + 1))
    assert code(ei) == "EntityTooLarge"
    s3.delete_bucket(Bucket="limits")


def test_tenants_private_and_public_read(cloud):
    _, ka, sa = new_tenant(cloud, "s3-tenant-a")
    _, kb, sb = new_tenant(cloud, "s3-tenant-b")
    a, b = s3_client(cloud, ka, sa), s3_client(cloud, kb, sb)
    b.create_bucket(Bucket="b-bucket")
    b.put_object(Bucket="b-bucket", Key="private", Body=b"secret")
    b.put_object(Bucket="b-bucket", Key="public", Body=b"for all", ACL="public-read")
    with pytest.raises(ClientError) as ei:
        a.get_object(Bucket="b-bucket", Key="private")
    assert code(ei) == "AccessDenied"
    assert a.get_object(Bucket="b-bucket", Key="public")["Body"].read() == b"for all"
    with pytest.raises(ClientError) as ei:
        a.put_object(Bucket="b-bucket", Key="intruder", Body=b"x")
    assert code(ei) == "AccessDenied"
    with pytest.raises(ClientError) as ei:
        a.list_objects_v2(Bucket="b-bucket")
    assert code(ei) == "AccessDenied"
    assert "b-bucket" not in [x["Name"] for x in a.list_buckets()["Buckets"]]
    # anonymous: public-read only
    url = cloud.env["VIRGA_S3_URL"] + "/b-bucket/public"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"for all"
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(cloud.env["VIRGA_S3_URL"] + "/b-bucket/private", timeout=10)
    assert ei.value.code == 403


def test_list_versions_and_delete_objects_cleanup(anycloud):
    s3 = s3_client(anycloud)
    s3.create_bucket(Bucket="cleanup")
    keys = ["a", "b/c", "b/d", "z z"]
    for k in keys:
        s3.put_object(Bucket="cleanup", Key=k, Body=k.encode())
    versions = s3.list_object_versions(Bucket="cleanup")["Versions"]
    assert sorted(v["Key"] for v in versions) == keys and all(v["VersionId"] == "null" for v in versions)
    page = s3.list_objects_v2(Bucket="cleanup", MaxKeys=2)
    assert [o["Key"] for o in page["Contents"]] == ["a", "b/c"] and page["IsTruncated"]
    rest = s3.list_objects_v2(Bucket="cleanup", ContinuationToken=page["NextContinuationToken"])
    assert [o["Key"] for o in rest["Contents"]] == ["b/d", "z z"]
    delim = s3.list_objects_v2(Bucket="cleanup", Delimiter="/")
    assert [p["Prefix"] for p in delim["CommonPrefixes"]] == ["b/"]
    assert [o["Key"] for o in delim["Contents"]] == ["a", "z z"]
    out = s3.delete_objects(Bucket="cleanup", Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]}
                                                                  for v in versions]})
    assert sorted(d["Key"] for d in out["Deleted"]) == keys
    s3.delete_bucket(Bucket="cleanup")


def test_killed_object_store_mid_upload_leaves_nothing_visible(cloud):
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="crash")
    import http.client
    host, port = cloud.env["VIRGA_S3_URL"].split("//")[1].split(":")
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    total = 64 * MiB
    req = AWSRequest(method="PUT", url=cloud.env["VIRGA_S3_URL"] + "/crash/partial",
                     headers={"Content-Length": str(total), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(Credentials(cloud.env["AWS_ACCESS_KEY_ID"], cloud.env["AWS_SECRET_ACCESS_KEY"]), "s3",
                cloud.env["AWS_DEFAULT_REGION"]).add_auth(req)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("PUT", "/crash/partial")
    for k, v in req.headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(b"x" * (8 * MiB))          # part of the body is in the object store now
    time.sleep(0.5)
    os.kill(cloud.pid("objectstore"), signal.SIGKILL)
    conn.close()
    r = cloud.up()
    assert r.returncode == 0, r.stderr
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket="crash", Key="partial")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert s3.list_objects_v2(Bucket="crash")["KeyCount"] == 0
    s3.delete_bucket(Bucket="crash")


def test_aws_chunked_streaming_payload(cloud):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD, signed chunk by chunk as the Java and Go SDKs
    do; a tampered chunk is refused and nothing is stored."""
    import hmac
    from datetime import datetime, timezone
    from urllib.parse import urlsplit
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="chunked")
    region, ak, sk = cloud.env["AWS_DEFAULT_REGION"], cloud.env["AWS_ACCESS_KEY_ID"], cloud.env["AWS_SECRET_ACCESS_KEY"]
    host = urlsplit(cloud.env["VIRGA_S3_URL"]).netloc

    def put(path, chunks, tamper=False):
        now = datetime.now(timezone.utc)
        amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        scope = "%s/%s/s3/aws4_request" % (day, region)
        key = ("AWS4" + sk).encode()
        for part in (day, region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sign = lambda sts: hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()  # noqa: E731
        decoded = sum(len(c) for c in chunks)
        body_len = sum(len("%x;chunk-signature=" % len(c)) + 64 + 2 + len(c) + 2 for c in chunks + [b""])
        headers = {"host": host, "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-date": amz,
                   "x-amz-decoded-content-length": str(decoded), "content-encoding": "aws-chunked",
                   "content-length": str(body_len)}
        names = sorted(headers)
        creq = "\n".join(["PUT", path, "", "".join("%s:%s\n" % (n, headers[n]) for n in names), ";".join(names),
                          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
        seed = sign("\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()]))
        headers["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
            ak, scope, ";".join(names), seed)
        body, prev = b"", seed
        for c in chunks + [b""]:
            sig = sign("\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz, scope, prev, hashlib.sha256(b"").hexdigest(),
                                  hashlib.sha256(c).hexdigest()]))
            # tamper with the last data chunk, so the client has sent everything when the
            # server answers (an earlier failure is answered while the body still flows)
            data = c.upper() if tamper and c is chunks[-1] else c
            body += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(c), sig.encode(), data)
            prev = sig
        req = urllib.request.Request(cloud.env["VIRGA_S3_URL"] + path, data=body, method="PUT",
                                     headers={k: v for k, v in headers.items() if k != "host"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    chunks = [b"a" * 65536, b"b" * 1000, b"tail"]
    status, text = put("/chunked/obj", chunks)
    assert status == 200, text
    assert s3.get_object(Bucket="chunked", Key="obj")["Body"].read() == b"".join(chunks)
    status, text = put("/chunked/bad", chunks, tamper=True)
    assert status == 403 and b"SignatureDoesNotMatch" in text
    with pytest.raises(ClientError):
        s3.head_object(Bucket="chunked", Key="bad")
    s3.delete_object(Bucket="chunked", Key="obj")
    s3.delete_bucket(Bucket="chunked")


def test_bucket_quota_from_identity(cloud):
    account, k, sk = new_tenant(cloud, "s3-quota")
    r = cloud.virgadm("quota", "set", account, "buckets", "2")
    assert r.returncode == 0, r.stderr
    s3 = s3_client(cloud, k, sk)
    s3.create_bucket(Bucket="quota-one")
    s3.create_bucket(Bucket="quota-two")
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket="quota-three")
    assert code(ei) == "TooManyBuckets"
    s3.delete_bucket(Bucket="quota-two")
    s3.create_bucket(Bucket="quota-three")
