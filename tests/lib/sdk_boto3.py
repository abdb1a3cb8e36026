"""One S3 operation with today's boto3 (tests/.venv, installed by tests/sdk-setup.sh),
for tests/e2e/test_s3_sdks.py: the Debian Python the suites run on has boto3 1.26, so
the current one runs in its own interpreter. The operation is a JSON object in argv[1];
the result is one JSON line: {"ok": true, ...} or {"ok": false, "code", "status",
"message"}. Endpoint and credentials come from the environment as for any boto3 user.

Ops: put, get, upload_file, download_file, mpu (a multipart upload by hand, with the
checksum options of CreateMultipartUpload and the values CompleteMultipartUpload lists),
copy, versions (a versioned bucket: versions with checksums read back by id, tags and
deletes by id), checksum (a value computed by awscrt, the AWS C runtime, independently of
the object store)."""
import base64
import hashlib
import json
import os
import random
import sys
import tempfile

import boto3
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

MiB = 1024 * 1024
FIELDS = ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256",
          "ChecksumType", "ChecksumAlgorithm")


def data_of(c):
    if "text" in c:
        return c["text"].encode()
    return random.Random(c["seed"]).randbytes(c["size"])


def checksum(alg, data):
    alg = alg.upper()
    if alg == "CRC32":
        raw = crt.crc32(data).to_bytes(4, "big")
    elif alg == "CRC32C":
        raw = crt.crc32c(data).to_bytes(4, "big")
    elif alg == "CRC64NVME":
        raw = crt.crc64nvme(data).to_bytes(8, "big")
    else:
        raw = hashlib.new(alg.lower(), data).digest()
    return base64.b64encode(raw).decode()


def fields(r):
    return {k: r[k] for k in FIELDS if k in r}


def client():
    return boto3.client("s3", endpoint_url=os.environ["VIRGA_S3_URL"],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def op_put(s3, c):
    extra = {"ChecksumAlgorithm": c["algorithm"]} if c.get("algorithm") else {}
    extra.update(c.get("checksum", {}))
    r = s3.put_object(Bucket=c["bucket"], Key=c["key"], Body=data_of(c), **extra)
    return {"etag": r["ETag"], **fields(r)}


def op_get(s3, c):
    extra = {"ChecksumMode": "ENABLED"} if c.get("mode") else {}
    r = s3.get_object(Bucket=c["bucket"], Key=c["key"], **extra)
    body = r["Body"].read()   # botocore validates the checksum while reading
    return {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body), **fields(r)}


def op_upload_file(s3, c):
    data = data_of(c)
    cfg = TransferConfig(multipart_threshold=c["chunk"], multipart_chunksize=c["chunk"])
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        s3.upload_file(f.name, c["bucket"], c["key"], Config=cfg)
    h = s3.head_object(Bucket=c["bucket"], Key=c["key"], ChecksumMode="ENABLED")
    return {"etag": h["ETag"], "sha256": hashlib.sha256(data).hexdigest(), **fields(h)}


def op_download_file(s3, c):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out")
        s3.download_file(c["bucket"], c["key"], path, Config=TransferConfig(multipart_chunksize=5 * MiB))
        with open(path, "rb") as f:
            return {"sha256": hashlib.sha256(f.read()).hexdigest()}


def op_mpu(s3, c):
    """CreateMultipartUpload (algorithm / type as given), UploadPart with each part's value
    (part_algorithm overrides), ListParts, then CompleteMultipartUpload listing the parts'
    values (tamper: index of one to alter) and a whole-object value (whole: "right",
    "wrong" or absent). Reports the step that failed."""
    data = data_of({**c, "size": sum(c["parts"])})
    create = {}
    if c.get("algorithm"):
        create["ChecksumAlgorithm"] = c["algorithm"]
    if c.get("type"):
        create["ChecksumType"] = c["type"]
    step = "create"
    try:
        up = s3.create_multipart_upload(Bucket=c["bucket"], Key=c["key"], **create)
        uid, parts, off = up["UploadId"], [], 0
        created = fields(up)
        for i, size in enumerate(c["parts"]):
            step = "part"
            piece = data[off:off + size]
            off += size
            alg = c.get("part_algorithm", c.get("algorithm"))
            extra = {"ChecksumAlgorithm": alg} if alg else {}
            r = s3.upload_part(Bucket=c["bucket"], Key=c["key"], UploadId=uid, PartNumber=i + 1, Body=piece,
                               **extra)
            part = {"PartNumber": i + 1, "ETag": r["ETag"]}
            if alg:
                member = "Checksum" + alg.upper()
                assert r[member] == checksum(alg, piece), (r, checksum(alg, piece))
                part[member] = r[member]
            parts.append(part)
        step = "list"
        listed = s3.list_parts(Bucket=c["bucket"], Key=c["key"], UploadId=uid)
        if c.get("tamper") is not None:
            p = parts[c["tamper"]]
            member = next(k for k in p if k.startswith("Checksum"))
            p[member] = checksum(c["algorithm"], b"something else")
        step = "complete"
        extra = {}
        if c.get("whole"):
            member = "Checksum" + c["algorithm"].upper()
            extra[member] = checksum(c["algorithm"], data if c["whole"] == "right" else b"other")
            extra["ChecksumType"] = c.get("type", "FULL_OBJECT")
        r = s3.complete_multipart_upload(Bucket=c["bucket"], Key=c["key"], UploadId=uid,
                                         MultipartUpload={"Parts": parts}, **extra)
        step = "head"
        h = s3.head_object(Bucket=c["bucket"], Key=c["key"], ChecksumMode="ENABLED")
        return {"created": created, "listed": [fields(p) for p in listed["Parts"]], "list": fields(listed),
                "completed": fields(r), "head": fields(h), "sha256": hashlib.sha256(data).hexdigest(),
                "version": r.get("VersionId")}
    except ClientError as e:
        e.step = step
        raise


def op_copy(s3, c):
    extra = {"ChecksumAlgorithm": c["algorithm"]} if c.get("algorithm") else {}
    r = s3.copy_object(Bucket=c["bucket"], Key=c["key"], CopySource={"Bucket": c["bucket"], "Key": c["src"]},
                       **extra)
    h = s3.head_object(Bucket=c["bucket"], Key=c["key"], ChecksumMode="ENABLED")
    return {"result": fields(r["CopyObjectResult"]), "head": fields(h)}


def op_versions(s3, c):
    """Versioning with today's boto3: PutBucketVersioning, PutObjectTagging and DeleteObjects
    (small bodies it sends with a checksum of its own), one version of key per algorithm,
    each read back by VersionId with ChecksumMode (botocore checks the value while
    reading) after the first version's tags were changed."""
    b, k = c["bucket"], c["key"]
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    vs = []
    for i, alg in enumerate(c["algorithms"]):
        data = ("version %d of %s, %s" % (i, k, alg)).encode()
        r = s3.put_object(Bucket=b, Key=k, Body=data, ChecksumAlgorithm=alg)
        vs.append({"id": r["VersionId"], "algorithm": alg, "put": fields(r), "want": checksum(alg, data)})
    s3.put_object_tagging(Bucket=b, Key=k, VersionId=vs[0]["id"], Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    for v in vs:
        g = s3.get_object(Bucket=b, Key=k, VersionId=v["id"], ChecksumMode="ENABLED")
        g["Body"].read()
        v["get"] = fields(g)
        v["tags"] = s3.get_object_tagging(Bucket=b, Key=k, VersionId=v["id"])["TagSet"]
    d = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k, "VersionId": v["id"]} for v in vs]})
    left = s3.list_object_versions(Bucket=b, Prefix=k).get("Versions", [])
    return {"versions": vs, "deleted": sorted(x["VersionId"] for x in d.get("Deleted", [])),
            "errors": d.get("Errors", []), "left": len(left)}


def op_checksum(_s3, c):
    return {"value": checksum(c["algorithm"], data_of(c))}


def main():
    c = json.loads(sys.argv[1])
    try:
        out = {"ok": True, **globals()["op_" + c["op"]](client(), c)}
    except ClientError as e:
        out = {"ok": False, "code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", ""),
               "status": e.response["ResponseMetadata"].get("HTTPStatusCode"), "step": getattr(e, "step", None)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
