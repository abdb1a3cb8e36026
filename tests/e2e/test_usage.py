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
import signal
import time
import uuid

import pytest

from harness import Cloud, boto3_client, new_tenant

WAIT_S = 60


@pytest.fixture(scope="module")
def cloud():
    c = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True,
                    env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_ACCOUNTING_POLL_MS": "500"})
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def ami(cloud):
    with open(os.path.join(cloud.dir, "default-images.json")) as f:
        return json.load(f)["virga-busybox-rootfs"]


@pytest.fixture(scope="module")
def tenant(cloud):
    acct, k, s = new_tenant(cloud, "usage-" + uuid.uuid4().hex[:8])
    return acct, boto3_client(cloud, "ec2", k, s)


def wait_state(ec2, iid, state):
    deadline = time.time() + WAIT_S
    while True:
        got = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
        if got == state:
            return
        assert time.time() < deadline, "%s is %s, not %s" % (iid, got, state)
        time.sleep(0.2)


def stop_accounting(cloud):
    pid = cloud.pid("accounting")
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 30
    while os.path.exists("/proc/%d" % pid):
        assert time.time() < deadline, "accounting did not stop"
        time.sleep(0.1)


def start_accounting(cloud):
    r = cloud.up()
    assert r.returncode == 0, r.stdout + r.stderr
    cloud.wait_healthy("accounting")


def usage(cloud, **filters):
    ok, reply = cloud.call("accounting", "accounting.usage", filters)
    assert ok, reply
    return reply


def wait_records(cloud, resource, count):
    deadline = time.time() + WAIT_S
    while True:
        recs = usage(cloud, resource_id=resource)["records"]
        if len(recs) >= count:
            return recs
        assert time.time() < deadline, "records of %s: %s" % (resource, recs)
        time.sleep(0.3)


def caught_up(cloud):
    """Wait until accounting's cursor has taken the whole instance log."""
    deadline = time.time() + WAIT_S
    while cloud.psql("SELECT (SELECT seq FROM accounting.cursors WHERE log = 'compute.instance_events') = "
                     "(SELECT max(seq) FROM compute.instance_events)") != "t":
        assert time.time() < deadline, "accounting did not catch up"
        time.sleep(0.2)


def lifecycle(ec2, ami, steps):
    """Launch one instance, then apply steps ('stop', 'start', 'terminate'), each waited
    for; returns the instance id."""
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    for step in steps:
        if step == "stop":
            ec2.stop_instances(InstanceIds=[iid])
            wait_state(ec2, iid, "stopped")
        elif step == "start":
            ec2.start_instances(InstanceIds=[iid])
            wait_state(ec2, iid, "running")
        else:
            ec2.terminate_instances(InstanceIds=[iid])
            wait_state(ec2, iid, "terminated")
    return iid


def shift(cloud, iid, times):
    """Move the instance's usage events (in their own order) to the given UTC times."""
    events = cloud.psql("SELECT instance_seq || ' ' || event FROM compute.instance_events "
                        "WHERE instance_id = '%s' ORDER BY instance_seq" % iid).split("\n")
    assert len(events) == len(times), events
    for (line, t) in zip(events, times):
        seq = line.split()[0]
        cloud.psql("UPDATE compute.instance_events SET at = '%s'::timestamp AT TIME ZONE 'UTC' "
                   "WHERE instance_id = '%s' AND instance_seq = %s" % (t, iid, seq))
    return [line.split()[1] for line in events]


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
    cloud.psql("DELETE FROM accounting.instance_meters WHERE instance_id = '%s'" % iid)
    caught_up(cloud)
    assert len(usage(cloud, resource_id=iid)["records"]) == 5
