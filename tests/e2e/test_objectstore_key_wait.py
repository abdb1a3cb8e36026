"""The object store asks identity for a signing key it has not cached without holding an
HTTP thread (issue 14): the request sleeps with its body unread (http_stream_wait) and its
begin runs again when the key is known. On an object store with ONE HTTP thread and
identity frozen, a request signed with a key the store has never seen waits for identity,
and meanwhile a request signed with a cached key is answered: before, the first held the
only thread until identity's call timed out, and the second waited behind it."""
import concurrent.futures
import os
import re
import signal
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import Tenant, new_tenant, s3_client


@pytest.fixture(scope="module")
def cloud(limits_cloud):
    """The shared limits_cloud (tests/conftest.py): its object store has one HTTP thread."""
    return limits_cloud


def lookups(cloud, result):
    with urllib.request.urlopen(cloud.env["VIRGA_S3_URL"] + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(r'^virga_objectstore_signing_key_lookups_total\{result="%s"\} (\d+)$' % result, text, re.M)
    assert m, text[-2000:]
    return int(m.group(1))


def test_a_key_being_fetched_does_not_hold_the_only_thread(cloud):
    _, ka, sa = new_tenant(cloud, "kw-a-" + uuid.uuid4().hex[:6])
    _, kb, sb = new_tenant(cloud, "kw-b-" + uuid.uuid4().hex[:6])
    known, fresh = s3_client(cloud, ka, sa), s3_client(cloud, kb, sb)
    bucket = "kw-" + uuid.uuid4().hex[:8]
    known.create_bucket(Bucket=bucket)   # a's key is in the store's cache from now on
    known.put_object(Bucket=bucket, Key="k", Body=b"v")
    fetched = lookups(cloud, "fetched")

    identity = cloud.pid("identity")
    os.kill(identity, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(fresh.list_buckets)
            while lookups(cloud, "fetched") == fetched:   # the store has asked identity ...
                assert not waiting.done(), waiting.exception()
            # ... and still serves the tenant it knows, on its one thread
            assert known.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
            assert not waiting.done()
            os.kill(identity, signal.SIGCONT)
            identity = None
            try:
                answer = waiting.result(timeout=120)
                assert answer["Buckets"] == []   # b's own (none): it authenticated after the wait
            except ClientError as e:   # identity's call outlived its timeout on a slow machine
                assert e.response["Error"]["Code"] == "ServiceUnavailable", e.response
    finally:
        if identity:
            os.kill(identity, signal.SIGCONT)
    # the key is cached now: the next request asks nobody
    fetched = lookups(cloud, "fetched")
    assert fresh.list_buckets()["Buckets"] == []
    assert lookups(cloud, "fetched") == fetched


def test_unknown_key_and_bad_signature_after_the_wait(cloud):
    """The answers after a wait are the ones a cached key gets: an access key identity does
    not know is InvalidAccessKeyId; a known key with the wrong secret SignatureDoesNotMatch;
    a PUT whose key had to be fetched stores its body whole."""
    _, k, s = new_tenant(cloud, "kw-c-" + uuid.uuid4().hex[:6])
    unknown = s3_client(cloud, "AKIA" + uuid.uuid4().hex[:16].upper(), s)
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    wrong = s3_client(cloud, k, "x" * 40)
    with pytest.raises(ClientError) as e:
        wrong.list_buckets()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

    _, k2, s2 = new_tenant(cloud, "kw-d-" + uuid.uuid4().hex[:6])
    fetched = lookups(cloud, "fetched")
    c = s3_client(cloud, k2, s2)
    bucket = "kw-" + uuid.uuid4().hex[:8]
    c.create_bucket(Bucket=bucket)   # its first request: the key is fetched, the body waits
    assert lookups(cloud, "fetched") == fetched + 1
    body = os.urandom(3 * 1024 * 1024 + 17)
    _, k3, s3 = new_tenant(cloud, "kw-e-" + uuid.uuid4().hex[:6])
    writer = s3_client(cloud, k3, s3)
    c.put_bucket_policy(Bucket=bucket, Policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                        '"Principal":"*","Action":["s3:PutObject","s3:GetObject"],'
                        '"Resource":"arn:aws:s3:::%s/*"}]}' % bucket)
    writer.put_object(Bucket=bucket, Key="big", Body=body)   # a first request with a 3 MiB body
    assert writer.get_object(Bucket=bucket, Key="big")["Body"].read() == body


def waits(cloud, kind):
    """How many calls of this type an S3 request has waited for (s3_ask)."""
    with urllib.request.urlopen(cloud.env["VIRGA_S3_URL"] + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(r'^virga_objectstore_waits_total\{type="%s"\} (\d+)$' % re.escape(kind), text, re.M)
    assert m, text[-2000:]
    return int(m.group(1))


def while_identity_frozen(cloud, kind, slow_call, served_call):
    """Freeze identity, start slow_call (which needs identity) on a thread, wait until the
    store has asked identity for it, check served_call (which does not) is answered on the
    store's one HTTP thread meanwhile, then thaw identity and return slow_call's result."""
    before = waits(cloud, kind)
    identity = cloud.pid("identity")
    os.kill(identity, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(slow_call)
            while waits(cloud, kind) == before:   # the store has asked identity ...
                assert not waiting.done(), waiting.exception()
            served_call()   # ... and still serves what needs nobody, on its one thread
            assert not waiting.done()
            os.kill(identity, signal.SIGCONT)
            identity = None
            return waiting.result(timeout=120)
    finally:
        if identity:
            os.kill(identity, signal.SIGCONT)


def test_a_sigv2_presigned_url_does_not_hold_the_only_thread(cloud):
    """boto3's default presigned S3 URL is SigV2, whose signature only identity can make
    (it holds the secret). While identity is frozen, a GET of such a URL waits for it
    without holding the store's one HTTP thread; a tenant with a cached key is served
    meanwhile, and the URL answers the object once identity is back."""
    _, k, s = new_tenant(cloud, "kw-f-" + uuid.uuid4().hex[:6])
    c = s3_client(cloud, k, s)
    bucket = "kw-" + uuid.uuid4().hex[:8]
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="k", Body=b"presigned")
    url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=600)
    assert "Signature=" in url and "AWSAccessKeyId=" in url, url

    def served():
        assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"presigned"
    try:
        got = while_identity_frozen(cloud, "identity.sign_v2",
                                    lambda: urllib.request.urlopen(url, timeout=120).read(), served)
        assert got == b"presigned"
    except urllib.error.HTTPError as e:   # identity's call outlived its timeout on a slow machine
        assert e.code == 503, e.read()
    # a wrong SigV2 signature after the wait is still refused by name
    bad = re.sub(r"Signature=[^&]+", "Signature=AAAA", url)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=60)
    assert e.value.code == 403 and b"SignatureDoesNotMatch" in e.value.read()


def test_acl_account_lookups_do_not_hold_the_only_thread(cloud):
    """Grants name accounts by e-mail address or canonical id, and GetBucketAcl shows
    display names: identity knows both. A PutBucketAcl whose document names a grantee by
    e-mail (the lookup comes after the body), a CreateBucket with an x-amz-grant-read
    header (before it) and a GetBucketAcl each wait for identity without holding the
    store's one HTTP thread, then answer what they would have answered anyway."""
    c = Tenant(cloud, "kw-g-" + uuid.uuid4().hex[:6]).s3
    grantee_email = "kw-h-%s@example.com" % uuid.uuid4().hex[:6]
    grantee = Tenant(cloud, "kw-h-" + uuid.uuid4().hex[:6], email=grantee_email).s3
    bucket = "kw-" + uuid.uuid4().hex[:8]
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="k", Body=b"v")
    owner = c.get_bucket_acl(Bucket=bucket)["Owner"]

    def served():
        assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"

    def put_acl():
        return c.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
            "Owner": owner,
            "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
                       {"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": grantee_email},
                        "Permission": "READ"}]})
    while_identity_frozen(cloud, "identity.account_lookup", put_acl, served)
    grants = c.get_bucket_acl(Bucket=bucket)["Grants"]
    read = [g for g in grants if g["Permission"] == "READ"]
    assert len(read) == 1 and read[0]["Grantee"]["Type"] == "CanonicalUser", grants
    # the grant works: the grantee may list the bucket now
    assert [o["Key"] for o in grantee.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]

    acl = while_identity_frozen(cloud, "identity.account_lookup", lambda: c.get_bucket_acl(Bucket=bucket), served)
    assert any(g["Grantee"].get("ID") == read[0]["Grantee"]["ID"] for g in acl["Grants"]), acl

    second = "kw-" + uuid.uuid4().hex[:8]
    while_identity_frozen(cloud, "identity.account_lookup",
                          lambda: c.create_bucket(Bucket=second, GrantRead="id=" + read[0]["Grantee"]["ID"]), served)
    assert [o.get("Key") for o in grantee.list_objects_v2(Bucket=second).get("Contents", [])] == []


def test_stored_bytes_quota_is_asked_without_holding_the_only_thread(cloud):
    """A PUT needs the bucket owner's stored_bytes quota, which the store keeps for 30 s;
    the first PUT of an account asks identity for it. While identity is frozen, that PUT
    waits without holding the store's one HTTP thread, a tenant whose quota is known is
    served meanwhile, and the PUT is stored whole once identity answers (put_object, and
    the transfer manager's upload)."""
    known = Tenant(cloud, "kw-i-" + uuid.uuid4().hex[:6]).s3
    kb = "kw-" + uuid.uuid4().hex[:8]
    known.create_bucket(Bucket=kb)
    known.put_object(Bucket=kb, Key="k", Body=b"known")

    def served():
        assert known.get_object(Bucket=kb, Key="k")["Body"].read() == b"known"

    for n, upload in enumerate(("put_object", "upload_fileobj")):
        fresh = Tenant(cloud, "kw-j%d-" % n + uuid.uuid4().hex[:6]).s3
        fb = "kw-" + uuid.uuid4().hex[:8]
        fresh.create_bucket(Bucket=fb)   # its key is cached now; its stored_bytes quota is not
        body = os.urandom(200 * 1024 + n)
        if upload == "put_object":
            call = lambda: fresh.put_object(Bucket=fb, Key="v", Body=body)
        else:
            import io
            call = lambda: fresh.upload_fileobj(io.BytesIO(body), fb, "v")
        try:
            while_identity_frozen(cloud, "identity.quota_get", call, served)
        except ClientError as e:   # identity's call outlived its timeout on a slow machine
            assert e.response["Error"]["Code"] == "ServiceUnavailable", e.response
            call()
        assert fresh.get_object(Bucket=fb, Key="v")["Body"].read() == body
