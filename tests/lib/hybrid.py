"""What the hybrid tests and benchmark share (docs/hybrid.md): moto's EC2 server from
tests/.venv-moto, a fault-injecting proxy on loopback, a second Virga cloud playing a
public cloud, and a private cloud whose DIR/hybrid.yaml declares public regions, each run
by its own ec2 agent (devcloud starts them)."""
import http.server
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import boto3

from harness import ROOT, BIN, Cloud, boto3_client, new_tenant, pick_port_base, release

MOTO_AMI = "ami-03cf127a"   # one of moto's built-in images


def moto_server():
    r = subprocess.run(["sh", os.path.join(ROOT, "tests", "moto-setup.sh")], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, "tests/moto-setup.sh failed: %s" % r.stderr
    return r.stdout.strip().split("=", 1)[1]


def wait_port(port, seconds=60):
    import socket
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("port %d did not open" % port)


class Moto:
    """moto_server on a port of a reserved base; stop() ends it."""

    def __init__(self):
        self.base = pick_port_base()
        port = self.base + 50
        self.proc = subprocess.Popen([moto_server(), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.url = "http://127.0.0.1:%d" % port
        try:
            wait_port(port)
        except Exception:
            self.stop()
            raise

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        release(self.base)


def moto_client(url):
    return boto3.client("ec2", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIAMOTOTEST",
                        aws_secret_access_key="moto-secret")


class FaultProxy:
    """A loopback HTTP proxy in front of moto: mode pass forwards; refuse answers RunInstances
    with the EC2 error self.refuse (code, HTTP status; a retryable one by default: the
    remote's InsufficientInstanceCapacity); throttle answers every action 503
    RequestLimitExceeded; stall holds every request longer than the region's timeout. It
    counts the actions it saw."""

    def __init__(self, target):
        self.target = target
        self.mode = "pass"
        self.refuse = ("InsufficientInstanceCapacity", 500)
        self.seen = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                action = ""
                for kv in body.decode().split("&"):
                    if kv.startswith("Action="):
                        action = kv[7:]
                proxy.seen[action] = proxy.seen.get(action, 0) + 1
                mode = proxy.mode
                if mode == "stall":
                    time.sleep(2.5)
                    self.close_connection = True
                    return
                if mode == "throttle" or (mode == "refuse" and action == "RunInstances"):
                    code, status = ("RequestLimitExceeded", 503) if mode == "throttle" else proxy.refuse
                    msg = ("<Response><Errors><Error><Code>%s</Code><Message>injected %s</Message></Error></Errors>"
                           "<RequestID>x</RequestID></Response>" % (code, mode)).encode()
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                req = urllib.request.Request(proxy.target, data=body, method="POST",
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() not in ("host", "content-length")})
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as err:
                    status, data = err.code, err.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start_public_virga():
    """The second Virga cloud (sim driver) and a tenant of it: (cloud, info dict)."""
    c = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True,
                    env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "64", "VIRGA_AGENT_MEMORY_MIB": "65536"})
    try:
        acct, key, secret = new_tenant(c, "public-" + uuid.uuid4().hex[:8])
        ami = c.default_images()["virga-busybox-rootfs"]
    except Exception:
        c.stop()
        raise
    return {"cloud": c, "key": key, "secret": secret, "ami": ami, "ec2": boto3_client(c, "ec2", key, secret)}


def seal(keyfile, out, ak, sk):
    r = subprocess.run([os.path.join(BIN, "virgadm"), "hybrid", "seal", "--key", keyfile, "--out", out],
                       input=json.dumps({"access_key_id": ak, "secret_access_key": sk}), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def start_private(regions, env=None):
    """A private cloud (sim driver) with these public regions: a list of (name, endpoint,
    zone, access key, secret, extra YAML lines for hybrid.clouds.<name>). Its hybrid.owner
    is cloud.owner."""
    d = tempfile.mkdtemp(prefix="virga-test-hybrid-")
    secrets = os.path.join(d, "secrets")
    os.makedirs(secrets, mode=0o700)
    keyfile = os.path.join(secrets, "hybrid.key")
    with open(os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(os.urandom(32))
    owner = "private-" + uuid.uuid4().hex[:8]
    yaml = "hybrid:\n  owner: %s\n  key_file: %s\n  regions: %s\n  clouds:\n" % (
        owner, keyfile, ",".join(r[0] for r in regions))
    for name, url, zone, ak, sk, extra in regions:
        cred = os.path.join(secrets, name + ".cred")
        seal(keyfile, cred, ak, sk)
        yaml += ("    %s:\n      endpoint: %s/\n      region: us-east-1\n      credentials_file: %s\n"
                 "      zone: %s\n      poll_ms: 100\n      console_refresh_s: 1\n%s" % (name, url, cred, zone, extra))
    with open(os.path.join(d, "hybrid.yaml"), "w") as f:
        f.write(yaml)
    c = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True, env=env, directory=d)
    c.owner = owner
    return c


def moto_region(name, url, zone, extra=""):
    return (name, url, zone, "AKIAMOTOTEST", "moto-secret",
            extra + "      images:\n        default: %s\n      instance_types:\n        t3.nano: t2.micro\n" % MOTO_AMI)


def virga_region(name, pub, zone, extra=""):
    return (name, pub["cloud"].env["VIRGA_EC2_URL"], zone, pub["key"], pub["secret"],
            extra + "      images:\n        default: %s\n" % pub["ami"])
