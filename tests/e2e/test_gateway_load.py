"""The gateway's cheap refusals and its per-action metrics (issue 14), on a cloud of its
own: a flood of requests with one made-up access key asks identity once (the gateway
remembers unknown keys); an address that keeps failing to authenticate is refused before
anything is parsed and asks identity nothing more, while a real tenant from another
address is served; malformed requests never reach identity; /metrics counts requests by
action and status with a latency histogram. Identity calls are read from the gateway's
own counters (virga_gateway_signing_key_lookups_total). The flooding clients bind other
loopback addresses (127.0.0.2, ...) so that the tenant's 127.0.0.1 is a separate
source."""
import http.client
import re
import urllib.request
from urllib.parse import urlparse

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness import Cloud, boto3_client, new_tenant

BURST = 30


@pytest.fixture(scope="module")
def cloud():
    # unknown keys remembered for 10 minutes and failures that (almost) never refill, so
    # that nothing here depends on how fast the machine is. No object
    # is stored: the object store in a directory spares a Ceph cluster's start
    c = Cloud.start(extra_args=("--objectstore", "dir"),
                    env={"VIRGA_GATEWAY_UNKNOWN_KEY_TTL_S": "600", "VIRGA_GATEWAY_AUTH_FAIL_RATE": "0.001",
                         "VIRGA_GATEWAY_AUTH_FAIL_BURST": str(BURST)})
    try:
        yield c
    finally:
        c.stop_later()


def metrics(cloud):
    with urllib.request.urlopen(cloud.env["VIRGA_EC2_URL"] + "/metrics", timeout=10) as r:
        return r.read().decode()


def sample(text, name, **labels):
    """The value of one sample (0 when absent): labels must all match."""
    total = 0
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def lookups(cloud, result):
    return sample(metrics(cloud), "virga_gateway_signing_key_lookups_total", result=result)


def send_from(cloud, source, action, key, secret="x" * 40, body_extra="", raw_body=None):
    """POST a Query API request signed with botocore's SigV4 from a given loopback address:
    (status, error code or None)."""
    url = cloud.env["VIRGA_EC2_URL"] + "/"
    body = raw_body if raw_body is not None else "Action=%s&Version=2016-11-15%s" % (action, body_extra)
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(key, secret), "ec2", cloud.env["AWS_DEFAULT_REGION"]).add_auth(req)
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", "/", body=body, headers=dict(req.headers))
        r = conn.getresponse()
        text = r.read().decode()
    finally:
        conn.close()
    m = re.search(r"<Code>([^<]*)</Code>", text)
    return r.status, m.group(1) if m else None


def test_one_unknown_key_asks_identity_once(cloud):
    before_fetched, before_unknown = lookups(cloud, "fetched"), lookups(cloud, "unknown")
    answers = [send_from(cloud, "127.0.0.2", "DescribeKeyPairs", "AKIAMADEUPKEY0000001") for _ in range(20)]
    assert answers == [(401, "AuthFailure")] * 20
    assert lookups(cloud, "fetched") - before_fetched == 1          # identity was asked once ...
    assert lookups(cloud, "unknown") - before_unknown == 19         # ... then the gateway knew


def test_malformed_requests_never_reach_identity(cloud):
    before = lookups(cloud, "fetched")
    for action, extra in [("NoSuchAction", ""), ("DescribeKeyPairs", "&NoSuchParameter=1"), ("", "")]:
        status, code = send_from(cloud, "127.0.0.4", action, "AKIAMADEUPKEY0000002", body_extra=extra)
        assert status == 400 and code in ("InvalidAction", "UnknownParameter", "MissingAction"), (action, code)
    status, code = send_from(cloud, "127.0.0.4", "", "AKIAMADEUPKEY0000002", raw_body="Action=%zz")
    assert status == 400, code
    assert lookups(cloud, "fetched") == before


def test_an_address_that_keeps_failing_is_refused_unread(cloud):
    _, k, s = new_tenant(cloud, "bystander")
    tenant = boto3_client(cloud, "ec2", k, s)
    tenant.describe_key_pairs()                                      # its key is cached now
    m0 = metrics(cloud)
    fetched0 = sample(m0, "virga_gateway_signing_key_lookups_total", result="fetched")
    refused0 = sample(m0, "virga_gateway_source_refused_total")
    # a new made-up key each time: without the limit, every one would be a call to identity
    answers = [send_from(cloud, "127.0.0.3", "DescribeKeyPairs", "AKIAFLOOD%011d" % i) for i in range(BURST + 20)]
    assert answers[:BURST] == [(401, "AuthFailure")] * BURST
    assert answers[BURST:] == [(503, "RequestLimitExceeded")] * 20
    m1 = metrics(cloud)
    assert sample(m1, "virga_gateway_signing_key_lookups_total", result="fetched") - fetched0 == BURST
    assert sample(m1, "virga_gateway_source_refused_total") - refused0 == 20
    # even a correctly signed request from that address waits for its bucket to refill ...
    assert send_from(cloud, "127.0.0.3", "DescribeRegions", k, s) == (503, "RequestLimitExceeded")
    # ... while the tenant, from its own address, is served all along
    assert "KeyPairs" in tenant.describe_key_pairs()
    assert send_from(cloud, "127.0.0.5", "DescribeRegions", k, s)[0] == 200


def test_metrics_count_each_action_and_status(cloud):
    _, k, s = new_tenant(cloud, "metered")
    ec2 = boto3_client(cloud, "ec2", k, s)
    m0 = metrics(cloud)
    for _ in range(3):
        ec2.describe_regions()
    for _ in range(2):
        ec2.describe_key_pairs()
    with pytest.raises(Exception):
        ec2.describe_key_pairs(KeyNames=["no-such-key"])
    ec2.describe_account_attributes()
    m1 = metrics(cloud)

    def delta(name, **labels):
        return sample(m1, name, **labels) - sample(m0, name, **labels)

    assert delta("virga_gateway_requests_total", action="DescribeRegions", code="200") == 3
    assert delta("virga_gateway_requests_total", action="DescribeKeyPairs", code="200") == 2
    assert delta("virga_gateway_requests_total", action="DescribeKeyPairs", code="400") == 1
    assert delta("virga_gateway_requests_total", action="DescribeAccountAttributes", code="200") == 1
    assert delta("virga_gateway_request_duration_seconds_count", action="DescribeKeyPairs") == 3
    assert delta("virga_gateway_request_duration_seconds_bucket", action="DescribeRegions", le="+Inf") == 3
    assert sample(m1, "virga_gateway_requests_in_flight", action="DescribeKeyPairs") == 0
    assert "# TYPE virga_gateway_request_duration_seconds histogram" in m1
    assert "# TYPE virga_gateway_requests_total counter" in m1


def test_every_forwarded_action_has_a_handler(cloud):
    """A row of the gateway's action table that names a service must name a message type
    that service handles: a typo is this failure, not InvalidAction in production. The
    rows are read from the table's source, the types from each service (sys.routes)."""
    import json
    import os
    src = open(os.path.join(os.path.dirname(__file__), "..", "..", "services", "api-gateway", "actions.c")).read()
    rows = re.findall(r'\{API_(?:EC2|IAM), "(\w+)", "(\w+)"', src)
    assert len(rows) > 20, rows
    handled = {}
    for service in sorted({svc for _, svc in rows}):
        r = cloud.virgadm("call", service, "sys.routes")
        assert r.returncode == 0, (service, r.stderr)
        handled[service] = set(json.loads(r.stdout)["types"])
    missing = ["%s.%s" % (svc, action) for action, svc in rows if "%s.%s" % (svc, action) not in handled[svc]]
    assert missing == []
