"""The EC2 endpoint with today's AWS SDK for JavaScript v3 (@aws-sdk/client-ec2, pinned in
tests/js, installed by tests/sdk-setup.sh), besides Debian's awscli 2.9 and boto3 1.26 that
the other EC2 suites use. The SDK is a separate implementation of the EC2 query protocol
(its own serializer, its own XML parser and error mapping), so these tests show that what
a Node.js program sends is understood and what we answer parses into the SDK's shapes: the
instance life cycle on the `sim` driver, key pairs, the default VPC, security group rules,
tags and filters, and the EC2 error codes as the SDK's error names."""
import json
import os
import subprocess
import time
import uuid

import pytest

from harness import ROOT, aws_env, new_tenant

WAIT_S = 60


@pytest.fixture(scope="module")
def cloud(sim_cloud):
    """A `sim` host, default images, the object store in a directory: the cloud this
    module shares with the other EC2 suites of that kind (tests/conftest.py)."""
    return sim_cloud


@pytest.fixture(scope="module")
def ami(cloud):
    return cloud.default_images()["virga-busybox-rootfs"]


@pytest.fixture(scope="module")
def tenant(cloud):
    _, key, secret = new_tenant(cloud, "jsec2-" + uuid.uuid4().hex[:6])
    return key, secret


def js(sdks, cloud, tenant, *calls):
    """Run calls [(command, input)] in one node process; returns one result per call."""
    env = aws_env(cloud, *tenant)
    env.update({"VIRGA_EC2_URL": cloud.env["VIRGA_EC2_URL"], "NODE_NO_WARNINGS": "1"})
    spec = [{"command": c, "input": i} for c, i in calls]
    r = subprocess.run([sdks["node"], os.path.join(ROOT, "tests", "js", "ec2_sdk.mjs"), json.dumps(spec)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.stdout.strip(), "node failed: " + r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(out) == len(calls)
    return out


def ok(result):
    assert result["ok"], result
    return result["output"]


def instances(output):
    return [i for r in output.get("Reservations", []) for i in r["Instances"]]


def wait_state(sdks, cloud, tenant, ids, state):
    deadline = time.time() + WAIT_S
    while True:
        (r,) = js(sdks, cloud, tenant, ("DescribeInstances", {"InstanceIds": ids}))
        got = instances(ok(r))
        if len(got) == len(ids) and all(i["State"]["Name"] == state for i in got):
            return got
        assert time.time() < deadline, "not all %s: %s" % (state, [(i["InstanceId"], i["State"]) for i in got])
        time.sleep(0.3)


def test_instance_life_cycle(sdks, cloud, ami, tenant):
    key_name = "js-key"
    kp, run = js(sdks, cloud, tenant,
                 ("CreateKeyPair", {"KeyName": key_name}),
                 ("RunInstances", {"ImageId": ami, "InstanceType": "t3.nano", "MinCount": 2, "MaxCount": 2,
                                   "KeyName": key_name, "UserData": "aGVsbG8=",
                                   "TagSpecifications": [{"ResourceType": "instance",
                                                          "Tags": [{"Key": "team", "Value": "js"}]}]}))
    assert ok(kp)["KeyMaterial"].startswith("-----BEGIN") and ok(kp)["KeyName"] == key_name
    launched = ok(run)
    assert launched["ReservationId"].startswith("r-")
    ids = [i["InstanceId"] for i in launched["Instances"]]
    assert len(ids) == 2 and all(i["State"]["Name"] == "pending" for i in launched["Instances"])

    running = wait_state(sdks, cloud, tenant, ids, "running")
    for i in running:
        assert i["State"]["Code"] == 16
        assert i["ImageId"] == ami and i["InstanceType"] == "t3.nano" and i["KeyName"] == key_name
        assert i["PrivateIpAddress"].startswith("172.31.")
        assert i["VpcId"].startswith("vpc-") and i["SubnetId"].startswith("subnet-")
        assert {"Key": "team", "Value": "js"} in i["Tags"]
        assert i["Placement"]["AvailabilityZone"]
        # the SDK parses timestamps into Dates: ours must be ISO 8601 it understands
        assert i["LaunchTime"].endswith("Z") and i["LaunchTime"][:4].isdigit()

    filtered, stop = js(sdks, cloud, tenant,
                        ("DescribeInstances", {"Filters": [{"Name": "tag:team", "Values": ["js"]},
                                                           {"Name": "instance-state-name", "Values": ["running"]}]}),
                        ("StopInstances", {"InstanceIds": ids[:1]}))
    assert sorted(i["InstanceId"] for i in instances(ok(filtered))) == sorted(ids)
    (change,) = ok(stop)["StoppingInstances"]
    assert change["InstanceId"] == ids[0] and change["PreviousState"]["Name"] == "running"
    wait_state(sdks, cloud, tenant, ids[:1], "stopped")

    attr, start = js(sdks, cloud, tenant,
                     ("DescribeInstanceAttribute", {"InstanceId": ids[0], "Attribute": "userData"}),
                     ("StartInstances", {"InstanceIds": ids[:1]}))
    assert ok(attr)["UserData"]["Value"] == "aGVsbG8="
    assert ok(start)["StartingInstances"][0]["CurrentState"]["Name"] == "pending"
    wait_state(sdks, cloud, tenant, ids[:1], "running")

    status, term = js(sdks, cloud, tenant,
                      ("DescribeInstanceStatus", {"InstanceIds": ids}),
                      ("TerminateInstances", {"InstanceIds": ids}))
    assert sorted(s["InstanceId"] for s in ok(status)["InstanceStatuses"]) == sorted(ids)
    assert {t["InstanceId"] for t in ok(term)["TerminatingInstances"]} == set(ids)
    wait_state(sdks, cloud, tenant, ids, "terminated")


def test_network_and_key_pairs(sdks, cloud, tenant):
    name = "js-sg-" + uuid.uuid4().hex[:6]
    vpcs, zones, regions = js(sdks, cloud, tenant,
                              ("DescribeVpcs", {"Filters": [{"Name": "is-default", "Values": ["true"]}]}),
                              ("DescribeAvailabilityZones", {}),
                              ("DescribeRegions", {}))
    (vpc,) = ok(vpcs)["Vpcs"]
    assert vpc["CidrBlock"] == "172.31.0.0/16" and vpc["IsDefault"] is True
    assert ok(zones)["AvailabilityZones"] and ok(regions)["Regions"]

    (created,) = js(sdks, cloud, tenant, ("CreateSecurityGroup", {"GroupName": name, "Description": "js sdk",
                                                                   "VpcId": vpc["VpcId"]}))
    gid = ok(created)["GroupId"]
    auth, described, dup = js(
        sdks, cloud, tenant,
        ("AuthorizeSecurityGroupIngress", {"GroupId": gid, "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}),
        ("DescribeSecurityGroups", {"GroupIds": [gid]}),
        ("AuthorizeSecurityGroupIngress", {"GroupId": gid, "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}))
    assert ok(auth)["Return"] is True and ok(auth)["SecurityGroupRules"][0]["SecurityGroupRuleId"].startswith("sgr-")
    (group,) = ok(described)["SecurityGroups"]
    assert group["GroupName"] == name
    assert group["IpPermissions"] == [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                       "IpRanges": [{"CidrIp": "10.0.0.0/8"}], "Ipv6Ranges": [],
                                       "PrefixListIds": [], "UserIdGroupPairs": []}]
    assert dup["ok"] is False and dup["name"] == "InvalidPermission.Duplicate" and dup["status"] == 400

    imported, listed, deleted, gone = js(
        sdks, cloud, tenant,
        ("ImportKeyPair", {"KeyName": "js-imported", "PublicKeyMaterial": _ed25519_public_key()}),
        ("DescribeKeyPairs", {"KeyNames": ["js-imported"]}),
        ("DeleteSecurityGroup", {"GroupId": gid}),
        ("DescribeSecurityGroups", {"GroupIds": [gid]}))
    assert ok(imported)["KeyFingerprint"]
    assert [k["KeyName"] for k in ok(listed)["KeyPairs"]] == ["js-imported"]
    assert ok(deleted)["Return"] is True
    assert gone["ok"] is False and gone["name"] == "InvalidGroup.NotFound"


def test_errors_are_the_sdks_error_names(sdks, cloud, ami, tenant):
    no_instance, no_image, no_key, bad_count, bad_creds = js(
        sdks, cloud, tenant,
        ("DescribeInstances", {"InstanceIds": ["i-0123456789abcdef0"]}),
        ("RunInstances", {"ImageId": "ami-0000000000000000f", "InstanceType": "t3.nano", "MinCount": 1,
                          "MaxCount": 1}),
        ("DescribeKeyPairs", {"KeyNames": ["no-such-key"]}),
        ("RunInstances", {"ImageId": ami, "InstanceType": "t3.nano", "MinCount": 3, "MaxCount": 1}),
        ("DescribeVpcs", {"VpcIds": ["vpc-nothere"]}))
    assert no_instance["name"] == "InvalidInstanceID.NotFound" and no_instance["status"] == 400
    assert no_image["name"] == "InvalidAMIID.NotFound"
    assert no_key["name"] == "InvalidKeyPair.NotFound"
    assert bad_count["name"] == "InvalidParameterValue"
    assert bad_creds["name"] in ("InvalidVpcID.NotFound", "InvalidVpcID.Malformed")
    for r in (no_instance, no_image, no_key, bad_count, bad_creds):
        assert r["message"], r

    (denied,) = js(sdks, cloud, ("AKIANOTAREALKEY00000", "x" * 40), ("DescribeInstances", {}))
    assert denied["name"] == "AuthFailure" and denied["status"] == 401


def _ed25519_public_key():
    """A real OpenSSH public key made here by ssh-keygen (ImportKeyPair parses it)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "k")], check=True)
        with open(os.path.join(d, "k.pub")) as f:
            return f.read().strip()
