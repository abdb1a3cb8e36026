"""The figures bench_images.sh prints (see there). Uses the real clients (boto3)."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Cloud, boto3_client, s3_client  # noqa: E402

MiB = 1 << 20
DISK_MIB, DATA_MIB = 1024, 256        # a 1 GiB vmdk holding 256 MiB of random data
REGISTER_MIB = 64


def poll(fn, done, seconds=600, every=0.05):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = fn()
        if done(v):
            return v
        time.sleep(every)
    raise SystemExit("bench_images: gave up waiting after %ds" % seconds)


def main():
    cloud = Cloud(sys.argv[1], 0)
    cloud.env = cloud.read_env()
    s3, ec2 = s3_client(cloud), boto3_client(cloud, "ec2")
    s3.create_bucket(Bucket="bench-images")
    tmp = tempfile.mkdtemp(prefix="virga-bench-images-")
    try:
        # RegisterImage: available once the image service has read and hashed the bytes
        blob = os.path.join(tmp, "blob.raw")
        with open(blob, "wb") as f:
            for _ in range(REGISTER_MIB):
                f.write(os.urandom(MiB))
        s3.upload_file(blob, "bench-images", "blob.raw")
        t0 = time.time()
        iid = ec2.register_image(Name="bench-register", ImageLocation="bench-images/blob.raw")["ImageId"]
        poll(lambda: ec2.describe_images(ImageIds=[iid])["Images"][0]["State"], lambda s: s != "pending")
        dt = time.time() - t0
        print("RegisterImage %d MiB raw to available: %.2f s (%.0f MB/s hashed)" % (REGISTER_MIB, dt, REGISTER_MIB * MiB / dt / 1e6))

        # ImportImage of a vmdk
        raw, vmdk = os.path.join(tmp, "disk.raw"), os.path.join(tmp, "disk.vmdk")
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", raw, "%dM" % DISK_MIB], check=True)
        with open(raw, "r+b") as f:
            for i in range(DATA_MIB):
                f.seek(i * 4 * MiB)          # every fourth MiB holds data
                f.write(os.urandom(MiB))
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", raw, vmdk], check=True)
        size = os.path.getsize(vmdk)
        s3.upload_file(vmdk, "bench-images", "disk.vmdk")
        t0 = time.time()
        task = ec2.import_image(DiskContainers=[{"Format": "vmdk", "UserBucket": {"S3Bucket": "bench-images", "S3Key": "disk.vmdk"}}])["ImportTaskId"]
        seen = {}

        def state():
            t = ec2.describe_import_image_tasks(ImportTaskIds=[task])["ImportImageTasks"][0]
            seen.setdefault(t.get("StatusMessage", t["Status"]), time.time())
            return t
        t = poll(state, lambda t: t["Status"] != "active")
        end = time.time()
        if t["Status"] != "completed":
            raise SystemExit("bench_images: import ended %s: %s" % (t["Status"], t.get("StatusMessage")))
        order = [k for k in ("pending", "downloading", "validating", "converting", "uploading") if k in seen]
        steps = ", ".join("%s %.2f s" % (k, ((seen[order[i + 1]] if i + 1 < len(order) else end) - seen[k]))
                          for i, k in enumerate(order))
        print("ImportImage vmdk (%d MiB file, %d MiB virtual, %d MiB data) to completed: %.2f s (%s)"
              % (size // MiB, DISK_MIB, DATA_MIB, end - t0, steps))

        # CopyImage of the imported image
        t0 = time.time()
        cp = ec2.copy_image(SourceImageId=t["ImageId"], SourceRegion=cloud.env["AWS_DEFAULT_REGION"], Name="bench-copy")["ImageId"]
        poll(lambda: ec2.describe_images(ImageIds=[cp])["Images"][0]["State"], lambda s: s != "pending")
        print("CopyImage of that image to available: %.2f s" % (time.time() - t0))
    finally:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
