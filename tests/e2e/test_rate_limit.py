"""Per-access-key rate limiting, on a cloud of its own with a tiny limit: past the burst
the gateway answers RequestLimitExceeded (503) and does not run the request; once the
bucket refills the same key is served again; another key is not held back."""
import time

import pytest
from botocore.exceptions import ClientError

from harness import Cloud, boto3_client, new_tenant


@pytest.fixture(scope="module")
def slow_cloud():
    # a token every 10 s: slow clients (an ASan build, a machine whose load average is
    # 50, where a CreateKeyPair took over 2 s) cannot refill the bucket between the
    # requests of one burst. No object is stored: the object store in a directory spares
    # a Ceph cluster's start
    c = Cloud.start(extra_args=("--objectstore", "dir"),
                    env={"VIRGA_GATEWAY_RATE_LIMIT": "0.1", "VIRGA_GATEWAY_RATE_BURST": "3"})
    try:
        yield c
    finally:
        c.stop_later()


def attempt(fn):
    """"ok", or the error code after checking a throttled answer's HTTP status."""
    try:
        fn()
        return "ok"
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code == "RequestLimitExceeded":
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        return code


def key_pairs_in_db(cloud, account):
    rows = cloud.psql("SELECT name FROM compute.key_pairs WHERE account_id = '%s'" % account)
    return set(rows.split()) if rows else set()


def served_again(fn, seconds=60):
    """Retry fn while it is throttled (a token comes every 10 s); its first result that
    is not RequestLimitExceeded."""
    deadline = time.time() + seconds
    while True:
        code = attempt(fn)
        if code != "RequestLimitExceeded" or time.time() > deadline:
            return code
        time.sleep(0.5)


def test_over_the_limit_is_refused_unexecuted_then_served_again(slow_cloud):
    account, k, s = new_tenant(slow_cloud, "throttled")
    ec2 = boto3_client(slow_cloud, "ec2", k, s)
    codes = [attempt(lambda i=i: ec2.create_key_pair(KeyName="rl-%d" % i, KeyType="ed25519")) for i in range(6)]
    assert codes[:3] == ["ok", "ok", "ok"], codes            # the burst
    assert "RequestLimitExceeded" in codes[3:], codes         # the limit was hit
    assert set(codes) <= {"ok", "RequestLimitExceeded"}, codes
    # a refused request did nothing: exactly the served ones made a key pair
    assert key_pairs_in_db(slow_cloud, account) == {"rl-%d" % i for i, c in enumerate(codes) if c == "ok"}
    assert served_again(lambda: ec2.create_key_pair(KeyName="rl-after", KeyType="ed25519")) == "ok"
    assert "rl-after" in key_pairs_in_db(slow_cloud, account)


def test_limits_are_per_access_key(slow_cloud):
    _, k, s = new_tenant(slow_cloud, "other")
    admin = boto3_client(slow_cloud, "ec2")
    other = boto3_client(slow_cloud, "ec2", k, s)
    codes = [attempt(admin.describe_regions) for _ in range(6)]
    assert "RequestLimitExceeded" in codes, codes             # the admin's bucket is empty ...
    assert other.describe_regions()["Regions"]               # ... not the other key's
    assert served_again(admin.describe_regions) == "ok"
