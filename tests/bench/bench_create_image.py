"""CreateImage of a running container, to `available` (docs/performance.md): a cloud of
its own with the real container driver (root), one busybox instance whose user-data wrote
DATA_MIB of random bytes, then ROUNDS CreateImage calls, each timed from the call to the
image being `available` (DescribeImages polled every 0.1 s), and a launch of the last image
to `running`. Run: sudo /usr/bin/python3 tests/bench/bench_create_image.py
(VIRGA_BIN_DIR=build/bin). Every wait is bounded."""
import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from harness import Cloud, boto3_client  # noqa: E402
from test_instances_real import wait_console, wait_state  # noqa: E402

ROUNDS, DATA_MIB = 5, 64


def main():
    cloud = Cloud.start(default_images=True, env={"VIRGA_AGENT_DRIVERS": "container"})
    try:
        ec2 = boto3_client(cloud, "ec2")
        ami = cloud.default_images()["virga-busybox-rootfs"]
        ud = "#!/bin/sh\ndd if=/dev/urandom of=/root/blob bs=1048576 count=%d 2> /dev/null\necho wrote-blob\n" % DATA_MIB
        iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                                UserData=ud)["Instances"][0]["InstanceId"]
        wait_state(ec2, iid, "running")
        wait_console(ec2, iid, ["wrote-blob"])
        took, size = [], 0
        for n in range(ROUNDS):
            t0 = time.time()
            new = ec2.create_image(InstanceId=iid, Name="bench-%d-%s" % (n, uuid.uuid4().hex[:6]))["ImageId"]
            deadline = t0 + 600
            while True:
                (img,) = ec2.describe_images(ImageIds=[new])["Images"]
                if img["State"] == "available":
                    break
                assert img["State"] == "pending" and time.time() < deadline, img
                time.sleep(0.1)
            took.append(time.time() - t0)
        t0 = time.time()
        nid = ec2.run_instances(ImageId=new, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        wait_state(ec2, nid, "running")
        launch = time.time() - t0
        print("create_image container (%d MiB written, image %s): to available p50 %.2f s, min %.2f s, max %.2f s "
              "(%d rounds); launch of the image to running %.2f s; load average %.1f" % (
                  DATA_MIB, new, statistics.median(took), min(took), max(took), ROUNDS, launch, os.getloadavg()[0]))
    finally:
        cloud.stop()


if __name__ == "__main__":
    main()
