"""CORS as browsers use it against S3: the bucket's rules (Put/Get/DeleteBucketCors with
S3's checks), the unsigned preflight OPTIONS request allowed or refused (403
CORSResponse), and Access-Control-* headers on the actual request that carries an
Origin. Also bucket tagging (Put/Get/DeleteBucketTagging) round trips and errors."""
import uuid

import pytest
from botocore.exceptions import ClientError

from harness import error_code, s3_client, s3_raw

SUFFIX = uuid.uuid4().hex[:6]
APP = "https://app.example.com"


def code(ei):
    return ei.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def site(cloud):
    s3 = s3_client(cloud)
    name = "cors-%s" % SUFFIX
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="index.html", Body=b"<p>hi</p>", ACL="public-read", ContentType="text/html")
    return name


RULES = {"CORSRules": [
    {"ID": "app", "AllowedOrigins": [APP, "https://*.example.org"], "AllowedMethods": ["GET", "PUT", "HEAD"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag", "x-amz-request-id"],
     "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]}


def preflight(cloud, path, origin, method, headers=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return s3_raw(cloud, "OPTIONS", path, headers=h, sign=False)


def test_cors_configuration_round_trip_and_errors(cloud, site):
    s3 = s3_client(cloud)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_cors(Bucket=site)
    assert code(ei) == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=site, CORSConfiguration=RULES)
    got = s3.get_bucket_cors(Bucket=site)["CORSRules"]
    assert got[0] == RULES["CORSRules"][0]
    assert got[1] == RULES["CORSRules"][1]
    bad = [
        ({"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}, "InvalidRequest"),
        ({"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]}, "InvalidRequest"),
        ({"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["x-*-*"]}, "InvalidRequest"),
        ({"AllowedOrigins": [], "AllowedMethods": ["GET"]}, "MalformedXML"),
        ({"AllowedOrigins": ["*"], "AllowedMethods": []}, "MalformedXML"),
    ]
    for rule, want in bad:
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_cors(Bucket=site, CORSConfiguration={"CORSRules": [rule]})
        assert code(ei) == want, rule
    with pytest.raises(ClientError) as ei:
        s3.put_bucket_cors(Bucket=site, CORSConfiguration={"CORSRules": [RULES["CORSRules"][1]] * 101})
    assert code(ei) == "InvalidRequest"
    assert s3.get_bucket_cors(Bucket=site)["CORSRules"][0]["ID"] == "app"   # unchanged by the refusals


def test_preflight_allowed(cloud, site):
    s3_client(cloud).put_bucket_cors(Bucket=site, CORSConfiguration=RULES)
    st, h, _ = preflight(cloud, "/%s/upload.bin" % site, APP, "PUT", "Content-Type, x-amz-meta-owner")
    assert st == 200
    assert h["access-control-allow-origin"] == APP
    assert h["access-control-allow-methods"] == "GET, PUT, HEAD"
    assert h["access-control-allow-headers"] == "Content-Type, x-amz-meta-owner"
    assert h["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert h["access-control-max-age"] == "600"
    assert h["access-control-allow-credentials"] == "true"
    assert "Origin" in h["vary"]
    # the one wildcard of an origin pattern, on the bucket itself too
    st, h, _ = preflight(cloud, "/%s" % site, "https://shop.example.org", "GET")
    assert st == 200 and h["access-control-allow-origin"] == "https://shop.example.org"
    # a rule for every origin answers "*"
    st, h, _ = preflight(cloud, "/%s/index.html" % site, "https://anywhere.test", "GET")
    assert st == 200 and h["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in h


def test_preflight_refused(cloud, site):
    s3_client(cloud).put_bucket_cors(Bucket=site, CORSConfiguration=RULES)
    for origin, method, headers in [("https://evil.example.com", "PUT", None),     # origin
                                    (APP, "DELETE", None),                         # method
                                    (APP, "PUT", "Authorization, x-custom")]:      # a header
        st, h, body = preflight(cloud, "/%s/index.html" % site, origin, method, headers)
        assert st == 403 and error_code(body) == "CORSResponse", (origin, method, headers)
        assert "access-control-allow-origin" not in h
    st, _, body = s3_raw(cloud, "OPTIONS", "/%s/index.html" % site, sign=False,
                         headers={"Access-Control-Request-Method": "GET"})
    assert st == 400   # no Origin
    st, _, body = preflight(cloud, "/%s/index.html" % site, APP, "TRACE")
    assert st == 400
    s3_client(cloud).delete_bucket_cors(Bucket=site)
    st, _, body = preflight(cloud, "/%s/index.html" % site, APP, "GET")
    assert st == 403 and error_code(body) == "CORSResponse" and b"not enabled" in body
    with pytest.raises(ClientError) as ei:
        s3_client(cloud).get_bucket_cors(Bucket=site)
    assert code(ei) == "NoSuchCORSConfiguration"


def test_headers_on_actual_requests(cloud, site):
    s3_client(cloud).put_bucket_cors(Bucket=site, CORSConfiguration=RULES)
    st, h, body = s3_raw(cloud, "GET", "/%s/index.html" % site, sign=False, headers={"Origin": APP})
    assert st == 200 and body == b"<p>hi</p>"
    assert h["access-control-allow-origin"] == APP
    assert h["access-control-expose-headers"] == "ETag, x-amz-request-id"
    st, h, _ = s3_raw(cloud, "GET", "/%s/index.html" % site, sign=False)
    assert st == 200 and "access-control-allow-origin" not in h
    # a method the rules do not name for that origin: the answer carries no CORS headers
    st, h, _ = s3_raw(cloud, "PUT", "/%s/x" % site, sign=False, body=b"x", headers={"Origin": "https://a.test"})
    assert st == 403 and "access-control-allow-origin" not in h
    # signed requests get them too (a browser app with credentials)
    st, h, _ = s3_raw(cloud, "HEAD", "/%s/index.html" % site, headers={"Origin": APP})
    assert st == 200 and h["access-control-allow-origin"] == APP


def test_bucket_tagging(cloud):
    s3 = s3_client(cloud)
    name = "tags-%s" % SUFFIX
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_tagging(Bucket=name)
    assert code(ei) == "NoSuchTagSet"
    tags = [{"Key": "team", "Value": "storage"}, {"Key": "cost center", "Value": ""},
            {"Key": "caf\u00e9:+-=._/@", "Value": "\u65e5\u672c"}]
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    assert s3.get_bucket_tagging(Bucket=name)["TagSet"] == tags
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "k%d" % i, "Value": "v"} for i in range(50)]})
    assert len(s3.get_bucket_tagging(Bucket=name)["TagSet"]) == 50
    bad = [
        [{"Key": "k%d" % i, "Value": "v"} for i in range(51)],
        [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
        [{"Key": "aws:reserved", "Value": "x"}],
        [{"Key": "k" * 129, "Value": "x"}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": "semi;colon", "Value": "x"}],
    ]
    for tagset in bad:
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tagset})
        assert code(ei) == "InvalidTag", tagset[:2]
    assert len(s3.get_bucket_tagging(Bucket=name)["TagSet"]) == 50   # a refused PUT changes nothing
    # the 128 and 256 limits count characters, not bytes
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "\u00e9" * 128, "Value": "\u00e9" * 256}]})
    s3.delete_bucket_tagging(Bucket=name)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_tagging(Bucket=name)
    assert code(ei) == "NoSuchTagSet"
    st, _, body = s3_raw(cloud, "PUT", "/%s?tagging" % name, body=b"<Tagging><Tags/></Tagging>")
    assert st == 400 and error_code(body) == "MalformedXML"
    st, _, body = s3_raw(cloud, "PUT", "/%s?tagging" % name,   # an empty key, which boto3 would not send
                         body=b"<Tagging><TagSet><Tag><Key></Key><Value>x</Value></Tag></TagSet></Tagging>")
    assert st == 400 and error_code(body) == "InvalidTag"
    # the bucket itself is untouched by all of it
    s3.head_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)


def test_the_cli(cloud, tmp_path):
    """/usr/bin/aws s3api put-bucket-cors from a file, get-bucket-cors, bucket tagging."""
    import json
    import subprocess
    from harness import aws_env
    name = "cors-cli-%s" % SUFFIX
    s3_client(cloud).create_bucket(Bucket=name)
    conf = tmp_path / "cors.json"
    conf.write_text(json.dumps({"CORSRules": [{"AllowedOrigins": [APP], "AllowedMethods": ["GET", "HEAD"],
                                               "MaxAgeSeconds": 30}]}))

    def s3api(*args):
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_S3_URL"], "--output", "json", "s3api",
                            *args], capture_output=True, text=True, env=aws_env(cloud), timeout=60)
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr
    rc, _, err = s3api("put-bucket-cors", "--bucket", name, "--cors-configuration", "file://%s" % conf)
    assert rc == 0, err
    rc, out, err = s3api("get-bucket-cors", "--bucket", name)
    assert rc == 0 and out["CORSRules"] == json.loads(conf.read_text())["CORSRules"], err
    st, h, _ = preflight(cloud, "/%s/x" % name, APP, "HEAD")
    assert st == 200 and h["access-control-max-age"] == "30"
    rc, _, err = s3api("put-bucket-tagging", "--bucket", name, "--tagging", "TagSet=[{Key=env,Value=test}]")
    assert rc == 0, err
    rc, out, err = s3api("get-bucket-tagging", "--bucket", name)
    assert rc == 0 and out["TagSet"] == [{"Key": "env", "Value": "test"}]
    rc, _, err = s3api("delete-bucket-tagging", "--bucket", name)
    assert rc == 0, err
    rc, _, err = s3api("get-bucket-tagging", "--bucket", name)
    assert rc != 0 and "NoSuchTagSet" in err
    rc, _, err = s3api("delete-bucket-cors", "--bucket", name)
    assert rc == 0, err
    rc, _, err = s3api("delete-bucket", "--bucket", name)
    assert rc == 0, err
