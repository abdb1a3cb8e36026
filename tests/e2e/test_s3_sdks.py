"""Today's S3 clients against the object store, besides Debian's awscli 2.9 / boto3 1.26
(which every other S3 test uses and which must keep working): the AWS SDK for JavaScript
v3 with lib-storage (npm) and the current boto3 / awscli (PyPI), installed from the
project's pinned files by tests/sdk-setup.sh (a failed install fails these tests).
They send aws-chunked bodies with trailing checksums and x-amz-checksum-* headers by
default; the object store verifies, stores and returns them (x-amz-checksum-mode) as S3
does, on both storage backends. Expected values are computed here (zlib, hashlib, a
table CRC below) or by awscrt, never taken from the object store. The requests no SDK
makes (a signed trailer, malformed framing and headers) are built by hand."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
import zlib
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from harness import ROOT, aws_env, s3_client

MiB = 1024 * 1024
ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]


# ---- independent checksums ----

def _crc_table(poly):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = {"CRC32C": (_crc_table(0x82F63B78), 0xFFFFFFFF, 4),
        "CRC64NVME": (_crc_table(0x9A6C9329AC4BC9B5), 0xFFFFFFFFFFFFFFFF, 8)}


def raw_checksum(alg, data):
    if alg == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if alg in _CRC:   # small inputs only: a table CRC in pure Python
        table, mask, n = _CRC[alg]
        c = mask
        for b in data:
            c = table[(c ^ b) & 0xFF] ^ (c >> 8)
        return (c ^ mask).to_bytes(n, "big")
    return hashlib.new(alg.lower(), data).digest()


def b64(raw):
    return base64.b64encode(raw).decode()


def checksum(alg, data):
    return b64(raw_checksum(alg, data))


# ---- clients ----

def client_env(cloud):
    env = aws_env(cloud)
    env.update({"VIRGA_S3_URL": cloud.env["VIRGA_S3_URL"], "NODE_NO_WARNINGS": "1"})
    return env


def js(sdks, cloud, **op):
    """One operation with the AWS SDK for JavaScript v3 (tests/js/s3_sdk.mjs)."""
    r = subprocess.run([sdks["node"], os.path.join(ROOT, "tests", "js", "s3_sdk.mjs"), json.dumps(op)],
                       capture_output=True, text=True, timeout=300, env=client_env(cloud))
    assert r.stdout.strip(), "node failed: " + r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def py(sdks, cloud, **op):
    """One operation with today's boto3 (tests/lib/sdk_boto3.py in tests/.venv)."""
    r = subprocess.run([sdks["python"], os.path.join(ROOT, "tests", "lib", "sdk_boto3.py"), json.dumps(op)],
                       capture_output=True, text=True, timeout=600, env=client_env(cloud))
    assert r.stdout.strip(), "boto3 failed: " + r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def gone(cloud, bucket, key):
    with pytest.raises(ClientError) as ei:
        s3_client(cloud).head_object(Bucket=bucket, Key=key)
    return ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def make_bucket(cloud, name):
    s3 = s3_client(cloud)
    if name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=name)
    return s3


# ---- the AWS SDK for JavaScript v3 ----

def test_js_put_stream_and_buffer_with_every_algorithm(sdks, anycloud):
    """PutObject with a Readable (sent aws-chunked with a trailing checksum) and with a
    Buffer (a checksum header), each algorithm and the SDK's default (CRC32); the answer,
    a GetObject with ChecksumMode ENABLED (checked by the SDK) and Debian's boto3 agree."""
    c = anycloud
    s3 = make_bucket(c, "js-put")
    for alg in [None] + ALGORITHMS:
        for stream in (True, False):
            key = "%s-%s" % (alg, "stream" if stream else "buffer")
            text = ("today's SDK, %s\n" % key) * 50
            r = js(sdks, c, op="put", bucket="js-put", key=key, text=text, stream=stream, algorithm=alg)
            assert r["ok"], r
            want = alg or "CRC32"
            assert r["Checksum" + want] == checksum(want, text.encode()), (key, r)
            assert r["ChecksumType"] == "FULL_OBJECT"
            g = js(sdks, c, op="get", bucket="js-put", key=key, mode=True)
            assert g["ok"] and g["sha256"] == hashlib.sha256(text.encode()).hexdigest(), g
            assert g["Checksum" + want] == r["Checksum" + want] and g["ChecksumType"] == "FULL_OBJECT"
            # aws-chunked is how the body travelled, not an encoding of the object
            assert g["contentEncoding"] is None
            h = s3.head_object(Bucket="js-put", Key=key)
            assert h["ContentLength"] == len(text) and "ContentEncoding" not in h
    # only asked for (today's SDKs ask by default; boto3 1.26 does not) is it returned
    assert "ChecksumCRC32" not in s3.head_object(Bucket="js-put", Key="CRC32-stream")
    h = s3.head_object(Bucket="js-put", Key="CRC32-stream", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == checksum("CRC32", ("today's SDK, CRC32-stream\n" * 50).encode())


def test_js_lib_storage_uploads_20_mib_stream(sdks, anycloud):
    """@aws-sdk/lib-storage's Upload of a 20 MiB stream of unknown length: a multipart upload
    created with CRC32, parts sent with trailers, completed with their checksums listed;
    the object has S3's composite CRC32 of its 5 MiB parts."""
    c = anycloud
    s3 = make_bucket(c, "js-upload")
    size = 20 * MiB + 1234
    r = js(sdks, c, op="upload", bucket="js-upload", key="big", size=size, seed=3)
    assert r["ok"], r
    body = s3.get_object(Bucket="js-upload", Key="big")["Body"].read()
    assert len(body) == size and hashlib.sha256(body).hexdigest() == r["sha256"]
    parts = [body[i:i + 5 * MiB] for i in range(0, size, 5 * MiB)]
    composite = b64(raw_checksum("CRC32", b"".join(raw_checksum("CRC32", p) for p in parts)))
    assert r["ChecksumCRC32"] == "%s-%d" % (composite, len(parts)) and r["ChecksumType"] == "COMPOSITE"
    assert r["etag"].strip('"').endswith("-%d" % len(parts))
    g = js(sdks, c, op="get", bucket="js-upload", key="big", mode=True)
    assert g["ok"] and g["sha256"] == r["sha256"] and g["ChecksumCRC32"] == r["ChecksumCRC32"], g


def test_js_wrong_checksum_is_bad_digest_and_stores_nothing(sdks, cloud):
    make_bucket(cloud, "js-bad")
    for stream in (True, False):
        key = "bad-stream" if stream else "bad-buffer"
        r = js(sdks, cloud, op="put", bucket="js-bad", key=key, text="some bytes", stream=stream,
               checksum={"ChecksumCRC32": checksum("CRC32", b"other bytes")})
        assert not r["ok"] and r["name"] == "BadDigest" and r["status"] == 400, r
        assert gone(cloud, "js-bad", key)


# ---- today's boto3 and awscli ----

def test_current_boto3_algorithms_and_transfers(sdks, anycloud):
    c = anycloud
    make_bucket(c, "py-now")
    for alg in [None] + ALGORITHMS:
        text = "current boto3 %s" % alg
        r = py(sdks, c, op="put", bucket="py-now", key=str(alg), text=text, algorithm=alg)
        assert r["ok"], r
        want = alg or "CRC32"   # botocore's default
        assert r["Checksum" + want] == checksum(want, text.encode()) and r["ChecksumType"] == "FULL_OBJECT", r
        g = py(sdks, c, op="get", bucket="py-now", key=str(alg), mode=True)
        assert g["ok"] and g["Checksum" + want] == r["Checksum" + want], g
    # upload_file / download_file of a multipart file: CRC32 composite of the parts
    r = py(sdks, c, op="upload_file", bucket="py-now", key="multi", size=20 * MiB + 5, seed=11, chunk=5 * MiB)
    assert r["ok"], r
    assert r["ChecksumType"] == "COMPOSITE" and r["ChecksumCRC32"].endswith("-5") and r["etag"].endswith('-5"')
    d = py(sdks, c, op="download_file", bucket="py-now", key="multi")
    assert d["ok"] and d["sha256"] == r["sha256"], d
    r = py(sdks, c, op="put", bucket="py-now", key="bad", text="x", checksum={"ChecksumSHA256": checksum("SHA256", b"y")})
    assert not r["ok"] and r["code"] == "BadDigest", r
    assert gone(c, "py-now", "bad")


def test_current_boto3_multipart_checksum_rules(sdks, cloud):
    """CreateMultipartUpload's ChecksumAlgorithm / ChecksumType, UploadPart values, ListParts,
    CompleteMultipartUpload's listed and whole-object values, as S3 answers them."""
    make_bucket(cloud, "py-mpu")
    sizes = [5 * MiB, 5 * MiB, 1000]
    # FULL_OBJECT CRC32C: the CRC of the whole object, stated by the client and checked
    r = py(sdks, cloud, op="mpu", bucket="py-mpu", key="full", algorithm="CRC32C", type="FULL_OBJECT",
           parts=sizes, seed=1, whole="right")
    assert r["ok"], r
    whole = py(sdks, cloud, op="checksum", algorithm="CRC32C", size=sum(sizes), seed=1)["value"]
    assert r["created"] == {"ChecksumAlgorithm": "CRC32C", "ChecksumType": "FULL_OBJECT"}
    assert r["list"]["ChecksumAlgorithm"] == "CRC32C" and r["list"]["ChecksumType"] == "FULL_OBJECT"
    assert all("ChecksumCRC32C" in p for p in r["listed"]) and len(r["listed"]) == 3
    assert r["completed"] == {"ChecksumCRC32C": whole, "ChecksumType": "FULL_OBJECT"}
    assert r["head"] == {"ChecksumCRC32C": whole, "ChecksumType": "FULL_OBJECT"}
    # SHA256 is COMPOSITE by default: sha256 over the parts' digests, "-2"
    r = py(sdks, cloud, op="mpu", bucket="py-mpu", key="comp", algorithm="SHA256", parts=[5 * MiB, 77], seed=2)
    assert r["ok"], r
    digests = [base64.b64decode(p["ChecksumSHA256"]) for p in r["listed"]]
    assert r["head"]["ChecksumSHA256"] == checksum("SHA256", b"".join(digests)) + "-2"
    assert r["head"]["ChecksumType"] == "COMPOSITE"
    # nothing chosen: botocore still sends CRC32 with each part; the object gets CRC64NVME
    r = py(sdks, cloud, op="mpu", bucket="py-mpu", key="default", parts=[5 * MiB, 10], seed=3)
    assert r["ok"], r
    assert r["head"] == {"ChecksumCRC64NVME": py(sdks, cloud, op="checksum", algorithm="CRC64NVME",
                                                  size=5 * MiB + 10, seed=3)["value"], "ChecksumType": "FULL_OBJECT"}
    # refused, and nothing becomes visible
    bad = [
        (dict(algorithm="CRC32", type="FULL_OBJECT", whole="wrong"), "complete", "BadDigest"),
        (dict(algorithm="CRC32", tamper=1), "complete", "InvalidPart"),
        (dict(algorithm="CRC32", part_algorithm="SHA1"), "part", "InvalidRequest"),
        (dict(algorithm="CRC64NVME", type="COMPOSITE"), "create", "InvalidRequest"),
        (dict(algorithm="SHA1", type="FULL_OBJECT"), "create", "InvalidRequest"),
    ]
    for i, (opts, step, code) in enumerate(bad):
        r = py(sdks, cloud, op="mpu", bucket="py-mpu", key="bad%d" % i, parts=[5 * MiB, 10], seed=4, **opts)
        assert not r["ok"] and r["step"] == step and r["code"] == code, (opts, r)
        assert gone(cloud, "py-mpu", "bad%d" % i)


def test_current_boto3_copy_keeps_or_changes_checksum(sdks, cloud):
    make_bucket(cloud, "py-copy")
    assert py(sdks, cloud, op="put", bucket="py-copy", key="src", text="copy me", algorithm="SHA1")["ok"]
    r = py(sdks, cloud, op="copy", bucket="py-copy", src="src", key="same")
    assert r["ok"] and r["result"]["ChecksumSHA1"] == checksum("SHA1", b"copy me"), r
    assert r["head"] == {"ChecksumSHA1": checksum("SHA1", b"copy me"), "ChecksumType": "FULL_OBJECT"}
    r = py(sdks, cloud, op="copy", bucket="py-copy", src="src", key="other", algorithm="CRC32C")
    assert r["ok"] and r["head"]["ChecksumCRC32C"] == checksum("CRC32C", b"copy me"), r
    # a multipart source's composite CRC32 becomes the copy's full-object CRC32
    up = py(sdks, cloud, op="upload_file", bucket="py-copy", key="multi", size=11 * MiB, seed=5, chunk=5 * MiB)
    assert up["ok"] and up["ChecksumType"] == "COMPOSITE"
    r = py(sdks, cloud, op="copy", bucket="py-copy", src="multi", key="multi-copy")
    body = s3_client(cloud).get_object(Bucket="py-copy", Key="multi-copy")["Body"].read()
    assert r["ok"] and r["head"] == {"ChecksumCRC32": checksum("CRC32", body), "ChecksumType": "FULL_OBJECT"}, r


def test_current_boto3_on_a_versioned_bucket(sdks, anycloud):
    """Today's boto3 on a versioned bucket: the small bodies it sends with checksums
    (PutBucketVersioning, PutObjectTagging, DeleteObjects) are accepted; each version keeps
    the checksum it was written with, read back by VersionId; a multipart upload completed
    with its whole-object CRC32 becomes a new version carrying it."""
    c = anycloud
    s3 = make_bucket(c, "py-ver")
    r = py(sdks, c, op="versions", bucket="py-ver", key="k", algorithms=["CRC32C", "SHA256", "CRC64NVME", "SHA1"])
    assert r["ok"], r
    assert len({v["id"] for v in r["versions"]}) == 4
    for v in r["versions"]:
        member = "Checksum" + v["algorithm"]
        assert v["put"][member] == v["want"] and v["get"] == {member: v["want"], "ChecksumType": "FULL_OBJECT"}, v
    assert r["versions"][0]["tags"] == [{"Key": "t", "Value": "1"}] and r["versions"][1]["tags"] == []
    assert r["deleted"] == sorted(v["id"] for v in r["versions"]) and not r["errors"] and r["left"] == 0
    sizes = [5 * MiB, 100]
    r = py(sdks, c, op="mpu", bucket="py-ver", key="mp", algorithm="CRC32", type="FULL_OBJECT", parts=sizes,
           seed=7, whole="right")
    assert r["ok"] and len(r["version"] or "") == 32, r
    whole = py(sdks, c, op="checksum", algorithm="CRC32", size=sum(sizes), seed=7)["value"]
    assert r["completed"] == {"ChecksumCRC32": whole, "ChecksumType": "FULL_OBJECT"}
    h = s3.head_object(Bucket="py-ver", Key="mp", VersionId=r["version"], ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == whole and h["VersionId"] == r["version"]
    s3.delete_object(Bucket="py-ver", Key="mp", VersionId=r["version"])


def test_current_awscli_cp_and_s3api(sdks, anycloud):
    c = anycloud
    make_bucket(c, "cli-now")
    env = client_env(c)
    aws = [sdks["aws"], "--endpoint-url", c.env["VIRGA_S3_URL"]]
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
        data = os.urandom(12 * MiB + 3)
        with open(src, "wb") as f:
            f.write(data)
        for args in (["s3", "cp", src, "s3://cli-now/f", "--only-show-errors"],
                     ["s3", "cp", "s3://cli-now/f", dst, "--only-show-errors"]):
            r = subprocess.run(aws + args, capture_output=True, text=True, timeout=300, env=env)
            assert r.returncode == 0, r.stderr
        with open(dst, "rb") as f:
            assert f.read() == data
        r = subprocess.run(aws + ["s3api", "put-object", "--bucket", "cli-now", "--key", "small", "--body", src,
                                  "--checksum-algorithm", "SHA256"], capture_output=True, text=True, timeout=300,
                           env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["ChecksumSHA256"] == checksum("SHA256", data)
    r = subprocess.run(aws + ["s3api", "head-object", "--bucket", "cli-now", "--key", "small", "--checksum-mode",
                              "ENABLED"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["ChecksumSHA256"] == checksum("SHA256", data), r.stderr


# ---- Debian's boto3 1.26 ----

def test_debian_boto3_flexible_checksums(cloud):
    s3 = make_bucket(cloud, "deb-ck")
    r = s3.put_object(Bucket="deb-ck", Key="k", Body=b"debian", ChecksumAlgorithm="SHA256")
    assert r["ChecksumSHA256"] == checksum("SHA256", b"debian")
    g = s3.get_object(Bucket="deb-ck", Key="k", ChecksumMode="ENABLED")
    assert g["Body"].read() == b"debian" and g["ChecksumSHA256"] == r["ChecksumSHA256"]
    assert "ChecksumSHA256" not in s3.head_object(Bucket="deb-ck", Key="k")
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket="deb-ck", Key="bad", Body=b"debian", ChecksumCRC32=checksum("CRC32", b"other"))
    assert ei.value.response["Error"]["Code"] == "BadDigest"
    assert gone(cloud, "deb-ck", "bad")


# ---- requests no SDK makes: built and signed here ----

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


class Signer:
    def __init__(self, cloud):
        self.url = cloud.env["VIRGA_S3_URL"]
        self.host = urlsplit(self.url).netloc
        self.region, self.ak = cloud.env["AWS_DEFAULT_REGION"], cloud.env["AWS_ACCESS_KEY_ID"]
        sk = cloud.env["AWS_SECRET_ACCESS_KEY"]
        now = datetime.now(timezone.utc)
        self.amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        self.scope = "%s/%s/s3/aws4_request" % (day, self.region)
        key = ("AWS4" + sk).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self.key = key

    def sign(self, sts):
        return hmac.new(self.key, sts.encode(), hashlib.sha256).hexdigest()

    def request(self, method, path, payload, headers, query=""):
        """Sign: (signature, headers to send, signed header names)."""
        h = {k.lower(): v for k, v in headers.items()}
        h.update({"host": self.host, "x-amz-content-sha256": payload, "x-amz-date": self.amz})
        names = sorted(h)
        creq = "\n".join([method, path, query, "".join("%s:%s\n" % (n, h[n]) for n in names), ";".join(names),
                          payload])
        sig = self.sign("\n".join(["AWS4-HMAC-SHA256", self.amz, self.scope,
                                   hashlib.sha256(creq.encode()).hexdigest()]))
        return sig, h, names

    def send(self, method, path, h, names, sig, body, query=""):
        """Send a signed request: (status, S3 error code or "")."""
        h = dict(h)
        h["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
            self.ak, self.scope, ";".join(names), sig)
        del h["host"]
        url = self.url + path + ("?" + query if query else "")
        req = urllib.request.Request(url, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, ""
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            code = text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else ""
            return e.code, code


def chunked_put(cloud, key, chunks, signed, trailer=None, value=None, decoded=None, tamper=None):
    """PUT /sdk-raw/key as aws-chunked. trailer/value: the trailing checksum. tamper:
    "trailer-sig" (alter the trailer signature), "trailer-line" (a malformed trailer)."""
    s = Signer(cloud)
    payload = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD" if signed else "STREAMING-UNSIGNED-PAYLOAD") + (
        "-TRAILER" if trailer or not signed else "")
    decoded = str(sum(len(c) for c in chunks)) if decoded is None else decoded
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": decoded}
    if trailer:
        headers["x-amz-trailer"] = trailer

    def build(seed_sig):
        out, prev = bytearray(), seed_sig
        for c in chunks + [b""]:
            if signed:
                sig = s.sign("\n".join(["AWS4-HMAC-SHA256-PAYLOAD", s.amz, s.scope, prev, EMPTY_SHA,
                                        hashlib.sha256(c).hexdigest()]))
                out += b"%x;chunk-signature=%s\r\n" % (len(c), sig.encode())
                prev = sig
            else:
                out += b"%x\r\n" % len(c)
            if c:
                out += c + b"\r\n"
        if trailer:
            line = "%s:%s" % (trailer, value)
            out += (line if tamper != "trailer-line" else line.replace(":", " ")).encode() + b"\r\n"
            if signed:
                tsig = s.sign("\n".join(["AWS4-HMAC-SHA256-TRAILER", s.amz, s.scope, prev,
                                         hashlib.sha256((line + "\n").encode()).hexdigest()]))
                if tamper == "trailer-sig":
                    tsig = ("0" if tsig[0] != "0" else "1") + tsig[1:]
                out += b"x-amz-trailer-signature:" + tsig.encode() + b"\r\n"
        return bytes(out + b"\r\n")

    length = len(build("0" * 64))   # the length is signed: measured with a stand-in seed first
    seed, h, names = s.request("PUT", "/sdk-raw/" + key, payload, {**headers, "content-length": str(length)})
    body = build(seed)
    assert len(body) == length
    return s.send("PUT", "/sdk-raw/" + key, h, names, seed, body)


def test_hand_made_chunked_uploads(cloud):
    """Every aws-chunked variant, signed trailer included (no SDK sends one over plain
    HTTP), and what is refused: a tampered trailer signature, a trailer value that does
    not match the bytes, a malformed trailer, x-amz-decoded-content-length negative, not
    a number or not the decoded size (it was EntityTooLarge for -1). Nothing refused is
    stored."""
    s3 = make_bucket(cloud, "sdk-raw")
    chunks = [b"a" * 70000, b"b" * 1000, b"tail"]
    data = b"".join(chunks)
    crc32c = checksum("CRC32C", data)
    assert chunked_put(cloud, "signed", chunks, True) == (200, "")
    assert chunked_put(cloud, "signed-trailer", chunks, True, "x-amz-checksum-crc32c", crc32c) == (200, "")
    assert chunked_put(cloud, "unsigned-trailer", chunks, False, "x-amz-checksum-sha1", checksum("SHA1", data)) == \
        (200, "")
    g = s3.get_object(Bucket="sdk-raw", Key="signed-trailer", ChecksumMode="ENABLED")
    assert g["Body"].read() == data and g["ChecksumCRC32C"] == crc32c
    assert s3.head_object(Bucket="sdk-raw", Key="unsigned-trailer", ChecksumMode="ENABLED")["ChecksumSHA1"] == \
        checksum("SHA1", data)
    refused = [
        (dict(signed=True, trailer="x-amz-checksum-crc32c", value=crc32c, tamper="trailer-sig"),
         (403, "SignatureDoesNotMatch")),
        (dict(signed=True, trailer="x-amz-checksum-crc32c", value=checksum("CRC32C", b"x")), (400, "BadDigest")),
        (dict(signed=False, trailer="x-amz-checksum-crc32", value=checksum("CRC32", b"x")), (400, "BadDigest")),
        (dict(signed=False, trailer="x-amz-checksum-crc32", value="not base64"), (400, "InvalidRequest")),
        (dict(signed=True, trailer="x-amz-checksum-crc32c", value=crc32c, tamper="trailer-line"),
         (400, "MalformedTrailerError")),
        (dict(signed=False, trailer="x-amz-checksum-md5", value="AAAA"), (400, "InvalidRequest")),
        (dict(signed=True, decoded="-1"), (411, "MissingContentLength")),
        (dict(signed=False, decoded="abc"), (411, "MissingContentLength")),
        (dict(signed=True, decoded=str(len(data) - 1)), (400, "IncompleteBody")),
        (dict(signed=False, decoded=str(len(data) + 1)), (400, "IncompleteBody")),
    ]
    for i, (opts, want) in enumerate(refused):
        assert chunked_put(cloud, "refused%d" % i, chunks, **opts) == want, opts
        assert gone(cloud, "sdk-raw", "refused%d" % i)


def test_checksum_headers_that_do_not_add_up(cloud):
    """Malformed or conflicting checksum headers are InvalidRequest, as S3 words them; a
    small body (DeleteObjects) is checked too (BadDigest)."""
    make_bucket(cloud, "sdk-hdr")
    body = b"hello world"
    good = checksum("CRC32", body)
    cases = [
        ({"x-amz-checksum-crc32": good, "x-amz-checksum-sha1": checksum("SHA1", body)}, "InvalidRequest"),
        ({"x-amz-checksum-md4": "AAAA"}, "InvalidRequest"),
        ({"x-amz-checksum-crc32": "!!!!"}, "InvalidRequest"),
        ({"x-amz-checksum-crc32": "AAAAAAAA"}, "InvalidRequest"),   # 6 bytes, not 4
        ({"x-amz-checksum-crc32": good, "x-amz-sdk-checksum-algorithm": "SHA1"}, "InvalidRequest"),
        ({"x-amz-sdk-checksum-algorithm": "CRC32"}, "InvalidRequest"),
        ({"x-amz-checksum-crc32": checksum("CRC32", b"other")}, "BadDigest"),
    ]
    for i, (headers, code) in enumerate(cases):
        s = Signer(cloud)
        payload = hashlib.sha256(body).hexdigest()
        sig, h, names = s.request("PUT", "/sdk-hdr/k%d" % i, payload,
                                  {**headers, "content-length": str(len(body))})
        status, got = s.send("PUT", "/sdk-hdr/k%d" % i, h, names, sig, body)
        assert (status, got) == (400, code), headers
        assert gone(cloud, "sdk-hdr", "k%d" % i)
    s3_client(cloud).put_object(Bucket="sdk-hdr", Key="keep", Body=b"x")
    xml = b'<Delete><Object><Key>keep</Key></Object></Delete>'
    s = Signer(cloud)
    sig, h, names = s.request("POST", "/sdk-hdr", "UNSIGNED-PAYLOAD",
                              {"x-amz-checksum-crc32": checksum("CRC32", b"not the body"),
                               "content-length": str(len(xml))}, query="delete=")
    assert s.send("POST", "/sdk-hdr", h, names, sig, xml, query="delete=") == (400, "BadDigest")
    assert s3_client(cloud).head_object(Bucket="sdk-hdr", Key="keep")["ContentLength"] == 1
