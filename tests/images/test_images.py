"""The guest images (docs/images.md): deploy/images/build makes them into a temporary
directory, deploy/images/boot-test boots the VM image under QEMU (TCG) and runs the
container rootfs; the manifest matches the files, a second build does nothing, and a
forced rebuild is byte-identical. Needs root (mknod, unshare, chroot). The kernel .deb is
taken from the shared cache ($VIRGA_IMAGES_CACHE, which tests/run-all.sh sets to
/var/cache/virga/images, else build/cache/images), so only a first-ever run downloads it."""
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "deploy", "images", "build")
BOOT_TEST = os.path.join(ROOT, "deploy", "images", "boot-test")
FILES = ["vmlinuz-cloud", "initrd-virga.cpio.gz", "busybox-rootfs.tar.gz", "manifest.json"]
READY = "VIRGA-GUEST-READY instance-id=unknown addr=none"

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None,
    reason="qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd, timeout):
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    return p, time.monotonic() - t0


def snapshot(out):
    return {f: (os.stat(os.path.join(out, f)).st_mtime_ns, sha256(os.path.join(out, f)))
            for f in FILES}


def newc_entries(data):
    """(name, mode, rdevmajor, rdevminor) of every entry of every newc archive in data."""
    entries, off = [], 0
    while off + 110 <= len(data):
        if data[off:off + 6] != b"070701":
            off += 1  # zero padding between archives
            continue
        f = [int(data[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = f[1], f[6], f[9], f[10], f[11]
        name = data[off + 110: off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        off = (off + size + 3) & ~3
        if name != "TRAILER!!!":
            entries.append((name, mode, rmaj, rmin))
    return entries


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("images"))
    p, took = run([BUILD, "--out", out], timeout=300)
    assert p.returncode == 0, p.stderr
    print(f"cold build (shared kernel cache) took {took:.1f} s")
    return out


def test_manifest_matches_files(images):
    with open(os.path.join(images, "manifest.json")) as f:
        manifest = json.load(f)
    arts = {a["name"]: a for a in manifest["artifacts"]}
    assert set(arts) == {"kernel", "initramfs", "rootfs"}
    assert arts["kernel"]["file"] == "vmlinuz-cloud"
    assert arts["initramfs"]["file"] == "initrd-virga.cpio.gz"
    assert arts["rootfs"]["file"] == "busybox-rootfs.tar.gz"
    for a in arts.values():
        path = os.path.join(images, a["file"])
        assert os.path.getsize(path) == a["size"], a["file"]
        assert sha256(path) == a["sha256"], a["file"]
    k = arts["kernel"]
    assert k["package"].startswith("linux-image-") and k["package"].endswith("-cloud-amd64")
    assert k["version"] and k["kernel_release"]
    assert {"virtio_pci", "virtio_net"} <= set(arts["initramfs"]["modules"])


def test_initramfs_contents(images):
    with gzip.open(os.path.join(images, "initrd-virga.cpio.gz")) as f:
        entries = {e[0]: e[1:] for e in newc_entries(f.read())}
    assert entries["dev/console"] == (0o20600, 5, 1)
    assert entries["dev/null"] == (0o20666, 1, 3)
    assert entries["init"][0] == 0o100755
    assert "bin/busybox" in entries and "etc/udhcpc.script" in entries
    with open(os.path.join(images, "manifest.json")) as f:
        ramdisk = [a for a in json.load(f)["artifacts"] if a["name"] == "initramfs"][0]
    for m in ramdisk["modules"]:
        assert f"lib/modules/{ramdisk['kernel_release']}/{m}.ko" in entries


def test_rootfs_contents(images):
    with tarfile.open(os.path.join(images, "busybox-rootfs.tar.gz")) as t:
        members = {m.name.removeprefix("./"): m for m in t.getmembers()}
    for name, (major, minor) in {"null": (1, 3), "zero": (1, 5), "random": (1, 8),
                                 "urandom": (1, 9), "tty": (5, 0), "console": (5, 1)}.items():
        m = members["dev/" + name]
        assert m.ischr() and (m.devmajor, m.devminor) == (major, minor), name
    assert members["tmp"].mode & 0o7777 == 0o1777
    assert members["sbin/init"].isfile() and members["sbin/init"].mode & 0o111
    assert members["bin/busybox"].isfile()
    assert members["bin/sh"].issym()
    for f in ("etc/passwd", "etc/group", "etc/hostname"):
        assert members[f].isfile(), f
    assert members["proc"].isdir() and members["sys"].isdir()


def test_second_build_is_noop(images):
    before = snapshot(images)
    p, took = run([BUILD, "--out", images], timeout=60)
    assert p.returncode == 0, p.stderr
    assert "up to date" in p.stderr
    assert took < 5, f"a no-op build took {took:.1f} s"
    assert snapshot(images) == before


def test_forced_rebuild_is_reproducible(images):
    before = {f: sha256(os.path.join(images, f)) for f in FILES}
    p, _ = run([BUILD, "--out", images, "--force"], timeout=120)
    assert p.returncode == 0, p.stderr
    assert {f: sha256(os.path.join(images, f)) for f in FILES} == before


def test_boot(images, tmp_path):
    log = str(tmp_path / "console.log")
    p, took = run([BOOT_TEST, "--out", images, "--timeout", "60", "--log", log], timeout=90)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok vm:" in p.stdout and READY in p.stdout
    assert "ok container:" in p.stdout
    with open(log, errors="replace") as f:
        lines = [line.rstrip("\r\n") for line in f]
    assert lines.count(READY) == 1, lines[-20:]
    print(f"boot-test took {took:.1f} s")


def test_generated_scripts_shellcheck(images, tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    d = tmp_path / "x"
    d.mkdir()
    subprocess.run(f"gzip -dc {images}/initrd-virga.cpio.gz | busybox cpio -i -d init etc/udhcpc.script",
                   shell=True, cwd=d, check=True, capture_output=True)
    with tarfile.open(os.path.join(images, "busybox-rootfs.tar.gz")) as t:
        (d / "container-init").write_bytes(t.extractfile("./sbin/init").read())
    p = subprocess.run(["shellcheck", "-s", "sh", "init", "etc/udhcpc.script", "container-init"],
                       cwd=d, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout
    p = subprocess.run(["shellcheck", BUILD, BOOT_TEST], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


class GuestNamespace:
    """A network namespace of the test's own, set up as an instance's network is for its
    container init: loopback up with the guest's address (10.251.0.7/24) and the metadata
    service's (169.254.169.254); the container rootfs unpacked under tmp_path. A stand-in
    metadata server (serve) and the guest's init (start_guest) run inside it. Used with
    `with`: its processes and the namespace go at the end."""

    def __init__(self, images, tmp_path, name):
        self.images = images
        self.root = tmp_path / "root"
        self.ns = "virga-%s-%d" % (name, os.getpid())
        self.server = self.guest = None

    def __enter__(self):
        self.root.mkdir()
        subprocess.run(["tar", "-xzf", os.path.join(self.images, "busybox-rootfs.tar.gz"), "-C", str(self.root)],
                       check=True)
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        try:
            for cmd in (["link", "set", "lo", "up"], ["addr", "add", "10.251.0.7/24", "dev", "lo"],
                        ["addr", "add", "169.254.169.254/32", "dev", "lo"]):
                subprocess.run(["ip", "-n", self.ns, *cmd], check=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for p in (self.server, self.guest):
            if p and p.poll() is None:
                p.kill()
                p.communicate()
        subprocess.run(["ip", "netns", "del", self.ns])

    def serve(self, handler):
        """The metadata service: handler is Python source defining its request handler H
        (an http.server.BaseHTTPRequestHandler). Returns once it listens."""
        source = "import http.server\n%s\ns = http.server.HTTPServer((\"169.254.169.254\", 80), H)\n" \
                 "print(\"listening\", flush=True)\ns.serve_forever()\n" % handler
        self.server = subprocess.Popen(["ip", "netns", "exec", self.ns, "/usr/bin/python3", "-c", source],
                                       stdout=subprocess.PIPE, text=True)
        assert self.server.stdout.readline().strip() == "listening", "the stand-in metadata server did not start"

    def start_guest(self):
        """The container init of an instance with an address (VIRGA_INSTANCE=1), in PID,
        mount and UTS namespaces of its own (it sets the hostname it is given)."""
        env = {"PATH": "/sbin:/usr/sbin:/bin:/usr/bin", "VIRGA_INSTANCE": "1"}
        self.guest = subprocess.Popen(["ip", "netns", "exec", self.ns, "unshare", "--pid", "--mount", "--uts",
                                       "--fork", "chroot", str(self.root), "/sbin/init"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    def guest_console(self):
        """What the guest printed until its shell ran "echo shell-done" and ended (at most
        150 s: then it is killed, and the output so far returned)."""
        try:
            out, _ = self.guest.communicate("echo shell-done\n", timeout=150)
        except subprocess.TimeoutExpired:
            self.guest.kill()
            out, _ = self.guest.communicate()
        return out


MD_HANDLER = """
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/latest/meta-data/instance-id":
            self.send_error(404)
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"i-0123456789abcdef0")
    def log_message(self, *a):
        pass
"""


def test_container_init_waits_for_a_late_metadata_service(images, tmp_path):
    """The container init of an instance with an address asks the metadata service again
    until it answers: here it comes up 6 s after the guest started (on a loaded host the
    agent's server for the VPC can come after the guest; one try gave instance-id=unknown
    and no user-data). In a namespace of the test's own, with a stand-in server."""
    with GuestNamespace(images, tmp_path, "mdtest") as ns:
        ns.start_guest()
        time.sleep(6)   # the service comes late: that is what this test is about
        ns.serve(MD_HANDLER)
        out = ns.guest_console()
    assert "VIRGA-GUEST-READY instance-id=i-0123456789abcdef0 addr=10.251.0.7" in out, out
    assert "shell-done" in out, out


# A metadata service whose compute went away right after the instance id: every other
# path answers 503 for its first 3 requests (after that it serves again), except the key,
# which is absent (404).
MD_FLAKY_HANDLER = """
fails = {}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"/latest/meta-data/instance-id": b"i-0123456789abcdef0",
                "/latest/meta-data/local-hostname": b"flaky-guest",
                "/latest/user-data": b"#!/bin/sh\\necho user-data-after-503\\n"}.get(self.path)
        if self.path != "/latest/meta-data/instance-id" and body is not None and fails.get(self.path, 0) < 3:
            fails[self.path] = fails.get(self.path, 0) + 1
            self.send_error(503)
            return
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
"""


def test_container_init_asks_again_while_metadata_is_unavailable(images, tmp_path):
    """After the instance id, a 503 (or no answer) from the metadata service is asked again
    until it answers, for the hostname and the user-data alike; a 404 (no key pair) is an
    answer: absent. Before, one failed request skipped the user-data: with compute killed
    between the instance id and the user-data, a guest booted without running its user-data
    (tests/e2e/test_instances_real_kill.py). In a namespace of the test's own."""
    with GuestNamespace(images, tmp_path, "mdflaky") as ns:
        ns.serve(MD_FLAKY_HANDLER)
        ns.start_guest()
        out = ns.guest_console()
    assert "VIRGA-GUEST-READY instance-id=i-0123456789abcdef0 addr=10.251.0.7" in out, out
    assert "user-data-after-503" in out, out
    assert "ssh key installed" not in out, out
    assert "shell-done" in out, out
