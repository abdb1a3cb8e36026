"""CreateImage from an instance (issue 11, docs/compute.md "CreateImage"), with Debian's
boto3 and /usr/bin/aws on a devcloud whose agent runs the real container driver:

- a container whose user-data wrote a file is imaged while running: CreateImage answers an
  ImageId at once, DescribeImages shows it pending, with its name, description and the tags
  of TagSpecifications, and then available with a size; a new instance launched from it
  finds the file (its own user-data prints what the file holds on its console);
- a QEMU guest (TCG here) that wrote a line on its disk (/dev/vda) is imaged while running
  (its vCPUs stopped while qemu-img reads): the new image is a qcow2 machine image with the
  instance's kernel and ramdisk, and a guest launched from it reads the line from its disk;
- the errors a tenant sees at once: an unknown instance (InvalidInstanceID.NotFound), another
  tenant's instance (the same), a malformed name (InvalidAMIName.Malformed), a name already
  used (InvalidAMIName.Duplicate, through the CLI), a terminated instance
  (IncorrectInstanceState); DryRun (DryRunOperation, no image made).

Needs root (namespaces, cgroups). Waits are bounded generously; nothing asserts a duration."""
import os
import time
import uuid

import pytest

from harness import aws, boto3_client, client_error, new_tenant
from test_instances_real import describe, wait_console, wait_state

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real guests need root")

IMAGE_S = 300


@pytest.fixture(scope="module")
def cloud(real_cloud):
    """The real-guest cloud shared with test_instances_real (tests/conftest.py): this
    module's tenant and instances are its own."""
    return real_cloud


@pytest.fixture(scope="module")
def tenant(cloud):
    _, k, s = new_tenant(cloud, "img-" + uuid.uuid4().hex[:8])
    return boto3_client(cloud, "ec2", k, s), k, s


def launch(ec2, ami, user_data):
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, UserData=user_data)
    iid = r["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    return iid


def wait_image(ec2, ami, state="available", seconds=IMAGE_S):
    deadline = time.time() + seconds
    while True:
        (img,) = ec2.describe_images(ImageIds=[ami])["Images"]
        if img["State"] == state:
            return img
        assert img["State"] == "pending" and time.time() < deadline, "image %s: %s" % (ami, img)
        time.sleep(1)


def test_image_of_a_running_container_carries_its_files(cloud, tenant):
    ec2, key, secret = tenant
    base = cloud.default_images()["virga-busybox-rootfs"]
    token = uuid.uuid4().hex[:12]
    iid = launch(ec2, base, "#!/bin/sh\necho marker-%s > /etc/virga-marker\necho wrote-marker\n" % token)
    wait_console(ec2, iid, ["wrote-marker", "VIRGA-GUEST-READY instance-id=" + iid])

    r = ec2.create_image(InstanceId=iid, Name="snap-" + token, Description="made by the test",
                         TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "made-by", "Value": "test"}]}])
    ami = r["ImageId"]
    assert ami.startswith("ami-")
    (img,) = ec2.describe_images(ImageIds=[ami])["Images"]
    assert img["State"] in ("pending", "available")
    assert img["Name"] == "snap-" + token and img["Description"] == "made by the test"
    assert {"Key": "made-by", "Value": "test"} in img.get("Tags", [])
    img = wait_image(ec2, ami)
    # the source instance goes on running (it was only paused while its files were read)
    assert describe(ec2, iid)["State"]["Name"] == "running"

    # the same name again: taken (through the CLI)
    rc, _, err = aws(cloud, "ec2", "create-image", "--instance-id", iid, "--name", "snap-" + token,
                     access_key=key, secret_key=secret)
    assert rc != 0 and "InvalidAMIName.Duplicate" in err, err

    # a new instance of the image finds the file the first one wrote
    new = launch(ec2, ami, "#!/bin/sh\necho \"found: $(cat /etc/virga-marker)\"\n")
    assert describe(ec2, new)["ImageId"] == ami
    wait_console(ec2, new, ["found: marker-" + token, "VIRGA-GUEST-READY instance-id=" + new])

    ec2.terminate_instances(InstanceIds=[iid, new])
    wait_state(ec2, iid, "terminated")
    # the image outlives its source instance
    assert wait_image(ec2, ami)["State"] == "available"


def test_create_image_errors(cloud, tenant):
    ec2, _, _ = tenant
    base = cloud.default_images()["virga-busybox-rootfs"]
    assert client_error(ec2.create_image, InstanceId="i-0123456789abcdef0", Name="nope-1") == "InvalidInstanceID.NotFound"
    iid = launch(ec2, base, "#!/bin/sh\necho hi\n")
    assert client_error(ec2.create_image, InstanceId=iid, Name="x") == "InvalidAMIName.Malformed"
    assert client_error(ec2.create_image, InstanceId=iid, Name="bad{name}") == "InvalidAMIName.Malformed"
    # another tenant cannot image it, nor learn that it exists
    _, k2, s2 = new_tenant(cloud, "img2-" + uuid.uuid4().hex[:8])
    other = boto3_client(cloud, "ec2", k2, s2)
    assert client_error(other.create_image, InstanceId=iid, Name="theirs-1") == "InvalidInstanceID.NotFound"
    # DryRun makes nothing (it made a real image, its disk exported)
    assert client_error(ec2.create_image, InstanceId=iid, Name="dry-1", DryRun=True) == "DryRunOperation"
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    assert client_error(ec2.create_image, InstanceId=iid, Name="late-1") == "IncorrectInstanceState"
    # nothing was made by the refused requests
    names = {i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert not names & {"nope-1", "x", "bad{name}", "theirs-1", "late-1", "dry-1"}


def test_image_of_a_running_qemu_guest_carries_its_disk(cloud, tenant):
    ec2, _, _ = tenant
    base = cloud.default_images()["virga-tiny"]
    (src,) = ec2.describe_images(ImageIds=[base])["Images"]
    token = uuid.uuid4().hex[:12]
    iid = launch(ec2, base, "#!/bin/sh\nprintf 'disk-marker-%s\\n' | dd of=/dev/vda conv=fsync 2> /dev/null\n"
                            "echo wrote-disk\n" % token)
    wait_console(ec2, iid, ["wrote-disk", "VIRGA-GUEST-READY instance-id=" + iid])
    ami = ec2.create_image(InstanceId=iid, Name="vm-" + token)["ImageId"]
    img = wait_image(ec2, ami, seconds=600)
    assert img["KernelId"] == src["KernelId"] and img["RamdiskId"] == src["RamdiskId"]
    assert describe(ec2, iid)["State"]["Name"] == "running"
    new = launch(ec2, ami, "#!/bin/sh\necho \"disk: $(head -c 24 /dev/vda)\"\n")
    wait_console(ec2, new, ["disk: disk-marker-" + token, "VIRGA-GUEST-READY instance-id=" + new])
    ec2.terminate_instances(InstanceIds=[iid, new])
