"""The operator's view of every account's network (virgadm network list/show), served to
the operator's principal only; and IPv6 parameters refused by name through /usr/bin/aws
(this cloud's VPCs are IPv4 only), never silently ignored."""
import json
import os
import uuid

import pytest

from harness import aws, compute_call, new_tenant


@pytest.fixture(scope="module")
def tenants(cloud):
    out = []
    for n in ("adm-a-", "adm-b-"):
        out.append(new_tenant(cloud, n + uuid.uuid4().hex[:6]))
    return out


def ec2(cloud, who, *args):
    rc, out, err = aws(cloud, "ec2", *args, access_key=who[1], secret_key=who[2])
    code = err.split("An error occurred (", 1)[1].split(")", 1)[0] if rc else None
    return out, code


def test_operator_sees_every_account(cloud, tenants):
    (a, _, _), (b, _, _) = tenants
    va, _ = ec2(cloud, tenants[0], "create-vpc", "--cidr-block", "10.91.0.0/16")
    vb, _ = ec2(cloud, tenants[1], "create-vpc", "--cidr-block", "10.92.0.0/16")
    sub, _ = ec2(cloud, tenants[0], "create-subnet", "--vpc-id", va["Vpc"]["VpcId"], "--cidr-block", "10.91.1.0/24")
    port = compute_call(cloud, "network.port_create", {"account": a, "subnet": sub["Subnet"]["SubnetId"],
                                                        "instance_id": "i-0adm" + uuid.uuid4().hex[:12]})
    compute_call(cloud, "network.port_plug", {"eni": port["eni_id"], "host": "adm-host-1"})

    r = cloud.virgadm("network", "list")
    assert r.returncode == 0, r.stderr
    accounts = {x["account_id"]: x for x in json.loads(r.stdout)["accounts"]}
    assert a in accounts and b in accounts
    mine = {v["vpc_id"]: v for v in accounts[a]["vpcs"]}[va["Vpc"]["VpcId"]]
    assert (mine["cidr"], mine["subnets"], mine["interfaces"], mine["plugged"], mine["hosts"]) == \
        ("10.91.0.0/16", 1, 1, 1, ["adm-host-1"])
    assert vb["Vpc"]["VpcId"] in {v["vpc_id"] for v in accounts[b]["vpcs"]}
    # one account only
    r = cloud.virgadm("network", "list", b)
    assert [x["account_id"] for x in json.loads(r.stdout)["accounts"]] == [b]
    r = cloud.virgadm("network", "show", a)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert va["Vpc"]["VpcId"] in {v["vpc_id"] for v in shown["vpcs"]}
    assert [n["networkInterfaceId"] for n in shown["network_interfaces"]] == [port["eni_id"]]
    assert vb["Vpc"]["VpcId"] not in json.dumps(shown)
    r = cloud.virgadm("network", "show", "12345")
    assert r.returncode != 0 and "InvalidParameterValue" in r.stderr
    compute_call(cloud, "network.port_delete", {"eni": port["eni_id"]})


def test_only_the_operator_is_served(cloud, tenants):
    # compute's own credential: the bus refuses a sender the route does not name
    r = cloud.virgadm("--set", "bus.credential_file=" + os.path.join(cloud.dir, "secrets", "bus", "compute.cred"),
                      "call", "network", "network.admin_list", "{}")
    assert r.returncode != 0
    # and no EC2 action reaches it, whoever the tenant
    _, code = ec2(cloud, tenants[0], "describe-vpcs", "--filters", "Name=owner-id,Values=" + tenants[1][0])
    assert code is None
    out, _ = ec2(cloud, tenants[0], "describe-vpcs", "--filters", "Name=owner-id,Values=" + tenants[1][0])
    assert out["Vpcs"] == []


def test_ipv6_parameters_are_refused_by_name(cloud, tenants):
    t = tenants[0]
    before, _ = ec2(cloud, t, "describe-vpcs")
    _, code = ec2(cloud, t, "create-vpc", "--cidr-block", "10.93.0.0/16", "--amazon-provided-ipv6-cidr-block")
    assert code == "InvalidParameterValue"
    after, _ = ec2(cloud, t, "describe-vpcs")
    assert len(after["Vpcs"]) == len(before["Vpcs"])      # nothing made
    vpc, _ = ec2(cloud, t, "create-vpc", "--cidr-block", "10.93.0.0/16")
    vid = vpc["Vpc"]["VpcId"]
    _, code = ec2(cloud, t, "create-subnet", "--vpc-id", vid, "--cidr-block", "10.93.1.0/24",
                  "--ipv6-cidr-block", "2600:1f18::/64")
    assert code == "InvalidParameterValue"
    sub, _ = ec2(cloud, t, "create-subnet", "--vpc-id", vid, "--cidr-block", "10.93.1.0/24")
    sid = sub["Subnet"]["SubnetId"]
    _, code = ec2(cloud, t, "modify-subnet-attribute", "--subnet-id", sid, "--assign-ipv6-address-on-creation")
    assert code == "InvalidParameterValue"
    _, code = ec2(cloud, t, "create-network-interface", "--subnet-id", sid, "--ipv6-address-count", "1")
    assert code == "InvalidParameterValue"
    sg, _ = ec2(cloud, t, "create-security-group", "--group-name", "v6", "--description", "d", "--vpc-id", vid)
    _, code = ec2(cloud, t, "authorize-security-group-ingress", "--group-id", sg["GroupId"], "--ip-permissions",
                  "IpProtocol=tcp,FromPort=22,ToPort=22,Ipv6Ranges=[{CidrIpv6=::/0}]")
    assert code == "InvalidParameterValue"
    ec2(cloud, t, "delete-security-group", "--group-id", sg["GroupId"])
    ec2(cloud, t, "delete-subnet", "--subnet-id", sid)
    ec2(cloud, t, "delete-vpc", "--vpc-id", vid)
