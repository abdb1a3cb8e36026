"""The figures bench_usage.sh prints (see there).

1. Events into records: with accounting stopped, EVENTS_INSTANCES synthetic instances
   each get a started and a stopped event 30 minutes apart in compute.instance_events
   (the log is the interface accounting reads); accounting is started and the time until
   its cursor has taken them all, records made, is measured: events/s end to end.
2. Lag: a real instance (boto3, sim driver) is stopped; from StopInstances' answer until
   its record is acknowledged by the broker on virga.usage (published_at set by the
   outbox after the ack), p50 and max over LAG_ROUNDS.
3. Invoice: an account with INVOICE_INSTANCES instances, each with INVOICE_HOURS hourly
   records in one month (inserted as already published), then `virgadm invoice` timed."""
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Cloud, boto3_client  # noqa: E402
from usage_helpers import start_accounting, stop_accounting  # noqa: E402

EVENTS_INSTANCES = 20000
LAG_ROUNDS = 10
INVOICE_INSTANCES = 10000
INVOICE_HOURS = int(os.environ.get("VIRGA_BENCH_INVOICE_HOURS", "72"))


def wait_for(cond, seconds, what):
    deadline = time.time() + seconds
    while not cond():
        if time.time() > deadline:
            raise SystemExit("bench_usage: %s did not happen in %d s" % (what, seconds))
        time.sleep(0.05)


def events_per_second(cloud):
    before = int(cloud.psql("SELECT events FROM accounting.cursors WHERE log = 'compute.instance_events'"))
    n = EVENTS_INSTANCES
    stop_accounting(cloud)   # the log fills while accounting is down; then it catches up
    for lo in range(0, n, 500):   # 1,000 events a transaction
        cloud.psql("INSERT INTO compute.instance_events (instance_id, instance_seq, event, account_id, "
                   "instance_type, at) SELECT 'i-bench' || g, s, CASE s WHEN 1 THEN 'started' ELSE 'stopped' END, "
                   "'999999999999', 't3.nano', timestamp '2026-03-01 10:00:00' + (g %% 3600) * interval '1 s' "
                   "+ (s - 1) * interval '30 min' FROM generate_series(%d, %d) g, generate_series(1, 2) s"
                   % (lo, min(n, lo + 500) - 1))
    t0 = time.time()
    start_accounting(cloud)
    wait_for(lambda: int(cloud.psql("SELECT events FROM accounting.cursors WHERE log = 'compute.instance_events'"))
             >= before + 2 * n, 600, "taking the events")
    t1 = time.time()
    records = int(cloud.psql("SELECT count(*) FROM accounting.usage_records WHERE account_id = '999999999999'"))
    print("events into records: %d events waiting in the log taken into %d records in %.1f s from the start of "
          "accounting (its start included): %.0f events/s" % (2 * n, records, t1 - t0, 2 * n / (t1 - t0)))
    wait_for(lambda: cloud.psql("SELECT count(*) FROM accounting.usage_records WHERE published_at IS NULL") == "0",
             600, "publishing the records")
    t2 = time.time()
    print("their records published on virga.usage (acknowledged) %.1f s from the start: %.0f records/s"
          % (t2 - t0, records / (t2 - t0)))


def lag(cloud):
    ami = cloud.default_images()["virga-busybox-rootfs"]
    ec2 = boto3_client(cloud, "ec2")
    lags = []
    for _ in range(LAG_ROUNDS + 1):
        iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"]
        wait_for(lambda: ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"][
            "Name"] == "running", 60, "running")
        ec2.stop_instances(InstanceIds=[iid])
        t0 = time.time()
        q = ("SELECT count(*) FROM accounting.usage_records WHERE resource_id = '%s' AND published_at IS NOT NULL"
             % iid)
        wait_for(lambda: cloud.psql(q) != "0", 60, "the record of %s" % iid)
        lags.append(time.time() - t0)
        ec2.terminate_instances(InstanceIds=[iid])
    lags = lags[1:]   # the first round warms the caches
    print("lag from StopInstances' answer to its record acknowledged on virga.usage: p50 %.0f ms, max %.0f ms "
          "(%d rounds; includes this client's polling, about 20 ms)"
          % (statistics.median(lags) * 1000, max(lags) * 1000, len(lags)))


def invoice(cloud):
    acct = "888888888888"
    t0 = time.time()
    for lo in range(0, INVOICE_HOURS, 12):   # 120,000 records a statement (psql's 60 s each)
        cloud.psql("INSERT INTO accounting.usage_records (record_key, resource_type, resource_id, account_id, "
                   "usage_type, item, quantity, unit, start_at, end_at, published_at) SELECT 'bench/' || i || '/' || h, "
                   "'instance', 'i-inv' || i, '%s', 'instance.running', CASE i %% 3 WHEN 0 THEN 't3.nano' WHEN 1 "
                   "THEN 't3.micro' ELSE 't3.small' END, 3600, 'second', timestamp '2026-04-01' + h * interval '1 hour', "
                   "timestamp '2026-04-01' + (h + 1) * interval '1 hour', now() "
                   "FROM generate_series(1, %d) i, generate_series(%d, %d) h"
                   % (acct, INVOICE_INSTANCES, lo, min(INVOICE_HOURS, lo + 12) - 1))
    cloud.psql("ANALYZE accounting.usage_records")
    t1 = time.time()
    times = []
    for _ in range(3):
        s = time.time()
        r = cloud.virgadm("invoice", "--account", acct, "--month", "2026-04", "--format", "json", timeout=600)
        times.append(time.time() - s)
        if r.returncode != 0:
            raise SystemExit("bench_usage: invoice failed: %s" % r.stderr)
    total = json.loads(r.stdout)["total"]
    print("invoice for a month of an account with %d instances (%d records, %d hours each): %.2f s "
          "(median of 3, virgadm end to end; total %s; setup %.0f s)"
          % (INVOICE_INSTANCES, INVOICE_INSTANCES * INVOICE_HOURS, INVOICE_HOURS, statistics.median(times), total,
             t1 - t0))


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "prices.yaml")
    cloud = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True,
                        env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_GATEWAY_RATE_LIMIT": "0",
                             "VIRGA_ACCOUNTING_PRICE_LIST": os.path.abspath(d)})
    try:
        events_per_second(cloud)
        lag(cloud)
        invoice(cloud)
    finally:
        cloud.stop()


if __name__ == "__main__":
    main()
