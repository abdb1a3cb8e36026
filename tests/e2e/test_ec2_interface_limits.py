"""The instance type's interface limit after launch, RunInstances' groups, and stops and
starts of instances with no public address, with /usr/bin/aws and Debian's boto3 on the
shared `sim` cloud (docs/compute.md):

- AttachNetworkInterface beyond the type's limit (DescribeInstanceTypes
  NetworkInfo.MaximumNetworkInterfaces; t3.nano takes 2) is AttachmentLimitExceeded in
  EC2's words, and nothing is attached; two attaches at once to an instance with room
  for one: exactly one is attached;
- ModifyInstanceAttribute instanceType (stopped) to a type that takes fewer interfaces
  than the instance has is refused the same way, in both of its forms, and allowed once
  an interface is detached;
- RunInstances' answer names the instance's groups (SecurityGroups, and its primary
  interface's Groups) as DescribeInstances shows them, and the reservation's Groups as
  DescribeInstances shows them (none: a VPC instance's are on the instance);
- an instance with no public address (AssociatePublicIpAddress false) stops and starts
  with no public task (nothing asked of the network, no metadata wait); one with a public
  address still has its task at each (test_ec2_instance_interfaces.py tests its effect)."""
import threading
import uuid

import pytest

from harness import aws, boto3_client, client_error, ec2_tenant, eventually


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    return sim_cloud


@pytest.fixture(scope="module")
def tenant(cloud):
    return ec2_tenant(cloud, "lim")


def describe(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def launch(ec2, cloud, itype="t3.nano", **kw):
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType=itype, MinCount=1, MaxCount=1, **kw)["Instances"][0]["InstanceId"]
    i = eventually(lambda: describe(ec2, iid), lambda d: d["State"]["Name"] == "running" and d.get("NetworkInterfaces"))
    assert i["State"]["Name"] == "running", i["State"]
    return i


def new_eni(ec2, i):
    return ec2.create_network_interface(SubnetId=i["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]


def attached_to(ec2, iid):
    return sorted(n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"])


def test_describe_instance_types_shows_the_limits_used_here(tenant):
    ec2 = tenant[3]
    types = {t["InstanceType"]: t["NetworkInfo"]["MaximumNetworkInterfaces"]
             for t in ec2.describe_instance_types(InstanceTypes=["t3.nano", "t3.small"])["InstanceTypes"]}
    assert types == {"t3.nano": 2, "t3.small": 3}


def test_attach_beyond_the_type_limit_is_refused(cloud, tenant):
    ec2 = tenant[3]
    i = launch(ec2, cloud)
    iid = i["InstanceId"]
    first, second = new_eni(ec2, i), new_eni(ec2, i)
    ec2.attach_network_interface(NetworkInterfaceId=first, InstanceId=iid, DeviceIndex=1)
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as ex:
        ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid, DeviceIndex=2)
    err = ex.value.response["Error"]
    assert err["Code"] == "AttachmentLimitExceeded", err
    assert err["Message"] == "Interface count 3 exceeds the limit for t3.nano", err
    # the CLI sees the same, and nothing was attached
    rc, _, out = aws(cloud, "ec2", "attach-network-interface", "--network-interface-id", second, "--instance-id", iid,
                     "--device-index", "2", access_key=tenant[1], secret_key=tenant[2])
    assert rc != 0 and "AttachmentLimitExceeded" in out and "exceeds the limit for t3.nano" in out, out
    n = ec2.describe_network_interfaces(NetworkInterfaceIds=[second])["NetworkInterfaces"][0]
    assert n["Status"] == "available" and "Attachment" not in n
    assert len(attached_to(ec2, iid)) == 2
    # an unknown instance is still that, not a limit
    assert client_error(ec2.attach_network_interface, NetworkInterfaceId=second, InstanceId="i-0123456789abcdef0",
                        DeviceIndex=1) == "InvalidInstanceID.NotFound"
    ec2.terminate_instances(InstanceIds=[iid])


def test_two_attaches_at_once_do_not_both_pass_the_limit(cloud, tenant):
    """t3.nano has room for one interface beyond its primary: of two attaches sent at the
    same moment (other device indexes), exactly one is attached, the other refused."""
    ec2 = tenant[3]
    i = launch(ec2, cloud)
    iid = i["InstanceId"]
    enis = [new_eni(ec2, i), new_eni(ec2, i)]
    clients = [boto3_client(cloud, "ec2", tenant[1], tenant[2]) for _ in enis]
    start = threading.Barrier(len(enis))
    results = [None] * len(enis)

    def attach(k):
        from botocore.exceptions import ClientError
        start.wait()
        try:
            clients[k].attach_network_interface(NetworkInterfaceId=enis[k], InstanceId=iid, DeviceIndex=1 + k)
            results[k] = "ok"
        except ClientError as e:
            results[k] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=attach, args=(k,)) for k in range(len(enis))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["AttachmentLimitExceeded", "ok"], results
    assert len(attached_to(ec2, iid)) == 2
    ec2.terminate_instances(InstanceIds=[iid])


def wait_state(ec2, iid, name):
    i = eventually(lambda: describe(ec2, iid), lambda d: d["State"]["Name"] == name)
    assert i["State"]["Name"] == name, i["State"]
    return i


def test_a_type_that_takes_fewer_interfaces_is_refused(cloud, tenant):
    """A stopped t3.small with three interfaces cannot become a t3.nano (two), in either
    form of ModifyInstanceAttribute; with one detached it can."""
    ec2 = tenant[3]
    i = launch(ec2, cloud, itype="t3.small")
    iid = i["InstanceId"]
    enis = [new_eni(ec2, i), new_eni(ec2, i)]
    atts = [ec2.attach_network_interface(NetworkInterfaceId=x, InstanceId=iid, DeviceIndex=1 + k)["AttachmentId"]
            for k, x in enumerate(enis)]
    # running: the state is what is wrong (as before), not the interfaces
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid,
                        InstanceType={"Value": "t3.nano"}) == "IncorrectInstanceState"
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as ex:
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.nano"})
    err = ex.value.response["Error"]
    assert (err["Code"], err["Message"]) == ("AttachmentLimitExceeded", "Interface count 3 exceeds the limit for "
                                             "t3.nano"), err
    assert client_error(ec2.modify_instance_attribute, InstanceId=iid, Attribute="instanceType",
                        Value="t3.nano") == "AttachmentLimitExceeded"
    rc, _, out = aws(cloud, "ec2", "modify-instance-attribute", "--instance-id", iid, "--instance-type",
                     "Value=t3.nano", access_key=tenant[1], secret_key=tenant[2])
    assert rc != 0 and "AttachmentLimitExceeded" in out, out
    assert describe(ec2, iid)["InstanceType"] == "t3.small"
    # a type with room for them is fine (t3.medium takes 3)
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.medium"})
    ec2.detach_network_interface(AttachmentId=atts[1])
    eventually(lambda: attached_to(ec2, iid), lambda a: len(a) == 2, 10)
    rc, _, out = aws(cloud, "ec2", "modify-instance-attribute", "--instance-id", iid, "--attribute", "instanceType",
                     "--value", "t3.nano", access_key=tenant[1], secret_key=tenant[2])
    assert rc == 0, out
    assert describe(ec2, iid)["InstanceType"] == "t3.nano"
    ec2.terminate_instances(InstanceIds=[iid])


def test_run_instances_answer_names_the_groups(cloud, tenant):
    ec2 = tenant[3]
    ami = cloud.default_images()["virga-busybox-rootfs"]
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)
    (i,) = r["Instances"]
    default = [(g["GroupName"], g["GroupId"]) for g in i["SecurityGroups"]]
    assert [n for n, _ in default] == ["default"] and default[0][1].startswith("sg-"), i["SecurityGroups"]
    assert [(g["GroupName"], g["GroupId"]) for g in i["NetworkInterfaces"][0]["Groups"]] == default
    shown = eventually(lambda: ec2.describe_instances(InstanceIds=[i["InstanceId"]])["Reservations"][0],
                     lambda res: res["Instances"][0].get("NetworkInterfaces"))
    assert r["Groups"] == shown["Groups"]
    assert i["SecurityGroups"] == shown["Instances"][0]["SecurityGroups"]
    # groups named by id (two): the answer lists both, with their names, as described later
    vpc = i["VpcId"]
    names = ["lim-" + uuid.uuid4().hex[:6] for _ in range(2)]
    ids = [ec2.create_security_group(GroupName=n, Description="x", VpcId=vpc)["GroupId"] for n in names]
    rc, out, err = aws(cloud, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.nano",
                       "--security-group-ids", *ids, access_key=tenant[1], secret_key=tenant[2])
    assert rc == 0, err
    (j,) = out["Instances"]
    assert sorted((g["GroupId"], g["GroupName"]) for g in j["SecurityGroups"]) == sorted(zip(ids, names))
    later = eventually(lambda: describe(ec2, j["InstanceId"]), lambda d: d.get("NetworkInterfaces"))
    assert sorted(map(str, j["SecurityGroups"])) == sorted(map(str, later["SecurityGroups"]))
    ec2.terminate_instances(InstanceIds=[i["InstanceId"], j["InstanceId"]])


def public_tasks(cloud, iid):
    return int(cloud.psql("SELECT count(*) FROM compute.tasks WHERE kind = 'public' AND payload->>'instance_id' = "
                          "'%s'" % iid))


def test_no_public_task_for_an_instance_without_a_public_address(cloud, tenant):
    ec2 = tenant[3]
    subnet = launch(ec2, cloud)
    without = launch(ec2, cloud, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"],
                                                     "AssociatePublicIpAddress": False}])
    iid, pub = without["InstanceId"], subnet["InstanceId"]
    assert without.get("PublicIpAddress") is None
    for _ in range(2):
        ec2.stop_instances(InstanceIds=[iid, pub])
        wait_state(ec2, iid, "stopped")
        wait_state(ec2, pub, "stopped")
        ec2.start_instances(InstanceIds=[iid, pub])
        assert wait_state(ec2, iid, "running").get("PublicIpAddress") is None
        wait_state(ec2, pub, "running")
    assert public_tasks(cloud, iid) == 0
    # the one with an address had a task at each stop and each start
    assert public_tasks(cloud, pub) == 4
    got = eventually(lambda: describe(ec2, pub), lambda d: d.get("PublicIpAddress"), 10)
    assert got.get("PublicIpAddress"), got
    ec2.terminate_instances(InstanceIds=[iid, pub])
