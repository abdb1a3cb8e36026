"""Test harness: start and stop clouds with deploy/devcloud, run virgadm and the
real AWS clients against them."""
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
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


def pick_port_base():
    """A base N whose ports N..N+99 are all free (devcloud uses a few of them)."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 100)
        if all(port_free(base + off) for off in (0, 1, 73, 74, 80, 81, 90)):
            return base
    raise RuntimeError("no free port base")


class Cloud:
    def __init__(self, directory, base):
        self.dir = directory
        self.base = base
        self.env = {}

    @classmethod
    def start(cls, extra_args=()):
        d = tempfile.mkdtemp(prefix="virga-test-")
        os.chmod(d, 0o755)  # PostgreSQL runs as the postgres user and must enter it
        c = cls(d, pick_port_base())
        args = [DEVCLOUD, "up", "--dir", d, "--port-base", str(c.base), "--throwaway",
                "--test-handlers", *extra_args]
        r = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            logs = c.logs_tail()
            c.stop()
            raise RuntimeError("devcloud up failed:\n%s\n%s\n%s" % (r.stdout, r.stderr, logs))
        c.env = c.read_env()
        return c

    def read_env(self):
        env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if line.startswith("export "):
                    k, _, v = line[len("export "):].strip().partition("=")
                    env[k] = v
        return env

    def up(self):
        """Start whatever is not running (devcloud up is idempotent)."""
        return subprocess.run([DEVCLOUD, "up", "--dir", self.dir, "--throwaway", "--test-handlers"],
                              capture_output=True, text=True, timeout=300)

    def stop(self, remove=True):
        subprocess.run([DEVCLOUD, "down", "--dir", self.dir], capture_output=True, text=True, timeout=120)
        if remove and not os.environ.get("VIRGA_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def config(self):
        return os.path.join(self.dir, "virga.yaml")

    def pid(self, name):
        with open(os.path.join(self.dir, "run", name + ".pid")) as f:
            return int(f.read().strip())

    def virgadm(self, *args, timeout=60):
        return subprocess.run([os.path.join(BIN, "virgadm"), "-c", self.config, *args],
                              capture_output=True, text=True, timeout=timeout)

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
