"""AttachNetworkInterface / DetachNetworkInterface through /usr/bin/aws: an interface
attached to an instance at a device index shows its attachment, reaches the host's
datapath document inside the instance's primary, follows the primary when it moves, is
detached when the instance's primary goes (terminate); the EC2 errors (index taken,
interface in use, primary not detachable, other VPC, unknown instance or attachment),
a QEMU instance's interface a tap in the host's document, and tenant isolation.

Instances are stood in for by their primary ports, made with compute's own bus
credential exactly as compute's launch task makes them (the network knows an instance
only by its primary interface)."""
import uuid

import pytest

from harness import aws, compute_call, new_tenant


@pytest.fixture(scope="module")
def tenant(cloud):
    account, k, s = new_tenant(cloud, "att-a-" + uuid.uuid4().hex[:6])
    return account, k, s


@pytest.fixture(scope="module")
def other(cloud):
    account, k, s = new_tenant(cloud, "att-b-" + uuid.uuid4().hex[:6])
    return account, k, s


def ec2(cloud, who, *args):
    """(returncode, output, error code or None) of `aws ec2 ...` as who."""
    rc, out, err = aws(cloud, "ec2", *args, access_key=who[1], secret_key=who[2])
    code = None
    if rc:
        assert "An error occurred (" in err, err
        code = err.split("An error occurred (", 1)[1].split(")", 1)[0]
    return rc, out, code


def ok(cloud, who, *args):
    rc, out, code = ec2(cloud, who, *args)
    assert rc == 0, code
    return out


def instance(cloud, account, subnet, host, kind="veth"):
    """An instance's primary port, plugged on host: (instance id, primary eni)."""
    iid = "i-0" + uuid.uuid4().hex[:16]
    port = compute_call(cloud, "network.port_create", {"account": account, "subnet": subnet, "instance_id": iid,
                                                        "device_kind": kind})
    compute_call(cloud, "network.port_plug", {"eni": port["eni_id"], "host": host})
    return iid, port["eni_id"]


def eni(cloud, who, eni_id):
    return ok(cloud, who, "describe-network-interfaces", "--network-interface-ids", eni_id)["NetworkInterfaces"][0]


def doc_ifaces(cloud, host):
    return compute_call(cloud, "network.host_desired", {"host": host})["interfaces"]


def test_attach_detach_and_the_host_document(cloud, tenant):
    host = "att-h-" + uuid.uuid4().hex[:6]
    vpc = ok(cloud, tenant, "create-vpc", "--cidr-block", "10.81.0.0/16")["Vpc"]["VpcId"]
    sub = ok(cloud, tenant, "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.81.1.0/24")["Subnet"]["SubnetId"]
    iid, primary = instance(cloud, tenant[0], sub, host)
    extra = ok(cloud, tenant, "create-network-interface", "--subnet-id", sub)["NetworkInterface"]
    assert extra["Status"] == "available" and "Attachment" not in extra

    att = ok(cloud, tenant, "attach-network-interface", "--network-interface-id", extra["NetworkInterfaceId"],
             "--instance-id", iid, "--device-index", "1")
    assert att["AttachmentId"].startswith("eni-attach-") and att.get("NetworkCardIndex", 0) == 0
    shown = eni(cloud, tenant, extra["NetworkInterfaceId"])
    assert shown["Status"] == "in-use"
    a = shown["Attachment"]
    assert (a["AttachmentId"], a["InstanceId"], a["DeviceIndex"], a["Status"], a["DeleteOnTermination"]) == \
        (att["AttachmentId"], iid, 1, "attached", False)
    p = eni(cloud, tenant, primary)["Attachment"]
    assert (p["DeviceIndex"], p["DeleteOnTermination"]) == (0, True)
    # filters on the attachment
    found = ok(cloud, tenant, "describe-network-interfaces", "--filters",
               "Name=attachment.instance-id,Values=" + iid)["NetworkInterfaces"]
    assert sorted(n["NetworkInterfaceId"] for n in found) == sorted([primary, extra["NetworkInterfaceId"]])

    # the host's datapath puts it inside the primary, after it
    ifs = doc_ifaces(cloud, host)
    assert [i["eni_id"] for i in ifs] == [primary, extra["NetworkInterfaceId"]]
    assert ifs[1]["attach"] == {"parent": primary, "device_index": 1} and "attach" not in ifs[0]

    # errors: index taken, interface in use, deleting an attached one, primary not detachable
    third = ok(cloud, tenant, "create-network-interface", "--subnet-id", sub)["NetworkInterface"]["NetworkInterfaceId"]
    assert ec2(cloud, tenant, "attach-network-interface", "--network-interface-id", third, "--instance-id", iid,
               "--device-index", "1")[2] == "InvalidParameterValue"
    assert ec2(cloud, tenant, "attach-network-interface", "--network-interface-id", extra["NetworkInterfaceId"],
               "--instance-id", iid, "--device-index", "2")[2] == "InvalidNetworkInterface.InUse"
    assert ec2(cloud, tenant, "attach-network-interface", "--network-interface-id", third, "--instance-id", iid,
               "--device-index", "16")[2] == "InvalidParameterValue"
    assert ec2(cloud, tenant, "delete-network-interface", "--network-interface-id",
               extra["NetworkInterfaceId"])[2] == "InvalidNetworkInterface.InUse"
    assert ec2(cloud, tenant, "detach-network-interface", "--attachment-id", p["AttachmentId"])[2] == \
        "OperationNotPermitted"
    assert ec2(cloud, tenant, "attach-network-interface", "--network-interface-id", third, "--instance-id",
               "i-0ffffffffffffffff", "--device-index", "2")[2] == "InvalidInstanceID.NotFound"
    assert ec2(cloud, tenant, "detach-network-interface", "--attachment-id", "eni-attach-0123456789abcdef0")[2] == \
        "InvalidAttachmentID.NotFound"
    # DryRun changes nothing
    assert ec2(cloud, tenant, "attach-network-interface", "--dry-run", "--network-interface-id", third,
               "--instance-id", iid, "--device-index", "2")[2] == "DryRunOperation"
    assert eni(cloud, tenant, third)["Status"] == "available"

    # the primary moves to another host: the attached one goes with it
    host2 = host + "-2"
    compute_call(cloud, "network.port_unplug", {"eni": primary, "host": host})
    assert doc_ifaces(cloud, host) == []
    compute_call(cloud, "network.port_plug", {"eni": primary, "host": host2})
    assert [i["eni_id"] for i in doc_ifaces(cloud, host2)] == [primary, extra["NetworkInterfaceId"]]

    # detach: available again and gone from the host
    assert ok(cloud, tenant, "detach-network-interface", "--attachment-id", att["AttachmentId"], "--force") is None
    shown = eni(cloud, tenant, extra["NetworkInterfaceId"])
    assert shown["Status"] == "available" and "Attachment" not in shown
    assert [i["eni_id"] for i in doc_ifaces(cloud, host2)] == [primary]
    assert ec2(cloud, tenant, "detach-network-interface", "--attachment-id", att["AttachmentId"])[2] == \
        "InvalidAttachmentID.NotFound"

    # terminate (compute deletes the primary port): what was attached is detached, kept
    att2 = ok(cloud, tenant, "attach-network-interface", "--network-interface-id", third, "--instance-id", iid,
              "--device-index", "2")["AttachmentId"]
    assert compute_call(cloud, "network.port_delete", {"eni": primary})["deleted"] is True
    shown = eni(cloud, tenant, third)
    assert shown["Status"] == "available" and "Attachment" not in shown
    assert ec2(cloud, tenant, "detach-network-interface", "--attachment-id", att2)[2] == "InvalidAttachmentID.NotFound"
    assert doc_ifaces(cloud, host2) == []
    for n in (extra["NetworkInterfaceId"], third):
        ok(cloud, tenant, "delete-network-interface", "--network-interface-id", n)
    ok(cloud, tenant, "delete-subnet", "--subnet-id", sub)
    ok(cloud, tenant, "delete-vpc", "--vpc-id", vpc)


def test_a_qemu_instance_takes_a_tap_and_other_vpcs_are_refused(cloud, tenant):
    host = "att-q-" + uuid.uuid4().hex[:6]
    vpc = ok(cloud, tenant, "create-vpc", "--cidr-block", "10.82.0.0/16")["Vpc"]["VpcId"]
    sub = ok(cloud, tenant, "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.82.1.0/24")["Subnet"]["SubnetId"]
    vpc2 = ok(cloud, tenant, "create-vpc", "--cidr-block", "10.83.0.0/16")["Vpc"]["VpcId"]
    sub2 = ok(cloud, tenant, "create-subnet", "--vpc-id", vpc2, "--cidr-block", "10.83.1.0/24")["Subnet"]["SubnetId"]
    qemu_iid, qemu_primary = instance(cloud, tenant[0], sub, host, kind="tap")
    iid, primary = instance(cloud, tenant[0], sub, host)
    n1 = ok(cloud, tenant, "create-network-interface", "--subnet-id", sub)["NetworkInterface"]["NetworkInterfaceId"]
    n2 = ok(cloud, tenant, "create-network-interface", "--subnet-id", sub2)["NetworkInterface"]["NetworkInterfaceId"]
    # a QEMU guest takes an interface while it runs: a tap its agent plugs in over QMP
    # (test_instances_real.py boots one), and gives it back the same way
    att = ok(cloud, tenant, "attach-network-interface", "--network-interface-id", n1, "--instance-id", qemu_iid,
             "--device-index", "1")["AttachmentId"]
    assert eni(cloud, tenant, n1)["Status"] == "in-use"
    kinds = {f["eni_id"]: f.get("device_kind") for f in doc_ifaces(cloud, host)}
    assert kinds.get(n1) == "tap", kinds
    ok(cloud, tenant, "detach-network-interface", "--attachment-id", att)
    assert eni(cloud, tenant, n1)["Status"] == "available"
    assert n1 not in {f["eni_id"] for f in doc_ifaces(cloud, host)}
    # an interface of another VPC
    assert ec2(cloud, tenant, "attach-network-interface", "--network-interface-id", n2, "--instance-id", iid,
               "--device-index", "1")[2] == "InvalidParameterCombination"
    for p in (qemu_primary, primary):
        compute_call(cloud, "network.port_delete", {"eni": p})
    for n in (n1, n2):
        ok(cloud, tenant, "delete-network-interface", "--network-interface-id", n)
    for s, v in ((sub, vpc), (sub2, vpc2)):
        ok(cloud, tenant, "delete-subnet", "--subnet-id", s)
        ok(cloud, tenant, "delete-vpc", "--vpc-id", v)


def test_tenant_isolation(cloud, tenant, other):
    host = "att-i-" + uuid.uuid4().hex[:6]
    sub = ok(cloud, tenant, "describe-subnets")["Subnets"][0]["SubnetId"]
    iid, primary = instance(cloud, tenant[0], sub, host)
    mine = ok(cloud, tenant, "create-network-interface", "--subnet-id", sub)["NetworkInterface"]["NetworkInterfaceId"]
    osub = ok(cloud, other, "describe-subnets")["Subnets"][0]["SubnetId"]
    theirs = ok(cloud, other, "create-network-interface", "--subnet-id", osub)["NetworkInterface"]["NetworkInterfaceId"]
    # B can neither attach A's interface nor attach to A's instance
    assert ec2(cloud, other, "attach-network-interface", "--network-interface-id", mine, "--instance-id", iid,
               "--device-index", "1")[2] == "InvalidNetworkInterfaceID.NotFound"
    assert ec2(cloud, other, "attach-network-interface", "--network-interface-id", theirs, "--instance-id", iid,
               "--device-index", "1")[2] == "InvalidInstanceID.NotFound"
    att = ok(cloud, tenant, "attach-network-interface", "--network-interface-id", mine, "--instance-id", iid,
             "--device-index", "1")["AttachmentId"]
    # nor detach A's attachment
    assert ec2(cloud, other, "detach-network-interface", "--attachment-id", att)[2] == "InvalidAttachmentID.NotFound"
    assert eni(cloud, tenant, mine)["Status"] == "in-use"
    ok(cloud, tenant, "detach-network-interface", "--attachment-id", att)
    compute_call(cloud, "network.port_delete", {"eni": primary})
    ok(cloud, tenant, "delete-network-interface", "--network-interface-id", mine)
    ok(cloud, other, "delete-network-interface", "--network-interface-id", theirs)
