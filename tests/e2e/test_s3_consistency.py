"""Large GETs while the object is overwritten, with boto3, on both storage backends: every
GET sends the bytes of exactly one version, under that version's own headers."""
import hashlib
import os
import threading

import pytest
from botocore.exceptions import ClientError

from harness import s3_client

MiB = 1024 * 1024


def test_get_during_overwrites_is_one_whole_version(anycloud):
    """Writers replace a 3 MiB object over and over while readers stream it slowly. Each
    GET's bytes must hash to the ETag and fill the Content-Length of its own response,
    and be one of the versions written. Readers go slowly so that many GETs span an
    overwrite; the test insists that some did, or it would prove nothing."""
    s3 = s3_client(anycloud)
    bucket = "consistency"
    s3.create_bucket(Bucket=bucket)
    versions = [os.urandom(3 * MiB + i * 4099) for i in range(4)]
    md5s = {hashlib.md5(v).hexdigest() for v in versions}
    s3.put_object(Bucket=bucket, Key="hot", Body=versions[0])
    stop = threading.Event()
    failures, spanned, gets, puts = [], [], [], []

    def writer(seed):
        for i in range(60):   # bounded: replaced data stays for the grace period
            if stop.is_set():
                return
            s3.put_object(Bucket=bucket, Key="hot", Body=versions[(seed + i) % len(versions)])
            puts.append(1)

    def reader():
        client = s3_client(anycloud)
        while not stop.is_set() and len(gets) < 400:
            before = len(puts)
            r = client.get_object(Bucket=bucket, Key="hot")
            h = hashlib.md5()
            n = 0
            for chunk in r["Body"].iter_chunks(128 * 1024):
                h.update(chunk)
                n += len(chunk)
                stop.wait(0.01)   # a slow client: overwrites land while it reads
            etag = r["ETag"].strip('"')
            gets.append(1)
            if len(puts) > before:
                spanned.append(1)
            if h.hexdigest() != etag or n != r["ContentLength"] or etag not in md5s:
                failures.append((etag, h.hexdigest(), n, r["ContentLength"]))
            if len(spanned) >= 12:
                stop.set()

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(2)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    stop.set()
    assert not failures, failures[:5]
    assert spanned, "no GET ran while the object was overwritten (%d GETs, %d PUTs)" % (len(gets), len(puts))
    # and the object is still whole afterwards
    body = s3.get_object(Bucket=bucket, Key="hot")["Body"].read()
    assert hashlib.md5(body).hexdigest() in md5s


def test_ranged_get_and_copy_are_one_version(anycloud):
    """A ranged GET and a CopyObject of an object being overwritten: the range is a slice of
    the version its headers name; the copy is one whole version."""
    s3 = s3_client(anycloud)
    bucket = "consistency-copy"
    s3.create_bucket(Bucket=bucket)
    versions = [os.urandom(4 * MiB + i) for i in range(3)]
    by_md5 = {hashlib.md5(v).hexdigest(): v for v in versions}
    s3.put_object(Bucket=bucket, Key="src", Body=versions[0])
    stop = threading.Event()

    def writer():
        for i in range(40):
            if stop.is_set():
                return
            s3.put_object(Bucket=bucket, Key="src", Body=versions[i % len(versions)])

    t = threading.Thread(target=writer)
    t.start()
    try:
        for i in range(12):
            r = s3.get_object(Bucket=bucket, Key="src", Range="bytes=%d-%d" % (MiB + i, 3 * MiB + i))
            data = r["Body"].read()
            assert data == by_md5[r["ETag"].strip('"')][MiB + i:3 * MiB + i + 1]
            c = s3.copy_object(Bucket=bucket, Key="copy-%d" % i, CopySource={"Bucket": bucket, "Key": "src"})
            etag = c["CopyObjectResult"]["ETag"].strip('"')
            assert etag in by_md5
            body = s3.get_object(Bucket=bucket, Key="copy-%d" % i)["Body"].read()
            assert hashlib.md5(body).hexdigest() == etag
    finally:
        stop.set()
        t.join(timeout=300)


def test_versioned_gets_read_the_version_opened(anycloud):
    """In a versioned bucket, downloads of a version named by versionId and of the latest
    version, started and then left half read while both versions are removed for good, a
    newer version is written and a delete marker hides the key: each download ends whole,
    with the bytes, ETag, version id and checksum of the version it started on (botocore
    checks the CRC32 against the bytes as it reads them). New requests then see what the
    bucket holds now."""
    s3 = s3_client(anycloud)
    b = "consistency-versions"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    one, two, three = os.urandom(6 * MiB), os.urandom(6 * MiB + 5), os.urandom(MiB)
    p1 = s3.put_object(Bucket=b, Key="k", Body=one, ChecksumAlgorithm="CRC32")
    p2 = s3.put_object(Bucket=b, Key="k", Body=two, ChecksumAlgorithm="CRC32")
    v1, v2 = p1["VersionId"], p2["VersionId"]
    by_id = s3.get_object(Bucket=b, Key="k", VersionId=v1, ChecksumMode="ENABLED")
    latest = s3.get_object(Bucket=b, Key="k", ChecksumMode="ENABLED")
    head = [by_id["Body"].read(64 * 1024), latest["Body"].read(64 * 1024)]

    s3.delete_object(Bucket=b, Key="k", VersionId=v1)
    s3.delete_object(Bucket=b, Key="k", VersionId=v2)
    s3.put_object(Bucket=b, Key="k", Body=three)
    marker = s3.delete_object(Bucket=b, Key="k")
    assert marker["DeleteMarker"]

    for r, data, put, vid, first in ((by_id, one, p1, v1, head[0]), (latest, two, p2, v2, head[1])):
        body = first + r["Body"].read()
        assert body == data
        assert r["ContentLength"] == len(data)
        assert r["ETag"] == put["ETag"]
        assert r["VersionId"] == vid
        assert r["ChecksumCRC32"] == put["ChecksumCRC32"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k", VersionId=v1)
    assert e.value.response["Error"]["Code"] == "NoSuchVersion"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    versions = s3.list_object_versions(Bucket=b, Prefix="k")
    assert [v["Size"] for v in versions.get("Versions", [])] == [MiB]
    assert [m["VersionId"] for m in versions.get("DeleteMarkers", [])] == [marker["VersionId"]]


def _threads(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no thread count for %d" % pid)


def test_streaming_gets_hold_no_thread_each(anycloud):
    """32 downloads of an 8 MiB object started and then left unread (slow clients): the
    object store serves them from its fixed HTTP threads, with no thread per download."""
    s3 = s3_client(anycloud, max_pool_connections=40)
    s3.create_bucket(Bucket="streams")
    data = os.urandom(8 * MiB)
    s3.put_object(Bucket="streams", Key="big", Body=data)
    pid = anycloud.pid("objectstore")
    before = _threads(pid)
    streams = []
    try:
        for _ in range(32):
            r = s3.get_object(Bucket="streams", Key="big")
            assert r["Body"].read(64 * 1024) == data[:64 * 1024]
            streams.append(r)
        during = _threads(pid)
        assert during - before < 8, "%d threads before, %d with 32 downloads open" % (before, during)
        # the stalled downloads still finish whole
        assert streams[0]["Body"].read() == data[64 * 1024:]
    finally:
        for r in streams:
            r["Body"].close()
