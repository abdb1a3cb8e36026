"""Billing end to end (docs/accounting.md): a price list with two periods, an invoice
that matches it by hand (a price change applies from its date, not before; a burst
instance on a public-cloud host costs its remote price plus the markup), virgadm's
usage and invoice in table, CSV, JSON and PDF, and showback through the EC2 endpoint
(DescribeUsage, GetInvoice) where each tenant sees only its own usage.

Times are made testable as in test_usage.py: accounting is stopped, the lifecycle is
driven, the events' database times are moved to a fixed past timeline, and accounting
starts again and reads its logs from its cursors. The price list is
tests/lib/billing_prices.yaml."""
import csv
import io
import json
import os
import subprocess
import tempfile
import time
import uuid

import pytest

from harness import boto3_client, ec2_query, new_tenant
from usage_helpers import (caught_up, lifecycle, shift, shift_public_address, start_accounting, stop_accounting, usage,
                           wait_records)


@pytest.fixture(scope="module")
def cloud(accounting_cloud):
    """The shared accounting_cloud (tests/conftest.py): accounting polls every 500 ms and
    prices with tests/lib/billing_prices.yaml."""
    return accounting_cloud


@pytest.fixture(scope="module")
def ami(cloud):
    return cloud.default_images()["virga-busybox-rootfs"]


@pytest.fixture(scope="module")
def billed(cloud, ami):
    """Tenant A's January: a private instance across the price change at midnight of
    Jan 6 with the public address its launch gave it, an elastic IP across it too, and a
    burst instance on Jan 10."""
    acct, k, s = new_tenant(cloud, "bill-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    deadline = time.time() + 60   # the sim host has reported to compute
    while cloud.psql("SELECT count(*) FROM compute.hosts WHERE state = 'up'") == "0":
        assert time.time() < deadline, "no host"
        time.sleep(0.3)
    stop_accounting(cloud)
    try:
        private = lifecycle(ec2, ami, ["terminate"])
        shift(cloud, private, ["2026-01-05T23:30:00", "2026-01-06T00:30:00"])
        # its public address (the default subnet maps them on launch) over the same hour
        public = shift_public_address(cloud, private, ["2026-01-05T23:30:00"] * 2 + ["2026-01-06T00:30:00"] * 2)
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.release_address(AllocationId=alloc)
        for seq, t in ((1, "2026-01-05T23:00:00"), (2, "2026-01-06T01:00:00")):
            cloud.psql("UPDATE network.address_events SET at = '%s'::timestamp AT TIME ZONE 'UTC' "
                       "WHERE address_id = '%s' AND address_seq = %d" % (t, alloc, seq))
        # This cloud has no public region (docs/hybrid.md; bursting itself is the hybrid
        # suite's): the instance runs on the sim host and its events are marked as those
        # of an instance on a region's host are (cloud = the region, from compute.hosts).
        burst = lifecycle(ec2, ami, ["terminate"])
        cloud.psql("UPDATE compute.instance_events SET cloud = 'public-test-region' WHERE instance_id = '%s'"
                   % burst)
        shift(cloud, burst, ["2026-01-10T10:00:00", "2026-01-10T11:00:00"])
    finally:
        start_accounting(cloud)
    wait_records(cloud, private, 2)
    wait_records(cloud, alloc, 2)
    wait_records(cloud, public, 2)
    wait_records(cloud, burst, 1)
    caught_up(cloud)
    return acct, k, s, private, burst, alloc


def invoice_json(cloud, acct, month="2026-01"):
    r = cloud.virgadm("invoice", "--account", acct, "--month", month, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_invoice_matches_the_price_list_by_hand(cloud, billed):
    acct, _, _, private, burst, alloc = billed
    inv = invoice_json(cloud, acct)
    assert inv["currency"] == "EUR"
    got = sorted((l["usage_type"], l["cloud"], l["price_effective"], float(l["quantity"]), l["quantity_unit"],
                  float(l["unit_price"]), float(l["amount"])) for l in inv["lines"])
    assert got == sorted([
        # 23:30-00:30: half an hour at each period's price, not the new price for both
        ("instance.running", "private", "2026-01-01", 0.5, "hour", 1.2, 0.6),
        ("instance.running", "private", "2026-01-06", 0.5, "hour", 2.4, 1.2),
        # the public cloud's 1.00 plus 10 %
        ("instance.running", "public-test-region", "2026-01-06", 1.0, "hour", 1.1, 1.1),
        ("address.allocated", "private", "2026-01-01", 1.0, "hour", 0.01, 0.01),
        ("address.allocated", "private", "2026-01-06", 1.0, "hour", 0.02, 0.02),
        # the private instance's public address, priced apart from elastic IPs
        ("address.public-ipv4", "private", "2026-01-01", 0.5, "hour", 0.1, 0.05),
        ("address.public-ipv4", "private", "2026-01-06", 0.5, "hour", 0.2, 0.1),
    ])
    assert inv["total"] == "3.08"
    assert invoice_json(cloud, acct, "2026-02")["total"] == "0.00"


def test_invoice_formats_and_pdf(cloud, billed):
    acct = billed[0]
    r = cloud.virgadm("invoice", "--account", acct, "--month", "2026-01", "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][:2] == ["usage_type", "item"] and len(rows) == 1 + 7 + 1 and rows[-1][-1] == "3.08"
    r = cloud.virgadm("invoice", "--account", acct, "--month", "2026-01")
    assert r.returncode == 0 and "TOTAL" in r.stdout and "3.08 EUR" in r.stdout, r.stdout
    with tempfile.TemporaryDirectory() as d:
        pdf = os.path.join(d, "invoice.pdf")
        r = cloud.virgadm("invoice", "--account", acct, "--month", "2026-01", "--pdf", pdf)
        assert r.returncode == 0, r.stderr
        text = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True, check=True).stdout
    assert "INVOICE" in text and acct in text and "3.08 EUR" in text and "public-test-region" in text
    r = cloud.virgadm("invoice", "--account", acct, "--month", "2026-13")
    assert r.returncode == 1 and "InvalidParameterValue" in r.stderr


def test_virgadm_usage_filters_and_formats(cloud, billed):
    acct, _, _, private, burst, alloc = billed
    r = cloud.virgadm("usage", "--account", acct, "--type", "instance.running", "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["start", "end", "account_id", "user_id", "resource_id", "usage_type", "item", "quantity",
                       "unit", "cloud"]
    assert sorted(row[4] for row in rows[1:]) == sorted([private, private, burst])
    r = cloud.virgadm("usage", "--resource", alloc, "--from", "2026-01-06", "--to", "2026-01-07", "--format", "json")
    got = json.loads(r.stdout)["records"]
    assert [(x["start"], float(x["quantity"])) for x in got] == [("2026-01-06T00:00:00.000000Z", 3600.0)]
    r = cloud.virgadm("usage", "--account", acct)
    assert r.returncode == 0 and "TOTALS" in r.stdout and private in r.stdout
    r = cloud.virgadm("usage", "--from", "yesterday")
    assert r.returncode == 1 and "InvalidParameterValue" in r.stderr


def test_showback_tenants_see_only_their_own(cloud, billed):
    acct, k, s, private, burst, alloc = billed
    status, xml = ec2_query(cloud, k, s, {"Action": "DescribeUsage", "StartTime": "2026-01-01",
                                          "EndTime": "2026-02-01"})
    assert status == 200, xml
    assert private in xml and burst in xml and alloc in xml and "<usageRecordSet>" in xml
    status, xml = ec2_query(cloud, k, s, {"Action": "GetInvoice", "Month": "2026-01"})
    assert status == 200 and "<total>3.08</total>" in xml and "<currency>EUR</currency>" in xml, xml
    # another tenant sees nothing of A's, even when it names A's account or resources
    other, k2, s2 = new_tenant(cloud, "other-" + uuid.uuid4().hex[:8])
    status, xml = ec2_query(cloud, k2, s2, {"Action": "DescribeUsage", "ResourceId": private})
    assert status == 200 and private not in xml and acct not in xml, xml
    status, xml = ec2_query(cloud, k2, s2, {"Action": "GetInvoice", "Month": "2026-01"})
    assert status == 200 and "<total>0.00</total>" in xml and acct not in xml, xml
    # there is no parameter to name another account with
    status, xml = ec2_query(cloud, k2, s2, {"Action": "GetInvoice", "Month": "2026-01", "AccountId": acct})
    assert status == 400 and "UnknownParameter" in xml, xml
    status, xml = ec2_query(cloud, k2, s2, {"Action": "GetInvoice"})
    assert status == 400 and "MissingParameter" in xml, xml


def test_showback_is_iam_authorized(cloud, billed):
    """A user of the account needs ec2:DescribeUsage / ec2:GetInvoice like any action."""
    acct, k, s = billed[:3]
    iam = boto3_client(cloud, "iam", k, s)
    keys = {}
    for name, actions in (("viewer", ["ec2:DescribeUsage", "ec2:GetInvoice"]), ("nobody", ["ec2:DescribeRegions"])):
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
        ak = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = (ak["AccessKeyId"], ak["SecretAccessKey"])
    status, xml = ec2_query(cloud, *keys["viewer"], {"Action": "GetInvoice", "Month": "2026-01"})
    assert status == 200 and "<total>3.08</total>" in xml, xml
    for action in ({"Action": "DescribeUsage"}, {"Action": "GetInvoice", "Month": "2026-01"}):
        status, xml = ec2_query(cloud, *keys["nobody"], action)
        assert status == 403 and ("UnauthorizedOperation" in xml or "AccessDenied" in xml), xml
