"""Helpers of the usage and billing suites (tests/e2e/test_usage.py, test_billing.py):
drive an instance's lifecycle, stop and start the accounting service, move usage events
to a fixed past timeline (the testable clock: events carry their database time), and
read records back from accounting."""
import time

WAIT_S = 60


def wait_state(ec2, iid, state):
    deadline = time.time() + WAIT_S
    while True:
        got = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
        if got == state:
            return
        assert time.time() < deadline, "%s is %s, not %s" % (iid, got, state)
        time.sleep(0.2)


def stop_service(cloud, name):
    """SIGTERM (a stop, not a crash) and wait for the process to end."""
    cloud.stop_service(name)


def start_service(cloud, name):
    cloud.start_service(name)


def stop_accounting(cloud):
    stop_service(cloud, "accounting")


def start_accounting(cloud):
    start_service(cloud, "accounting")


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


def caught_up(cloud, log="compute.instance_events"):
    """Wait until accounting's cursor has taken the whole of a log."""
    deadline = time.time() + WAIT_S
    while cloud.psql("SELECT (SELECT seq FROM accounting.cursors WHERE log = '%s') = "
                     "(SELECT coalesce(max(seq), 0) FROM %s)" % (log, log)) != "t":
        assert time.time() < deadline, "accounting did not catch up with %s" % log
        time.sleep(0.2)


def lifecycle(ec2, ami, steps, **run):
    """Launch one instance (run: more RunInstances parameters), then apply steps ('stop',
    'start', 'terminate'), each waited for; returns the instance id."""
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, **run)["Instances"][0][
        "InstanceId"]
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


def shift_public_address(cloud, iid, times):
    """Move the usage events of the public address the instance's launch gave it
    (allocated, associated, disassociated, released: the instance must be terminated;
    its release follows the port's deletion, waited for here) to the given UTC times;
    returns the address's allocation id."""
    eni = cloud.psql("SELECT eni_id FROM compute.instance_interfaces WHERE instance_id = '%s' AND device_index = 0"
                     % iid)
    alloc = cloud.psql("SELECT address_id FROM network.address_events WHERE eni_id = '%s' AND auto_assigned AND "
                       "event = 'associated'" % eni)
    assert alloc, "no public address was given to %s" % iid
    deadline = time.time() + WAIT_S
    while cloud.psql("SELECT count(*) FROM network.address_events WHERE address_id = '%s'" % alloc) != "4":
        assert time.time() < deadline, "the public address %s of %s was not released" % (alloc, iid)
        time.sleep(0.2)
    for seq, t in enumerate(times, 1):
        cloud.psql("UPDATE network.address_events SET at = '%s'::timestamp AT TIME ZONE 'UTC' "
                   "WHERE address_id = '%s' AND address_seq = %d" % (t, alloc, seq))
    return alloc
