"""S3 bucket lifecycle as backup tools and web apps use it, with awscli and boto3, on both
storage backends (a cloud of each, started here with a lifecycle "day" of a few seconds:
objectstore.lifecycle.day_seconds, the test knob, and passes so small that every bucket is
expired over several of them).

Configuration: Put/Get/DeleteBucketLifecycleConfiguration round trip (every filter form,
every action), the older PutBucketLifecycle shape, NoSuchLifecycleConfiguration, every
validation error with S3's code, transitions NotImplemented, access for the owner only.
Expiration by the object store's own pass: current objects by prefix, tag and size
(deleted in a never-versioned bucket, a delete marker in a versioned one), noncurrent
versions, expired object delete markers, incomplete multipart uploads aborted; objects no
rule matches, and those of a Disabled rule, untouched."""
import json
import subprocess
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Cloud, Tenant, aws_env, error_code, s3_client, s3_raw

SUFFIX = uuid.uuid4().hex[:6]
DAY_SECONDS = 3
LIFECYCLE_ENV = {
    "VIRGA_OBJECTSTORE_LIFECYCLE_DAY_SECONDS": str(DAY_SECONDS),
    "VIRGA_OBJECTSTORE_LIFECYCLE_INTERVAL_S": "1",
    "VIRGA_OBJECTSTORE_RECONCILE_INTERVAL_S": "1",
    # tiny budgets: every bucket here takes several passes, each going on where the last
    # one stopped (lifecycle_cursors), and halts on its expiration budget
    "VIRGA_OBJECTSTORE_LIFECYCLE_MAX_SCAN": "4",
    "VIRGA_OBJECTSTORE_LIFECYCLE_MAX_ACTIONS": "2",
}
WAIT_S = 120   # generous: a pass every second, due within two "days"


@pytest.fixture(scope="module", params=["rados", "dir"])
def lc_cloud(request):
    """A cloud whose lifecycle day lasts DAY_SECONDS, on each backend."""
    c = Cloud.start(extra_args=("--objectstore", request.param), env=LIFECYCLE_ENV)
    try:
        yield c
    finally:
        c.stop_later()


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


def s3api(cloud, *args):
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_S3_URL"], "--output", "json", "s3api",
                        *args], capture_output=True, text=True, timeout=60, env=aws_env(cloud))
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


def wait_for(what, cond):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError("lifecycle did not act within %d s: %s" % (WAIT_S, what))


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def versions(s3, bucket, prefix=""):
    """[(key, version id, is delete marker, is latest)] newest first per key."""
    r = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    out = [(v["Key"], v["VersionId"], False, v["IsLatest"]) for v in r.get("Versions", [])]
    out += [(m["Key"], m["VersionId"], True, m["IsLatest"]) for m in r.get("DeleteMarkers", [])]
    return sorted(out)


def new_bucket(s3, name, versioned=False):
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


FULL = {"Rules": [
    {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
    {"ID": "tmp", "Filter": {"Tag": {"Key": "class", "Value": "tmp"}}, "Status": "Disabled",
     "Expiration": {"Date": "2030-01-01T00:00:00Z"}},
    {"ID": "and", "Filter": {"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}],
                                     "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 1000}},
     "Status": "Enabled",
     "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}},
    {"ID": "markers", "Filter": {}, "Status": "Enabled", "Expiration": {"ExpiredObjectDeleteMarker": True},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
    {"ID": "big", "Filter": {"ObjectSizeGreaterThan": 1048576}, "Status": "Enabled", "Expiration": {"Days": 1}},
]}


def test_configuration_round_trip(lc_cloud):
    s3 = s3_client(lc_cloud)
    b = new_bucket(s3, "lc-conf-%s" % SUFFIX)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert code(ei) == ("NoSuchLifecycleConfiguration", 404)
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration=FULL)
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert len(got) == len(FULL["Rules"])
    for want, have in zip(FULL["Rules"], got):
        for k in ("ID", "Filter", "Status", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"):
            assert have.get(k) == want.get(k), (k, have, want)
    assert got[0]["Expiration"] == {"Days": 30}
    assert got[1]["Expiration"]["Date"].strftime("%Y-%m-%dT%H:%M:%S") == "2030-01-01T00:00:00"
    assert got[3]["Expiration"] == {"ExpiredObjectDeleteMarker": True}

    # awscli, and the older PutBucketLifecycle (a top-level Prefix per rule)
    rc, _, err = s3api(lc_cloud, "put-bucket-lifecycle-configuration", "--bucket", b, "--lifecycle-configuration",
                       json.dumps({"Rules": [{"ID": "cli", "Filter": {"Prefix": "x/"}, "Status": "Enabled",
                                              "Expiration": {"Days": 2}}]}))
    assert rc == 0, err
    rc, out, err = s3api(lc_cloud, "get-bucket-lifecycle-configuration", "--bucket", b)
    assert rc == 0 and out["Rules"] == [{"ID": "cli", "Filter": {"Prefix": "x/"}, "Status": "Enabled",
                                         "Expiration": {"Days": 2}}], (out, err)
    rc, _, err = s3api(lc_cloud, "put-bucket-lifecycle", "--bucket", b, "--lifecycle-configuration",
                       json.dumps({"Rules": [{"ID": "old", "Prefix": "old/", "Status": "Enabled",
                                              "Expiration": {"Days": 5}}]}))
    assert rc == 0, err
    rc, out, err = s3api(lc_cloud, "get-bucket-lifecycle", "--bucket", b)
    assert rc == 0 and out["Rules"][0]["Prefix"] == "old/" and out["Rules"][0]["ID"] == "old", (out, err)

    # another tenant may neither read nor change it
    other = Tenant(lc_cloud, "lc-other-%s" % SUFFIX)
    for call, args in (("get_bucket_lifecycle_configuration", {}),
                       ("put_bucket_lifecycle_configuration", {"LifecycleConfiguration": FULL}),
                       ("delete_bucket_lifecycle", {})):
        with pytest.raises(ClientError) as ei:
            getattr(other.s3, call)(Bucket=b, **args)
        assert code(ei) == ("AccessDenied", 403), call
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"][0]["ID"] == "old"

    s3.delete_bucket_lifecycle(Bucket=b)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert code(ei) == ("NoSuchLifecycleConfiguration", 404)
    s3.head_bucket(Bucket=b)
    s3.delete_bucket(Bucket=b)


def rule(body, rid="r"):
    return "<Rule><ID>%s</ID>%s</Rule>" % (rid, body)


P = "<Filter><Prefix>p/</Prefix></Filter><Status>Enabled</Status>"
DAYS1 = "<Expiration><Days>1</Days></Expiration>"
BAD = [
    ("no rule", "", "MalformedXML", 400),
    ("no status", rule("<Filter/>" + DAYS1), "MalformedXML", 400),
    ("bad status", rule("<Filter/><Status>Suspended</Status>" + DAYS1), "MalformedXML", 400),
    ("no filter nor prefix", rule("<Status>Enabled</Status>" + DAYS1), "MalformedXML", 400),
    ("two conditions without And", rule("<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
                                        "</Filter><Status>Enabled</Status>" + DAYS1), "MalformedXML", 400),
    ("days and marker", rule(P + "<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true"
                                 "</ExpiredObjectDeleteMarker></Expiration>"), "MalformedXML", 400),
    ("unknown element", rule(P + DAYS1 + "<Bogus/>"), "MalformedXML", 400),
    ("days zero", rule(P + "<Expiration><Days>0</Days></Expiration>"), "InvalidArgument", 400),
    ("days negative", rule(P + "<Expiration><Days>-1</Days></Expiration>"), "InvalidArgument", 400),
    ("date not midnight", rule(P + "<Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>"),
     "InvalidArgument", 400),
    ("noncurrent days zero", rule(P + "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays>"
                                      "</NoncurrentVersionExpiration>"), "InvalidArgument", 400),
    ("abort days zero", rule(P + "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation>"
                                 "</AbortIncompleteMultipartUpload>"), "InvalidArgument", 400),
    ("long id", rule(P + DAYS1, "x" * 256), "InvalidArgument", 400),
    ("duplicate ids", rule(P + DAYS1, "same") + rule(P + DAYS1, "same"), "InvalidArgument", 400),
    ("no action", rule(P), "InvalidRequest", 400),
    ("abort with tags", rule("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>"
                             "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
                             "</AbortIncompleteMultipartUpload>"), "InvalidRequest", 400),
    ("marker with tags", rule("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>"
                              "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>"
                              "</Expiration>"), "InvalidRequest", 400),
    ("transition", rule(P + "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>"),
     "NotImplemented", 501),
    ("noncurrent transition", rule(P + "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>"
                                       "<StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>"),
     "NotImplemented", 501),
    ("1001 rules", "".join(rule(P + DAYS1, "r%d" % i) for i in range(1001)), "MalformedXML", 400),
]


@pytest.mark.parametrize("what,rules,want,status", BAD, ids=[b[0] for b in BAD])
def test_configuration_errors(lc_cloud, what, rules, want, status):
    s3 = s3_client(lc_cloud)
    b = "lc-bad-%s" % SUFFIX
    try:
        s3.head_bucket(Bucket=b)
    except ClientError:
        new_bucket(s3, b)
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "kept", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 9}}]})
    doc = ("<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">%s"
           "</LifecycleConfiguration>" % rules).encode()
    st, _, body = s3_raw(lc_cloud, "PUT", "/%s?lifecycle" % b, body=doc)
    assert (error_code(body), st) == (want, status), (what, body)
    # a refused configuration changes nothing
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"][0]["ID"] == "kept"


def test_boto3_refusals(lc_cloud):
    """The same checks as boto3 users meet them."""
    s3 = s3_client(lc_cloud)
    b = new_bucket(s3, "lc-boto-%s" % SUFFIX)
    for rules, want in (
        ([{"ID": "a", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 0}}], ("InvalidArgument", 400)),
        ([{"ID": "a", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 1}},
          {"ID": "a", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 2}}], ("InvalidArgument", 400)),
        ([{"ID": "a", "Filter": {}, "Status": "Enabled"}], ("InvalidRequest", 400)),
        ([{"ID": "a", "Filter": {}, "Status": "Enabled",
           "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}], ("NotImplemented", 501)),
    ):
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": rules})
        assert code(ei) == want, rules
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert code(ei) == ("NoSuchLifecycleConfiguration", 404)
    s3.delete_bucket(Bucket=b)


def test_expiration_of_current_objects(lc_cloud):
    """A never-versioned bucket: due objects are deleted, by prefix, by tag and by size;
    what no rule matches, and what a Disabled rule names, stays."""
    s3 = s3_client(lc_cloud)
    b = new_bucket(s3, "lc-cur-%s" % SUFFIX)
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
        {"ID": "tmp", "Filter": {"Tag": {"Key": "class", "Value": "tmp"}}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
        {"ID": "large", "Filter": {"And": {"Prefix": "big/", "ObjectSizeGreaterThan": 10}}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
        {"ID": "off", "Filter": {"Prefix": "off/"}, "Status": "Disabled", "Expiration": {"Days": 1}},
    ]})
    # what must stay is written first: when the last expiring object goes, they were due too
    stay = ["keep/a", "logsx", "tagged-keep", "big/small", "off/a"]
    for k in stay:
        s3.put_object(Bucket=b, Key=k, Body=b"12345", **({"Tagging": "class=keep"} if k.startswith("tagged") else {}))
    go = ["logs/2024/a.log", "tagged-tmp", "big/large"]
    s3.put_object(Bucket=b, Key="logs/2024/a.log", Body=b"log")
    s3.put_object(Bucket=b, Key="tagged-tmp", Body=b"x", Tagging="class=tmp&other=1")
    s3.put_object(Bucket=b, Key="big/large", Body=b"x" * 20)
    wait_for("current objects expired", lambda: not set(go) & set(keys(s3, b)))
    assert keys(s3, b) == sorted(stay)
    assert versions(s3, b, "logs/") == []   # deleted, not hidden: the bucket was never versioned
    for k in stay:
        s3.delete_object(Bucket=b, Key=k)
    s3.delete_bucket_lifecycle(Bucket=b)
    s3.delete_bucket(Bucket=b)


def test_expired_bytes_go_back_to_the_stored_bytes_quota(lc_cloud):
    """What the pass removes for good no longer counts against the account's stored_bytes
    quota, as with a tenant's DELETE: noncurrent versions and aborted uploads' parts too."""
    t = Tenant(lc_cloud, "lc-quota-" + SUFFIX)
    b = new_bucket(t.s3, "lc-quota-%s" % SUFFIX, versioned=True)
    r = lc_cloud.virgadm("quota", "set", t.account, "stored_bytes", str(5 << 20))
    assert r.returncode == 0, r.stderr
    mib = b"q" * (1 << 20)
    for _ in range(4):                           # one current and three noncurrent versions
        t.s3.put_object(Bucket=b, Key="tmp/v", Body=mib)
    up = t.s3.create_multipart_upload(Bucket=b, Key="tmp/up")["UploadId"]
    with pytest.raises(ClientError) as ei:       # 4 MiB stored + 2 MiB would pass 5 MiB
        t.s3.upload_part(Bucket=b, Key="tmp/up", UploadId=up, PartNumber=1, Body=mib * 2)
    assert code(ei) == ("QuotaExceeded", 403)
    t.s3.upload_part(Bucket=b, Key="tmp/up", UploadId=up, PartNumber=1, Body=mib)   # now 5 MiB
    t.s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    wait_for("noncurrent versions and the upload gone",
             lambda: len(versions(t.s3, b)) == 1 and not t.s3.list_multipart_uploads(Bucket=b).get("Uploads"))
    # 1 MiB left stored: 4 MiB more fit, and nothing beyond that
    t.s3.put_object(Bucket=b, Key="after", Body=mib * 4)
    with pytest.raises(ClientError) as ei:
        t.s3.put_object(Bucket=b, Key="more", Body=b"x" * 1024)
    assert code(ei) == ("QuotaExceeded", 403)


def test_expiration_in_a_versioned_bucket(lc_cloud):
    """Current versions get a delete marker (once), noncurrent versions and expired object
    delete markers are removed for good, incomplete uploads aborted; others untouched."""
    s3 = s3_client(lc_cloud)
    b = new_bucket(s3, "lc-ver-%s" % SUFFIX, versioned=True)
    # before the rules: the lone marker and the uploads, made while nothing could expire them
    s3.put_object(Bucket=b, Key="dm/z", Body=b"z")
    s3.delete_object(Bucket=b, Key="dm/z")
    old = [v for v in versions(s3, b, "dm/") if not v[2]][0][1]
    s3.delete_object(Bucket=b, Key="dm/z", VersionId=old)   # the marker is now alone
    s3.put_object(Bucket=b, Key="dm/kept", Body=b"k")
    s3.delete_object(Bucket=b, Key="dm/kept")               # a marker with a version under it
    up = s3.create_multipart_upload(Bucket=b, Key="up/u")["UploadId"]
    s3.upload_part(Bucket=b, Key="up/u", UploadId=up, PartNumber=1, Body=b"p" * 100)
    other_up = s3.create_multipart_upload(Bucket=b, Key="other/u")["UploadId"]
    nc1 = s3.put_object(Bucket=b, Key="nc/y", Body=b"one")["VersionId"]
    s3.put_object(Bucket=b, Key="keep/k", Body=b"keep")
    nc2 = s3.put_object(Bucket=b, Key="nc/y", Body=b"two")["VersionId"]
    cur = s3.put_object(Bucket=b, Key="cur/x", Body=b"x")["VersionId"]
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "cur", "Filter": {"Prefix": "cur/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
        {"ID": "nc", "Filter": {"Prefix": "nc/"}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {"ID": "dm", "Filter": {"Prefix": "dm/"}, "Status": "Enabled",
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {"ID": "up", "Filter": {"Prefix": "up/"}, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    ]})

    def uploads():
        return sorted(u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", []))

    def cur_expired():
        return sorted((v[2], v[3]) for v in versions(s3, b, "cur/")) == [(False, False), (True, True)]

    wait_for("current version behind a delete marker", cur_expired)
    wait_for("noncurrent version removed", lambda: [v[1] for v in versions(s3, b, "nc/")] == [nc2])
    wait_for("expired object delete marker removed", lambda: [v[0] for v in versions(s3, b, "dm/")] == ["dm/kept"] * 2)
    wait_for("incomplete upload aborted", lambda: uploads() == [other_up])
    # the current version stays, noncurrent, under exactly one marker
    cv = versions(s3, b, "cur/")
    assert [v[1] for v in cv if not v[2]] == [cur]
    assert s3.get_object(Bucket=b, Key="nc/y", VersionId=nc2)["Body"].read() == b"two"
    assert s3.get_object(Bucket=b, Key="keep/k")["Body"].read() == b"keep"
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=b, Key="nc/y", VersionId=nc1)
    assert code(ei)[1] == 404
    # the marker over a version under the dm/ rule is not alone: it stays, and so does its version
    assert sorted(v[2] for v in versions(s3, b, "dm/")) == [False, True]
    # more passes change nothing more
    time.sleep(3 * DAY_SECONDS)
    assert versions(s3, b, "cur/") == cv

    s3.abort_multipart_upload(Bucket=b, Key="other/u", UploadId=other_up)
    for k, vid, _, _ in versions(s3, b):
        s3.delete_object(Bucket=b, Key=k, VersionId=vid)
    s3.delete_bucket(Bucket=b)
