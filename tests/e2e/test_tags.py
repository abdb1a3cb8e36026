"""EC2 tags with the AWS CLI and boto3: CreateTags, DeleteTags and DescribeTags on images
and key pairs, which the gateway sends by id prefix to the image and compute services;
tags seen by DescribeImages / DescribeKeyPairs and their tag filters; tenants kept apart;
EC2's limits and errors; DescribeTags paging.

An image may be "pending" or "available" after RegisterImage: tagging works in any state
but deregistered, so nothing here waits for a state."""
import pytest
from botocore.exceptions import ClientError

from harness import aws, boto3_client, new_tenant, s3_client


def code(ei):
    return ei.value.response["Error"]["Code"]


def tagmap(tags):
    return {t["Key"]: t["Value"] for t in tags or []}


@pytest.fixture(scope="module")
def tenants(cloud):
    a, b = new_tenant(cloud, "tags-a"), new_tenant(cloud, "tags-b")
    for (acct, k, s), bucket in ((a, "tags-a-bucket"), (b, "tags-b-bucket")):
        s3 = s3_client(cloud, k, s)
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="disk.raw", Body=b"\0" * 4096)
    return a, b


@pytest.fixture
def ec2a(cloud, tenants):
    (acct, k, s), _ = tenants
    return boto3_client(cloud, "ec2", k, s)


@pytest.fixture
def ec2b(cloud, tenants):
    _, (acct, k, s) = tenants
    return boto3_client(cloud, "ec2", k, s)


_n = [0]


def new_image(ec2, bucket="tags-a-bucket"):
    _n[0] += 1
    return ec2.register_image(Name="tags-img-%d" % _n[0], ImageLocation=bucket + "/disk.raw")["ImageId"]


def new_key(ec2):
    _n[0] += 1
    return ec2.create_key_pair(KeyName="tags-key-%d" % _n[0])["KeyPairId"]


def image_tags(ec2, iid):
    return tagmap(ec2.describe_images(ImageIds=[iid])["Images"][0].get("Tags"))


def key_tags(ec2, kid):
    return tagmap(ec2.describe_key_pairs(KeyPairIds=[kid])["KeyPairs"][0].get("Tags"))


def described(ec2, *ids):
    """DescribeTags for these resources as {(id, key): (type, value)}."""
    out = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": list(ids)}])["Tags"]
    return {(t["ResourceId"], t["Key"]): (t["ResourceType"], t["Value"]) for t in out}


def test_cli_create_tags_on_image_and_key_pair(cloud, tenants, ec2a):
    (acct_a, ka, sa), _ = tenants
    iid, kid = new_image(ec2a), new_key(ec2a)
    rc, out, err = aws(cloud, "ec2", "create-tags", "--resources", iid, kid,
                       "--tags", "Key=team,Value=blue", "Key=env,Value=prod", access_key=ka, secret_key=sa)
    assert rc == 0, err
    rc, out, err = aws(cloud, "ec2", "describe-images", "--image-ids", iid, access_key=ka, secret_key=sa)
    assert rc == 0, err
    assert tagmap(out["Images"][0]["Tags"]) == {"team": "blue", "env": "prod"}
    rc, out, err = aws(cloud, "ec2", "describe-key-pairs", "--key-pair-ids", kid, access_key=ka, secret_key=sa)
    assert rc == 0, err
    assert tagmap(out["KeyPairs"][0]["Tags"]) == {"team": "blue", "env": "prod"}
    rc, out, err = aws(cloud, "ec2", "describe-tags", "--filters", "Name=resource-id,Values=%s,%s" % (iid, kid),
                       access_key=ka, secret_key=sa)
    assert rc == 0, err
    assert sorted((t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in out["Tags"]) == sorted([
        (iid, "image", "env", "prod"), (iid, "image", "team", "blue"),
        (kid, "key-pair", "env", "prod"), (kid, "key-pair", "team", "blue")])
    # an existing key's value is overwritten, others are kept
    rc, out, err = aws(cloud, "ec2", "create-tags", "--resources", iid, "--tags", "Key=team,Value=red",
                       access_key=ka, secret_key=sa)
    assert rc == 0, err
    assert image_tags(ec2a, iid) == {"team": "red", "env": "prod"}
    assert key_tags(ec2a, kid) == {"team": "blue", "env": "prod"}


def test_describe_images_and_key_pairs_tag_filters(ec2a):
    iid, kid = new_image(ec2a), new_key(ec2a)
    ec2a.create_tags(Resources=[iid, kid], Tags=[{"Key": "filter-me", "Value": "yes-%s" % iid}])
    got = ec2a.describe_images(Filters=[{"Name": "tag:filter-me", "Values": ["yes-%s" % iid]}])["Images"]
    assert [i["ImageId"] for i in got] == [iid]
    got = ec2a.describe_images(Filters=[{"Name": "tag-key", "Values": ["filter-me"]}, {"Name": "image-id", "Values": [iid]}])
    assert [i["ImageId"] for i in got["Images"]] == [iid]
    got = ec2a.describe_key_pairs(Filters=[{"Name": "tag:filter-me", "Values": ["yes-ami-*"]}])["KeyPairs"]
    assert kid in [k["KeyPairId"] for k in got]


def test_describe_tags_filters(ec2a):
    iid, kid = new_image(ec2a), new_key(ec2a)
    ec2a.create_tags(Resources=[iid], Tags=[{"Key": "colour", "Value": "blue"}, {"Key": "size", "Value": "large"}])
    ec2a.create_tags(Resources=[kid], Tags=[{"Key": "colour", "Value": "black"}, {"Key": "owner", "Value": ""}])
    rid = {"Name": "resource-id", "Values": [iid, kid]}

    def keys(*filters):
        out = ec2a.describe_tags(Filters=[rid, *filters])["Tags"]
        return sorted((t["ResourceId"], t["Key"]) for t in out)

    assert keys({"Name": "resource-type", "Values": ["image"]}) == [(iid, "colour"), (iid, "size")]
    assert keys({"Name": "resource-type", "Values": ["key-pair"]}) == [(kid, "colour"), (kid, "owner")]
    assert keys({"Name": "key", "Values": ["col*"]}) == sorted([(iid, "colour"), (kid, "colour")])
    assert keys({"Name": "value", "Values": ["bl?ck"]}) == [(kid, "colour")]
    assert keys({"Name": "value", "Values": ["bl*"]}) == sorted([(iid, "colour"), (kid, "colour")])
    assert keys({"Name": "value", "Values": [""]}) == [(kid, "owner")]
    assert keys({"Name": "key", "Values": ["size", "owner"]}) == sorted([(iid, "size"), (kid, "owner")])
    assert keys({"Name": "tag:colour", "Values": ["blue"]}) == [(iid, "colour")]
    assert keys({"Name": "key", "Values": ["colour"]}, {"Name": "resource-type", "Values": ["key-pair"]}) == [(kid, "colour")]
    out = ec2a.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
    assert [(t["Key"], t["Value"], t["ResourceType"]) for t in out] == [("colour", "blue", "image"), ("size", "large", "image")]
    with pytest.raises(ClientError) as ei:
        ec2a.describe_tags(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert code(ei) == "InvalidParameterValue"


def test_delete_tags(cloud, tenants, ec2a):
    (acct_a, ka, sa), _ = tenants
    iid, kid = new_image(ec2a), new_key(ec2a)
    tags = [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}, {"Key": "c", "Value": ""}, {"Key": "d", "Value": "4"}]
    ec2a.create_tags(Resources=[iid, kid], Tags=tags)
    # a key without a value: deleted whatever its value
    rc, out, err = aws(cloud, "ec2", "delete-tags", "--resources", iid, kid, "--tags", "Key=a",
                       access_key=ka, secret_key=sa)
    assert rc == 0, err
    assert image_tags(ec2a, iid) == key_tags(ec2a, kid) == {"b": "2", "c": "", "d": "4"}
    # key and value: only if the value matches
    ec2a.delete_tags(Resources=[iid], Tags=[{"Key": "b", "Value": "not-2"}])
    assert image_tags(ec2a, iid) == {"b": "2", "c": "", "d": "4"}
    ec2a.delete_tags(Resources=[iid], Tags=[{"Key": "b", "Value": "2"}, {"Key": "d", "Value": ""}])
    assert image_tags(ec2a, iid) == {"c": "", "d": "4"}
    ec2a.delete_tags(Resources=[iid], Tags=[{"Key": "c", "Value": ""}])   # empty value matches only ""
    assert image_tags(ec2a, iid) == {"d": "4"}
    ec2a.delete_tags(Resources=[iid], Tags=[{"Key": "no-such-key"}])       # not an error
    # no Tag.N: every tag of the resource
    rc, out, err = aws(cloud, "ec2", "delete-tags", "--resources", kid, access_key=ka, secret_key=sa)
    assert rc == 0, err
    assert key_tags(ec2a, kid) == {}
    assert image_tags(ec2a, iid) == {"d": "4"}
    assert described(ec2a, iid, kid) == {(iid, "d"): ("image", "4")}


def test_tenants_cannot_tag_or_see_each_other(cloud, tenants, ec2a, ec2b):
    iid, kid = new_image(ec2a), new_key(ec2a)
    ec2a.create_tags(Resources=[iid, kid], Tags=[{"Key": "secret", "Value": "a"}])
    with pytest.raises(ClientError) as ei:
        ec2b.create_tags(Resources=[iid], Tags=[{"Key": "x", "Value": "y"}])
    assert code(ei) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as ei:
        ec2b.create_tags(Resources=[kid], Tags=[{"Key": "x", "Value": "y"}])
    assert code(ei) == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as ei:
        ec2b.delete_tags(Resources=[iid])
    assert code(ei) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as ei:
        ec2b.delete_tags(Resources=[kid], Tags=[{"Key": "secret"}])
    assert code(ei) == "InvalidKeyPair.NotFound"
    assert described(ec2b, iid, kid) == {}
    assert all(t["ResourceId"] not in (iid, kid) for t in ec2b.describe_tags()["Tags"])
    assert described(ec2a, iid, kid) == {(iid, "secret"): ("image", "a"), (kid, "secret"): ("key-pair", "a")}
    # a public image: B may launch it, still not tag it
    ec2a.modify_image_attribute(ImageId=iid, LaunchPermission={"Add": [{"Group": "all"}]})
    with pytest.raises(ClientError) as ei:
        ec2b.create_tags(Resources=[iid], Tags=[{"Key": "x", "Value": "y"}])
    assert code(ei) == "InvalidAMIID.NotFound"
    assert image_tags(ec2a, iid) == {"secret": "a"}


def test_operator_administrator_tags_any_account(cloud, tenants, ec2a):
    (acct_a, ka, sa), _ = tenants
    iid = new_image(ec2a)
    op = boto3_client(cloud, "ec2")   # the operator account's administrator
    op.create_tags(Resources=[iid], Tags=[{"Key": "reviewed", "Value": "by-operator"}])
    assert image_tags(ec2a, iid) == {"reviewed": "by-operator"}
    assert described(ec2a, iid) == {(iid, "reviewed"): ("image", "by-operator")}
    assert described(op, iid) == {(iid, "reviewed"): ("image", "by-operator")}


def test_one_request_is_all_or_nothing(ec2a, ec2b):
    iid, kid = new_image(ec2a), new_key(ec2a)
    other_iid = new_image(ec2b, "tags-b-bucket")
    # the other service's part fails: neither is tagged
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[iid, "key-00000000000000000"], Tags=[{"Key": "k", "Value": "v"}])
    assert code(ei) == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[kid, iid, other_iid], Tags=[{"Key": "k", "Value": "v"}])
    assert code(ei) == "InvalidAMIID.NotFound"
    assert described(ec2a, iid, kid) == {}
    # and a delete that fails deletes nothing
    ec2a.create_tags(Resources=[iid, kid], Tags=[{"Key": "k", "Value": "v"}])
    with pytest.raises(ClientError) as ei:
        ec2a.delete_tags(Resources=[kid, iid, "ami-00000000000000000"])
    assert code(ei) == "InvalidAMIID.NotFound"
    assert len(described(ec2a, iid, kid)) == 2
    # DryRun checks and changes nothing
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[iid, kid], Tags=[{"Key": "dry", "Value": "run"}], DryRun=True)
    assert code(ei) == "DryRunOperation"
    with pytest.raises(ClientError) as ei:
        ec2a.delete_tags(Resources=[iid], DryRun=True)
    assert code(ei) == "DryRunOperation"
    assert described(ec2a, iid, kid) == {(iid, "k"): ("image", "v"), (kid, "k"): ("key-pair", "v")}


def test_invalid_ids(cloud, tenants, ec2a):
    (acct_a, ka, sa), _ = tenants
    for bad in ("vol-0123456789abcdef0", "ami-nothex", "ami-", "i-x", "key", "nonsense"):
        with pytest.raises(ClientError) as ei:
            ec2a.create_tags(Resources=[bad], Tags=[{"Key": "k", "Value": "v"}])
        assert code(ei) == "InvalidID", bad
        assert "The ID '%s' is not valid" % bad in str(ei.value)
    with pytest.raises(ClientError) as ei:
        ec2a.delete_tags(Resources=["vol-12345678"])
    assert code(ei) == "InvalidID"
    # security groups are the network service's now: a well-formed id that is not one
    with pytest.raises(ClientError) as ei:
        ec2a.delete_tags(Resources=["sg-12345678"])
    assert code(ei) == "InvalidGroup.NotFound"
    rc, out, err = aws(cloud, "ec2", "create-tags", "--resources", "snap-0123456789abcdef0", "--tags", "Key=k,Value=v",
                       access_key=ka, secret_key=sa)
    assert rc != 0 and "InvalidID" in err
    # well-formed ids of images that do not exist, whatever the image type's prefix
    for missing in ("ami-00000000000000000", "aki-00000000000000000", "ari-0000000000000000f"):
        with pytest.raises(ClientError) as ei:
            ec2a.create_tags(Resources=[missing], Tags=[{"Key": "k", "Value": "v"}])
        assert code(ei) == "InvalidAMIID.NotFound", missing
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=["key-00000000000000000"], Tags=[{"Key": "k", "Value": "v"}])
    assert code(ei) == "InvalidKeyPair.NotFound"


def test_limits(cloud, tenants, ec2a):
    (acct_a, ka, sa), _ = tenants
    iid, kid = new_image(ec2a), new_key(ec2a)
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[iid], Tags=[{"Key": "aws:owner", "Value": "me"}])
    assert code(ei) == "InvalidParameterValue"
    rc, out, err = aws(cloud, "ec2", "create-tags", "--resources", kid, "--tags", "Key=aws:x,Value=y",
                       access_key=ka, secret_key=sa)
    assert rc != 0 and "InvalidParameterValue" in err
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[iid], Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert code(ei) == "InvalidParameterValue"
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[iid], Tags=[{"Key": "k", "Value": "v" * 257}])
    assert code(ei) == "InvalidParameterValue"
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[iid], Tags=[{"Key": "", "Value": "v"}])
    assert code(ei) == "InvalidParameterValue"
    # at the limits: 128-character keys (characters, not bytes), 256-character values
    ec2a.create_tags(Resources=[iid], Tags=[{"Key": "é" * 128, "Value": "ü" * 256}])
    assert image_tags(ec2a, iid) == {"é" * 128: "ü" * 256}
    # 51 tags in one request
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[kid], Tags=[{"Key": "t%d" % i, "Value": "v"} for i in range(51)])
    assert code(ei) == "TagLimitExceeded"
    # 50 on a resource, then one more
    ec2a.create_tags(Resources=[kid], Tags=[{"Key": "t%d" % i, "Value": "v"} for i in range(50)])
    assert len(key_tags(ec2a, kid)) == 50
    ec2a.create_tags(Resources=[kid], Tags=[{"Key": "t7", "Value": "changed"}])   # overwriting is fine
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[iid, kid], Tags=[{"Key": "one-more", "Value": "v"}])
    assert code(ei) == "TagLimitExceeded"
    assert "one-more" not in key_tags(ec2a, kid) and "one-more" not in image_tags(ec2a, iid)
    assert key_tags(ec2a, kid)["t7"] == "changed"


def test_deregistered_image_tags_are_gone(ec2a):
    iid = new_image(ec2a)
    ec2a.create_tags(Resources=[iid], Tags=[{"Key": "k", "Value": "v"}])
    assert described(ec2a, iid) == {(iid, "k"): ("image", "v")}
    ec2a.deregister_image(ImageId=iid)
    assert described(ec2a, iid) == {}
    with pytest.raises(ClientError) as ei:
        ec2a.create_tags(Resources=[iid], Tags=[{"Key": "k", "Value": "v"}])
    assert code(ei) == "InvalidAMIID.NotFound"


def test_describe_tags_paging(ec2a):
    iid, kid = new_image(ec2a), new_key(ec2a)
    long_key = "ключ" * 32   # 128 characters, 256 bytes
    ec2a.create_tags(Resources=[iid, kid], Tags=[{"Key": "p%d" % i, "Value": str(i)} for i in range(6)] +
                     [{"Key": long_key, "Value": "long"}, {"Key": long_key[:-1], "Value": "shorter"}])
    flt = [{"Name": "resource-id", "Values": [iid, kid]}]
    everything = ec2a.describe_tags(Filters=flt)["Tags"]
    assert len(everything) == 16
    assert "NextToken" not in ec2a.describe_tags(Filters=flt)
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = ec2a.describe_tags(Filters=flt, MaxResults=5, **kw)
        assert len(page["Tags"]) <= 5
        seen += page["Tags"]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == everything
    # sorted by resource id, then key (keys over 160 bytes by their first 140, then a digest)
    short = [(t["ResourceId"], t["Key"].encode()) for t in seen if len(t["Key"].encode()) <= 160]
    assert short == sorted(short) and [t["ResourceId"] for t in seen] == [iid] * 8 + [kid] * 8
    pages = list(ec2a.get_paginator("describe_tags").paginate(Filters=flt, PaginationConfig={"PageSize": 7}))
    assert len(pages) == 3 and sum((p["Tags"] for p in pages), []) == everything
    with pytest.raises(ClientError) as ei:
        ec2a.describe_tags(MaxResults=4)
    assert code(ei) == "InvalidParameterValue"
    with pytest.raises(ClientError) as ei:
        ec2a.describe_tags(NextToken="not-a-token")
    assert code(ei) == "InvalidPaginationToken"
