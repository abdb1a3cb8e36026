"""How a host gets image bytes, end to end: objects uploaded with boto3, presigned GET
URLs made by boto3 (SigV4), and the agent asked over its bus topic virga.host.<id>
(`virgadm call`) to fetch them into its cache, verified by SHA-256 (docs/images.md).

Covered: first fetch downloads (cached=false, identical bytes, file 0600 in a 0700
directory), a second answers from the cache; concurrent fetches of one new image
download it once; a wrong sha256 or size leaves nothing behind (no file for either
checksum, no partial or lock file); a missing key names HTTP 404 and a bad signature
HTTP 403, without echoing the URL's credentials; malformed parameters are refused;
agent.image_cache_list reports the entries. Eviction under the size limit is covered by
the unit test tests/unit/test_image_cache.c (a second cloud with a tiny limit would cost
a minute for what the pure eviction function and the unit test already show)."""
import concurrent.futures
import hashlib
import os
import re

import pytest

from harness import s3_client

MiB = 1024 * 1024
BUCKET = "agent-images"
FETCH_MS = 120000


def agent_topic(cloud):
    with open(cloud.config) as f:
        m = re.search(r"^agent:\n(?:\s+.*\n)*?\s+host_id:\s*(\S+)", f.read(), re.M)
    assert m, "no agent.host_id in " + cloud.config
    return "virga.host." + m.group(1)


def cache_dir(cloud):
    return os.path.join(cloud.dir, "agent", "images")


def fetch(cloud, url, sha256, size):
    return cloud.call(agent_topic(cloud), "agent.image_fetch", {"url": url, "sha256": sha256, "size": size},
                      timeout_ms=FETCH_MS)


def leftovers(cloud):
    """Partial downloads and lock files: there must never be any once a call returned."""
    return [n for n in os.listdir(cache_dir(cloud)) if n.startswith(".")]


@pytest.fixture(scope="module")
def s3(cloud):
    c = s3_client(cloud, signature_version="s3v4")
    c.create_bucket(Bucket=BUCKET)
    return c


def put(s3, key, data):
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=3600)
    assert "X-Amz-Signature=" in url
    return url, hashlib.sha256(data).hexdigest()


def test_fetch_then_cached(cloud, s3):
    data = os.urandom(3 * MiB)
    url, sha = put(s3, "disk-a.img", data)
    ok, r = fetch(cloud, url, sha, len(data))
    assert ok, r
    path = os.path.join(cache_dir(cloud), sha)
    assert r == {"path": path, "size": len(data), "sha256": sha, "cached": False}
    with open(path, "rb") as f:
        assert f.read() == data
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(cache_dir(cloud)).st_mode & 0o777 == 0o700

    # again, with the sha256 in capitals: from the cache, nothing downloaded
    mtime = os.stat(path).st_mtime_ns
    ok, r = fetch(cloud, url, sha.upper(), len(data))
    assert ok, r
    assert r == {"path": path, "size": len(data), "sha256": sha, "cached": True}
    assert os.stat(path).st_mtime_ns > mtime   # marked as used, for LRU eviction
    assert leftovers(cloud) == []

    ok, listing = cloud.call(agent_topic(cloud), "agent.image_cache_list")
    assert ok, listing
    assert listing["dir"] == cache_dir(cloud)
    assert {"sha256": sha, "size": len(data)} in [{k: e[k] for k in ("sha256", "size")} for e in listing["entries"]]
    assert listing["total_bytes"] == sum(e["size"] for e in listing["entries"])
    assert listing["count"] == len(listing["entries"])
    assert listing["limit_bytes"] == 20 * 1024 * MiB


def test_concurrent_fetches_download_once(cloud, s3):
    data = os.urandom(16 * MiB)
    url, sha = put(s3, "disk-b.img", data)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: fetch(cloud, url, sha, len(data)), range(3)))
    assert all(ok for ok, _ in results), results
    assert sorted(r["cached"] for _, r in results) == [False, True, True]
    with open(os.path.join(cache_dir(cloud), sha), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == sha
    assert leftovers(cloud) == []


def test_wrong_checksum_leaves_nothing(cloud, s3):
    data = os.urandom(3 * MiB)
    url, sha = put(s3, "disk-c.img", data)
    wrong = hashlib.sha256(b"something else").hexdigest()
    ok, err = fetch(cloud, url, wrong, len(data))
    assert not ok
    assert err.startswith("ImageChecksumMismatch:") and sha in err and wrong in err, err
    names = os.listdir(cache_dir(cloud))
    assert sha not in names and wrong not in names
    assert leftovers(cloud) == []


def test_wrong_size_is_refused(cloud, s3):
    data = os.urandom(1 * MiB)
    url, sha = put(s3, "disk-d.img", data)
    for size in (len(data) + 1, len(data) - 1):
        ok, err = fetch(cloud, url, sha, size)
        assert not ok and err.startswith("ImageChecksumMismatch:"), err
        assert sha not in os.listdir(cache_dir(cloud))
        assert leftovers(cloud) == []
    # once cached, another size for the same checksum is still refused
    assert fetch(cloud, url, sha, len(data))[0]
    ok, err = fetch(cloud, url, sha, len(data) + 5)
    assert not ok and err.startswith("ImageChecksumMismatch:"), err


def test_http_errors_name_the_status(cloud, s3):
    sha = hashlib.sha256(b"never stored").hexdigest()
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "no-such.img"},
                                        ExpiresIn=600)
    ok, err = fetch(cloud, missing, sha, 100)
    assert not ok and err.startswith("ImageFetchFailed:") and "HTTP 404" in err and "NoSuchKey" in err, err

    url, _ = put(s3, "disk-e.img", b"x" * 100)
    tampered = re.sub(r"X-Amz-Signature=[0-9a-f]+", "X-Amz-Signature=" + "0" * 64, url)
    ok, err = fetch(cloud, tampered, sha, 100)
    assert not ok and err.startswith("ImageFetchFailed:") and "HTTP 403" in err, err
    # a presigned URL's credentials stay out of errors (and of the agent's log)
    assert "X-Amz-Credential" not in err and "X-Amz-Signature" not in err
    assert sha not in os.listdir(cache_dir(cloud)) and leftovers(cloud) == []


def test_malformed_parameters(cloud):
    sha = hashlib.sha256(b"x").hexdigest()
    cases = [
        ({"url": "http://127.0.0.1:1/x", "sha256": "abc", "size": 1}, "InvalidParameterValue"),
        ({"url": "http://127.0.0.1:1/x", "sha256": "../" + sha[3:], "size": 1}, "InvalidParameterValue"),
        ({"url": "file:///etc/passwd", "sha256": sha, "size": 1}, "InvalidParameterValue"),
        ({"url": "http://127.0.0.1:1/x", "sha256": sha, "size": -1}, "InvalidParameterValue"),
        ({"url": "http://127.0.0.1:1/x", "sha256": sha, "size": "1"}, "InvalidParameterValue"),
        ({"url": "http://127.0.0.1:1/x", "sha256": sha, "size": 1 << 50}, "InvalidParameterValue"),
        ({"sha256": sha, "size": 1}, "MissingParameter"),
    ]
    for body, code in cases:
        ok, err = cloud.call(agent_topic(cloud), "agent.image_fetch", body)
        assert not ok and err.startswith(code + ":"), (body, err)
