"""S3 requests are routed on everything that names an operation: a sub-resource,
parameter or header the object store does not serve is answered NotImplemented and
changes nothing, never run as the neighbouring operation (PUT ?tagging used to replace
the object's bytes with the tagging XML). Also the request errors users' tools rely on:
keys that are not UTF-8, presigned-URL parameters, max-keys=0, versionId. Sub-resources
served since (object tagging, bucket versioning, ACLs, bucket policies, CORS, bucket tagging,
ownership controls, PublicAccessBlock) are checked to do only what they name."""
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from harness import aws, error_code, new_tenant, s3_client, s3_raw

BODY = b"the original bytes\n"


@pytest.fixture(scope="module")
def bucket(cloud):
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="routing")
    s3.put_object(Bucket="routing", Key="obj", Body=BODY)
    return "routing"


def unchanged(s3, bucket):
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == BODY


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


# Each of these used to run as the operation without its sub-resource.
UNSERVED_OBJECT_CALLS = [
    ("get_object_retention", {}),
    ("get_object_legal_hold", {}),
    ("restore_object", {"RestoreRequest": {"Days": 1}}),
]


@pytest.mark.parametrize("call,args", UNSERVED_OBJECT_CALLS, ids=[c for c, _ in UNSERVED_OBJECT_CALLS])
def test_unserved_object_subresources_are_not_implemented_and_touch_nothing(cloud, bucket, call, args):
    s3 = s3_client(cloud)
    with pytest.raises(ClientError) as ei:
        getattr(s3, call)(Bucket=bucket, Key="obj", **args)
    assert code(ei) == ("NotImplemented", 501)
    unchanged(s3, bucket)
    # and it did not become public (put-object-acl --acl public-read used to)
    status, _, _ = s3_raw(cloud, "GET", "/%s/obj" % bucket, sign=False)
    assert status == 403


UNSERVED_BUCKET_CALLS = [
    ("delete_bucket_website", {}), ("delete_bucket_encryption", {}),
    ("get_bucket_website", {}), ("get_bucket_logging", {}), ("get_bucket_notification_configuration", {}),
]


@pytest.mark.parametrize("call,args", UNSERVED_BUCKET_CALLS, ids=[c for c, _ in UNSERVED_BUCKET_CALLS])
def test_unserved_bucket_subresources_are_not_implemented_and_touch_nothing(cloud, call, args):
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="empty-routing")   # empty: DELETE ?policy used to delete it
    try:
        with pytest.raises(ClientError) as ei:
            getattr(s3, call)(Bucket="empty-routing", **args)
        assert code(ei) == ("NotImplemented", 501)
        s3.head_bucket(Bucket="empty-routing")
    finally:
        s3.delete_bucket(Bucket="empty-routing")


def test_put_object_acl_changes_the_acl_not_the_bytes(cloud, bucket):
    # it used to run as PutObject and leave the object empty (and public)
    s3 = s3_client(cloud)
    etag = s3.head_object(Bucket=bucket, Key="obj")["ETag"]
    s3.put_object_acl(Bucket=bucket, Key="obj", ACL="public-read")
    status, _, body = s3_raw(cloud, "GET", "/%s/obj" % bucket, sign=False)
    assert status == 200 and body == BODY
    assert s3.head_object(Bucket=bucket, Key="obj")["ETag"] == etag
    s3.put_object_acl(Bucket=bucket, Key="obj", ACL="private")
    assert s3_raw(cloud, "GET", "/%s/obj" % bucket, sign=False)[0] == 403
    unchanged(s3, bucket)


# Served now; each used to run as the bucket operation without its sub-resource.
BUCKET_SUBRESOURCE_DELETES = ["delete_bucket_policy", "delete_bucket_cors", "delete_bucket_tagging",
                              "delete_bucket_ownership_controls", "delete_public_access_block",
                              "delete_bucket_lifecycle"]


@pytest.mark.parametrize("call", BUCKET_SUBRESOURCE_DELETES)
def test_deleting_a_bucket_setting_never_deletes_the_bucket(cloud, call):
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="empty-routing")   # empty: DELETE ?policy used to delete it
    try:
        getattr(s3, call)(Bucket="empty-routing")
        s3.head_bucket(Bucket="empty-routing")
        with pytest.raises(ClientError) as ei:   # nor does a GET list it, or a PUT make a bucket
            s3.get_bucket_policy(Bucket="empty-routing")
        assert code(ei) == ("NoSuchBucketPolicy", 404)
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_policy(Bucket="empty-routing", Policy='{"Version":"2012-10-17","Statement":[]}')
        assert code(ei) == ("MalformedPolicy", 400)
    finally:
        s3.delete_bucket(Bucket="empty-routing")


# Served now, and still never their neighbouring operation: tagging calls change tags
# only (PUT ?tagging used to replace the bytes, DELETE ?tagging to delete the object).
def test_object_tagging_calls_touch_only_the_tags(cloud, bucket):
    s3 = s3_client(cloud)
    etag = s3.head_object(Bucket=bucket, Key="obj")["ETag"]
    s3.put_object_tagging(Bucket=bucket, Key="obj", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    unchanged(s3, bucket)
    got = s3.get_object_tagging(Bucket=bucket, Key="obj")
    assert got["TagSet"] == [{"Key": "k", "Value": "v"}]   # the tags, not the bytes
    s3.delete_object_tagging(Bucket=bucket, Key="obj")
    unchanged(s3, bucket)
    assert s3.head_object(Bucket=bucket, Key="obj")["ETag"] == etag
    assert s3.get_object_tagging(Bucket=bucket, Key="obj")["TagSet"] == []


def test_put_bucket_versioning_configures_and_never_creates_or_deletes(cloud):
    s3 = s3_client(cloud)
    with pytest.raises(ClientError) as ei:
        s3.put_bucket_versioning(Bucket="never-created", VersioningConfiguration={"Status": "Enabled"})
    assert code(ei) == ("NoSuchBucket", 404)
    assert "never-created" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.create_bucket(Bucket="empty-versioning")   # empty: it used to be taken as CreateBucket
    s3.put_bucket_versioning(Bucket="empty-versioning", VersioningConfiguration={"Status": "Enabled"})
    s3.head_bucket(Bucket="empty-versioning")
    assert s3.get_bucket_versioning(Bucket="empty-versioning")["Status"] == "Enabled"
    s3.delete_bucket(Bucket="empty-versioning")


def test_the_cli_gets_not_implemented(cloud, bucket):
    from harness import aws_env
    import subprocess
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_S3_URL"], "s3api", "put-object-legal-hold",
                        "--bucket", bucket, "--key", "obj", "--legal-hold", "Status=ON"],
                       capture_output=True, text=True, env=aws_env(cloud), timeout=60)
    assert r.returncode != 0 and "NotImplemented" in r.stderr
    unchanged(s3_client(cloud), bucket)


def test_two_sub_resources_are_refused(cloud, bucket):
    status, _, body = s3_raw(cloud, "PUT", "/%s/obj?tagging&acl" % bucket, body=b"<x/>")
    assert status == 400 and error_code(body) == "InvalidRequest"
    unchanged(s3_client(cloud), bucket)


@pytest.mark.parametrize("header", ["x-amz-server-side-encryption", "x-amz-object-lock-mode",
                                    "x-amz-website-redirect-location"])
def test_headers_asking_for_unserved_features_are_refused_before_writing(cloud, bucket, header):
    value = {"x-amz-server-side-encryption": "AES256",
             "x-amz-object-lock-mode": "GOVERNANCE", "x-amz-website-redirect-location": "/x"}[header]
    status, _, body = s3_raw(cloud, "PUT", "/%s/obj" % bucket, headers={header: value}, body=b"replaced")
    assert status == 501 and error_code(body) == "NotImplemented"
    unchanged(s3_client(cloud), bucket)


def test_x_amz_tagging_is_served_on_put(cloud, bucket):
    s3 = s3_client(cloud)
    status, _, body = s3_raw(cloud, "PUT", "/%s/tagged" % bucket, headers={"x-amz-tagging": "a=b"}, body=b"tagged")
    assert status == 200, body
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [{"Key": "a", "Value": "b"}]
    assert s3.get_object(Bucket=bucket, Key="tagged")["Body"].read() == b"tagged"
    s3.delete_object(Bucket=bucket, Key="tagged")


def test_grant_headers_only_where_acls_are_set(cloud, bucket):
    # served on PutObject, CopyObject, CreateMultipartUpload and the ACL calls; anywhere else
    # it would be silently dropped, so it is refused before anything happens
    grant = {"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'}
    status, _, body = s3_raw(cloud, "DELETE", "/%s/obj" % bucket, headers=grant)
    assert status == 501 and error_code(body) == "NotImplemented"
    unchanged(s3_client(cloud), bucket)
    status, _, body = s3_raw(cloud, "PUT", "/%s/granted" % bucket, headers=grant, body=b"g")
    assert status == 200
    assert s3_raw(cloud, "GET", "/%s/granted" % bucket, sign=False)[2] == b"g"
    s3_client(cloud).delete_object(Bucket=bucket, Key="granted")


def test_version_ids_name_versions_and_malformed_ones_are_invalid(cloud, bucket):
    s3 = s3_client(cloud)
    assert s3.get_object(Bucket=bucket, Key="obj", VersionId="null")["Body"].read() == BODY
    assert s3.head_object(Bucket=bucket, Key="obj", VersionId="null")["ContentLength"] == len(BODY)
    for call in (s3.get_object, s3.head_object, s3.delete_object):
        with pytest.raises(ClientError) as ei:
            call(Bucket=bucket, Key="obj", VersionId="xyz")
        assert code(ei) == ("InvalidArgument" if call != s3.head_object else "400", 400)   # HEAD: no body
    # well-formed but no such version: GET and HEAD say so, DELETE has nothing to do
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as ei:
            call(Bucket=bucket, Key="obj", VersionId="0" * 32)
        assert code(ei)[1] == 404
    s3.delete_object(Bucket=bucket, Key="obj", VersionId="0" * 32)
    # versionId is not an argument of PutObject: NotImplemented, nothing written
    status, _, body = s3_raw(cloud, "PUT", "/%s/obj?versionId=null" % bucket, body=b"replaced")
    assert status == 501 and error_code(body) == "NotImplemented"
    unchanged(s3, bucket)


def test_non_utf8_keys_are_refused_and_nothing_is_stored(cloud, bucket):
    s3 = s3_client(cloud)
    before = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    for key in ("a%FFb", "a%C0%AFb", "%ED%A0%80"):
        status, _, body = s3_raw(cloud, "PUT", "/%s/%s" % (bucket, key), body=b"x")
        assert status == 400 and error_code(body) == "InvalidArgument", (key, body)
    after = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert after == before
    # valid UTF-8 of every width still works, byte-exact
    key = "caf\u00e9/\u65e5\u672c/\U0001F600"
    s3.put_object(Bucket=bucket, Key=key, Body=b"u")
    assert key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"u"
    s3.delete_object(Bucket=bucket, Key=key)


def test_max_keys_zero_is_an_empty_untruncated_page(cloud, bucket):
    s3 = s3_client(cloud)
    r = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert r["KeyCount"] == 0 and r["IsTruncated"] is False and "NextContinuationToken" not in r
    r = s3.list_objects(Bucket=bucket, MaxKeys=0)
    assert r["IsTruncated"] is False and "Contents" not in r


@pytest.mark.parametrize("query", ["max-keys=", "max-keys=-1", "max-keys=ten", "uploads&max-uploads=",
                                   "uploads&max-uploads=-5", "uploads&max-uploads=x"])
def test_listing_page_size_that_is_not_a_number_is_invalid_argument(cloud, bucket, query):
    """Both listings read their page size the same way: empty counts as not a number."""
    status, _, body = s3_raw(cloud, "GET", "/%s?%s" % (bucket, query))
    assert (status, error_code(body)) == (400, "InvalidArgument"), body


@pytest.mark.parametrize("expires", ["0", "-1", "abc", "604801", ""])
def test_bad_presigned_expiry_is_authorization_query_parameters_error(cloud, bucket, expires):
    s3 = s3_client(cloud, signature_version="s3v4")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "obj"}, ExpiresIn=60)
    url = url.replace("X-Amz-Expires=60", "X-Amz-Expires=" + expires)
    try:
        urllib.request.urlopen(url, timeout=10)
        pytest.fail("accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert error_code(e.read()) == "AuthorizationQueryParametersError"


def test_s3_never_answers_with_ec2_codes(cloud, bucket):
    # a signature that names headers the request lacks, an unknown key, a malformed header
    status, _, body = s3_raw(cloud, "GET", "/%s/obj" % bucket, access_key="AKIAUNKNOWNUNKNOWN12")
    assert status == 403 and error_code(body) == "InvalidAccessKeyId"
    status, _, body = s3_raw(cloud, "GET", "/%s/obj" % bucket, sign=False,
                             headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x",
                                      "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert status == 400 and error_code(body) == "AuthorizationHeaderMalformed"
    assert error_code(body) != "AuthFailure"


def test_expected_bucket_owner(cloud, bucket):
    s3 = s3_client(cloud)
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="obj", ExpectedBucketOwner="999999999999")
    assert code(ei) == ("AccessDenied", 403)
    rc, ident, _ = aws(cloud, "iam", "get-user")
    owner = ident["User"]["Arn"].split(":")[4]
    assert s3.get_object(Bucket=bucket, Key="obj", ExpectedBucketOwner=owner)["Body"].read() == BODY


def test_post_object_and_unknown_methods(cloud, bucket):
    status, _, body = s3_raw(cloud, "POST", "/%s/obj" % bucket, body=b"x")
    assert status == 501 and error_code(body) == "NotImplemented"
    status, _, body = s3_raw(cloud, "PATCH", "/%s/obj" % bucket, body=b"x")
    assert status == 405 and error_code(body) == "MethodNotAllowed"
    unchanged(s3_client(cloud), bucket)


def test_another_tenant_cannot_use_subresources_to_probe(cloud, bucket):
    _, key, secret = new_tenant(cloud, "routing-other")
    other = s3_client(cloud, access_key=key, secret_key=secret)
    with pytest.raises(ClientError) as ei:
        other.put_object_tagging(Bucket=bucket, Key="obj", Tagging={"TagSet": []})
    assert code(ei) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as ei:
        other.get_object(Bucket=bucket, Key="obj", VersionId="null")
    assert code(ei) == ("AccessDenied", 403)
    unchanged(s3_client(cloud), bucket)


def test_copy_source_conditions_only_on_copies(cloud, bucket):
    # served on CopyObject (and UploadPartCopy: test_s3_conditions.py); on a plain PUT they
    # name nothing it does: NotImplemented, nothing written
    s3 = s3_client(cloud)
    etag = s3.head_object(Bucket=bucket, Key="obj")["ETag"]
    status, _, body = s3_raw(cloud, "PUT", "/%s/cond-put" % bucket, headers={"x-amz-copy-source-if-match": etag},
                             body=b"x")
    assert status == 501 and error_code(body) == "NotImplemented"
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=bucket, Key="cond-put")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.copy_object(Bucket=bucket, Key="cond-copy", CopySource="%s/obj" % bucket, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="cond-copy")["Body"].read() == BODY
    s3.delete_object(Bucket=bucket, Key="cond-copy")
