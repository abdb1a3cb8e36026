"""No ghost operations (docs/bus.md): a create whose answer was lost, retried by the same
caller with the same parameters, gets the original answer (CreateKeyPair's private key
included) instead of a duplicate error; another caller still gets the duplicate error. A
gateway killed with kill -9 in the middle of 8 threads of CreateKeyPair loses no key: every
client, retrying, gets its key pair's own private key; the same with identity or the broker
killed, and for CreateUser. A bus timeout is answered and logged
with the same code."""
import concurrent.futures
import json
import os
import signal
import threading
import time
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import new_tenant


def ec2(cloud, key, secret, attempts=1):
    import boto3
    return boto3.client("ec2", endpoint_url=cloud.env["VIRGA_EC2_URL"], region_name=cloud.env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=5,
                                      read_timeout=30))


def iam(cloud, key, secret, attempts=1):
    import boto3
    return boto3.client("iam", endpoint_url=cloud.env["VIRGA_EC2_URL"], region_name=cloud.env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=5,
                                      read_timeout=30))


def test_create_key_pair_retried_gets_the_original_private_key(cloud):
    acct, key, secret = new_tenant(cloud, "ghost-" + uuid.uuid4().hex[:6])
    c = ec2(cloud, key, secret)
    first = c.create_key_pair(KeyName="k1")
    again = c.create_key_pair(KeyName="k1")   # the same request: the answer was "lost"
    assert again["KeyPairId"] == first["KeyPairId"]
    assert again["KeyMaterial"] == first["KeyMaterial"] and "PRIVATE KEY" in first["KeyMaterial"]
    pairs = c.describe_key_pairs()["KeyPairs"]
    assert [p["KeyPairId"] for p in pairs] == [first["KeyPairId"]]
    # other parameters are another request: the name is taken
    try:
        c.create_key_pair(KeyName="k1", KeyType="ed25519")
        raise AssertionError("a different request with the same name was accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidKeyPair.Duplicate"
    # another user of the account is another caller: no private key for them
    i = iam(cloud, key, secret)
    i.create_user(UserName="other")
    i.put_user_policy(UserName="other", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    k2 = i.create_access_key(UserName="other")["AccessKey"]
    try:
        ec2(cloud, k2["AccessKeyId"], k2["SecretAccessKey"]).create_key_pair(KeyName="k1")
        raise AssertionError("another user got the key pair")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidKeyPair.Duplicate"
    # a deleted key pair is not brought back by a late retry
    c.delete_key_pair(KeyName="k1")
    fresh = c.create_key_pair(KeyName="k1")
    assert fresh["KeyPairId"] != first["KeyPairId"]


def test_create_user_retried_gets_the_original_user(cloud):
    acct, key, secret = new_tenant(cloud, "ghostu-" + uuid.uuid4().hex[:6])
    i = iam(cloud, key, secret)
    first = i.create_user(UserName="alice", Path="/team/")["User"]
    again = i.create_user(UserName="alice", Path="/team/")["User"]
    assert again["UserId"] == first["UserId"] and again["Arn"] == first["Arn"]
    try:
        i.create_user(UserName="alice", Path="/other/")
        raise AssertionError("a different CreateUser with the same name was accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "EntityAlreadyExists"


def wait_dead(pid):
    for _ in range(100):
        if not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z":
            return
        time.sleep(0.1)


@pytest.mark.parametrize("victim", ["gateway", "identity", "kafka"])
def test_kill_during_create_storm_loses_nothing(cloud, victim):
    """kill -9 of the gateway, of identity or of the broker in the middle of 8 threads of
    CreateKeyPair and CreateUser, then devcloud up: every client, retrying as the SDK does,
    gets its own object's answer (the key pair's own private key, the user's own id), never
    a duplicate error, and nothing is created twice."""
    acct, key, secret = new_tenant(cloud, "storm-" + uuid.uuid4().hex[:6])
    keys, users, errors = {}, {}, []

    # clients are made here: boto3's default session is not safe to use from several threads
    clients = [(ec2(cloud, key, secret, attempts=12), iam(cloud, key, secret, attempts=12)) for _ in range(8)]

    def worker(t):
        c, i = clients[t]
        for n in range(4):
            kname, uname = "t%d-k%d" % (t, n), "t%d-u%d" % (t, n)
            try:
                keys[kname] = c.create_key_pair(KeyName=kname)
                users[uname] = i.create_user(UserName=uname)["User"]
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                errors.append("%s/%s: %r" % (kname, uname, e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    pid = cloud.pid(victim)
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    time.sleep(1)
    r = cloud.up()
    assert r.returncode == 0, r.stderr + cloud.logs_tail()
    assert cloud.pid(victim) != pid
    for t in threads:
        t.join(400)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert len(keys) == 32 and len(users) == 32
    stored = {p["KeyName"]: p for p in ec2(cloud, key, secret).describe_key_pairs()["KeyPairs"]}
    assert sorted(stored) == sorted(keys)
    for name, got in keys.items():
        assert got["KeyPairId"] == stored[name]["KeyPairId"], name   # the answer is the stored pair's own
        assert got["KeyFingerprint"] == stored[name]["KeyFingerprint"], name
        assert "PRIVATE KEY" in got["KeyMaterial"], name
    listed = {u["UserName"]: u for u in iam(cloud, key, secret).list_users()["Users"] if u["UserName"] != "admin"}
    assert sorted(listed) == sorted(users)
    for name, got in users.items():
        assert got["UserId"] == listed[name]["UserId"], name


def client_error_of(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e
    raise AssertionError("%s answered while compute was stopped" % fn.__name__)


def test_bus_timeout_is_answered_and_logged_with_one_code(cloud):
    acct, key, secret = new_tenant(cloud, "slow-" + uuid.uuid4().hex[:6])
    c = ec2(cloud, key, secret)
    changer = ec2(cloud, key, secret)
    pid = cloud.pid("compute")
    os.kill(pid, signal.SIGSTOP)   # compute takes the requests and never answers in time
    try:
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            read = pool.submit(client_error_of, c.describe_key_pairs)
            change = pool.submit(client_error_of, changer.delete_key_pair, KeyName="nothing")
            read, change = read.result(), change.result()
        for err in (read, change):
            assert err.response["Error"]["Code"] == "Unavailable"
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        rid = read.response["ResponseMetadata"]["RequestId"]
        # a read is safe to repeat; a change may have been made: the message says which
        assert "try again" in read.response["Error"]["Message"]
        assert "may or may not have been made" in change.response["Error"]["Message"]
        assert time.time() - t0 >= 9
    finally:
        os.kill(pid, signal.SIGCONT)
    with open(os.path.join(cloud.dir, "log", "gateway.log")) as f:
        lines = [l for l in f if rid in l and "DescribeKeyPairs" in l]
    assert lines and "-> 503 Unavailable" in lines[-1], lines
    cloud.wait_healthy("compute", 60)


def test_status_reports_healthy_under_create_key_pair_load(cloud):
    """sys.health has its own lane: 8 threads of CreateKeyPair (RSA generation keeps compute's
    workers busy) do not make virgadm status report compute down."""
    acct, key, secret = new_tenant(cloud, "busy-" + uuid.uuid4().hex[:6])
    stop = threading.Event()

    clients = [ec2(cloud, key, secret) for _ in range(8)]   # made here: see above
    created = []

    def load(t):
        c = clients[t]
        n = 0
        while not stop.is_set() and n < 200:
            try:
                c.create_key_pair(KeyName="load-%d-%d" % (t, n))
                created.append(n)
            except ClientError:
                pass   # a 503 when the machine is slower still: the load goes on
            n += 1

    threads = [threading.Thread(target=load, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        before = len(created)
        for _ in range(6):
            r = cloud.virgadm("status", "--json")
            rows = {row["target"]: row for row in json.loads(r.stdout)}
            assert rows["compute"]["status"] == "healthy", rows["compute"]
            assert r.returncode == 0, r.stdout + r.stderr
        assert len(created) > before, "compute was not under load while status was asked"
    finally:
        stop.set()
        for t in threads:
            t.join(120)
