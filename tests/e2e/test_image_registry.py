"""The image registry with the AWS CLI and boto3: RegisterImage from an object the
caller may read, DescribeImages (owners, executable-by, filters, tags), launch
permissions (public and per account), DeregisterImage."""
import concurrent.futures
import os
import signal
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import aws, boto3_client, bus_waiting, new_tenant, s3_client


def code(ei):
    return ei.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def tenants(cloud):
    a, b = new_tenant(cloud, "img-a"), new_tenant(cloud, "img-b")
    s3 = s3_client(cloud, a[1], a[2])
    s3.create_bucket(Bucket="img-a-bucket")
    s3.put_object(Bucket="img-a-bucket", Key="disk.raw", Body=b"\0" * 65536)
    return a, b


def test_register_describe_share_deregister(cloud, tenants):
    (acct_a, ka, sa), (acct_b, kb, sb) = tenants
    ec2a, ec2b = boto3_client(cloud, "ec2", ka, sa), boto3_client(cloud, "ec2", kb, sb)
    img = ec2a.register_image(Name="debian-test", ImageLocation="img-a-bucket/disk.raw", Description="a disk",
                              Architecture="x86_64")
    iid = img["ImageId"]
    assert iid.startswith("ami-") and len(iid) == 21
    # pending until the image service has hashed the bytes: boto3's own waiter sees it through
    assert ec2a.describe_images(ImageIds=[iid])["Images"][0]["State"] in ("pending", "available")
    ec2a.get_waiter("image_available").wait(ImageIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    mine = ec2a.describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in mine] == [iid]
    i = mine[0]
    assert i["State"] == "available" and i["OwnerId"] == acct_a and i["Public"] is False
    assert i["ImageLocation"] == "img-a-bucket/disk.raw" and i["Name"] == "debian-test"
    assert ec2a.describe_images(Filters=[{"Name": "name", "Values": ["deb*"]}])["Images"][0]["ImageId"] == iid
    assert ec2a.describe_images(Filters=[{"Name": "name", "Values": ["ubuntu*"]}])["Images"] == []
    # tenant B sees nothing until it is given launch permission
    assert iid not in [x["ImageId"] for x in ec2b.describe_images()["Images"]]
    with pytest.raises(ClientError) as ei:
        ec2b.describe_images(ImageIds=[iid])
    assert code(ei) == "InvalidAMIID.NotFound"
    ec2a.modify_image_attribute(ImageId=iid, LaunchPermission={"Add": [{"UserId": acct_b}]})
    assert [x["ImageId"] for x in ec2b.describe_images(ExecutableUsers=["self"])["Images"]] == [iid]
    perms = ec2a.describe_image_attribute(ImageId=iid, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": acct_b}]
    with pytest.raises(ClientError) as ei:   # B may launch it, not change it
        ec2b.modify_image_attribute(ImageId=iid, LaunchPermission={"Add": [{"Group": "all"}]})
    assert code(ei) == "InvalidAMIID.NotFound"
    ec2a.modify_image_attribute(ImageId=iid, LaunchPermission={"Remove": [{"UserId": acct_b}], "Add": [{"Group": "all"}]})
    pub = ec2b.describe_images(ExecutableUsers=["all"])["Images"]
    assert iid in [x["ImageId"] for x in pub] and all(x["Public"] for x in pub)
    ec2a.deregister_image(ImageId=iid)
    assert ec2a.describe_images(Owners=["self"])["Images"] == []


def test_register_image_does_not_hold_image_workers(cloud, tenants):
    """RegisterImage asks the object store whether the caller may read the object. With the
    object store frozen (SIGSTOP), more registrations than the image service has bus
    workers (bus.workers, 4) wait set aside for that answer, none holding a worker: the
    image service still answers DescribeImages. Thawed, every one is registered."""
    (acct_a, ka, sa), _ = tenants
    ec2a = boto3_client(cloud, "ec2", ka, sa)
    names = ["waits-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(6)]
    objectstore = cloud.pid("objectstore")
    os.kill(objectstore, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
            regs = [pool.submit(ec2a.register_image, Name=n, ImageLocation="img-a-bucket/disk.raw") for n in names]
            deadline = time.time() + 60
            while (bus_waiting(cloud, "image") or 0) < 5:
                assert time.time() < deadline, "the image service never set them aside: %r" % bus_waiting(cloud, "image")
                assert not any(f.done() for f in regs), [f.exception() for f in regs if f.done()]
                time.sleep(0.2)
            ec2a.describe_images(Owners=["self"])   # served meanwhile, by a free worker
            assert not any(f.done() for f in regs)
            os.kill(objectstore, signal.SIGCONT)
            objectstore = None
            ids = [f.result(timeout=300)["ImageId"] for f in regs]
    finally:
        if objectstore:
            os.kill(objectstore, signal.SIGCONT)
    got = {i["Name"]: i["ImageId"] for i in ec2a.describe_images(Owners=["self"])["Images"] if i["Name"] in names}
    assert sorted(got.values()) == sorted(ids)
    for iid in ids:
        ec2a.deregister_image(ImageId=iid)


def test_register_errors(cloud, tenants):
    (acct_a, ka, sa), (acct_b, kb, sb) = tenants
    ec2a, ec2b = boto3_client(cloud, "ec2", ka, sa), boto3_client(cloud, "ec2", kb, sb)
    with pytest.raises(ClientError) as ei:   # B may not read A's private object
        ec2b.register_image(Name="stolen", ImageLocation="img-a-bucket/disk.raw")
    assert code(ei) == "InvalidParameterValue" and "may not read" in str(ei.value)
    with pytest.raises(ClientError) as ei:
        ec2a.register_image(Name="missing", ImageLocation="img-a-bucket/nope.raw")
    assert code(ei) == "InvalidParameterValue"
    ec2a.register_image(Name="twice", ImageLocation="img-a-bucket/disk.raw")
    with pytest.raises(ClientError) as ei:
        ec2a.register_image(Name="twice", ImageLocation="img-a-bucket/disk.raw")
    assert code(ei) == "InvalidAMIName.Duplicate"
    with pytest.raises(ClientError) as ei:
        ec2a.register_image(Name="x", ImageLocation="img-a-bucket/disk.raw")
    assert code(ei) == "InvalidAMIName.Malformed"
    with pytest.raises(ClientError) as ei:
        ec2a.deregister_image(ImageId="ami-nothex")
    assert code(ei) == "InvalidAMIID.Malformed"
    with pytest.raises(ClientError) as ei:
        ec2a.describe_images(ImageIds=["ami-00000000000000000"])
    assert code(ei) == "InvalidAMIID.NotFound"


def test_cli_register_and_describe(cloud):
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="img-admin")
    s3.put_object(Bucket="img-admin", Key="k", Body=b"kernel bytes")
    rc, out, err = aws(cloud, "ec2", "register-image", "--name", "cli-image", "--image-location", "img-admin/k")
    assert rc == 0, err
    iid = out["ImageId"]
    rc, out, err = aws(cloud, "ec2", "wait", "image-available", "--image-ids", iid)
    assert rc == 0, err
    rc, out, err = aws(cloud, "ec2", "describe-images", "--image-ids", iid)
    assert rc == 0, err
    assert out["Images"][0]["Name"] == "cli-image" and out["Images"][0]["State"] == "available"
