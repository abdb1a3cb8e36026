"""Bus principals on the real broker, one test per rule (docs/security.md): every process has
its own credential; the broker's ACLs and each handler row limit what it may do; a receiver
knows the sender from its signature and believes a tenant caller only from principals that
may assert one. The tests act as the cloud's host agent by pointing virgadm at the agent's
credential file (DIR/secrets/bus/agent-<host>.cred)."""
import json
import os
import signal
import subprocess
import time
import uuid

from harness import BIN


def host_of(cloud):
    with open(cloud.config) as f:
        for line in f:
            if line.strip().startswith("host_id:"):
                return line.split(":", 1)[1].strip()
    raise AssertionError("no agent.host_id in " + cloud.config)


def secrets(cloud, name):
    return os.path.join(cloud.dir, "secrets", "bus", name)


def call_as(cloud, cred, service, mtype, body=None, caller_account=None, timeout_ms=5000):
    """virgadm call with another credential file: (ok, reply or 'Code: message')."""
    args = [os.path.join(BIN, "virgadm"), "-c", cloud.config, "--set", "bus.credential_file=" + cred,
            "call", service, mtype]
    if body is not None:
        args.append(json.dumps(body))
    args += ["--timeout", str(timeout_ms)]
    if caller_account:
        args += ["--as", caller_account]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout_ms / 1000 + 30)
    if r.returncode == 0:
        return True, json.loads(r.stdout)
    return False, r.stderr.strip()


def agent_cred(cloud):
    return secrets(cloud, "agent-%s.cred" % host_of(cloud))


def operator_account(cloud):
    return json.load(open(os.path.join(cloud.dir, "admin.json")))["account_id"]


def test_every_principal_has_its_own_credential_file_0600(cloud):
    names = ["identity", "compute", "image", "network", "objectstore", "gateway", "accounting", "virgadm",
             "agent-" + host_of(cloud)]
    pubs = json.load(open(secrets(cloud, "principals.json")))["principals"]
    passwords = set()
    for n in names:
        path = secrets(cloud, n + ".cred")
        assert oct(os.stat(path).st_mode & 0o777) == "0o600", path
        cred = json.load(open(path))
        assert cred["principal"] == n
        passwords.add(cred["password"])
        assert n in pubs
    assert len(passwords) == len(names)
    # each service runs as its own principal
    ok, health = cloud.call("compute", "sys.health")
    assert ok and health["bus"]["principal"] == "compute"


def test_operator_gets_no_signing_key(cloud):
    # the bug this rule closes: any process on the bus could ask for anyone's signing key
    ok, err = cloud.call("identity", "identity.signing_key",
                         {"access_key_id": cloud.env["AWS_ACCESS_KEY_ID"], "date": "20260101",
                          "region": "us-east-1", "service": "ec2"})
    assert not ok
    assert err.startswith("AccessDenied:") and "virgadm" in err and "identity.signing_key" in err


def test_agent_cannot_call_identity_signing_key(cloud):
    t0 = time.time()
    ok, err = call_as(cloud, agent_cred(cloud), "identity", "identity.signing_key",
                      {"access_key_id": cloud.env["AWS_ACCESS_KEY_ID"], "date": "20260101", "region": "us-east-1",
                       "service": "ec2"}, timeout_ms=8000)
    assert not ok
    # the broker itself refuses the request: the caller hears so at once, not at its deadline
    assert err.startswith("AccessDenied:") and "agent-" in err, err
    assert time.time() - t0 < 30


def test_agent_cannot_send_what_its_row_does_not_name(cloud):
    # the broker lets an agent write to compute (its reports); compute's table refuses the rest
    ok, err = call_as(cloud, agent_cred(cloud), "compute", "compute.DescribeKeyPairs", {})
    assert not ok
    assert err.startswith("AccessDenied:") and "may not send compute.DescribeKeyPairs" in err, err


def test_agent_reports_only_as_its_own_host(cloud):
    host = host_of(cloud)
    ok, reply = call_as(cloud, agent_cred(cloud), "compute", "compute.host_report", {"inventory": {"probe": 1}})
    assert ok, reply
    assert reply["host_id"] == host and reply["reports"] >= 1
    ok, err = call_as(cloud, agent_cred(cloud), "compute", "compute.host_report",
                      {"host_id": "some-other-host", "inventory": {}})
    assert not ok
    assert err.startswith("AccessDenied:") and "some-other-host" in err, err
    assert cloud.psql("SELECT count(*) FROM compute.hosts WHERE host_id = 'some-other-host'") == "0"
    # the operator is no host either
    ok, err = cloud.call("compute", "compute.host_report", {"inventory": {}})
    assert not ok and err.startswith("AccessDenied:")


def test_agent_cannot_read_another_hosts_topic(cloud):
    # a second host on the broker: its topic exists and may be written by the operator
    other = "other-" + uuid.uuid4().hex[:6]
    r = subprocess.run([os.path.join(BIN, "virga-busctl"), "-c", cloud.config, "provision",
                        "--admin", secrets(cloud, "admin.cred"), "--agents", "%s,%s" % (host_of(cloud), other)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # an agent that holds this host's credential and claims to be the other host
    log = os.path.join(cloud.dir, "log", "impostor.log")
    with open(log, "w") as out:
        p = subprocess.Popen([os.path.join(BIN, "virga-agent"), "-c", cloud.config,
                              "--set", "agent.host_id=" + other,
                              "--set", "bus.principal=agent-" + host_of(cloud),
                              "--set", "agent.cache_dir=" + os.path.join(cloud.dir, "impostor-cache")],
                             stdout=out, stderr=subprocess.STDOUT)
    try:
        # nobody can read the other host's topic with this credential: the call finds no one
        ok, err = cloud.call("virga.host." + other, "sys.health", timeout_ms=6000)
        assert not ok and err.startswith("RequestTimeout:"), err
        text = open(log).read()
        assert "authoriz" in text.lower(), text[-2000:]
        # control: the real agent answers on its own topic
        ok, reply = cloud.call("virga.host." + host_of(cloud), "sys.health", timeout_ms=6000)
        assert ok and reply["bus"]["principal"] == "agent-" + host_of(cloud)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(30)


def test_caller_named_by_an_agent_is_refused(cloud):
    acct = operator_account(cloud)
    ok, err = call_as(cloud, agent_cred(cloud), "compute", "compute.host_report", {"inventory": {}},
                      caller_account=acct)
    assert not ok
    assert err.startswith("AccessDenied:") and "may not act for a tenant" in err, err


def test_wrong_password_never_reaches_a_handler(cloud, tmp_path):
    acct = operator_account(cloud)
    cred = json.load(open(secrets(cloud, "virgadm.cred")))
    cred["password"] = "not-the-password-" + uuid.uuid4().hex
    bad = tmp_path / "virgadm.cred"
    bad.write_text(json.dumps(cred))
    os.chmod(bad, 0o600)
    name = "never-" + uuid.uuid4().hex[:8]
    ok, err = call_as(cloud, str(bad), "compute", "compute.CreateKeyPair", {"KeyName": name}, caller_account=acct,
                      timeout_ms=4000)
    assert not ok and ("ServiceUnavailable" in err or "RequestTimeout" in err), err
    assert cloud.psql("SELECT count(*) FROM compute.key_pairs WHERE name = '%s'" % name) == "0"


def test_no_broker_login_never_reaches_a_handler(cloud):
    """virgadm's own credential and signing key, but no SASL login: the broker has no
    listener that lets a client in without one."""
    acct = operator_account(cloud)
    name = "nologin-" + uuid.uuid4().hex[:8]
    args = [os.path.join(BIN, "virgadm"), "-c", cloud.config, "--set", "bus.security_protocol=plaintext",
            "call", "compute", "compute.CreateKeyPair", json.dumps({"KeyName": name}), "--timeout", "4000",
            "--as", acct]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout
    assert "ServiceUnavailable" in r.stderr or "RequestTimeout" in r.stderr, r.stderr
    time.sleep(2)   # had it been let in, compute would have written the row by now
    assert cloud.psql("SELECT count(*) FROM compute.key_pairs WHERE name = '%s'" % name) == "0"


def test_wrong_signing_key_never_reaches_a_handler(cloud, tmp_path):
    acct = operator_account(cloud)
    # virgadm's broker login with the gateway's signing key: the broker lets it in, and
    # compute drops the message because the signature is not virgadm's
    cred = json.load(open(secrets(cloud, "virgadm.cred")))
    cred["signing_key"] = json.load(open(secrets(cloud, "gateway.cred")))["signing_key"]
    bad = tmp_path / "virgadm.cred"
    bad.write_text(json.dumps(cred))
    os.chmod(bad, 0o600)
    ok, before = cloud.call("compute", "sys.health")
    assert ok
    name = "forged-" + uuid.uuid4().hex[:8]
    ok, err = call_as(cloud, str(bad), "compute", "compute.CreateKeyPair", {"KeyName": name}, caller_account=acct,
                      timeout_ms=3000)
    assert not ok and err.startswith("RequestTimeout:"), err
    assert cloud.psql("SELECT count(*) FROM compute.key_pairs WHERE name = '%s'" % name) == "0"
    ok, after = cloud.call("compute", "sys.health")
    assert ok and after["bus"]["rejected"] > before["bus"]["rejected"]


def test_no_credential_file_is_a_clear_error(cloud, tmp_path):
    ok, err = call_as(cloud, str(tmp_path / "missing.cred"), "compute", "sys.health")
    assert not ok and "missing.cred" in err


def test_credential_readable_by_others_is_refused(cloud, tmp_path):
    open_cred = tmp_path / "virgadm.cred"
    open_cred.write_text(open(secrets(cloud, "virgadm.cred")).read())
    os.chmod(open_cred, 0o644)
    ok, err = call_as(cloud, str(open_cred), "compute", "sys.health")
    assert not ok and "chmod 600" in err


def test_gateway_may_ask_the_object_store_only_for_its_health(cloud):
    # the broker lets the gateway write to the object store's topic (DescribeServiceHealth
    # asks every service's sys.health); the object store's table refuses it the rest
    gw = secrets(cloud, "gateway.cred")
    ok, health = call_as(cloud, gw, "objectstore", "sys.health")
    assert ok and health["service"] == "objectstore", health
    ok, err = call_as(cloud, gw, "objectstore", "objectstore.grant", {"bucket": "x", "key": "y"})
    assert not ok
    assert err.startswith("AccessDenied:") and "may not send objectstore.grant" in err, err


def test_billing_principal_reads_virga_usage_and_nothing_else(cloud):
    """The billing system's principal (virgadm usage-feed uses it) has exactly: read and
    describe on virga.usage, and its consumer groups billing.*; no write anywhere."""
    r = subprocess.run([os.path.join(BIN, "virga-busctl"), "plan"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    mine = sorted((a["resource"], a["pattern"], a["name"], a["operation"])
                  for a in json.loads(r.stdout)["acls"] if a["principal"] == "billing")
    assert mine == [("group", "prefixed", "billing.", "read"), ("topic", "literal", "virga.usage", "describe"),
                    ("topic", "literal", "virga.usage", "read")], mine
    cred = json.load(open(secrets(cloud, "billing.cred")))
    assert cred["principal"] == "billing"
    assert oct(os.stat(secrets(cloud, "billing.cred")).st_mode & 0o777) == "0o600"


def send_as(cloud, principal, topic):
    """One message written to topic with principal's credential (tests/bench/bus_send.c):
    (acknowledged by the broker, stderr)."""
    r = subprocess.run([os.path.join(BIN, "..", "bench", "bus_send"), "-c", cloud.config,
                        "--set", "bus.principal=" + principal, topic], capture_output=True, text=True, timeout=60)
    return r.returncode == 0, r.stderr


def test_billing_principal_cannot_send(cloud):
    """On the broker: the billing credential writes nowhere, neither a service's request
    topic nor virga.usage itself, which it reads (control: virgadm may write to compute's)."""
    for topic in ("virga.rpc.accounting", "virga.usage", "virga.events"):
        ok, err = send_as(cloud, "billing", topic)
        assert not ok and "authorization failed" in err.lower(), (topic, err)
    ok, err = send_as(cloud, "virgadm", "virga.rpc.compute")
    assert ok, err


def test_billing_principal_cannot_read_another_topic(cloud):
    """On the broker: a process holding the billing credential that tries to read the
    host's request topic is refused (the agent's consumer, run as billing)."""
    log = os.path.join(cloud.dir, "log", "billing-impostor.log")
    with open(log, "w") as out:
        p = subprocess.Popen([os.path.join(BIN, "virga-agent"), "-c", cloud.config,
                              "--set", "agent.host_id=" + host_of(cloud), "--set", "bus.principal=billing",
                              "--set", "agent.cache_dir=" + os.path.join(cloud.dir, "billing-impostor-cache")],
                             stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while "authoriz" not in open(log).read().lower() and p.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        text = open(log).read()
        assert "authorization failed" in text.lower(), text[-2000:]
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait(30)
