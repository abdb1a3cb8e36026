"""What the HTTP layer refuses, in each API's own error shape, written on the wire by hand
(sockets and http.client), since SDKs cannot send most of these requests.

- A request target over the limit (8 KiB): S3 414 InvalidURI; EC2 and IAM 414
  RequestURITooLong, each as its API's XML with a request id. Before, libmicrohttpd
  answered HTML or nothing.
- A header section over the limit (8 KiB): 400 RequestHeaderSectionTooLarge (AWS's S3
  code), also several times over the limit.
- A gateway body over gateway.max_body: 413 RequestEntityTooLarge (was text/plain).
- A body that stalls after part of it: 400 RequestTimeout after body_idle_timeout_s
  (5 s in the test clouds), and the partial upload leaves nothing: no object, no
  version, no upload, no data or pending index entry in the storage backend. Before,
  the connection was closed with no answer after 60 s.
- A body shorter than its Content-Length whose sender ends its side: 400 IncompleteBody.
- x-amz-decoded-content-length negative, not a number or past 64 bits is
  MissingContentLength (what S3 answers), never EntityTooLarge; a valid one over the
  object limit is EntityTooLarge.
- Expect: 100-continue: a PUT that is taken gets 100 Continue and works (curl, boto3);
  one refused anyway (no such bucket, access denied, too large) gets the final error
  instead, and the body is never sent (curl's size_upload is 0).
"""
import os
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Tenant, error_code, s3_client, s3_raw, s3_signed_headers

LIMIT = 8 * 1024
EC2_QUERY = "/?Action=DescribeRegions&Version=2016-11-15"
IAM_QUERY = "/?Action=ListUsers&Version=2010-05-08"
IAM_AUTH = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, " \
           "Signature=00"


def hostport(cloud, which):
    host, port = cloud.env[which].split("//")[1].split(":")
    return host, int(port)


def exchange(cloud, which, head, body=b"", then=None, timeout=60):
    """Send head (+ body) on a new connection, then do then(sock) (stall, half-close);
    read the answer until the server closes or the timeout bound. Returns (status,
    headers, body bytes)."""
    host, port = hostport(cloud, which)
    if b"\r\nhost:" not in head.lower():   # as signed: host:port
        first, _, rest = head.partition(b"\r\n")
        head = first + b"\r\nHost: %s:%d\r\n" % (host.encode(), port) + rest
    s = socket.create_connection((host, port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(head + body)
        except (ConnectionResetError, BrokenPipeError):
            then = None   # answered before the whole body was sent: read what came
        if then:
            then(s)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
            if b"\r\n\r\n" in out:
                h, _, rest = out.partition(b"\r\n\r\n")
                n = [int(x.split(b":")[1]) for x in h.split(b"\r\n") if x.lower().startswith(b"content-length:")]
                if n and len(rest) >= n[0]:
                    break
    finally:
        s.close()
    h, _, rest = out.partition(b"\r\n\r\n")
    lines = h.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else None
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, headers, rest


def request_head(method, target, headers):
    lines = ["%s %s HTTP/1.1" % (method, target)] + ["%s: %s" % kv for kv in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_s3_error(status, headers, body, want_status, want_code):
    assert (status, error_code(body)) == (want_status, want_code), (status, body[:300])
    text = body.decode()
    assert text.lstrip().startswith("<?xml") or text.startswith("<Error>"), text
    assert "<Error>" in text and "<RequestId>%s</RequestId>" % headers["x-amz-request-id"] in text, text


def assert_ec2_error(status, headers, body, want_status, want_code):
    assert (status, error_code(body)) == (want_status, want_code), (status, body[:300])
    text = body.decode()
    assert "<Response><Errors><Error>" in text and "<RequestID>%s</RequestID>" % headers["x-amz-request-id"] in text


def assert_iam_error(status, headers, body, want_status, want_code):
    assert (status, error_code(body)) == (want_status, want_code), (status, body[:300])
    text = body.decode()
    assert "<ErrorResponse" in text and "<Type>Sender</Type>" in text, text
    assert "<RequestId>%s</RequestId>" % headers["x-amz-request-id"] in text, text


# ---- request target and header section ----------------------------------------------

@pytest.mark.parametrize("pad", [LIMIT, 3 * LIMIT])
def test_s3_request_target_too_long(cloud, pad):
    status, headers, body = exchange(cloud, "VIRGA_S3_URL", request_head(
        "GET", "/some-bucket?prefix=" + "a" * pad, {"Host": "s3"}))
    assert_s3_error(status, headers, body, 414, "InvalidURI")
    # a target just inside the limit reaches S3 itself, which judges the prefix
    s3_client(cloud).create_bucket(Bucket="limits-uri-%d" % pad)
    status, _, body = s3_raw(cloud, "GET", "/limits-uri-%d?prefix=%s" % (pad, "a" * (LIMIT - 100)))
    assert (status, error_code(body)) == (400, "KeyTooLongError"), body


@pytest.mark.parametrize("pad", [LIMIT, 3 * LIMIT])
def test_s3_header_section_too_large(cloud, pad):
    status, headers, body = exchange(cloud, "VIRGA_S3_URL", request_head(
        "GET", "/some-bucket", {"Host": "s3", "X-Pad": "p" * pad}))
    assert_s3_error(status, headers, body, 400, "RequestHeaderSectionTooLarge")
    # a signed PUT with the header section over the limit stores nothing
    s3 = s3_client(cloud)
    bucket = "limits-hdr-%d" % pad
    s3.create_bucket(Bucket=bucket)
    st, _, body = s3_raw(cloud, "PUT", "/%s/k" % bucket, headers={"x-amz-meta-pad": "p" * pad}, body=b"x")
    assert (st, error_code(body)) == (400, "RequestHeaderSectionTooLarge")
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="k")
    assert ei.value.response["Error"]["Code"] == "404"


@pytest.mark.parametrize("pad", [LIMIT, 3 * LIMIT])
def test_gateway_request_target_too_long(cloud, pad):
    status, headers, body = exchange(cloud, "VIRGA_EC2_URL", request_head(
        "GET", EC2_QUERY + "&Pad=" + "a" * pad, {"Host": "ec2"}))
    assert_ec2_error(status, headers, body, 414, "RequestURITooLong")
    status, headers, body = exchange(cloud, "VIRGA_EC2_URL", request_head(
        "GET", IAM_QUERY + "&Pad=" + "a" * pad, {"Host": "iam"}))
    assert_iam_error(status, headers, body, 414, "RequestURITooLong")


def test_gateway_header_section_too_large(cloud):
    status, headers, body = exchange(cloud, "VIRGA_EC2_URL", request_head(
        "GET", EC2_QUERY, {"Host": "ec2", "X-Pad": "p" * LIMIT}))
    assert_ec2_error(status, headers, body, 400, "RequestHeaderSectionTooLarge")
    status, headers, body = exchange(cloud, "VIRGA_EC2_URL", request_head(
        "POST", "/", {"Host": "iam", "Authorization": IAM_AUTH, "X-Pad": "p" * LIMIT, "Content-Length": "0"}))
    assert_iam_error(status, headers, body, 400, "RequestHeaderSectionTooLarge")


def test_gateway_body_too_large(cloud):
    """Over gateway.max_body (1 MiB): refused from Content-Length, before the body."""
    for auth, check in ((None, assert_ec2_error), (IAM_AUTH, assert_iam_error)):
        h = {"Host": "ec2", "Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(2 << 20),
             "Expect": "100-continue"}
        if auth:
            h["Authorization"] = auth
        status, headers, body = exchange(cloud, "VIRGA_EC2_URL", request_head("POST", "/", h))
        check(status, headers, body, 413, "RequestEntityTooLarge")


# ---- bodies that stall or end short -------------------------------------------------

def backend_leftovers(cloud, bucket):
    """What the storage backend holds for a bucket: data objects or files, and pending
    index entries (the session cloud's RADOS, dir_cloud's directory)."""
    bucket_id = cloud.psql("SELECT id FROM objectstore.buckets WHERE name = '%s'" % bucket)
    assert bucket_id
    objects = os.path.join(cloud.dir, "objects")
    if os.path.isdir(objects):
        data = os.path.join(objects, "data", bucket_id)
        return sorted(os.listdir(data)) if os.path.isdir(data) else []
    ceph = os.path.join(cloud.dir, "ceph")
    base = ["rados", "-c", os.path.join(ceph, "ceph.conf"), "--id", "virga", "--keyring",
            os.path.join(ceph, "ceph.client.virga.keyring"), "-p", "virga"]
    ls = subprocess.run(base + ["ls"], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    data = [o for o in ls if o.startswith("d.%s." % bucket_id)]
    keys = subprocess.run(base + ["listomapkeys", "i." + bucket_id], capture_output=True, text=True,
                          timeout=60).stdout.split()
    return data + [k for k in keys if k.startswith("p")]


def assert_nothing_left(cloud, s3, bucket, key):
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key=key)
    assert ei.value.response["Error"]["Code"] == "404"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert not s3.list_object_versions(Bucket=bucket).get("Versions")
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert backend_leftovers(cloud, bucket) == []


def stall(sock):
    """Send nothing more: the server's idle limit decides."""


def half_close(sock):
    sock.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_s3_stalled_upload_is_request_timeout_and_leaves_nothing(anycloud, chunked):
    """5 MiB of an 8 MiB PUT (more than a RADOS stripe: data and the pending index
    entry are written), then silence."""
    s3 = s3_client(anycloud)
    bucket = "limits-stall-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    part = b"s" * (5 << 20)
    if chunked:
        h = {"Transfer-Encoding": "chunked"}
        sent = b"%x\r\n" % len(part) + part + b"\r\n"
    else:
        h = {"Content-Length": str(8 << 20)}
        sent = part
    h = s3_signed_headers(anycloud, "PUT", "/%s/obj" % bucket, h, payload_hash="UNSIGNED-PAYLOAD")
    t0 = time.time()
    status, headers, body = exchange(anycloud, "VIRGA_S3_URL", request_head("PUT", "/%s/obj" % bucket, h), sent,
                                     then=stall)
    assert_s3_error(status, headers, body, 400, "RequestTimeout")
    assert "not read from or written to within the timeout period" in body.decode()
    assert time.time() - t0 < 60   # answered, not cut by the connection timeout
    assert_nothing_left(anycloud, s3, bucket, "obj")


def test_s3_body_shorter_than_content_length_is_incomplete_body(anycloud):
    s3 = s3_client(anycloud)
    bucket = "limits-short-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    h = s3_signed_headers(anycloud, "PUT", "/%s/obj" % bucket, {"Content-Length": str(3 << 20)},
                          payload_hash="UNSIGNED-PAYLOAD")
    status, headers, body = exchange(anycloud, "VIRGA_S3_URL", request_head("PUT", "/%s/obj" % bucket, h),
                                     b"x" * (2 << 20), then=half_close)
    assert_s3_error(status, headers, body, 400, "IncompleteBody")
    assert_nothing_left(anycloud, s3, bucket, "obj")


def test_gateway_stalled_and_short_bodies(cloud):
    for auth, check in ((None, assert_ec2_error), (IAM_AUTH, assert_iam_error)):
        h = {"Host": "ec2", "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "1000"}
        if auth:
            h["Authorization"] = auth
        status, headers, body = exchange(cloud, "VIRGA_EC2_URL", request_head("POST", "/", h), b"Action=Descr",
                                         then=stall)
        check(status, headers, body, 400, "RequestTimeout")
        status, headers, body = exchange(cloud, "VIRGA_EC2_URL", request_head("POST", "/", h), b"Action=Descr",
                                         then=half_close)
        check(status, headers, body, 400, "IncompleteBody")


def test_decoded_content_length_that_is_not_a_length(dir_cloud):
    """Refused before any byte of the body; EntityTooLarge only for a real length over
    the object limit (64 MiB in dir_cloud)."""
    s3 = s3_client(dir_cloud)
    s3.create_bucket(Bucket="limits-decoded")
    cases = [("-1", 411, "MissingContentLength"), ("abc", 411, "MissingContentLength"),
             ("99999999999999999999999", 411, "MissingContentLength"), ("", 411, "MissingContentLength"),
             (str(1 << 40), 400, "EntityTooLarge")]
    for decoded, want_status, want_code in cases:
        h = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": decoded}
        st, _, body = s3_raw(dir_cloud, "PUT", "/limits-decoded/k", headers=h, body=b"0\r\n\r\n",
                             payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        assert (st, error_code(body)) == (want_status, want_code), (decoded, body)
    assert s3.list_objects_v2(Bucket="limits-decoded").get("KeyCount") == 0


# ---- Expect: 100-continue -------------------------------------------------------------

def curl_put(cloud, path, filename, access_key=None, secret_key=None):
    """curl -T with Expect: 100-continue and curl's own SigV4; returns (status, body,
    bytes of the body curl sent, verbose log)."""
    key = access_key or cloud.env["AWS_ACCESS_KEY_ID"]
    secret = secret_key or cloud.env["AWS_SECRET_ACCESS_KEY"]
    with tempfile.NamedTemporaryFile() as out:
        r = subprocess.run(["curl", "-sS", "-v", "-o", out.name, "-w", "%{http_code} %{size_upload}",
                            "--aws-sigv4", "aws:amz:%s:s3" % cloud.env["AWS_DEFAULT_REGION"],
                            "--user", "%s:%s" % (key, secret), "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                            "-H", "Expect: 100-continue", "--expect100-timeout", "30",
                            "-T", filename, cloud.env["VIRGA_S3_URL"] + path],
                           capture_output=True, text=True, timeout=120)
        status, sent = r.stdout.split()
        return int(status), open(out.name, "rb").read(), int(sent), r.stderr


def test_expect_100_continue_with_curl(dir_cloud):
    s3 = s3_client(dir_cloud)
    s3.create_bucket(Bucket="limits-expect")
    other = Tenant(dir_cloud, "limits-expect-" + uuid.uuid4().hex[:8])
    with tempfile.TemporaryDirectory() as d:
        small = os.path.join(d, "small")
        with open(small, "wb") as f:
            f.write(b"e" * (2 << 20))
        big = os.path.join(d, "big")
        with open(big, "wb") as f:
            f.truncate(64 * 1024 * 1024 + 1)   # one byte over dir_cloud's object limit
        status, body, sent, log = curl_put(dir_cloud, "/limits-expect/ok", small)
        assert status == 200 and sent == 2 << 20, (body, log)
        assert "HTTP/1.1 100 Continue" in log
        assert s3.get_object(Bucket="limits-expect", Key="ok")["Body"].read() == b"e" * (2 << 20)
        refused = [("/limits-expect-nope/k", small, {}, 404, "NoSuchBucket"),
                   ("/limits-expect/k", small, {"access_key": other.key, "secret_key": other.secret}, 403,
                    "AccessDenied"),
                   ("/limits-expect/k", big, {}, 400, "EntityTooLarge")]
        for path, fn, who, want_status, want_code in refused:
            status, body, sent, log = curl_put(dir_cloud, path, fn, **who)
            assert (status, error_code(body)) == (want_status, want_code), (path, body, log)
            assert sent == 0 and "100 Continue" not in log, (path, log)
    assert s3.list_objects_v2(Bucket="limits-expect")["KeyCount"] == 1


def test_expect_100_continue_with_boto3(cloud):
    """botocore sends Expect: 100-continue on PutObject and UploadPart bodies over 1 MB."""
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="limits-expect-boto")
    data = os.urandom(3 << 20)
    s3.put_object(Bucket="limits-expect-boto", Key="big", Body=data)
    assert s3.get_object(Bucket="limits-expect-boto", Key="big")["Body"].read() == data
    up = s3.create_multipart_upload(Bucket="limits-expect-boto", Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket="limits-expect-boto", Key="mp", UploadId=up, PartNumber=1, Body=data)["ETag"]
    s3.complete_multipart_upload(Bucket="limits-expect-boto", Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.head_object(Bucket="limits-expect-boto", Key="mp")["ContentLength"] == len(data)
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket="limits-expect-boto-nope", Key="big", Body=data)
    assert ei.value.response["Error"]["Code"] == "NoSuchBucket"
    other = Tenant(cloud, "limits-expect-boto-" + uuid.uuid4().hex[:8])
    with pytest.raises(ClientError) as ei:
        s3_client(cloud, other.key, other.secret).put_object(Bucket="limits-expect-boto", Key="x", Body=data)
    assert ei.value.response["Error"]["Code"] == "AccessDenied"
