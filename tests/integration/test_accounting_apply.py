"""accounting.apply_meters (sql/005_apply_batch.sql) applies a batch of events to the
meters with one statement; it must do exactly what its per-resource predecessor,
apply_meter (sql/002_usage.sql, kept here as the reference), did event by event. Random
event sequences (fixed seed) of opens, closes, resizes and no-ops, some with times
earlier than the meter's, arrive in batches out of resource order with gaps filled
later; the same events go to resources "a-N" through apply_meters and "b-N" through the
reference. The records, the meters and what waits in the inbox must be the same."""
import os
import random
import re

import pytest

from harness import Cloud

HERE = os.path.dirname(os.path.abspath(__file__))
SQL = os.path.join(HERE, "..", "..", "services", "accounting", "sql", "002_usage.sql")


@pytest.fixture(scope="module")
def cloud():
    # only accounting's SQL: the object store in a directory spares a Ceph cluster's start
    c = Cloud.start(extra_args=("--objectstore", "dir"))
    try:
        yield c
    finally:
        c.stop_later()


def reference_function():
    text = open(SQL).read()
    m = re.search(r"CREATE FUNCTION apply_meter\(.*?\n\$\$;\n", text, re.S)
    assert m, "apply_meter not found in 002_usage.sql"
    return m.group(0).replace("CREATE FUNCTION apply_meter(", "CREATE FUNCTION accounting.apply_meter_ref(")


def events(rng, n):
    """One resource's events: (seq, action, item, rate, minute offset)."""
    out, t = [], 0
    for seq in range(1, n + 1):
        t += rng.choice((-20, 0, 7, 30, 61, 95, 200))   # sometimes earlier than the last one
        out.append((seq, rng.choice(("open", "open", "close", "set", "none")), rng.choice(("t3.nano", "t3.small")),
                    rng.choice((1, 2, 0.5)), t))
    return out


def test_batch_apply_equals_the_per_resource_reference(cloud):
    cloud.psql("SET search_path = accounting; " + reference_function())
    rng = random.Random(20261206)
    resources = {i: events(rng, rng.randint(1, 12)) for i in range(60)}
    pending = [(i, ev) for i, evs in resources.items() for ev in evs]
    rng.shuffle(pending)   # out of each resource's order: gaps wait in the inbox
    base = "timestamptz '2031-01-01 09:00:00+00'"   # in the future: meter_open leaves them alone
    while pending:
        k = rng.randint(5, 40)
        batch, pending = pending[:k], pending[k:]
        rows = []
        for side in ("a", "b"):
            for i, (seq, action, item, rate, minutes) in batch:
                rows.append("('instance', '%s-%d', %d, '%s', '999999999998', '', 'instance.running', '%s', 'second', "
                            "%s, 'private', '', %s + interval '%d minutes')"
                            % (side, i, seq, action, item, rate, base, minutes))
        ids_a = "ARRAY[%s]" % ",".join("'instance a-%d'" % i for i, _ in batch)
        ref = ";".join("SELECT accounting.apply_meter_ref('instance', 'b-%d')" % i for i in sorted({i for i, _ in batch}))
        cloud.psql("SET search_path = accounting; BEGIN; INSERT INTO accounting.inbox (resource_type, resource_id, resource_seq, action, account_id, "
                   "user_id, usage_type, item, unit, rate, cloud, zone, at) VALUES %s; "
                   "SELECT accounting.apply_meters(%s); %s; COMMIT" % (",".join(rows), ids_a, ref))

    def side(s):
        recs = cloud.psql("SELECT substr(resource_id, 3), start_at, end_at, quantity, item FROM accounting.usage_records "
                          "WHERE resource_id LIKE '%s-%%' ORDER BY 1, 2" % s)
        meters = cloud.psql("SELECT substr(resource_id, 3), applied_seq, open_since, item, rate FROM accounting.meters "
                            "WHERE resource_id LIKE '%s-%%' ORDER BY 1" % s)
        inbox = cloud.psql("SELECT substr(resource_id, 3), resource_seq FROM accounting.inbox "
                           "WHERE resource_id LIKE '%s-%%' ORDER BY 1, 2" % s)
        return recs, meters, inbox

    a, b = side("a"), side("b")
    assert a[0].count("\n") > 50, a[0]   # records were made
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert a[2] == b[2] == ""   # every gap was filled in the end
