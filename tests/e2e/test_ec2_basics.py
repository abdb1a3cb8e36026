"""EC2 API basics with the unmodified AWS CLI and boto3: regions, zones, account
attributes, key pairs (create rsa/ed25519, import, describe with filters and tags,
delete), AWS-shaped errors, tenant isolation."""
import os
import subprocess
import tempfile
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import aws, boto3_client, new_tenant


def test_admin_bootstrap_key_works_with_the_cli(cloud):
    rc, out, err = aws(cloud, "ec2", "describe-regions")
    assert rc == 0, err
    assert [r["RegionName"] for r in out["Regions"]] == [cloud.env["AWS_DEFAULT_REGION"]]


def test_availability_zones_and_account_attributes(cloud):
    ec2 = boto3_client(cloud, "ec2")
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert zones and zones[0]["ZoneName"] == cloud.env["AWS_DEFAULT_REGION"] + "a"
    assert zones[0]["State"] == "available"
    none = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": ["nope*"]}])
    assert none["AvailabilityZones"] == []
    attrs = ec2.describe_account_attributes(AttributeNames=["supported-platforms"])["AccountAttributes"]
    assert attrs == [{"AttributeName": "supported-platforms", "AttributeValues": [{"AttributeValue": "VPC"}]}]
    everything = {a["AttributeName"] for a in ec2.describe_account_attributes()["AccountAttributes"]}
    assert {"supported-platforms", "default-vpc", "max-instances", "max-elastic-ips"} <= everything


def test_unknown_filter_is_invalid_parameter_value(cloud):
    ec2 = boto3_client(cloud, "ec2")
    with pytest.raises(ClientError) as ei:
        ec2.describe_regions(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "no-such-filter" in ei.value.response["Error"]["Message"]


def _ssh_keygen(directory, kind):
    path = os.path.join(directory, kind)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", path] + (["-b", "2048"] if kind == "rsa" else []),
                   check=True)
    return path


def test_create_rsa_key_pair_fingerprint_is_awss(cloud):
    rc, out, err = aws(cloud, "ec2", "create-key-pair", "--key-name", "e2e-rsa")
    assert rc == 0, err
    assert out["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert out["KeyPairId"].startswith("key-") and len(out["KeyPairId"]) == 21
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(out["KeyMaterial"])
        f.flush()
        # AWS's documented check for a key pair it created: SHA-1 of the PKCS#8 DER
        sha1 = subprocess.run("openssl pkcs8 -in %s -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c" % f.name,
                              shell=True, capture_output=True, text=True, check=True).stdout
        assert sha1.strip().split()[-1] == out["KeyFingerprint"]
        os.chmod(f.name, 0o600)
        pub = subprocess.run(["ssh-keygen", "-y", "-f", f.name], capture_output=True, text=True, check=True).stdout
    desc = boto3_client(cloud, "ec2").describe_key_pairs(KeyNames=["e2e-rsa"], IncludePublicKey=True)["KeyPairs"][0]
    assert desc["KeyFingerprint"] == out["KeyFingerprint"] and desc["KeyType"] == "rsa"
    assert desc["PublicKey"].split()[:2] == pub.split()[:2]


def test_create_ed25519_key_pair_with_tags(cloud):
    ec2 = boto3_client(cloud, "ec2")
    # a value no other test of the session cloud tags with (the operator sees every
    # account's key pairs, and other modules tag theirs team=blue)
    team = "blue-" + uuid.uuid4().hex[:8]
    out = ec2.create_key_pair(KeyName="e2e-ed", KeyType="ed25519",
                              TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "team", "Value": team}]}])
    assert out["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert out["Tags"] == [{"Key": "team", "Value": team}]
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "k")
        with open(p, "w") as f:
            f.write(out["KeyMaterial"])
        os.chmod(p, 0o600)
        fp = subprocess.run(["ssh-keygen", "-l", "-f", p], capture_output=True, text=True, check=True).stdout.split()[1]
    assert fp == "SHA256:" + out["KeyFingerprint"].rstrip("=")
    tagged = ec2.describe_key_pairs(Filters=[{"Name": "tag:team", "Values": [team]}])["KeyPairs"]
    assert [k["KeyName"] for k in tagged] == ["e2e-ed"]
    by_type = ec2.describe_key_pairs(Filters=[{"Name": "key-type", "Values": ["ed25519"]}])["KeyPairs"]
    assert "e2e-ed" in [k["KeyName"] for k in by_type] and all(k["KeyType"] == "ed25519" for k in by_type)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_import_key_pair_from_ssh_keygen(cloud, kind):
    with tempfile.TemporaryDirectory() as d:
        path = _ssh_keygen(d, kind)
        rc, out, err = aws(cloud, "ec2", "import-key-pair", "--key-name", "imp-" + kind,
                           "--public-key-material", "fileb://%s.pub" % path)
        assert rc == 0, err
        if kind == "rsa":   # imported RSA: MD5 of the DER public key
            md5 = subprocess.run("ssh-keygen -e -m PKCS8 -f %s.pub | openssl pkey -pubin -outform DER | openssl md5 -c"
                                 % path, shell=True, capture_output=True, text=True, check=True).stdout
            assert md5.strip().split()[-1] == out["KeyFingerprint"]
        else:
            fp = subprocess.run(["ssh-keygen", "-l", "-f", path + ".pub"], capture_output=True, text=True,
                                check=True).stdout.split()[1]
            assert fp == "SHA256:" + out["KeyFingerprint"].rstrip("=")


def test_key_pair_errors(cloud):
    ec2 = boto3_client(cloud, "ec2")
    first = ec2.create_key_pair(KeyName="dup")
    # the very same request again is a retry: its answer, not an error (docs/bus.md)
    assert ec2.create_key_pair(KeyName="dup")["KeyPairId"] == first["KeyPairId"]
    with pytest.raises(ClientError) as ei:
        ec2.create_key_pair(KeyName="dup", KeyType="ed25519")
    assert ei.value.response["Error"]["Code"] == "InvalidKeyPair.Duplicate"
    with pytest.raises(ClientError) as ei:
        ec2.describe_key_pairs(KeyNames=["does-not-exist"])
    assert ei.value.response["Error"]["Code"] == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as ei:
        ec2.import_key_pair(KeyName="bad", PublicKeyMaterial=b"ssh-rsa not-base64!!")
    assert ei.value.response["Error"]["Code"] == "InvalidKey.Format"
    with pytest.raises(ClientError) as ei:
        ec2.create_key_pair(KeyName="weird", KeyType="dsa")
    assert ei.value.response["Error"]["Code"] in ("InvalidParameterValue",)
    assert ec2.delete_key_pair(KeyName="dup")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "dup" not in [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    # deleting a name that does not exist succeeds, as in EC2
    ec2.delete_key_pair(KeyName="dup")


def test_tenant_a_never_sees_tenant_b_key_pairs(cloud):
    _, ka, sa = new_tenant(cloud, "tenant-a")
    _, kb, sb = new_tenant(cloud, "tenant-b")
    a = boto3_client(cloud, "ec2", ka, sa)
    b = boto3_client(cloud, "ec2", kb, sb)
    a.create_key_pair(KeyName="shared-name")
    b_key = b.create_key_pair(KeyName="shared-name")   # same name, other tenant: no clash
    b.create_key_pair(KeyName="b-only")
    names_a = [k["KeyName"] for k in a.describe_key_pairs()["KeyPairs"]]
    assert names_a == ["shared-name"]
    with pytest.raises(ClientError) as ei:
        a.describe_key_pairs(KeyNames=["b-only"])
    assert ei.value.response["Error"]["Code"] == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as ei:
        a.delete_key_pair(KeyPairId=b_key["KeyPairId"])
    assert ei.value.response["Error"]["Code"] == "InvalidKeyPair.NotFound"
    assert len(b.describe_key_pairs()["KeyPairs"]) == 2
