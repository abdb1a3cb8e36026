"""The hypervisor a tenant is shown (common/ec2_hypervisor.c): an instance, the image it was
launched from and its instance type name the same one, in each answer's EC2 vocabulary,
"xen" where the SDK's HypervisorType allows only ovm or xen (DescribeInstances,
DescribeImages; AWS answers so for its Nitro instances too) and "nitro" for the type
(DescribeInstanceTypes); the `hypervisor` filters find them by it."""
import time
import uuid

import pytest

from harness import boto3_client, new_tenant


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    """The shared `sim` cloud (tests/conftest.py): this test makes its own account."""
    return sim_cloud


def test_instance_image_and_type_name_one_hypervisor(cloud):
    _, k, s = new_tenant(cloud, "hv-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    try:
        (image,) = ec2.describe_images(ImageIds=[ami])["Images"]
        assert image["Hypervisor"] == "xen", image
        (r,) = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
        assert r["Instances"][0]["Hypervisor"] == "xen", r["Instances"][0]
        found = ec2.describe_instances(Filters=[{"Name": "hypervisor", "Values": ["xen"]}])["Reservations"]
        assert iid in [i["InstanceId"] for x in found for i in x["Instances"]]
        (t,) = ec2.describe_instance_types(InstanceTypes=["t3.nano"])["InstanceTypes"]
        assert t["Hypervisor"] == "nitro", t
        by = ec2.describe_instance_types(Filters=[{"Name": "hypervisor", "Values": ["nitro"]}])["InstanceTypes"]
        assert "t3.nano" in [x["InstanceType"] for x in by]
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        deadline = time.time() + 60
        while ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] != "terminated":
            assert time.time() < deadline
            time.sleep(0.5)
