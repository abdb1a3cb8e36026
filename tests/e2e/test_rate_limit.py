"""Per-access-key rate limiting, on a cloud of its own with a tiny limit."""
import time

import pytest
from botocore.exceptions import ClientError

from harness import Cloud, boto3_client, new_tenant


@pytest.fixture(scope="module")
def slow_cloud():
    # half a token a second: slow clients (an ASan build) cannot refill the bucket
    # between the requests of one burst
    c = Cloud.start(env={"VIRGA_GATEWAY_RATE_LIMIT": "0.5", "VIRGA_GATEWAY_RATE_BURST": "3"})
    try:
        yield c
    finally:
        c.stop()


def test_over_the_limit_is_request_limit_exceeded_then_refills(slow_cloud):
    ec2 = boto3_client(slow_cloud, "ec2")
    codes = []
    for _ in range(6):
        try:
            ec2.describe_regions()
            codes.append("ok")
        except ClientError as e:
            codes.append(e.response["Error"]["Code"])
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert codes[:3] == ["ok", "ok", "ok"]                 # the burst
    assert "RequestLimitExceeded" in codes[3:]
    time.sleep(2.2)                                         # a token every 2 s
    ec2.describe_regions()


def test_limits_are_per_access_key(slow_cloud):
    _, k, s = new_tenant(slow_cloud, "other")
    admin = boto3_client(slow_cloud, "ec2")
    other = boto3_client(slow_cloud, "ec2", k, s)
    for _ in range(5):
        try:
            admin.describe_regions()
        except ClientError:
            pass
    assert other.describe_regions()["Regions"]             # its own bucket is full
