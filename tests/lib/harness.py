"""Test harness: start and stop clouds with deploy/devcloud, run virgadm and the
real AWS clients against them."""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("VIRGA_BIN_DIR", os.path.join(ROOT, "build", "bin"))
DEVCLOUD = os.path.join(ROOT, "deploy", "devcloud")


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def ephemeral_low():
    """Where the kernel starts handing out ports to outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


PORT_LOCKS = "/tmp/virga-test-ports"
_reserved = {}   # port base -> the open lock file that reserves it for this process


def reserve(base):
    """Hold base for this process until release(base): tests run in parallel (pytest-xdist
    workers), and a base that is free when one worker picks it must not be picked by
    another before the first cloud binds its ports. The kernel drops the lock when the
    process dies, so a killed run reserves nothing."""
    import fcntl
    os.makedirs(PORT_LOCKS, exist_ok=True)
    f = open(os.path.join(PORT_LOCKS, "%d.lock" % base), "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return False
    _reserved[base] = f
    return True


def release(base):
    f = _reserved.pop(base, None)
    if f:
        f.close()


def pick_port_base():
    """A base N whose ports N..N+99 are all free (devcloud uses a few of them), below the
    ephemeral range: a port that is free when picked could otherwise be taken, before
    the service binds it, by any process's outgoing connection (libpq, librdkafka, curl).
    Reserved for this process (reserve) until release(N)."""
    top = min(ephemeral_low(), 60000) - 100
    for _ in range(200):
        base = random.randrange(10000, top, 100)
        if base in _reserved or not all(port_free(base + off) for off in (0, 1, 2, 3, 73, 74, 80, 81, 90)):
            continue
        if reserve(base):
            return base
    raise RuntimeError("no free port base")


_stopping = []       # the threads of Cloud.stop_later
_stop_errors = []    # what their stops raised (devcloud down over its time limit)


def wait_stopped():
    """Until every cloud that stop_later stops is down (its processes gone, its directory
    removed). Returns what those stops raised, as text: a failed stop must not pass
    unseen now that no test's teardown reports it."""
    while _stopping:
        _stopping.pop().join()
    errors = list(_stop_errors)
    del _stop_errors[:]
    return errors


# tests/run-all.sh builds the guest images beside pytest's start: it names a file that it
# writes when the build has ended (VIRGA_TEST_IMAGES_DONE). A cloud with default images that
# starts before then registers them itself after its `up` (Cloud.register_default_images),
# so the build and the first clouds' starts overlap. Unset (pytest run by hand), devcloud
# registers build/images as it finds them.
IMAGES_DONE = os.environ.get("VIRGA_TEST_IMAGES_DONE")
IMAGES_BUILD_S = 900


def images_built():
    return not IMAGES_DONE or os.path.exists(IMAGES_DONE)


def wait_images_built():
    deadline = time.time() + IMAGES_BUILD_S
    while not images_built():
        assert time.time() < deadline, "the guest images build did not end within %d s" % IMAGES_BUILD_S
        time.sleep(0.5)


class Cloud:
    def __init__(self, directory, base):
        self.dir = directory
        self.base = base
        self.env = {}
        self.up_output = ""
        self.start_env = {}   # the VIRGA_* settings every process of this cloud gets

    @classmethod
    def start(cls, extra_args=(), env=None, default_images=False, directory=None):
        """env: extra VIRGA_* settings for every process of this cloud. default_images:
        register build/images (deploy/images/build) as the public defaults, as make run does.
        directory: the cloud's --dir (default: a new directory under /tmp); it is removed
        by stop(). The output of devcloud up is kept in up_output."""
        d = directory or tempfile.mkdtemp(prefix="virga-test-")
        c = cls(d, pick_port_base())
        c.start_env = dict(env or {})
        # the images still being built (run-all.sh builds them beside pytest's start): the
        # cloud starts without them and registers them once they are there (below); a
        # cloud given other images (VIRGA_DEFAULT_IMAGES) is devcloud's to handle
        register_later = default_images and "VIRGA_DEFAULT_IMAGES" not in c.start_env and not images_built()
        args = [DEVCLOUD, "up", "--dir", d, "--port-base", str(c.base), "--throwaway", "--test-handlers",
                *(() if default_images and not register_later else ("--default-images", "none")), *extra_args]
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
        except subprocess.TimeoutExpired as t:
            # what devcloud started by then keeps running without it: stop it, as a failed up
            logs = c.logs_tail()
            c.stop()
            raise RuntimeError("devcloud up took over %d s:\n%s\n%s" % (t.timeout, t.output or "", logs))
        c.up_output = r.stdout + r.stderr
        if r.returncode != 0:
            logs = c.logs_tail()
            c.stop()
            raise RuntimeError("devcloud up failed:\n%s\n%s\n%s" % (r.stdout, r.stderr, logs))
        c.env = c.read_env()
        if register_later:
            c.register_default_images()
        if "VIRGA_AGENT_DRIVERS" in c.start_env:
            c.wait_hosts(1)
        return c

    def register_default_images(self):
        """What devcloud up does with the default images, once their build has ended: a
        failed build leaves the cloud without them, as devcloud does without a manifest."""
        wait_images_built()
        images = os.environ.get("VIRGA_DEFAULT_IMAGES") or os.path.join(ROOT, "build", "images")
        if not os.path.exists(os.path.join(images, "manifest.json")):
            return
        r = subprocess.run([os.path.join(ROOT, "deploy", "images", "register-defaults"), "--env",
                            os.path.join(self.dir, "env"), "--images", images], capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            logs = self.logs_tail()
            self.stop()
            raise RuntimeError("registering the default images failed:\n%s\n%s" % (r.stderr, logs))
        with open(os.path.join(self.dir, "default-images.json"), "w") as f:
            f.write(r.stdout)

    def default_images(self):
        """The public images devcloud registered (default_images=True): name -> image id."""
        with open(os.path.join(self.dir, "default-images.json")) as f:
            return json.load(f)

    def wait_hosts(self, n, seconds=60):
        """Until compute knows n hosts (DescribeHosts as the operator's administrator): a
        cloud whose tests launch instances starts them only once its agent has reported.
        Returns whether it came to pass; a test then fails on its own terms if not."""
        from botocore.exceptions import ClientError
        ec2 = boto3_client(self, "ec2")
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if len(ec2.describe_hosts()["Hosts"]) >= n:
                    return True
            except ClientError:
                pass
            time.sleep(0.3)
        return False

    def read_env(self):
        env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if line.startswith("export "):
                    k, _, v = line[len("export "):].strip().partition("=")
                    env[k] = v
        return env

    def up(self):
        """Start whatever is not running (devcloud up is idempotent), with the settings the
        cloud was started with."""
        return subprocess.run([DEVCLOUD, "up", "--dir", self.dir, "--throwaway", "--test-handlers",
                               "--default-images", "none"],
                              capture_output=True, text=True, timeout=300, env={**os.environ, **self.start_env})

    def stop(self, remove=True):
        subprocess.run([DEVCLOUD, "down", "--dir", self.dir], capture_output=True, text=True, timeout=120)
        if remove:
            release(self.base)   # a stopped cloud that is kept (remove=False) may be started again
        if remove and not os.environ.get("VIRGA_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def stop_later(self):
        """stop() in a thread of its own, for a fixture's teardown after which nothing looks
        at the cloud: `devcloud down` takes seconds (every service's SIGTERM, the broker's
        and Ceph's shutdowns), most of them waiting, and meanwhile the next module's tests
        and its cloud's start go on. The port base stays reserved and the directory kept
        until the cloud is down. wait_stopped() (tests/conftest.py, at the end of the
        session) waits for every such stop and returns what failed."""
        def stop():
            try:
                self.stop()
            except Exception as e:   # noqa: BLE001 (reported by wait_stopped)
                _stop_errors.append("stopping the cloud in %s: %r" % (self.dir, e))
        t = threading.Thread(target=stop, name="stop " + self.dir)
        t.start()
        _stopping.append(t)

    @property
    def config(self):
        return os.path.join(self.dir, "virga.yaml")

    def pid(self, name):
        with open(os.path.join(self.dir, "run", name + ".pid")) as f:
            return int(f.read().strip())

    def virgadm(self, *args, timeout=60):
        return subprocess.run([os.path.join(BIN, "virgadm"), "-c", self.config, *args],
                              capture_output=True, text=True, timeout=timeout)

    def psql(self, sql, user="postgres"):
        """Run SQL in the cloud's database as the given role; returns the output rows
        (unaligned, tuples only). Raises on an SQL error."""
        r = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-h", "127.0.0.1", "-p", str(self.base),
                            "-U", user, "-d", "virga", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql: %s" % r.stderr)
        return r.stdout.strip()

    def call(self, service, mtype, body=None, timeout_ms=5000):
        """One bus RPC through virgadm: (ok, reply-or-error-text)."""
        args = ["call", service, mtype]
        if body is not None:
            args.append(json.dumps(body))
        args += ["--timeout", str(timeout_ms)]
        r = self.virgadm(*args, timeout=timeout_ms / 1000 + 30)
        if r.returncode == 0:
            return True, json.loads(r.stdout)
        return False, r.stderr.strip()

    def stop_service(self, name):
        """SIGTERM one service (a stop, not a crash) and wait for its process to end."""
        pid = self.pid(name)
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 30
        while os.path.exists("/proc/%d" % pid):
            assert time.time() < deadline, "%s did not stop" % name
            time.sleep(0.1)

    def start_service(self, name):
        """Start what is not running, with start_env, and wait until name answers."""
        r = self.up()
        assert r.returncode == 0, r.stdout + r.stderr
        self.wait_healthy(name)

    def restart(self, name):
        """One service stopped and started again: it reads its settings (start_env) at start."""
        self.stop_service(name)
        self.start_service(name)

    def wait_healthy(self, service, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            ok, reply = self.call(service, "sys.health", timeout_ms=2000)
            if ok:
                return reply
            time.sleep(0.5)
        raise AssertionError("%s did not become healthy in %ds" % (service, seconds))

    def logs_tail(self, lines=30):
        out = []
        logdir = os.path.join(self.dir, "log")
        if os.path.isdir(logdir):
            for name in sorted(os.listdir(logdir)):
                with open(os.path.join(logdir, name), errors="replace") as f:
                    tail = f.readlines()[-lines:]
                out.append("== %s\n%s" % (name, "".join(tail)))
        return "\n".join(out)


def aws_env(cloud, access_key=None, secret_key=None):
    """Environment for /usr/bin/aws against this cloud, with no retries so errors
    surface at once, and no user-level AWS config leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": access_key or cloud.env["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": secret_key or cloud.env["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": cloud.env["AWS_DEFAULT_REGION"],
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
    })
    return env


def aws(cloud, *args, access_key=None, secret_key=None, timeout=60):
    """Run Debian's AWS CLI (/usr/bin/aws) against the cloud's EC2 endpoint.
    Returns (returncode, parsed JSON or None, stderr)."""
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_EC2_URL"], "--output", "json", *args],
                       capture_output=True, text=True, timeout=timeout, env=aws_env(cloud, access_key, secret_key))
    out = None
    if r.stdout.strip():
        try:
            out = json.loads(r.stdout)
        except ValueError:
            out = r.stdout
    return r.returncode, out, r.stderr


def boto3_client(cloud, service, access_key=None, secret_key=None):
    import boto3
    from botocore.config import Config
    return boto3.client(service, endpoint_url=cloud.env["VIRGA_EC2_URL"],
                        region_name=cloud.env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=access_key or cloud.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=secret_key or cloud.env["AWS_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def new_tenant(cloud, name):
    """A tenant account made by the operator with virgadm: (account_id, key, secret)."""
    r = cloud.virgadm("account", "create", name)
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)
    return t["account_id"], t["access_key_id"], t["secret_access_key"]


def eventually(fn, ok, seconds=60, every=0.1):
    """fn() until ok(its value) or seconds have passed: the last value (the caller asserts
    on it, saying what it waited for)."""
    deadline = time.time() + seconds
    while True:
        v = fn()
        if ok(v) or time.time() > deadline:
            return v
        time.sleep(every)


def ec2_tenant(cloud, prefix):
    """A new tenant named prefix-<random> with its boto3 EC2 client: (account_id, key,
    secret, client), the shape the EC2 suites' module fixtures use."""
    import uuid
    acct, k, s = new_tenant(cloud, "%s-%s" % (prefix, uuid.uuid4().hex[:8]))
    return acct, k, s, boto3_client(cloud, "ec2", k, s)


def ec2_tenant_running(cloud, prefix, itype="t3.nano"):
    """A new tenant (as ec2_tenant) with one running instance of the default busybox
    image: {account, key, secret, ec2, iid, ami}."""
    acct, k, s, ec2 = ec2_tenant(cloud, prefix)
    ami = cloud.default_images()["virga-busybox-rootfs"]
    iid = ec2.run_instances(ImageId=ami, InstanceType=itype, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
    return {"account": acct, "key": k, "secret": s, "ec2": ec2, "iid": iid, "ami": ami}


def canonical_id(account):
    """An account's S3 canonical user id, computed here independently of the service."""
    import hashlib
    return hashlib.sha256(("virga-canonical-user:" + account).encode()).hexdigest()


class Tenant:
    """A new tenant account with its S3 and IAM clients (and an e-mail address if given)."""

    def __init__(self, cloud, name, email=None):
        self.name = name
        self.account, self.key, self.secret = new_tenant(cloud, name)
        self.canonical = canonical_id(self.account)
        self.s3 = s3_client(cloud, self.key, self.secret)
        self.iam = boto3_client(cloud, "iam", self.key, self.secret)
        if email:
            r = cloud.virgadm("account", "email", self.account, email)
            assert r.returncode == 0, r.stderr
        self.email = email


def client_error(fn, *args, **kw):
    """The error code of a boto3 call that must fail (an AssertionError if it works)."""
    from botocore.exceptions import ClientError
    try:
        fn(*args, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("%s succeeded" % getattr(fn, "__name__", fn))


def call_status(fn, *args, **kw):
    """200 if the boto3 call works, else the HTTP status of its error."""
    from botocore.exceptions import ClientError
    try:
        fn(*args, **kw)
        return 200
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def s3_client(cloud, access_key=None, secret_key=None, **config):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=cloud.env["VIRGA_S3_URL"], region_name=cloud.env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=access_key or cloud.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=secret_key or cloud.env["AWS_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config))


def aws_s3(cloud, *args, timeout=300):
    """/usr/bin/aws s3 ... against the cloud's S3 endpoint: (returncode, stdout, stderr)."""
    quiet = ["--only-show-errors"] if args and args[0] in ("cp", "sync", "mv", "rm") else []
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", cloud.env["VIRGA_S3_URL"], "s3", *args, *quiet],
                       capture_output=True, text=True, timeout=timeout, env=aws_env(cloud))
    return r.returncode, r.stdout, r.stderr


def s3_signed_headers(cloud, method, target, headers=None, body=b"", access_key=None, secret_key=None,
                      payload_hash=None):
    """The headers of an S3 request to target ("/b/k?query") signed with botocore's S3
    SigV4 signer, for clients that write the request themselves. payload_hash: the
    x-amz-content-sha256 to sign (UNSIGNED-PAYLOAD, STREAMING-...); None: the body's
    SHA-256, as botocore signs over plain HTTP."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Signer(S3SigV4Auth):
        def _modify_request_before_signing(self, request):
            super()._modify_request_before_signing(request)
            if payload_hash:   # botocore put the body's hash: sign the one asked for
                del request.headers["X-Amz-Content-SHA256"]
                request.headers["X-Amz-Content-SHA256"] = payload_hash

    req = AWSRequest(method=method, url=cloud.env["VIRGA_S3_URL"] + target, data=body, headers=dict(headers or {}))
    Signer(Credentials(access_key or cloud.env["AWS_ACCESS_KEY_ID"], secret_key or cloud.env["AWS_SECRET_ACCESS_KEY"]),
           "s3", cloud.env["AWS_DEFAULT_REGION"]).add_auth(req)
    return dict(req.headers.items())


def s3_raw(cloud, method, target, headers=None, body=b"", sign=True, access_key=None, secret_key=None,
           payload_hash=None, timeout=30, utf8_headers=False):
    """One S3 request exactly as written: target is the path and query as they go on the
    wire ("/b/a%FFb?tagging"), signed with botocore's S3 SigV4 signer unless sign=False.
    utf8_headers: header values go out as raw UTF-8 bytes (as the JavaScript SDK sends
    non-ASCII metadata) instead of Latin-1.
    Returns (status, headers as a lowercase-keyed dict, body bytes)."""
    import http.client
    url = cloud.env["VIRGA_S3_URL"]
    hdrs = dict(headers or {})
    if sign:
        hdrs = s3_signed_headers(cloud, method, target, hdrs, body, access_key, secret_key, payload_hash)
    if utf8_headers:
        hdrs = {k: v.encode() if isinstance(v, str) else v for k, v in hdrs.items()}
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def remove_bucket(s3, bucket):
    """Delete a bucket with everything in it: unfinished uploads, every version and delete
    marker (one page of each: what a test leaves)."""
    for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    vs = s3.list_object_versions(Bucket=bucket)
    for v in vs.get("Versions", []) + vs.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket=bucket)


def error_code(body):
    """The <Code> of an S3/EC2/IAM XML error body, or None."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    return text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else None


def compute_call(cloud, mtype, body):
    """A network.* bus call as compute (with compute's own bus credential), as its launch
    task makes them: port_create/plug/unplug/delete, host_desired."""
    r = cloud.virgadm("--set", "bus.credential_file=" + os.path.join(cloud.dir, "secrets", "bus", "compute.cred"),
                      "call", "network", mtype, json.dumps(body))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def agent_call(cloud, mtype, body):
    """A call as the cloud's one host agent (its own bus credential), as the agent's sync
    loop and metadata server make them: (ok, reply-or-error-text)."""
    import re
    with open(cloud.config) as f:
        host = re.search(r"^agent:\n(?:\s+.*\n)*?\s+host_id:\s*(\S+)", f.read(), re.M).group(1)
    r = cloud.virgadm("--set", "bus.principal=agent-" + host, "call", "compute", mtype, json.dumps(body))
    return (True, json.loads(r.stdout)) if r.returncode == 0 else (False, r.stderr.strip())


def public_dns(cloud, ip):
    """The public DNS name compute gives a public address: ec2-<a-b-c-d>.<region>.<the
    config's public_dns_domain, by default compute.virga.internal> (docs/config.md)."""
    return "ec2-%s.%s.compute.virga.internal" % (ip.replace(".", "-"), cloud.env["AWS_DEFAULT_REGION"])


def bus_waiting(cloud, service):
    """The service's virga_bus_waiting_messages (requests set aside for an answer they
    asked for, no worker held), or None when it did not answer sys.metrics within 3 s."""
    ok, reply = cloud.call(service, "sys.metrics", timeout_ms=3000)
    if not ok:
        return None
    for line in reply["text"].splitlines():
        if line.startswith("virga_bus_waiting_messages{"):
            return int(float(line.split()[-1]))
    return None


def ec2_query(cloud, key, secret, params):
    """A SigV4-signed EC2 Query request of Virga's own actions (not in botocore's model:
    DescribeUsage, DescribeAccounts, ...): (HTTP status, body text)."""
    import urllib.error
    import urllib.request
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    url = cloud.env["VIRGA_EC2_URL"] + "/"
    body = "&".join("%s=%s" % kv for kv in {"Version": "2016-11-15", **params}.items())
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(key, secret), "ec2", cloud.env["AWS_DEFAULT_REGION"]).add_auth(req)
    r = urllib.request.Request(url, data=body.encode(), headers=dict(req.headers), method="POST")
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
