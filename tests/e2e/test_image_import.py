"""ImportImage, DescribeImportImageTasks, CancelImportTask and CopyImage with the real
clients: disks made with qemu-img in several formats are uploaded with boto3, imported,
and end `available` as qcow2 images whose content is the disk's; bad input ends the task
with a ClientError; CopyImage makes an independent copy; kernel and ramdisk images."""
import hashlib
import json
import os
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from harness import aws, boto3_client, eventually, new_tenant, s3_client


def code(ei):
    return ei.value.response["Error"]["Code"]


def wait_task(ec2, task_id, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        t = ec2.describe_import_image_tasks(ImportTaskIds=[task_id])["ImportImageTasks"][0]
        if t["Status"] != "active":
            return t
        time.sleep(0.5)
    raise AssertionError("import %s still active after %ds: %s" % (task_id, seconds, t))


def wait_image(ec2, image_id, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        i = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        if i["State"] != "pending":
            return i
        time.sleep(0.3)
    raise AssertionError("image %s still pending" % image_id)


def make_disk(tmp_path, fmt, size="64M"):
    """A sparse disk in fmt with a recognisable pattern written at 1 MiB."""
    raw = tmp_path / "src.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(raw), size], check=True)
    with open(raw, "r+b") as f:
        f.seek(1 << 20)
        f.write(b"VIRGA-IMPORT-PATTERN" * 100)
    out = tmp_path / ("disk." + fmt)
    qfmt = {"vhd": "vpc"}.get(fmt, fmt)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", qfmt, str(raw), str(out)], check=True)
    return raw, out


@pytest.fixture(scope="module")
def tenant(cloud):
    acct, k, s = new_tenant(cloud, "import-a")
    s3_client(cloud, k, s).create_bucket(Bucket="import-a-disks")
    return acct, k, s


def fetch_image_bytes(cloud, account, image_id):
    """What a host would get: image.fetch_url's grant URL, as the launching account."""
    r = cloud.virgadm("call", "image", "image.fetch_url", json.dumps({"image_id": image_id}), "--as", account)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    import urllib.request
    with urllib.request.urlopen(info["url"], timeout=60) as resp:
        body = resp.read()
    assert hashlib.sha256(body).hexdigest() == info["sha256"] and len(body) == info["size"]
    return info, body


@pytest.mark.parametrize("fmt", ["vmdk", "vdi", "vhd", "vhdx", "raw"])
def test_import_ends_available_with_the_disks_content(cloud, tenant, tmp_path, fmt):
    acct, k, s = tenant
    raw, disk = make_disk(tmp_path, fmt)
    s3_client(cloud, k, s).upload_file(str(disk), "import-a-disks", "disk-%s.%s" % (fmt, fmt))
    ec2 = boto3_client(cloud, "ec2", k, s)
    r = ec2.import_image(Description="imported " + fmt, DiskContainers=[{
        "Format": fmt.upper(), "UserBucket": {"S3Bucket": "import-a-disks", "S3Key": "disk-%s.%s" % (fmt, fmt)}}],
        TagSpecifications=[{"ResourceType": "import-image-task", "Tags": [{"Key": "fmt", "Value": fmt}]}])
    assert r["ImportTaskId"].startswith("import-ami-") and r["Status"] == "active"
    t = wait_task(ec2, r["ImportTaskId"])
    assert t["Status"] == "completed", t
    assert t["SnapshotDetails"][0]["Format"].lower() == fmt and t["SnapshotDetails"][0]["DiskImageSize"] == disk.stat().st_size
    assert {"Key": "fmt", "Value": fmt} in t["Tags"]
    img = ec2.describe_images(ImageIds=[t["ImageId"]])["Images"][0]
    assert img["State"] == "available" and img["OwnerId"] == acct and img["Description"] == "imported " + fmt
    # the stored image is qcow2 and holds exactly the disk's bytes
    info, body = fetch_image_bytes(cloud, acct, t["ImageId"])
    assert info["disk_format"] == "qcow2"
    stored = tmp_path / "stored.qcow2"
    stored.write_bytes(body)
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", str(stored), str(back)], check=True)
    want, got = raw.read_bytes(), back.read_bytes()
    # VHD rounds a disk up to its cylinder geometry: the extra tail must be zeros
    assert got[:len(want)] == want and got[len(want):].count(0) == len(got) - len(want)


def test_import_with_the_cli(cloud, tenant, tmp_path):
    acct, k, s = tenant
    raw, disk = make_disk(tmp_path, "qcow2", "16M")
    s3_client(cloud, k, s).upload_file(str(disk), "import-a-disks", "cli.qcow2")
    rc, out, err = aws(cloud, "ec2", "import-image", "--disk-containers",
                       "Format=qcow2,UserBucket={S3Bucket=import-a-disks,S3Key=cli.qcow2}", access_key=k, secret_key=s)
    assert rc == 0, err
    task = out["ImportTaskId"]
    # waited for with boto3 (a process of /usr/bin/aws a poll cost about a CPU-second);
    # the CLI reads the ended task below
    ec2 = boto3_client(cloud, "ec2", k, s)
    deadline = time.time() + 120
    while time.time() < deadline:
        if ec2.describe_import_image_tasks(ImportTaskIds=[task])["ImportImageTasks"][0]["Status"] != "active":
            break
        time.sleep(0.5)
    rc, out, err = aws(cloud, "ec2", "describe-import-image-tasks", "--import-task-ids", task,
                       access_key=k, secret_key=s)
    assert rc == 0, err
    t = out["ImportImageTasks"][0]
    assert t["Status"] == "completed" and t["ImageId"].startswith("ami-")


def test_import_rejects_a_disk_that_is_not_what_it_says(cloud, tenant, tmp_path):
    acct, k, s = tenant
    raw, disk = make_disk(tmp_path, "vdi", "8M")
    s3_client(cloud, k, s).upload_file(str(disk), "import-a-disks", "really-a-vdi.vmdk")
    ec2 = boto3_client(cloud, "ec2", k, s)
    r = ec2.import_image(DiskContainers=[{"Format": "VMDK", "UserBucket": {"S3Bucket": "import-a-disks",
                                                                          "S3Key": "really-a-vdi.vmdk"}}])
    t = wait_task(ec2, r["ImportTaskId"])
    assert t["Status"] == "deleted" and t["StatusMessage"].startswith("ClientError:") and "vdi" in t["StatusMessage"]
    assert "ImageId" not in t


def test_import_rejects_a_backing_file(cloud, tenant, tmp_path):
    """A qcow2 that names a file on the importing host must never be read through."""
    acct, k, s = tenant
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", str(overlay)],
                   check=True)
    s3_client(cloud, k, s).upload_file(str(overlay), "import-a-disks", "overlay.qcow2")
    ec2 = boto3_client(cloud, "ec2", k, s)
    r = ec2.import_image(DiskContainers=[{"Format": "qcow2", "UserBucket": {"S3Bucket": "import-a-disks",
                                                                           "S3Key": "overlay.qcow2"}}])
    t = wait_task(ec2, r["ImportTaskId"])
    assert t["Status"] == "deleted" and "backing file" in t["StatusMessage"]


def test_import_request_errors(cloud, tenant):
    acct, k, s = tenant
    ec2 = boto3_client(cloud, "ec2", k, s)
    with pytest.raises(ClientError) as ei:   # no such object: refused at once
        ec2.import_image(DiskContainers=[{"Format": "vmdk", "UserBucket": {"S3Bucket": "import-a-disks", "S3Key": "nope"}}])
    assert code(ei) == "InvalidParameter"
    with pytest.raises(ClientError) as ei:
        ec2.import_image(DiskContainers=[{"Format": "ova", "UserBucket": {"S3Bucket": "import-a-disks", "S3Key": "x"}}])
    assert code(ei) == "InvalidParameter" and "ova" in str(ei.value)
    with pytest.raises(ClientError) as ei:
        ec2.import_image(DiskContainers=[{"Format": "vmdk", "Url": "http://example.com/x.vmdk"}])
    assert code(ei) == "InvalidParameter"
    with pytest.raises(ClientError) as ei:
        ec2.describe_import_image_tasks(ImportTaskIds=["import-ami-00000000000000000"])
    assert code(ei) == "InvalidConversionTaskId"
    # another tenant cannot import from this tenant's bucket
    b_acct, bk, bs = new_tenant(cloud, "import-b")
    s3_client(cloud, k, s).put_object(Bucket="import-a-disks", Key="private.raw", Body=b"\0" * 4096)
    with pytest.raises(ClientError) as ei:
        boto3_client(cloud, "ec2", bk, bs).import_image(
            DiskContainers=[{"Format": "raw", "UserBucket": {"S3Bucket": "import-a-disks", "S3Key": "private.raw"}}])
    assert code(ei) == "InvalidParameter" and "may not read" in str(ei.value)


def test_cancel_and_client_token(cloud, tenant, tmp_path):
    acct, k, s = tenant
    raw, disk = make_disk(tmp_path, "vmdk", "8M")
    s3_client(cloud, k, s).upload_file(str(disk), "import-a-disks", "token.vmdk")
    ec2 = boto3_client(cloud, "ec2", k, s)
    args = dict(ClientToken="tok-1", DiskContainers=[{"Format": "vmdk", "UserBucket": {
        "S3Bucket": "import-a-disks", "S3Key": "token.vmdk"}}])
    first, again = ec2.import_image(**args), ec2.import_image(**args)
    assert first["ImportTaskId"] == again["ImportTaskId"]
    t = wait_task(ec2, first["ImportTaskId"])
    assert t["Status"] == "completed"
    with pytest.raises(ClientError) as ei:   # too late to cancel
        ec2.cancel_import_task(ImportTaskId=first["ImportTaskId"])
    assert code(ei) == "IncorrectState"
    r = ec2.import_image(DiskContainers=args["DiskContainers"])
    c = ec2.cancel_import_task(ImportTaskId=r["ImportTaskId"])
    if c["State"] == "deleted":
        t = wait_task(ec2, r["ImportTaskId"])
        assert t["Status"] == "deleted" and t["StatusMessage"].startswith("canceled")


def test_copy_image_is_independent_of_its_source(cloud, tenant, tmp_path):
    acct, k, s = tenant
    s3 = s3_client(cloud, k, s)
    data = os.urandom(300000)
    s3.put_object(Bucket="import-a-disks", Key="copy-src.raw", Body=data)
    ec2 = boto3_client(cloud, "ec2", k, s)
    src = ec2.register_image(Name="copy-source", ImageLocation="import-a-disks/copy-src.raw")["ImageId"]
    ec2.create_tags(Resources=[src], Tags=[{"Key": "k", "Value": "v"}])
    assert wait_image(ec2, src)["State"] == "available"
    cp = ec2.copy_image(SourceImageId=src, SourceRegion=cloud.env["AWS_DEFAULT_REGION"],
                        Name="the-copy", CopyImageTags=True, ClientToken="copy-1")["ImageId"]
    assert ec2.copy_image(SourceImageId=src, SourceRegion=cloud.env["AWS_DEFAULT_REGION"],
                          Name="the-copy", ClientToken="copy-1")["ImageId"] == cp
    img = wait_image(ec2, cp)
    assert img["State"] == "available" and img["Name"] == "the-copy" and {"Key": "k", "Value": "v"} in img["Tags"]
    assert not img["ImageLocation"].startswith("import-a-disks/")
    # the source's object goes away: the copy still has its bytes
    s3.delete_object(Bucket="import-a-disks", Key="copy-src.raw")
    info, body = fetch_image_bytes(cloud, acct, cp)
    assert body == data and info["disk_format"] == "raw"
    with pytest.raises(ClientError) as ei:
        ec2.copy_image(SourceImageId=src, SourceRegion="eu-west-9", Name="elsewhere")
    assert code(ei) == "InvalidParameterValue"


def wait_sql(cloud, sql, want, seconds=90):
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = cloud.psql(sql)
        if got == want:
            return
        time.sleep(0.5)
    raise AssertionError("%s: %r after %ds, want %r" % (sql, got, seconds, want))


def test_deregistering_the_source_of_a_running_copy_keeps_its_bytes(cloud, tenant):
    """A copy still running when its source is deregistered gets the source's bytes all the
    same: the reconcile pass that deletes a deregistered image's bytes waits for the copies
    that read them, then deletes them."""
    acct, k, s = tenant
    region = cloud.env["AWS_DEFAULT_REGION"]
    s3 = s3_client(cloud, k, s)
    ec2 = boto3_client(cloud, "ec2", k, s)
    data = os.urandom(8 << 20)
    s3.put_object(Bucket="import-a-disks", Key="chain.raw", Body=data)
    a = ec2.register_image(Name="chain-a", ImageLocation="import-a-disks/chain.raw")["ImageId"]
    assert wait_image(ec2, a)["State"] == "available"
    # b and witness are copies: their bytes are in the image bucket, collected once deregistered
    b = ec2.copy_image(SourceImageId=a, SourceRegion=region, Name="chain-b")["ImageId"]
    witness = ec2.copy_image(SourceImageId=a, SourceRegion=region, Name="chain-witness")["ImageId"]
    assert wait_image(ec2, b)["State"] == "available" and wait_image(ec2, witness)["State"] == "available"
    task = ""
    for attempt in range(5):
        c = ec2.copy_image(SourceImageId=b, SourceRegion=region, Name="chain-c-%d" % attempt)["ImageId"]
        # hold the copy as a stalled worker would (its lease taken over), so that the reconcile
        # pass runs while it is pending; a worker already on it is canceled and it runs again later
        task = cloud.psql("UPDATE image.image_tasks SET lease_owner = 'test-hold', lease_until = now() + "
                          "interval '10 min' WHERE image_id = '%s' AND status = 'active' RETURNING id" % c)
        if task:
            break
    assert task, "every copy finished before it could be held"
    ec2.deregister_image(ImageId=b)
    ec2.deregister_image(ImageId=witness)
    wait_sql(cloud, "SELECT bytes_deleted FROM image.images WHERE id = '%s'" % witness, "t")   # the pass ran
    assert cloud.psql("SELECT bytes_deleted FROM image.images WHERE id = '%s'" % b) == "f"
    cloud.psql("UPDATE image.image_tasks SET lease_until = now() WHERE id = '%s'" % task)
    img = wait_image(ec2, c, 180)
    assert img["State"] == "available", img
    info, body = fetch_image_bytes(cloud, acct, c)
    assert body == data
    wait_sql(cloud, "SELECT bytes_deleted FROM image.images WHERE id = '%s'" % b, "t")
    # a deregistered image cannot be the source of a new copy
    with pytest.raises(ClientError) as ei:
        ec2.copy_image(SourceImageId=b, SourceRegion=region, Name="chain-d")
    assert code(ei) == "InvalidAMIID.NotFound"


def test_kernel_and_ramdisk_images(cloud, tenant):
    acct, k, s = tenant
    s3 = s3_client(cloud, k, s)
    s3.put_object(Bucket="import-a-disks", Key="vmlinuz", Body=b"kernel" * 1000, Metadata={"image-type": "kernel"})
    s3.put_object(Bucket="import-a-disks", Key="initrd", Body=b"initrd" * 1000, Metadata={"image-type": "ramdisk"})
    s3.put_object(Bucket="import-a-disks", Key="root.raw", Body=b"\0" * 8192)
    ec2 = boto3_client(cloud, "ec2", k, s)
    aki = ec2.register_image(Name="k-1", ImageLocation="import-a-disks/vmlinuz")["ImageId"]
    ari = ec2.register_image(Name="r-1", ImageLocation="import-a-disks/initrd")["ImageId"]
    assert aki.startswith("aki-") and ari.startswith("ari-")
    ami = ec2.register_image(Name="m-1", ImageLocation="import-a-disks/root.raw", KernelId=aki, RamdiskId=ari)["ImageId"]
    for i in (aki, ari, ami):
        wait_image(ec2, i)
    imgs = {i["ImageId"]: i for i in ec2.describe_images(ImageIds=[aki, ari, ami])["Images"]}
    assert imgs[aki]["ImageType"] == "kernel" and imgs[ari]["ImageType"] == "ramdisk"
    assert imgs[ami]["ImageType"] == "machine" and imgs[ami]["KernelId"] == aki and imgs[ami]["RamdiskId"] == ari
    assert {i["ImageId"] for i in ec2.describe_images(Filters=[{"Name": "image-type", "Values": ["kernel"]}],
                                                     Owners=["self"])["Images"]} == {aki}
    with pytest.raises(ClientError) as ei:   # a kernel id must name a kernel
        ec2.register_image(Name="m-2", ImageLocation="import-a-disks/root.raw", KernelId=ari)
    assert code(ei) == "InvalidAKIID.NotFound"


def test_import_survives_an_image_service_crash(cloud, tenant, tmp_path):
    """kill -9 of the image service while it works on an import: after the restart the
    task is taken over (its dead owner's lease freed) and completes; nothing is left in
    the scratch directory."""
    import signal
    acct, k, s = tenant
    raw = tmp_path / "big.raw"
    with open(raw, "wb") as f:   # random data: nothing for qemu-img to skip
        for _ in range(96):
            f.write(os.urandom(1 << 20))
    disk = tmp_path / "big.vmdk"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", str(raw), str(disk)], check=True)
    s3_client(cloud, k, s).upload_file(str(disk), "import-a-disks", "big.vmdk")
    ec2 = boto3_client(cloud, "ec2", k, s)
    r = ec2.import_image(DiskContainers=[{"Format": "vmdk", "UserBucket": {"S3Bucket": "import-a-disks", "S3Key": "big.vmdk"}}])
    deadline = time.time() + 30
    while time.time() < deadline:   # wait until a worker has it
        t = ec2.describe_import_image_tasks(ImportTaskIds=[r["ImportTaskId"]])["ImportImageTasks"][0]
        if t.get("StatusMessage") != "pending":
            break
        time.sleep(0.05)
    os.kill(cloud.pid("image"), signal.SIGKILL)
    up = cloud.up()
    assert up.returncode == 0, up.stderr
    t = wait_task(ec2, r["ImportTaskId"], seconds=120)
    assert t["Status"] == "completed", t
    # ~96 MiB of qcow2 is above image.multipart_bytes (64 MiB): stored in two parts
    loc = ec2.describe_images(ImageIds=[t["ImageId"]])["Images"][0]["ImageLocation"]
    assert s3_client(cloud).head_object(Bucket=loc.split("/")[0], Key=loc.split("/", 1)[1])["ETag"].endswith('-2"')
    info, body = fetch_image_bytes(cloud, acct, t["ImageId"])
    stored = tmp_path / "stored.qcow2"
    stored.write_bytes(body)
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", str(stored), str(back)], check=True)
    assert back.read_bytes() == raw.read_bytes()
    # the worker removes its scratch files just after it marks the task completed
    work = os.path.join(cloud.dir, "image-work")
    assert eventually(lambda: os.listdir(work), lambda left: left == [], seconds=10) == []


def test_deregistering_an_import_deletes_its_stored_bytes(cloud, tenant, tmp_path):
    """An imported image's qcow2 lives in the operator's bucket; once the image is
    deregistered, the reconcile pass deletes it (a tenant's own object would be left)."""
    acct, k, s = tenant
    raw, disk = make_disk(tmp_path, "qcow2", "4M")
    s3_client(cloud, k, s).upload_file(str(disk), "import-a-disks", "gc.qcow2")
    ec2 = boto3_client(cloud, "ec2", k, s)
    r = ec2.import_image(DiskContainers=[{"Format": "qcow2", "UserBucket": {"S3Bucket": "import-a-disks", "S3Key": "gc.qcow2"}}])
    t = wait_task(ec2, r["ImportTaskId"])
    loc = ec2.describe_images(ImageIds=[t["ImageId"]])["Images"][0]["ImageLocation"]
    bucket, key = loc.split("/", 1)
    operator = s3_client(cloud)
    assert operator.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    ec2.deregister_image(ImageId=t["ImageId"])
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            operator.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            assert e.response["Error"]["Code"] in ("404", "NoSuchKey")
            break
        time.sleep(1)
    else:
        raise AssertionError("the stored bytes of a deregistered image were not deleted")
    # the tenant's source object is theirs and stays
    assert s3_client(cloud, k, s).head_object(Bucket="import-a-disks", Key="gc.qcow2")["ContentLength"] > 0
