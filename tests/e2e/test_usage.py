"""Usage accounting end to end (docs/accounting.md, docs/usage.md), on a cloud whose one
host's agent runs the `sim` driver. Instances are driven with boto3 through the gateway;
the records are read back from accounting (accounting.usage, virgadm usage).

The clock is made testable without waiting real minutes: every usage event carries the
database time of its change (compute.instance_events.at). The tests stop the accounting
service, drive the lifecycle, then move the events' times to a fixed past timeline with
SQL (the only thing shifted is `at`), and start accounting again, which reads the log
from its persisted cursor. The records must then be exactly what the shifted timeline
says: run 10 min, stopped 5, run 5 = 900 s; a span across an hour boundary is split."""
import json
import os
import time
import uuid

import pytest

from harness import boto3_client, new_tenant
from usage_helpers import (WAIT_S, caught_up, lifecycle, shift, shift_public_address, start_accounting,
                           start_service, stop_accounting, stop_service, usage, wait_records)


@pytest.fixture(scope="module")
def cloud(accounting_cloud):
    """The shared accounting_cloud (tests/conftest.py): a sim host, accounting polling
    every 500 ms, the object store's passes every second, GET bytes logged only when the
    object store stops."""
    return accounting_cloud


@pytest.fixture(scope="module")
def ami(cloud):
    return cloud.default_images()["virga-busybox-rootfs"]


@pytest.fixture(scope="module")
def tenant(cloud):
    acct, k, s = new_tenant(cloud, "usage-" + uuid.uuid4().hex[:8])
    return acct, boto3_client(cloud, "ec2", k, s)


def test_run_10_stop_5_run_5_bills_15_minutes(cloud, tenant, ami):
    acct, ec2 = tenant
    stop_accounting(cloud)
    try:
        iid = lifecycle(ec2, ami, ["stop", "start", "terminate"])
        got = shift(cloud, iid, ["2026-01-05T10:20:00", "2026-01-05T10:30:00",
                                 "2026-01-05T10:35:00", "2026-01-05T10:40:00"])
        assert got == ["started", "stopped", "started", "terminated"]
    finally:
        start_accounting(cloud)
    recs = wait_records(cloud, iid, 2)
    assert [(r["start"], r["end"], float(r["quantity"])) for r in recs] == [
        ("2026-01-05T10:20:00.000000Z", "2026-01-05T10:30:00.000000Z", 600.0),
        ("2026-01-05T10:35:00.000000Z", "2026-01-05T10:40:00.000000Z", 300.0)]
    assert all(r["account_id"] == acct and r["usage_type"] == "instance.running" and r["item"] == "t3.nano"
               and r["unit"] == "second" and r["cloud"] == "private" for r in recs)
    total = [t for t in usage(cloud, resource_id=iid)["totals"]]
    assert len(total) == 1 and float(total[0]["quantity"]) == 900.0


def test_hour_boundary_splits_records(cloud, tenant, ami):
    acct, ec2 = tenant
    stop_accounting(cloud)
    try:
        iid = lifecycle(ec2, ami, ["stop", "start", "terminate"])
        # 10:55:30 -> 11:05:00 (split at 11:00), then 11:10:00 -> 13:00:01 (three hours)
        shift(cloud, iid, ["2026-01-05T10:55:30", "2026-01-05T11:05:00",
                           "2026-01-05T11:10:00", "2026-01-05T13:00:01"])
    finally:
        start_accounting(cloud)
    recs = wait_records(cloud, iid, 5)
    assert [(r["start"][11:19], r["end"][11:19], float(r["quantity"])) for r in recs] == [
        ("10:55:30", "11:00:00", 270.0), ("11:00:00", "11:05:00", 300.0),
        ("11:10:00", "12:00:00", 3000.0), ("12:00:00", "13:00:00", 3600.0), ("13:00:00", "13:00:01", 1.0)]
    # the keys are unique and derived from the span: a replay of the log makes no more
    cloud.psql("UPDATE accounting.cursors SET xid = '0', seq = 0")
    cloud.psql("DELETE FROM accounting.meters WHERE resource_id = '%s'" % iid)
    caught_up(cloud)
    assert len(usage(cloud, resource_id=iid)["records"]) == 5


def test_elastic_ip_allocated_hours(cloud, tenant):
    """An address allocated 10:00:00, associated and disassociated on the way, released
    12:30:00 is 9000 s of address.allocated in three hourly records."""
    acct, ec2 = tenant
    stop_accounting(cloud)
    try:
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.release_address(AllocationId=alloc)
        events = cloud.psql("SELECT address_seq || ' ' || event FROM network.address_events "
                            "WHERE address_id = '%s' ORDER BY address_seq" % alloc).split("\n")
        assert [e.split()[1] for e in events] == ["allocated", "released"]
        for (line, t) in zip(events, ["2026-01-06T10:00:00", "2026-01-06T12:30:00"]):
            cloud.psql("UPDATE network.address_events SET at = '%s'::timestamp AT TIME ZONE 'UTC' "
                       "WHERE address_id = '%s' AND address_seq = %s" % (t, alloc, line.split()[0]))
    finally:
        start_accounting(cloud)
    recs = wait_records(cloud, alloc, 3)
    assert [(r["start"][11:19], float(r["quantity"])) for r in recs] == [
        ("10:00:00", 3600.0), ("11:00:00", 3600.0), ("12:00:00", 1800.0)]
    assert all(r["usage_type"] == "address.allocated" and r["account_id"] == acct for r in recs)


def test_public_address_of_a_launch_is_its_own_usage(cloud, tenant, ami):
    """The public address a launch in a default subnet gets (MapPublicIpOnLaunch) is
    billed as address.public-ipv4 (item public-ipv4), not as an elastic IP's
    address.allocated: allocated 10:30:00, released 11:15:00 is 1800 s + 900 s; the
    instance's own records are unchanged by it."""
    acct, ec2 = tenant
    stop_accounting(cloud)
    try:
        iid = lifecycle(ec2, ami, ["terminate"])
        shift(cloud, iid, ["2026-01-07T10:30:00", "2026-01-07T11:15:00"])
        alloc = shift_public_address(cloud, iid, ["2026-01-07T10:30:00", "2026-01-07T10:30:00",
                                                  "2026-01-07T11:15:00", "2026-01-07T11:15:00"])
    finally:
        start_accounting(cloud)
    recs = wait_records(cloud, alloc, 2)
    assert [(r["start"][11:19], r["end"][11:19], float(r["quantity"])) for r in recs] == [
        ("10:30:00", "11:00:00", 1800.0), ("11:00:00", "11:15:00", 900.0)]
    assert all((r["resource_type"], r["usage_type"], r["item"], r["unit"], r["account_id"]) ==
               ("address", "address.public-ipv4", "public-ipv4", "second", acct) for r in recs), recs
    assert [r["key"] for r in recs][0] == "address.public-ipv4/%s/2026-01-07T10:30:00.000000Z" % alloc
    assert [r["usage_type"] for r in wait_records(cloud, iid, 2)] == ["instance.running"] * 2
    r = cloud.virgadm("usage", "--account", acct, "--type", "address.public-ipv4", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert {x["resource_id"] for x in json.loads(r.stdout)["records"]} >= {alloc}


def test_image_storage_byte_hours(cloud):
    """A stored image is metered as byte-hours while available: an image whose 'stored'
    event is moved three hours back has records of whole hours at size x hours."""
    row = cloud.psql("SELECT image_id || ' ' || size || ' ' || image_seq FROM image.image_storage_events "
                     "WHERE event = 'stored' ORDER BY seq LIMIT 1")
    assert row, "the default images were stored"
    image, size, seq = row.split()
    stop_accounting(cloud)
    try:
        cloud.psql("UPDATE image.image_storage_events SET at = date_trunc('hour', now(), 'UTC') - interval '3 hours' "
                   "WHERE image_id = '%s' AND image_seq = %s" % (image, seq))
        cloud.psql("DELETE FROM accounting.meters WHERE resource_id = '%s'" % image)
        cloud.psql("UPDATE accounting.cursors SET xid = '0', seq = 0 WHERE log = 'image.image_storage_events'")
    finally:
        start_accounting(cloud)
    recs = wait_records(cloud, image, 2)
    assert all(r["usage_type"] == "image.stored" and r["unit"] == "byte-hour" for r in recs)
    assert float(recs[0]["quantity"]) == float(size)   # one whole hour of size bytes


def restart_objectstore(cloud):
    """A stop (SIGTERM) and a start, as an operator's restart does."""
    stop_service(cloud, "objectstore")
    start_service(cloud, "objectstore")


def storage_records(cloud, acct, count):
    deadline = time.time() + WAIT_S
    while True:
        recs = usage(cloud, account_id=acct, usage_type="storage.stored")["records"]
        if len(recs) >= count:
            return recs
        assert time.time() < deadline, recs
        time.sleep(0.5)


def test_s3_transfer_out_and_stored_bytes(cloud, tenant):
    """GetObject bytes counted in memory are written when the object store stops (the
    fixture's flush interval is an hour, so nothing else writes them): a restart loses
    none; the bucket's stored bytes are one record per bucket and hour."""
    from harness import s3_client
    name = "usage-" + uuid.uuid4().hex[:8]
    acct2, k, s = new_tenant(cloud, name)
    s3 = s3_client(cloud, k, s)
    s3.create_bucket(Bucket=name)
    body = os.urandom(100000)
    s3.put_object(Bucket=name, Key="k", Body=body)
    for _ in range(3):
        assert s3.get_object(Bucket=name, Key="k")["Body"].read() == body
    s3.head_object(Bucket=name, Key="k")   # sends no body: not counted
    restart_objectstore(cloud)
    deadline = time.time() + WAIT_S
    while True:
        tot = [t for t in usage(cloud, account_id=acct2, usage_type="transfer.out")["totals"]]
        if tot and float(tot[0]["quantity"]) >= 300000:
            break
        assert time.time() < deadline, tot
        time.sleep(0.5)
    assert float(tot[0]["quantity"]) == 300000.0 and tot[0]["unit"] == "byte"
    recs = storage_records(cloud, acct2, 1)
    assert len(recs) == 1 and float(recs[0]["quantity"]) == 100000.0 and recs[0]["unit"] == "byte-hour"
    assert recs[0]["resource_type"] == "bucket" and recs[0]["resource_id"] == name
    assert recs[0]["start"][14:] == "00:00.000000Z" and recs[0]["end"][14:] == "00:00.000000Z"


def test_stored_bytes_per_bucket(cloud):
    """Two buckets of one account, of different sizes (one with two versions of a key and
    an unfinished multipart upload's part): two records of the hour, each bucket's own
    bytes x 1 hour."""
    from harness import s3_client
    name = "usage-" + uuid.uuid4().hex[:8]
    acct, k, s = new_tenant(cloud, name)
    s3 = s3_client(cloud, k, s)
    small, big = name + "-small", name + "-big"
    stop_accounting(cloud)   # no record until the buckets hold what they will hold
    try:
        s3.create_bucket(Bucket=small)
        s3.create_bucket(Bucket=big)
        s3.put_object(Bucket=small, Key="a", Body=os.urandom(1000))
        s3.put_bucket_versioning(Bucket=big, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=big, Key="a", Body=os.urandom(300000))
        s3.put_object(Bucket=big, Key="a", Body=os.urandom(200000))   # a second version: both stored
        up = s3.create_multipart_upload(Bucket=big, Key="m")["UploadId"]
        s3.upload_part(Bucket=big, Key="m", UploadId=up, PartNumber=1, Body=os.urandom(50000))
        # the hour's samples were taken as the buckets were first seen storing, maybe
        # between two writes: forget them, so the next pass samples what is stored now
        names = "'%s', '%s'" % (small, big)
        cloud.psql("DELETE FROM objectstore.storage_samples WHERE bucket IN (%s)" % names)
        deadline = time.time() + WAIT_S
        while cloud.psql("SELECT count(*) FROM objectstore.storage_samples WHERE bucket IN (%s)" % names) != "2":
            assert time.time() < deadline, "no new samples"
            time.sleep(0.2)
    finally:
        start_accounting(cloud)
    recs = storage_records(cloud, acct, 2)
    got = {r["resource_id"]: (r["resource_type"], float(r["quantity"]), r["unit"]) for r in recs}
    assert got == {small: ("bucket", 1000.0, "byte-hour"), big: ("bucket", 550000.0, "byte-hour")}, got
    assert all(r["start"][14:] == "00:00.000000Z" and r["end"][14:] == "00:00.000000Z" for r in recs)


def test_recount_corrects_a_drifted_total(cloud):
    """A bucket total that drifted from what the backend holds (a refund lost) is set
    right by the recount, and the account's total moves by the same difference."""
    from harness import s3_client
    name = "usage-" + uuid.uuid4().hex[:8]
    acct, k, s = new_tenant(cloud, name)
    s3 = s3_client(cloud, k, s)
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="a", Body=os.urandom(4000))
    bid = cloud.psql("SELECT id FROM objectstore.buckets WHERE name = '%s'" % name)
    # drift: 1,000,000 bytes counted that nothing stores; quiet for an hour, never recounted
    cloud.psql("UPDATE objectstore.bucket_stored SET bytes = bytes + 1000000, changed_at = now() - interval "
               "'1 hour', recounted_at = NULL WHERE bucket_id = '%s'; UPDATE objectstore.stored SET bytes = "
               "bytes + 1000000 WHERE account_id = '%s'" % (bid, acct))
    deadline = time.time() + WAIT_S
    while cloud.psql("SELECT bytes FROM objectstore.bucket_stored WHERE bucket_id = '%s'" % bid) != "4000":
        assert time.time() < deadline, "not recounted"
        time.sleep(0.5)
    assert cloud.psql("SELECT bytes FROM objectstore.stored WHERE account_id = '%s'" % acct) == "4000"


def retry(fn, *args, **kw):
    """A lifecycle call while services restart: again until it is answered (the calls
    are idempotent: stopping a stopping instance succeeds and changes nothing)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
    deadline = time.time() + 120
    while True:
        try:
            return fn(*args, **kw)
        except (ClientError, EndpointConnectionError, ReadTimeoutError) as e:
            assert time.time() < deadline, e
            time.sleep(0.5)


def wait_all(ec2, ids, state):
    deadline = time.time() + 180
    while True:
        try:
            got = {i["InstanceId"]: i["State"]["Name"]
                   for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
        except Exception:   # compute restarting
            got = {}
        if len(got) == len(ids) and all(s == state for s in got.values()):
            return
        assert time.time() < deadline, got
        time.sleep(0.3)


def test_restarts_during_a_burst_lose_and_double_count_nothing(cloud, ami):
    """100 lifecycle changes on 10 instances; accounting is killed (-9) after the 3rd
    round, the Kafka broker after the 5th, compute after the 7th, each started again.
    Then every instance's billed seconds equal the running time summed independently
    from its event history, every record is published, and no key is twice."""
    acct, k, s = new_tenant(cloud, "burst-" + uuid.uuid4().hex[:8])
    ec2 = boto3_client(cloud, "ec2", k, s)
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=10,
                                                       MaxCount=10)["Instances"]]
    wait_all(ec2, ids, "running")
    kills = {3: "accounting", 5: "kafka", 7: "compute"}
    for rnd in range(10):
        stop = rnd % 2 == 0
        retry(ec2.stop_instances if stop else ec2.start_instances, InstanceIds=ids)
        if rnd in kills:
            pid = cloud.pid(kills[rnd])
            os.kill(pid, 9)
            while os.path.exists("/proc/%d" % pid) and open("/proc/%d/stat" % pid).read().split()[2] != "Z":
                time.sleep(0.1)
            r = cloud.up()
            assert r.returncode == 0, r.stdout + r.stderr
        wait_all(ec2, ids, "stopped" if stop else "running")
    retry(ec2.terminate_instances, InstanceIds=ids)
    wait_all(ec2, ids, "terminated")
    caught_up(cloud)
    # the independent sum: pair each instance's started/stopped events in its own order
    rows = cloud.psql("SELECT instance_id, instance_seq, event, extract(epoch FROM at) FROM compute.instance_events "
                      "WHERE account_id = '%s' ORDER BY instance_id, instance_seq" % acct).split("\n")
    expected = {}
    since = {}
    for row in rows:
        iid, _, event, at = row.split("|")
        at = float(at)
        if event == "started" and iid not in since:
            since[iid] = at
        elif event in ("stopped", "terminated") and iid in since:
            expected[iid] = expected.get(iid, 0.0) + at - since.pop(iid)
    assert sorted(expected) == sorted(ids) and not since
    deadline = time.time() + WAIT_S
    while True:
        got = usage(cloud, account_id=acct, limit=100000)
        billed = {}
        for rec in got["records"]:
            billed[rec["resource_id"]] = billed.get(rec["resource_id"], 0.0) + float(rec["quantity"])
        published = all(rec["published"] for rec in got["records"])
        if published and all(abs(billed.get(i, 0) - expected[i]) < 1e-4 for i in ids):
            break
        assert time.time() < deadline, (billed, expected, published)
        time.sleep(0.5)
    keys = [rec["key"] for rec in got["records"]]
    assert len(keys) == len(set(keys))
    assert cloud.psql("SELECT count(*) FROM accounting.inbox") == "0"


def test_usage_topic_consumer_restarts_and_dedupes(cloud):
    """A consumer of virga.usage (virgadm usage-feed, committing after each record it
    wrote out) killed -9 mid-way and started again in the same group has seen every
    record in the database at least once, and the key dedupes what it saw twice."""
    import subprocess
    from harness import BIN
    deadline = time.time() + WAIT_S
    while cloud.psql("SELECT count(*) FROM accounting.usage_records WHERE published_at IS NULL") != "0":
        assert time.time() < deadline, "the outbox did not empty"
        time.sleep(0.3)
    in_db = dict(line.split("|", 1) for line in cloud.psql(
        "SELECT record_key, quantity FROM accounting.usage_records").split("\n"))
    assert len(in_db) > 20
    group = "t" + uuid.uuid4().hex[:8]
    args = [os.path.join(BIN, "virgadm"), "-c", cloud.config, "usage-feed", "--group", group, "--idle-ms", "8000"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = [json.loads(first.stdout.readline()) for _ in range(10)]
    first.kill()   # no goodbye, whatever it had not committed is read again
    first.wait()
    second = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    seen += [json.loads(line) for line in second.stdout.splitlines()]
    keys = {}
    for m in seen:
        assert keys.setdefault(m["key"], m["record"]) == m["record"]   # a repeat is the same record
        assert m["record"]["key"] == m["key"]
    assert set(in_db) <= set(keys), set(in_db) - set(keys)
    for k, q in in_db.items():
        assert float(keys[k]["quantity"]) == float(q)


def test_deregistered_image_stops_its_meter(cloud):
    """DeregisterImage logs 'removed' and closes the image's span: its last record ends at
    the deregistration, and nothing more is metered for it."""
    images = cloud.default_images()
    image = next(v for k, v in sorted(images.items()) if k != "virga-busybox-rootfs" and v.startswith("ami-"))
    stop_accounting(cloud)
    try:
        cloud.psql("UPDATE image.image_storage_events SET at = '2026-01-07T10:00:00'::timestamp AT TIME ZONE 'UTC' "
                   "WHERE image_id = '%s'" % image)
        cloud.psql("DELETE FROM accounting.meters WHERE resource_id = '%s'" % image)
        cloud.psql("DELETE FROM accounting.usage_records WHERE resource_id = '%s'" % image)
        cloud.psql("UPDATE accounting.cursors SET xid = '0', seq = 0 WHERE log = 'image.image_storage_events'")
        ec2 = boto3_client(cloud, "ec2")   # the operator, who registered the default images
        ec2.deregister_image(ImageId=image)
        events = cloud.psql("SELECT event FROM image.image_storage_events WHERE image_id = '%s' ORDER BY image_seq"
                            % image).split("\n")
        assert events == ["stored", "removed"], events
        cloud.psql("UPDATE image.image_storage_events SET at = '2026-01-07T12:30:00'::timestamp AT TIME ZONE 'UTC' "
                   "WHERE image_id = '%s' AND event = 'removed'" % image)
    finally:
        start_accounting(cloud)
    recs = wait_records(cloud, image, 3)
    assert [(r["start"][11:19], r["end"][11:19]) for r in recs] == [
        ("10:00:00", "11:00:00"), ("11:00:00", "12:00:00"), ("12:00:00", "12:30:00")]
    caught_up(cloud, "image.image_storage_events")
    assert cloud.psql("SELECT open_since IS NULL FROM accounting.meters WHERE resource_id = '%s'" % image) == "t"
