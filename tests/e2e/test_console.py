"""The web console (issue 15, docs/console.md) in headless Chromium: Debian's
/usr/bin/chromium driven by playwright-core (tests/js/console_e2e.mjs, pinned in
tests/js/package-lock.json, installed by tests/sdk-setup.sh). What a person sees:

- every page renders without an error, at desktop and phone width, with no serious or
  critical axe-core violation; a screenshot of each is kept (build/console-screenshots);
- launching a real container instance from the wizard: the list shows it reach
  `running`, its console output (refreshing by itself) shows the guest's ready line, Stop
  brings it to `stopped` and Terminate to `terminated` - and boto3 agrees;
- the security group rules editor adds a rule that boto3 then sees, and removes it;
- the object store browser uploads a file that boto3 reads back byte for byte, downloads
  it, and deletes it; a 70 MiB file goes up in parts (S3 multipart) and comes back with
  the same SHA-256; an upload in parts cancelled midway leaves no object and no parts;
- a user whose policy allows only Describe* sees UnauthorizedOperation and nothing is made;
- a form on another origin posting at the console API, and a script without the CSRF
  token, are refused and nothing is made;
- a revoked session and an expired one send the console back to its login page;
- failed logins are limited per user and per address;
- the operator's pages: every host; every account, one account's quota changed in the
  editor and then enforced (the tenant's launch past it refused with the EC2 code, in
  the console); every service and agent up, then one stopped (by its pid) shown down;
  a tenant opening those pages gets the gateway's refusal (UnauthorizedOperation).

Waits are bounded; nothing asserts a duration (the timing is in tests/bench/console.sh)."""
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
import hashlib
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from harness import BIN, ROOT, Cloud, boto3_client, new_tenant, s3_client

SHOTS = os.path.join(ROOT, "build", "console-screenshots")
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "console-e2e-password"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="needs Debian's chromium (deploy/install-deps.sh installs it)")


@pytest.fixture(scope="module")
def node():
    r = subprocess.run(["sh", os.path.join(ROOT, "tests", "sdk-setup.sh")], capture_output=True, text=True,
                       timeout=1200)
    if r.returncode != 0:
        pytest.fail("tests/sdk-setup.sh failed (playwright-core and axe-core are part of the suite):\n" + r.stderr[-4000:])
    return dict(line.split("=", 1) for line in r.stdout.split())["node"]


REAL = os.geteuid() == 0   # the container driver needs root (namespaces, cgroups)


@pytest.fixture(scope="module")
def cloud():
    env = {"VIRGA_AGENT_DRIVERS": "container" if REAL else "sim", "VIRGA_AGENT_RECONCILE_INTERVAL_S": "2"}
    c = Cloud.start(default_images=True, env=env)
    try:
        yield c
    finally:
        c.stop_later()


def set_password(cloud, account, user, password=PASSWORD):
    r = subprocess.run([os.path.join(BIN, "virgadm"), "-c", cloud.config, "user", "password", account, user],
                       input=password + "\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


class Tenant:
    def __init__(self, cloud):
        self.name = "console-" + uuid.uuid4().hex[:8]
        self.account, self.key, self.secret = new_tenant(cloud, self.name)
        set_password(cloud, self.account, "admin")
        self.ec2 = boto3_client(cloud, "ec2", self.key, self.secret)
        self.iam = boto3_client(cloud, "iam", self.key, self.secret)
        self.s3 = s3_client(cloud, self.key, self.secret)


@pytest.fixture(scope="module")
def tenant(cloud):
    return Tenant(cloud)


SCENARIOS = os.path.join(ROOT, "tests", "js", "console_e2e.mjs")


class Browser:
    """console_e2e.mjs --serve: one Chromium for the module's scenarios (a launch per test
    cost seconds of CPU each), a fresh browser context for each, so that the tests stay
    independent. A scenario cut short (past its time, a failing check between its halves)
    ends the process: the next scenario starts another."""

    def __init__(self, node):
        self.node = node
        self.p = None
        self.stderr = None

    def start(self):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([self.node, SCENARIOS, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.stderr, text=True, env={**os.environ, "NODE_NO_WARNINGS": "1"})
        self.lines = queue.Queue()   # its stdout, line by line; None at the end
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines), daemon=True).start()

    @staticmethod
    def _read(stdout, lines):
        for line in stdout:
            lines.put(line)
        lines.put(None)

    def stderr_tail(self, n=3000):
        self.stderr.seek(0)
        return self.stderr.read()[-n:]

    def stop(self):
        if self.p is None:
            return
        try:
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        self.p = None

    def run(self, cfg, on_line, timeout):
        """Run one scenario; on_line(obj) sees each JSON line it prints before its end (its
        pauses). Returns {"done": exit code, "out": observations}."""
        if self.p is None or self.p.poll() is not None:
            self.start()
        self.p.stdin.write(json.dumps(cfg) + "\n")
        self.p.stdin.flush()
        deadline = time.time() + timeout
        finished = False
        try:
            while True:
                try:
                    line = self.lines.get(timeout=max(0.0, deadline - time.time()))
                except queue.Empty:
                    raise AssertionError("scenario %s ran past %ss" % (cfg["scenario"], timeout))
                assert line is not None, "node ended: " + self.stderr_tail()
                line = line.strip()
                if not line.startswith("{"):
                    continue
                obj = json.loads(line)
                if "done" in obj:
                    finished = True
                    return obj
                if on_line and not obj.get("error") and ("paused" in obj or "logged_in" in obj):
                    on_line(obj)
        finally:
            if not finished:
                self.p.kill()
                self.p.wait()
                self.p = None


@pytest.fixture(scope="module")
def browser(node):
    b = Browser(node)
    try:
        yield b
    finally:
        b.stop()


def run(browser, cloud, scenario, tenant=None, on_line=None, timeout=600, **cfg):
    """One scenario of console_e2e.mjs; on_line(obj) sees each JSON line it prints before
    the last (its pauses). Returns the last line's observations."""
    c = {"scenario": scenario, "url": cloud.env["VIRGA_EC2_URL"], "artefacts": SHOTS, "chromium": CHROMIUM}
    if tenant:
        c.update(account=tenant.name, user="admin", password=PASSWORD)
    c.update(cfg)
    done = browser.run(c, on_line, timeout)
    out = done["out"]
    assert not out.get("error"), "%s failed in the browser: %s\n%s" % (scenario, out["error"],
                                                                        browser.stderr_tail(2000))
    assert done["done"] == 0, browser.stderr_tail(2000)
    return out


def go(pause_file):
    with open(pause_file, "w") as f:
        f.write("go")


def test_every_page_renders_accessibly_at_desktop_and_phone_width(browser, cloud, tenant):
    out = run(browser, cloud, "pages", tenant)
    assert out["pages"] == "ok"
    for page, violations in out["axe"].items():
        assert violations == [], "axe-core, page %s: %s" % (page, violations)
    assert {"login", "instances", "instances-phone", "storage", "security-groups"} <= set(out["axe"])
    for name in ("login", "instances", "keypairs", "security-groups", "images", "network", "storage", "usage",
                 "instances-phone"):
        assert os.path.getsize(os.path.join(SHOTS, name + ".png")) > 1000


@pytest.fixture(scope="module")
def images(cloud):
    return cloud.default_images()


def test_launch_watch_running_console_stop_terminate(browser, cloud, tenant, images):
    # the container's init prints its ready line first, before it asks the metadata
    # service for anything (whose answer, under load, may come after init gave up on it)
    out = run(browser, cloud, "instance", tenant, image=images["virga-busybox-rootfs"],
              user_data="#!/bin/sh\necho console-e2e\n",
              console_needle="VIRGA-CONTAINER-READY" if REAL else "", timeout=900)
    iid = out["instance_id"]
    assert out["stopped"] and out["terminated"]
    if REAL:
        assert "VIRGA-CONTAINER-READY" in out["console_tail"]
    # the cloud agrees with what the list showed
    (r,) = tenant.ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    assert r["Instances"][0]["State"]["Name"] == "terminated"
    assert {"Key": "Name", "Value": out["name"]} in r["Instances"][0]["Tags"]


def test_security_group_rule_added_and_removed_in_the_editor(browser, cloud, tenant):
    g = tenant.ec2.create_security_group(GroupName="console-" + uuid.uuid4().hex[:6], Description="rules editor")
    gid = g["GroupId"]
    pause = tempfile.mktemp(prefix="console-pause-")
    seen = {}

    def check(_):
        (grp,) = tenant.ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
        seen["rules"] = grp["IpPermissions"]
        go(pause)

    try:
        out = run(browser, cloud, "sg_rule", tenant, on_line=check, group_id=gid, pause_file=pause)
    finally:
        if os.path.exists(pause):
            os.unlink(pause)
    assert out["removed"]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]])
            for p in seen["rules"]] == [("tcp", 8080, 8081, ["10.9.0.0/16"])]
    (grp,) = tenant.ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert grp["IpPermissions"] == []


def test_object_upload_download_delete(browser, cloud, tenant):
    bucket = "console-" + uuid.uuid4().hex[:8]
    tenant.s3.create_bucket(Bucket=bucket)
    content = os.urandom(300 * 1024)
    pause = tempfile.mktemp(prefix="console-pause-")
    seen = {}

    def check(_):
        seen["body"] = tenant.s3.get_object(Bucket=bucket, Key="upload test.bin")["Body"].read()
        go(pause)

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "upload test.bin")
        with open(path, "wb") as f:
            f.write(content)
        try:
            out = run(browser, cloud, "storage", tenant, on_line=check, bucket=bucket, key="upload test.bin",
                      file=path, pause_file=pause)
        finally:
            if os.path.exists(pause):
                os.unlink(pause)
    assert seen["body"] == content
    assert (out["downloaded_bytes"], out["downloaded_sha256"]) == (len(content), hashlib.sha256(content).hexdigest())
    assert out["deleted"]
    assert tenant.s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_upload_over_64_mib_goes_in_parts_and_comes_back_the_same(browser, cloud, tenant):
    """Above the relay's 64 MiB per request: the browser uploads in parts (S3 multipart)."""
    bucket = "console-big-" + uuid.uuid4().hex[:8]
    tenant.s3.create_bucket(Bucket=bucket)
    digest = hashlib.sha256()
    pause = tempfile.mktemp(prefix="console-pause-")
    seen = {}

    def check(_):
        seen["head"] = tenant.s3.head_object(Bucket=bucket, Key="big.bin")
        seen["uploads"] = tenant.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        go(pause)

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.bin")
        with open(path, "wb") as f:
            for _ in range(70):
                chunk = os.urandom(1 << 20)
                digest.update(chunk)
                f.write(chunk)
        try:
            out = run(browser, cloud, "storage", tenant, on_line=check, bucket=bucket, key="big.bin", file=path,
                      pause_file=pause, upload_s=600)
        finally:
            if os.path.exists(pause):
                os.unlink(pause)
    size = 70 << 20
    assert seen["head"]["ContentLength"] == size
    assert seen["head"]["ETag"].strip('"').endswith("-9")   # nine parts of 8 MiB
    assert seen["uploads"] == []
    assert (out["downloaded_bytes"], out["downloaded_sha256"]) == (size, digest.hexdigest())
    assert out["deleted"]


def test_upload_in_parts_cancelled_leaves_nothing(browser, cloud, tenant):
    bucket = "console-cancel-" + uuid.uuid4().hex[:8]
    tenant.s3.create_bucket(Bucket=bucket)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "cancelled.bin")
        with open(path, "wb") as f:
            for _ in range(70):
                f.write(os.urandom(1 << 20))
        out = run(browser, cloud, "upload_cancel", tenant, bucket=bucket, key="cancelled.bin", file=path)
    assert out["cancelled"]
    assert tenant.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert tenant.s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


@pytest.fixture(scope="module")
def viewer(cloud, tenant):
    """A user of the tenant whose only policy allows ec2:Describe*."""
    tenant.iam.create_user(UserName="viewer")
    tenant.iam.put_user_policy(UserName="viewer", PolicyName="read-only", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}))
    set_password(cloud, tenant.account, "viewer")
    return "viewer"


def key_names(tenant):
    return {k["KeyName"] for k in tenant.ec2.describe_key_pairs()["KeyPairs"]}


def test_user_without_permission_sees_the_refusal_and_nothing_changes(browser, cloud, tenant, viewer):
    out = run(browser, cloud, "refused", account=tenant.account, user=viewer, password=PASSWORD, key_name="viewer-key")
    assert out["code"] == "UnauthorizedOperation"
    assert "not authorized" in out["text"]
    assert "viewer-key" not in key_names(tenant)


def test_forged_cross_site_post_and_tokenless_script_are_refused(browser, cloud, tenant):
    out = run(browser, cloud, "csrf", tenant, key_name="forged-key")
    assert "InvalidOrigin" in out["forged_body"]
    assert out["no_token"]["status"] == 403 and "InvalidCsrfToken" in out["no_token"]["body"]
    names = key_names(tenant)
    assert "forged-key" not in names and "no-token-key" not in names


def test_revoked_session_goes_back_to_login(browser, cloud, tenant):
    def revoke(_):
        r = cloud.virgadm("session", "revoke", tenant.account, "admin")
        assert r.returncode == 0 and json.loads(r.stdout)["revoked"] >= 1, r.stdout + r.stderr

    out = run(browser, cloud, "session_end", tenant, on_line=revoke, tag="revoked", wait_s=60)
    assert out["back_at_login"] and out["session_status"] == 401


@pytest.fixture(scope="module")
def operator(cloud):
    """The operator account's id; its administrator logs in with PASSWORD."""
    accounts = json.loads(cloud.virgadm("account", "list").stdout)["accounts"]
    (op,) = [a for a in accounts if a["is_operator"]]
    set_password(cloud, op["account_id"], "admin")
    return op["account_id"]


def test_operator_sees_every_host_and_a_tenant_none(browser, cloud, tenant, operator):
    out = run(browser, cloud, "operator", account=operator, user="admin", password=PASSWORD)
    assert out["axe"]["operator"] == []
    operator_ec2 = boto3_client(cloud, "ec2")   # the operator's administrator (devcloud's key)
    hosts = operator_ec2.describe_hosts()["Hosts"]
    assert hosts and [row[0] for row in out["hosts"]] == [h["HostId"] for h in hosts]
    assert all(row[1] == "healthy" for row in out["hosts"])
    # the same action for a tenant: EC2's "your Dedicated Hosts", of which it has none
    assert tenant.ec2.describe_hosts()["Hosts"] == []


def test_operator_changes_a_quota_in_the_console_and_a_launch_past_it_is_refused(browser, cloud, operator, images):
    t = Tenant(cloud)   # an account of its own: its quota is this test's
    out = run(browser, cloud, "operator_quota", account=operator, user="admin", password=PASSWORD,
              tenant_account=t.account, quota_resource="instances", quota_label="Instances", quota_value=0)
    listed = {row[0]: row[1] for row in out["accounts"]}
    every = json.loads(cloud.virgadm("account", "list").stdout)["accounts"]
    assert listed == {a["account_id"]: a["name"] for a in every}
    assert out["quota_before"] == "20" and out["quota_after"] == "0"
    assert out["axe"] == {"accounts": [], "accounts-phone": []}
    # identity keeps the new limit (what virgadm shows too) ...
    assert json.loads(cloud.virgadm("quota", "show", t.account).stdout)["quotas"]["instances"] == 0
    # ... and compute enforces it: the tenant's launch in the console is refused, nothing runs
    refused = run(browser, cloud, "launch_refused", t, image=images["virga-busybox-rootfs"])
    assert refused["code"] == "InstanceLimitExceeded", refused
    assert "instance limit of 0" in refused["text"]
    assert t.ec2.describe_instances()["Reservations"] == []


def test_tenant_is_refused_the_operator_pages(browser, cloud, tenant):
    out = run(browser, cloud, "operator_refused", tenant)
    assert out["operator_links"] == 0   # not offered; and opened by address, refused by the gateway
    for page, action in (("accounts", "DescribeAccounts"), ("services", "DescribeServiceHealth")):
        assert out[page]["code"] == "UnauthorizedOperation", out
        assert "for the operator account only" in out[page]["text"]
        assert out[page]["page_text"].startswith("UnauthorizedOperation: ")
        assert action in out[page]["text"]


def test_service_health_lists_every_service_up_then_a_stopped_one_down(browser, cloud, operator):
    services = "identity,compute,image,network,objectstore,gateway,accounting".split(",")
    agents = [h["HostId"] for h in boto3_client(cloud, "ec2").describe_hosts()["Hosts"]]
    pause = tempfile.mktemp(prefix="console-pause-")
    victim = "accounting"   # nothing else in this module needs it any more

    def stop(_):
        pid = cloud.pid(victim)
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):   # bounded: 30 s
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        go(pause)

    try:
        out = run(browser, cloud, "services", account=operator, user="admin", password=PASSWORD, pause_file=pause,
                  on_line=stop, down_service=victim)
    finally:
        if os.path.exists(pause):
            os.unlink(pause)
        cloud.up()
        cloud.wait_healthy(victim)
    before = {row[0]: row for row in out["before"]}
    assert set(before) == set(services) | set(agents)
    assert all(row[2] == "up" for row in before.values()), out["before"]
    assert {before[a][1] for a in agents} == {"agent"} and before["identity"][6] == "ok"
    after = {row[0]: row for row in out["after"]}
    assert after[victim][2] == "down" and after[victim][9].startswith("RequestTimeout"), after[victim]
    assert after[victim][8] != "never"   # when it last answered
    assert all(row[2] == "up" for name, row in after.items() if name != victim)
    assert out["axe"] == {"services": [], "services-phone": []}


# ---- a cloud of its own: short sessions, and login limits that would block the address ----

@pytest.fixture(scope="module")
def short_cloud():
    # no object store use here: a directory, not a Ceph cluster to start
    c = Cloud.start(extra_args=("--objectstore", "dir"),
                    env={"VIRGA_CONSOLE_SESSION_TTL_S": "6", "VIRGA_AGENT_DRIVERS": "sim"})
    try:
        yield c
    finally:
        c.stop_later()


def test_expired_session_goes_back_to_login(browser, short_cloud):
    t = Tenant(short_cloud)
    out = run(browser, short_cloud, "session_end", t, tag="expired", wait_s=60)
    assert out["back_at_login"] and out["session_status"] == 401


def login(cloud, account, user, password):
    req = urllib.request.Request(cloud.env["VIRGA_EC2_URL"] + "/console/api/login", method="POST",
                                 data=urllib.parse.urlencode({"account": account, "user": user,
                                                              "password": password}).encode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), r.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), ""


def test_login_cookie_and_failed_logins_limited_per_user_then_per_address(short_cloud):
    t = Tenant(short_cloud)
    status, who, cookie = login(short_cloud, t.account, "admin", PASSWORD)   # by account id
    assert status == 200 and who["account_name"] == t.name and who["csrf"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie
    assert "Secure" not in cookie   # plain HTTP here; TLS in front (X-Forwarded-Proto) adds it
    # five wrong passwords: then even the right one is refused for a while
    for _ in range(5):
        status, err, _ = login(short_cloud, t.name, "admin", "wrong-password")
        assert (status, err["Code"]) == (401, "AuthFailure")
    status, err, _ = login(short_cloud, t.name, "admin", PASSWORD)
    assert (status, err["Code"]) == (429, "Throttling") and "this user" in err["Message"]
    # the address: a burst of 10 failures (5 above, then made-up users), then it waits
    # whatever user it names (a token comes back every 10 s: bounded tries, no timing)
    codes = []
    while len(codes) < 30 and (not codes or codes[-1] != "Throttling"):
        codes.append(login(short_cloud, t.name, "nobody-%d" % len(codes), "x")[1]["Code"])
    assert codes[:5] == ["AuthFailure"] * 5 and codes[-1] == "Throttling", codes
    status, err, _ = login(short_cloud, t.account, "admin", PASSWORD)
    assert status == 429 and "your address" in err["Message"]
