"""SigV4 authentication and AWS-shaped errors, with requests signed by botocore itself
(the signer the real clients use), then tampered with."""
import datetime
import hashlib
import hmac
import urllib.error
import urllib.request
from urllib.parse import quote
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from harness import aws, boto3_client


def signed(cloud, params, secret=None, when=None, service="ec2", key=None, query=""):
    """A POST form request signed with botocore's SigV4Auth; returns (url, headers, body).
    params is a dict or a list of (name, value) pairs (to repeat a name); query, if
    given, goes on the URL too."""
    url = cloud.env["VIRGA_EC2_URL"] + "/" + ("?" + query if query else "")
    items = params.items() if isinstance(params, dict) else params
    body = "&".join("%s=%s" % kv for kv in items)
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    creds = Credentials(key or cloud.env["AWS_ACCESS_KEY_ID"], secret or cloud.env["AWS_SECRET_ACCESS_KEY"])
    auth = SigV4Auth(creds, service, cloud.env["AWS_DEFAULT_REGION"])
    if when is None:
        auth.add_auth(req)
    else:
        with mock.patch("botocore.auth.datetime") as dt:   # sign "at" another time
            dt.datetime.utcnow.return_value = when
            auth.add_auth(req)
    return url, dict(req.headers), body


def send(url, headers, body, method="POST"):
    r = urllib.request.Request(url, data=body.encode() if body is not None else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def code_of(xml):
    return xml.split("<Code>")[1].split("</Code>")[0] if "<Code>" in xml else None


def test_a_correct_signature_is_accepted(cloud):
    status, text = send(*signed(cloud, {"Action": "DescribeRegions", "Version": "2016-11-15"}))
    assert status == 200, text
    assert 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"' in text and "<requestId>" in text


def test_wrong_secret_is_signature_does_not_match(cloud):
    rc, _, err = aws(cloud, "ec2", "describe-regions", secret_key="x" * 40)
    assert rc != 0 and "SignatureDoesNotMatch" in err


def test_unknown_access_key_is_auth_failure(cloud):
    rc, _, err = aws(cloud, "ec2", "describe-regions", access_key="AKIAAAAAAAAAAAAAAAAA")
    assert rc != 0 and "AuthFailure" in err


def test_tampered_query_is_signature_does_not_match(cloud):
    url, headers, body = signed(cloud, {"Action": "DescribeKeyPairs", "Version": "2016-11-15", "KeyName.1": "a"})
    status, text = send(url, headers, body.replace("KeyName.1=a", "KeyName.1=b"))
    assert status == 403 and code_of(text) == "SignatureDoesNotMatch", text


def test_expired_timestamp_is_request_expired(cloud):
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
    status, text = send(*signed(cloud, {"Action": "DescribeRegions", "Version": "2016-11-15"}, when=old))
    assert code_of(text) == "RequestExpired", text
    assert status == 400


def test_unsigned_request_is_auth_failure(cloud):
    status, text = send(cloud.env["VIRGA_EC2_URL"] + "/?Action=DescribeRegions&Version=2016-11-15", {}, None, "GET")
    assert status == 401 and code_of(text) == "AuthFailure"
    assert "<Response><Errors><Error>" in text and "<RequestID>" in text


def test_unknown_action_is_invalid_action(cloud):
    status, text = send(*signed(cloud, {"Action": "LaunchRocket", "Version": "2016-11-15"}))
    assert status == 400 and code_of(text) == "InvalidAction", text


def test_missing_parameter(cloud):
    status, text = send(*signed(cloud, {"Action": "CreateKeyPair", "Version": "2016-11-15"}))
    assert status == 400 and code_of(text) == "MissingParameter" and "KeyName" in text, text


def test_unknown_parameter_is_refused(cloud):
    # a misspelt or made-up parameter must not be silently ignored
    for params in ({"Action": "DescribeKeyPairs", "Version": "2016-11-15", "Bogus": "1"},
                   {"Action": "DescribeKeyPairs", "Version": "2016-11-15", "KeyNames.1": "a"},
                   {"Action": "DescribeRegions", "Version": "2016-11-15", "Filter.1.Name": "x", "Region": "a"}):
        status, text = send(*signed(cloud, params))
        assert status == 400 and code_of(text) == "UnknownParameter", (params, text)
    # the same for the CLI, through an option this API version has not got
    status, text = send(*signed(cloud, {"Action": "DescribeKeyPairs", "Version": "2016-11-15", "KeyName.1": "nope"}))
    assert code_of(text) == "InvalidKeyPair.NotFound", text   # a real parameter still works


def test_malformed_list_index_is_refused(cloud):
    for name in ("KeyName.-1", "KeyName.0", "KeyName.1x", "KeyName.01"):
        status, text = send(*signed(cloud, {"Action": "DescribeKeyPairs", "Version": "2016-11-15", name: "a"}))
        assert status == 400 and code_of(text) == "InvalidParameterValue", (name, text)


def test_duplicated_parameters_are_refused(cloud):
    status, text = send(*signed(cloud, [("Action", "DescribeRegions"), ("Action", "DescribeKeyPairs"),
                                        ("Version", "2016-11-15")]))
    assert status == 400 and code_of(text) == "InvalidParameterCombination", text
    # the same name in the URL of a POST and in its body
    status, text = send(*signed(cloud, {"Action": "DescribeKeyPairs", "Version": "2016-11-15"},
                                query="Action=DescribeRegions"))
    assert status == 400 and code_of(text) == "InvalidParameterCombination", text
    status, text = send(*signed(cloud, [("KeyName.1", "a"), ("KeyName.1", "b"), ("Action", "DescribeKeyPairs"),
                                        ("Version", "2016-11-15")]))
    assert status == 400 and code_of(text) == "InvalidParameterCombination", text


def test_iam_errors_have_the_iam_shape(cloud):
    iam = boto3_client(cloud, "iam")
    for call, args, want in ((iam.get_user, {"UserName": "nobody-here"}, "NoSuchEntity"),
                             (iam.create_user, {"UserName": "bad name!"}, None)):
        with pytest.raises(ClientError) as ei:
            call(**args)
        err = ei.value.response
        assert err["ResponseMetadata"]["RequestId"], err   # parsed as IAM's ErrorResponse
        if want:
            assert err["Error"]["Code"] == want
        assert err["Error"].get("Type") == "Sender", err
    status, text = send(*signed(cloud, {"Action": "GetUser", "Version": "2010-05-08", "Bogus": "1"}, service="iam"))
    assert status == 400 and "<ErrorResponse" in text and code_of(text) == "UnknownParameter", text
    status, text = send(*signed(cloud, [("Action", "GetUser"), ("Action", "GetUser"), ("Version", "2010-05-08")],
                                service="iam"))
    assert status == 400 and "<ErrorResponse" in text, text


def test_malformed_authorization_header(cloud):
    url, headers, body = signed(cloud, {"Action": "DescribeRegions", "Version": "2016-11-15"})
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=garbage"
    status, text = send(url, headers, body)
    assert status in (400, 403) and code_of(text) in ("IncompleteSignature", "AuthFailure", "SignatureDoesNotMatch")


def test_presigned_query_url_works_and_cannot_be_stretched(cloud):
    ec2 = boto3_client(cloud, "ec2")
    url = ec2.generate_presigned_url("describe_regions", Params={}, ExpiresIn=60, HttpMethod="GET")
    status, text = send(url, {}, None, "GET")
    assert status == 200 and "<regionInfo>" in text, text
    status, text = send(url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"), {}, None, "GET")
    assert status == 403 and code_of(text) == "SignatureDoesNotMatch"
    # without HttpMethod botocore signs with the operation's method, POST
    url = ec2.generate_presigned_url("describe_regions", Params={}, ExpiresIn=60)
    status, text = send(url, {}, b"".decode(), "POST")
    assert status == 200 and "<regionInfo>" in text, text


def presign_at(cloud, when, expires):
    """A GET presigned URL signed "at" a given time, by the SigV4 recipe itself."""
    host = cloud.env["VIRGA_EC2_URL"].split("//")[1]
    amz_date, day = when.strftime("%Y%m%dT%H%M%SZ"), when.strftime("%Y%m%d")
    region = cloud.env["AWS_DEFAULT_REGION"]
    scope = "%s/%s/ec2/aws4_request" % (day, region)
    params = {"Action": "DescribeRegions", "Version": "2016-11-15", "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": cloud.env["AWS_ACCESS_KEY_ID"] + "/" + scope, "X-Amz-Date": amz_date,
              "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host"}
    query = "&".join("%s=%s" % (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in sorted(params.items()))
    creq = "\n".join(["GET", "/", query, "host:" + host, "", "host", hashlib.sha256(b"").hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + cloud.env["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (day, region, "ec2", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    return "%s/?%s&X-Amz-Signature=%s" % (cloud.env["VIRGA_EC2_URL"], query, sig)


def test_presigned_url_past_its_expiry_is_refused(cloud):
    now = datetime.datetime.utcnow()
    status, text = send(presign_at(cloud, now, 60), {}, None, "GET")
    assert status == 200, text   # the recipe is right...
    status, text = send(presign_at(cloud, now - datetime.timedelta(minutes=5), 60), {}, None, "GET")
    assert status == 403 and code_of(text) == "RequestExpired", text   # ...and time matters


def test_oversized_body_is_refused_without_crash(cloud):
    url, headers, body = signed(cloud, {"Action": "DescribeRegions", "Version": "2016-11-15", "Pad": "x" * (2 << 20)})
    try:
        status, _ = send(url, headers, body)
    except (ConnectionError, urllib.error.URLError):
        status = 413  # the server may close before reading the whole body
    assert status == 413
    status, _ = send(*signed(cloud, {"Action": "DescribeRegions", "Version": "2016-11-15"}))
    assert status == 200


def test_boto3_error_shape(cloud):
    ec2 = boto3_client(cloud, "ec2")
    with pytest.raises(ClientError) as ei:
        ec2.delete_key_pair(KeyPairId="key-00000000000000000")
    err = ei.value.response
    assert err["Error"]["Code"] == "InvalidKeyPair.NotFound"
    assert err["ResponseMetadata"]["RequestId"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
