"""The EC2 instance lifecycle with today's boto3 (the pinned current release in tests/.venv,
installed by tests/sdk-setup.sh; Debian's 1.26 is covered by test_ec2_instances.py), on a
cloud whose host runs the `sim` driver: run (two instances, tagged), the SDK's own waiters
to running, DescribeInstances by id, by tag and paginated, stop and start with their
waiters, GetConsoleOutput (Latest), terminate and its waiter. Every answer must parse in
today's botocore and match what Debian's boto3 sees."""
import json
import os
import subprocess

import pytest

from harness import aws_env, boto3_client, new_tenant

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    """A `sim` host, default images, the object store in a directory: the cloud this
    module shares with the other EC2 suites of that kind (tests/conftest.py)."""
    return sim_cloud


def test_current_boto3_instance_lifecycle(cloud, sdks):
    ami = cloud.default_images()["virga-busybox-rootfs"]
    _, k, sk = new_tenant(cloud, "sdk-ec2")
    op = {"image_id": ami, "endpoint": cloud.env["VIRGA_EC2_URL"]}
    r = subprocess.run([sdks["python"], os.path.join(ROOT, "tests", "lib", "sdk_boto3_ec2_lifecycle.py"), json.dumps(op)],
                       capture_output=True, text=True, timeout=600, env=aws_env(cloud, k, sk))
    assert r.stdout.strip(), "boto3 failed: " + r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ok"], out
    s = out["steps"]
    ids = s["run_instances"]["ids"]
    assert len(ids) == 2 and s["run_instances"]["states"] == ["pending", "pending"]
    d = s["describe_instances"]
    assert d["states"] == ["running", "running"] and d["types"] == ["t3.nano", "t3.nano"]
    assert all(ip.startswith("172.31.") for ip in d["ips"])
    assert d["tagged"] == ids and d["paged"] == ids
    assert s["stop_instances"] == ["stopping", "stopping"]
    assert s["start_instances"] == ["stopped", "stopped"]
    console = s["get_console_output"]   # botocore decodes the base64 itself
    assert "VIRGA-GUEST-READY instance-id=%s" % ids[0] in console
    assert s["terminate_instances"] == ["shutting-down", "shutting-down"]
    assert s["after_terminate"] == ["terminated", "terminated"]
    # the same instances as Debian's boto3 sees them
    old = boto3_client(cloud, "ec2", k, sk)
    seen = [i for r in old.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
    assert sorted(i["InstanceId"] for i in seen) == ids
    assert s["boto3"] != __import__("boto3").__version__   # it really was another boto3
