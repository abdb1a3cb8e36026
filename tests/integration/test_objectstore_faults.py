"""The object store under faults, tried the way an operator meets them: kill -9 of the object
store in the middle of an upload, kill -9 of the image service in the middle of an image
upload, SIGTERM under S3 load, and kill -9 of the Ceph OSD under S3 load. What is checked
is what a user and an operator see: acknowledged objects are all there, no partial object
is ever visible, the storage a dead writer left is reclaimed (inspected in the backend
itself: RADOS objects and omap keys with the rados tool, or the directory's files), health
says when the storage does not answer, and the object store recovers by itself.

The clouds here use short intervals (writer lease 4 s, gc grace 2 s, reconcile every 1 s)
so that reclaiming takes seconds; the defaults are a minute and five minutes."""
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError

from harness import Cloud, boto3_client, new_tenant, s3_client

MiB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = {
    "VIRGA_OBJECTSTORE_WRITER_LEASE_S": "4",
    "VIRGA_OBJECTSTORE_GC_GRACE_S": "2",
    "VIRGA_OBJECTSTORE_RECONCILE_INTERVAL_S": "1",
    "VIRGA_IMAGE_RECONCILE_INTERVAL_S": "1",
    "VIRGA_IMAGE_TASK_LEASE_S": "6",
    "VIRGA_IMAGE_MULTIPART_BYTES": str(8 * MiB),
    "VIRGA_IMAGE_PART_BYTES": str(5 * MiB),
}


@pytest.fixture(scope="module")
def radoscloud():
    """Ceph on bluestore: an OSD killed and started again keeps its objects."""
    c = Cloud.start(extra_args=("--ceph-store", "bluestore"), env=FAST)
    try:
        yield c
    finally:
        c.stop_later()


@pytest.fixture(scope="module")
def dirfaultcloud():
    c = Cloud.start(extra_args=("--objectstore", "dir"), env=FAST)
    try:
        yield c
    finally:
        c.stop_later()


def wait_for(what, fn, seconds):
    """fn() until it returns something true, at most `seconds`; its last value."""
    deadline = time.time() + seconds
    while True:
        v = fn()
        if v or time.time() > deadline:
            assert v, "%s: not within %d s" % (what, seconds)
            return v
        time.sleep(0.25)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill9(cloud, name):
    pid = cloud.pid(name)
    os.kill(pid, signal.SIGKILL)
    wait_for("%s gone" % name, lambda: not alive(pid), 30)


def restart(cloud):
    r = cloud.up()
    assert r.returncode == 0, r.stdout + r.stderr


# ---- what the backend holds ---------------------------------------------------------

def rados(cloud, *args, binary=False):
    c = os.path.join(cloud.dir, "ceph")
    r = subprocess.run(["rados", "--conf", c + "/ceph.conf", "--id", "virga", "--keyring",
                        c + "/ceph.client.virga.keyring", "-p", "virga", *args],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout if binary else r.stdout.decode()


def entry_json(value):
    """An index value as JSON: inline values are \\x01 JSON \\0 bytes."""
    if value[:1] == b"\x01":
        value = value[1:value.index(b"\0")]
    return json.loads(value)


def omap(cloud, oid):
    """{key: value bytes} of an object's omap, from rados listomapvals (a hexdump per value)."""
    lines = rados(cloud, "listomapvals", oid, binary=True).decode("latin-1").split("\n")
    out, i = {}, 0
    while i < len(lines):
        key = lines[i]
        i += 1
        if not key:
            continue
        n = int(re.match(r"value \((\d+) bytes\) :", lines[i]).group(1))
        i += 1
        data = bytearray()
        while len(data) < n:
            data += bytes.fromhex(lines[i][10:].split("|")[0].replace(" ", ""))
            i += 1
        if i < len(lines) and re.fullmatch(r"[0-9a-f]{8}", lines[i]):
            i += 1   # the hexdump's closing offset
        out[key] = bytes(data[:n])
    return out


def rados_leftovers(cloud):
    """(data objects no object or part entry refers to, pending keys, garbage keys) of
    every bucket: what a crashed write leaves until it is reclaimed."""
    objs = rados(cloud, "ls").split()
    data = {o for o in objs if o.startswith("d.")}
    referenced, pending, garbage = set(), [], []
    for idx in (o for o in objs if o.startswith("i.")):
        bucket = idx[2:]
        for k, v in omap(cloud, idx).items():
            if k[0] == "p":
                pending.append(k)
            elif k[0] == "g":
                garbage.append(k)
            elif k[0] in "on":
                e = entry_json(v)
                for piece in e.get("parts", [e]):
                    if "v" in piece:
                        sb = piece.get("sb") or piece["size"] or 1
                        for n in range(max(1, -(-piece["size"] // sb))):
                            referenced.add("d.%s.%s.%d" % (bucket, piece["v"], n))
    return sorted(data - referenced), pending, garbage


def dir_leftovers(cloud):
    """The same for the directory backend: data files no index entry or part refers to,
    files of writes in progress, garbage records and records left in tmp/."""
    root = os.path.join(cloud.dir, "objects")
    referenced, pending, garbage = set(), [], []
    for sub, refs in (("index", referenced), ("uploads", referenced)):
        for dirpath, _, files in os.walk(os.path.join(root, sub)):
            for f in files:
                if f.endswith(".json") and f != "upload.json":
                    with open(os.path.join(dirpath, f)) as fh:
                        e = json.load(fh)
                    refs.update(p["v"] for p in e.get("parts", [e]) if "v" in p)
    unreferenced = []
    for dirpath, _, files in os.walk(os.path.join(root, "data")):
        for f in files:
            (pending if f.endswith(".tmp") else unreferenced if f not in referenced else []).append(f)
    for dirpath, _, files in os.walk(os.path.join(root, "garbage")):
        garbage += files
    pending += os.listdir(os.path.join(root, "tmp"))
    return sorted(unreferenced), pending, garbage


def leftovers(cloud):
    if open(os.path.join(cloud.dir, "objectstore-backend")).read().strip() == "dir":
        return dir_leftovers(cloud)
    return rados_leftovers(cloud)


def clean(cloud):
    """Nothing left behind: the value when true, for wait_for."""
    u, p, g = leftovers(cloud)
    return not (u or p or g)


def check_objects(s3, bucket, acked):
    """Every acknowledged object reads back whole, and nothing else in the bucket is partial:
    each listed key holds exactly the bytes one PUT of it sent."""
    for key, md5 in acked.items():
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.md5(body).hexdigest() == md5, key
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])]
    return listed


# ---- kill -9 of the object store in the middle of a PUT ---------------------------------

def partial_put(cloud, bucket, key, sent_bytes, total_bytes):
    """Start a PUT of total_bytes through a presigned URL and send only sent_bytes: the
    object store is left in the middle of the upload. The open connection is returned."""
    s3 = s3_client(cloud, signature_version="s3v4")
    url = urllib.parse.urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key},
                                                          ExpiresIn=600))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.putrequest("PUT", url.path + "?" + url.query, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(total_bytes))
    conn.endheaders()
    chunk = os.urandom(MiB)
    for _ in range(sent_bytes // MiB):
        conn.send(chunk)
    return conn


@pytest.mark.parametrize("backend", ["rados", "dir"])
def test_object_store_killed_mid_put_leaves_nothing(request, backend):
    cloud = request.getfixturevalue("radoscloud" if backend == "rados" else "dirfaultcloud")
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="crash")
    acked = {}
    for i in range(3):
        body = os.urandom(5 * MiB + i)
        s3.put_object(Bucket="crash", Key="kept-%d" % i, Body=body)
        acked["kept-%d" % i] = hashlib.md5(body).hexdigest()
    wait_for("a clean store before the crash", lambda: clean(cloud), 60)

    conn = partial_put(cloud, "crash", "half", 24 * MiB, 200 * MiB)
    # the write is under way in the backend: its pending mark (and data) are there
    wait_for("the upload in the backend", lambda: leftovers(cloud)[1], 60)
    kill9(cloud, "objectstore")
    conn.close()
    unreferenced, pending, _ = leftovers(cloud)
    assert pending and (unreferenced or backend == "dir"), "the killed upload left nothing: the test proves nothing"

    restart(cloud)
    # reclaimed within the (test-configured) writer lease, not the week of upload_stale_s
    wait_for("the killed upload's storage reclaimed", lambda: clean(cloud), 90)
    listed = check_objects(s3, "crash", acked)
    assert sorted(listed) == sorted(acked)


# ---- kill -9 of the image service in the middle of an image upload ----------------------

def test_image_service_killed_mid_upload_leaves_no_upload(radoscloud, tmp_path):
    cloud = radoscloud
    acct, k, s = new_tenant(cloud, "fault-import")
    tenant_s3 = s3_client(cloud, k, s)
    tenant_s3.create_bucket(Bucket="fault-disks")
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(96 * MiB))   # random: its qcow2 is as large, many parts
    tenant_s3.upload_file(str(disk), "fault-disks", "disk.raw")
    ec2 = boto3_client(cloud, "ec2", k, s)
    op = s3_client(cloud)   # the operator sees the image service's bucket

    def uploads():
        try:
            return op.list_multipart_uploads(Bucket="virga-images").get("Uploads", [])
        except ClientError:
            return []   # the bucket is made with the first import

    def uploading():
        """An upload with a part already stored."""
        for u in uploads():
            try:
                if op.list_parts(Bucket="virga-images", Key=u["Key"], UploadId=u["UploadId"]).get("Parts"):
                    return True
            except ClientError:
                pass
        return False

    old = None
    for attempt in range(3):   # the upload must be caught while it runs
        task = ec2.import_image(DiskContainers=[{"Format": "RAW", "UserBucket": {"S3Bucket": "fault-disks",
                                                                                  "S3Key": "disk.raw"}}])
        task_id = task["ImportTaskId"]
        pid = cloud.pid("image")
        deadline = time.time() + 300
        while not uploading() and time.time() < deadline:
            time.sleep(0.02)
        os.kill(pid, signal.SIGSTOP)   # frozen mid-upload, then killed
        found = uploads()
        os.kill(pid, signal.SIGKILL)
        wait_for("image service gone", lambda: not alive(pid), 30)
        if found:
            old = found[0]
            break
        restart(cloud)   # it finished before it could be caught: try again
    assert old, "never caught the image service in the middle of an upload"
    parts = op.list_parts(Bucket="virga-images", Key=old["Key"], UploadId=old["UploadId"]).get("Parts", [])
    assert parts, "the interrupted upload holds no part: the test proves nothing"

    restart(cloud)
    # the task is taken over: the interrupted upload is aborted, the import then completes
    deadline = time.time() + 300
    while time.time() < deadline:
        t = ec2.describe_import_image_tasks(ImportTaskIds=[task_id])["ImportImageTasks"][0]
        if t["Status"] != "active":
            break
        time.sleep(0.5)
    assert t["Status"] == "completed", t
    with pytest.raises(ClientError) as ei:
        op.list_parts(Bucket="virga-images", Key=old["Key"], UploadId=old["UploadId"])
    assert ei.value.response["Error"]["Code"] == "NoSuchUpload"
    assert uploads() == []
    wait_for("the aborted upload's parts reclaimed", lambda: clean(cloud), 90)


# ---- SIGTERM under load --------------------------------------------------------------------

def test_sigterm_under_load_stops_promptly_and_keeps_acknowledged_objects(radoscloud):
    cloud = radoscloud
    s3 = s3_client(cloud)
    s3.create_bucket(Bucket="sigterm")
    acked, sent, lock, stop = {}, {}, threading.Lock(), threading.Event()

    def writer(n):
        client = s3_client(cloud)
        for i in range(200):
            if stop.is_set():
                return
            key, body = "w%d-%d" % (n, i), os.urandom((1 + i % 3) * MiB + n)
            with lock:
                sent[key] = hashlib.md5(body).hexdigest()
            try:
                client.put_object(Bucket="sigterm", Key=key, Body=body)
            except Exception:
                continue
            with lock:
                acked[key] = sent[key]

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    wait_for("some objects written", lambda: len(acked) >= 12, 120)
    pid = cloud.pid("objectstore")
    t0 = time.time()
    os.kill(pid, signal.SIGTERM)
    while alive(pid) and time.time() - t0 < 30:
        time.sleep(0.02)
    took = time.time() - t0
    stop.set()
    for t in threads:
        t.join(timeout=120)
    print("object store stopped %.2f s after SIGTERM under load" % took)
    # devcloud's own stop sends SIGKILL after 10 s: past that, work would be cut
    assert not alive(pid) and took < 10, "still running %.1f s after SIGTERM" % took

    restart(cloud)
    listed = check_objects(s3, "sigterm", acked)
    for key in listed:   # PUTs whose answer was lost hold whole bytes too
        body = s3.get_object(Bucket="sigterm", Key=key)["Body"].read()
        assert hashlib.md5(body).hexdigest() == sent[key], key
    wait_for("uploads cut by the stop reclaimed", lambda: clean(cloud), 90)


# ---- kill -9 of the OSD under load (last: it restarts the cluster) ---------------------------

def healthz(cloud):
    try:
        with urllib.request.urlopen(cloud.env["VIRGA_S3_URL"] + "/healthz", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def test_osd_restart_recovers_without_restarting_the_object_store(radoscloud):
    cloud = radoscloud
    s3 = s3_client(cloud, connect_timeout=5, read_timeout=60)
    s3.create_bucket(Bucket="osd")
    acked, lock, stop = {}, threading.Lock(), threading.Event()

    def load():
        client = s3_client(cloud, connect_timeout=5, read_timeout=60)
        for i in range(100000):
            if stop.is_set():
                return
            body = os.urandom(64 * 1024 + i % 7)
            try:
                client.put_object(Bucket="osd", Key="k%d" % i, Body=body)
                with lock:
                    acked["k%d" % i] = hashlib.md5(body).hexdigest()
                client.get_object(Bucket="osd", Key="k%d" % i)["Body"].read()
            except Exception:
                time.sleep(0.2)

    t = threading.Thread(target=load)
    t.start()
    try:
        wait_for("load running", lambda: len(acked) >= 10, 60)
        store_pid = cloud.pid("objectstore")
        kill9(cloud, "ceph-osd")
        wait_for("/healthz saying the storage does not answer", lambda: healthz(cloud)[0] == 503, 60)
        status, body = healthz(cloud)
        assert "degraded" in body and "storage" in body, body
        ok, h = cloud.call("objectstore", "sys.health")
        assert ok and h["status"] == "degraded" and h["storage"]["state"] == "down", h

        ceph = subprocess.run([os.path.join(ROOT, "deploy", "ceph", "ceph-up"), "--dir", cloud.dir, "--port-base",
                               str(cloud.base), "--store", "bluestore"], capture_output=True, text=True, timeout=300)
        assert ceph.returncode == 0, ceph.stderr
        up_at = time.time()
        wait_for("/healthz ok again", lambda: healthz(cloud)[0] == 200, 60)

        def s3_works():
            try:
                s3.put_object(Bucket="osd", Key="after", Body=b"after the OSD restart")
                return s3.get_object(Bucket="osd", Key="after")["Body"].read() == b"after the OSD restart"
            except Exception:
                return False
        wait_for("S3 working again", s3_works, 60)
        print("S3 worked again %.1f s after the OSD was back" % (time.time() - up_at))
        assert cloud.pid("objectstore") == store_pid and alive(store_pid), "the object store was restarted"
        ok, h = cloud.call("objectstore", "sys.health")
        assert ok and h["status"] == "healthy" and h["storage"]["state"] == "ok", h
        print("connections to the cluster replaced: %d" % h["storage"]["reconnects"])
    finally:
        stop.set()
        t.join(timeout=180)
    check_objects(s3, "osd", acked)
