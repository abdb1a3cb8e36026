"""The cloud's default images (docs/images.md): devcloud registers what deploy/images/build
made as public images (the test session's cloud, like `make run`). A new tenant sees them
with the real clients, may launch but not change them, and a host gets their bytes through
image.fetch_url and its agent cache, verified against the build's manifest."""
import json
import os
import re
import subprocess

import pytest
from botocore.exceptions import ClientError

from harness import ROOT, aws, boto3_client, new_tenant, wait_images_built

IMAGES = os.path.join(ROOT, "build", "images")
NAMES = {"virga-kernel": "kernel", "virga-initrd": "ramdisk", "virga-tiny": "machine", "virga-busybox-rootfs": "machine"}



@pytest.fixture(scope="module", autouse=True)
def built():
    # tests/run-all.sh runs deploy/images/build beside the suites' start: wait for its end;
    # a missing build is a failure
    wait_images_built()
    assert os.path.exists(os.path.join(IMAGES, "manifest.json")), "run deploy/images/build first"


def manifest():
    with open(os.path.join(IMAGES, "manifest.json")) as f:
        return {a["name"]: a for a in json.load(f)["artifacts"]}


@pytest.fixture(scope="module")
def tenant(cloud):
    return new_tenant(cloud, "defaults-user")


def defaults(ec2):
    imgs = ec2.describe_images(ExecutableUsers=["all"], Filters=[{"Name": "name", "Values": ["virga-*"]}])["Images"]
    return {i["Name"]: i for i in imgs}


def test_describe_images_shows_the_defaults(cloud, tenant):
    acct, k, s = tenant
    imgs = defaults(boto3_client(cloud, "ec2", k, s))
    assert set(NAMES) <= set(imgs)
    for name, kind in NAMES.items():
        i = imgs[name]
        assert i["State"] == "available" and i["Public"] is True and i["ImageType"] == kind, i
        assert i["ImageId"][:4] == {"kernel": "aki-", "ramdisk": "ari-", "machine": "ami-"}[kind]
        assert i["OwnerId"] != acct
    tiny = imgs["virga-tiny"]
    assert tiny["KernelId"] == imgs["virga-kernel"]["ImageId"] and tiny["RamdiskId"] == imgs["virga-initrd"]["ImageId"]
    # the same through the CLI, as a tenant would look
    rc, out, err = aws(cloud, "ec2", "describe-images", "--executable-users", "all", access_key=k, secret_key=s)
    assert rc == 0, err
    assert set(NAMES) <= {i["Name"] for i in out["Images"]}


def test_tenants_cannot_change_the_defaults(cloud, tenant):
    acct, k, s = tenant
    ec2 = boto3_client(cloud, "ec2", k, s)
    kernel = defaults(ec2)["virga-kernel"]["ImageId"]
    with pytest.raises(ClientError) as ei:
        ec2.deregister_image(ImageId=kernel)
    assert ei.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as ei:
        ec2.modify_image_attribute(ImageId=kernel, LaunchPermission={"Remove": [{"Group": "all"}]})
    assert ei.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"


def test_a_host_fetches_the_kernel_by_checksum(cloud, tenant):
    """image.fetch_url (what compute asks before a launch) → agent.image_fetch: the agent's
    cached file is the kernel deploy/images/build made, byte for byte."""
    acct, k, s = tenant
    kernel = defaults(boto3_client(cloud, "ec2", k, s))["virga-kernel"]["ImageId"]
    r = cloud.virgadm("call", "image", "image.fetch_url", json.dumps({"image_id": kernel}), "--as", acct)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    want = manifest()["kernel"]
    assert info["sha256"] == want["sha256"] and info["size"] == want["size"] and info["image_type"] == "kernel"
    with open(cloud.config) as f:
        host = re.search(r"^agent:\n(?:\s+.*\n)*?\s+host_id:\s*(\S+)", f.read(), re.M).group(1)
    ok, got = cloud.call("virga.host." + host, "agent.image_fetch",
                         {"url": info["url"], "sha256": info["sha256"], "size": info["size"]}, timeout_ms=120000)
    assert ok, got
    with open(got["path"], "rb") as f, open(os.path.join(IMAGES, want["file"]), "rb") as g:
        assert f.read() == g.read()


def test_register_defaults_is_idempotent(cloud):
    before = json.load(open(os.path.join(cloud.dir, "default-images.json")))
    r = subprocess.run([os.path.join(ROOT, "deploy", "images", "register-defaults"), "--env",
                        os.path.join(cloud.dir, "env"), "--images", IMAGES], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == before
