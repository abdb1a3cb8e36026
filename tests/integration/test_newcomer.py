"""What a newcomer meets first: a cloud started from a directory the postgres user cannot
enter (a clone in /root, mode 0700) works and leaves nothing behind, and its instances
get their network although dnsmasq (which runs as nobody) cannot enter it; devcloud says when
there are no default images; it stops at once, with the log, when a service exits
while starting; virgadm without a config says how to give it one."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import BIN, DEVCLOUD, Cloud, aws, aws_s3, pick_port_base

PG_OUTSIDE = "/var/lib/virga/devcloud"
DATAPATH_OUTSIDE = "/run/virga/devcloud"


def test_cloud_in_a_directory_postgres_cannot_enter():
    parent = tempfile.mkdtemp(prefix="virga-0700-")   # mode 0700, as /root
    assert os.stat(parent).st_mode & 0o777 == 0o700
    d = os.path.join(parent, "cloud")
    c = None
    try:
        # no default images either: devcloud must say so, and still start
        c = Cloud.start(directory=d, default_images=True, env={"VIRGA_DEFAULT_IMAGES": os.path.join(parent, "none")})
        assert "no default images" in c.up_output and "deploy/images/build" in c.up_output
        # it works: the database, the EC2 and the S3 endpoints
        rc, out, err = aws(c, "ec2", "create-key-pair", "--key-name", "newcomer", "--key-type", "ed25519")
        assert rc == 0, err
        rc, _, err = aws_s3(c, "mb", "s3://newcomer-bucket")
        assert rc == 0, err
        assert c.psql("SELECT count(*) FROM compute.key_pairs WHERE name = 'newcomer'") == "1"
        # PostgreSQL lives outside, in a directory of its own owned by postgres
        home = open(os.path.join(d, "pg-home")).read().strip()
        assert home.startswith(PG_OUTSIDE + "/")
        st = os.stat(home)
        assert st.st_mode & 0o777 == 0o700 and st.st_uid == int(
            subprocess.run(["id", "-u", "postgres"], capture_output=True, text=True, check=True).stdout)
        assert os.path.realpath(os.path.join(d, "pg")) == os.path.join(home, "pg")
        assert "database system is ready" in open(os.path.join(d, "log", "postgres.log")).read()
        # nothing of the parent was opened up
        assert os.stat(parent).st_mode & 0o777 == 0o700
        c.stop(remove=False)
        c = None
        assert not os.path.exists(home)   # a throwaway cloud's database goes with down
    finally:
        if c:
            c.stop(remove=False)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="real containers need root")
def test_an_instance_of_a_cloud_in_a_closed_directory_gets_its_network():
    """`make run` from a clone in /root: the datapath's state directory (dnsmasq's hosts
    file, which dnsmasq reads as nobody) cannot be under DIR, and a launch there stayed
    `pending` for ever with NetworkNotReady. devcloud now keeps it outside, like the
    database."""
    parent = tempfile.mkdtemp(prefix="virga-0700-")   # mode 0700, as /root
    d = os.path.join(parent, "cloud")
    c = None
    try:
        c = Cloud.start(directory=d, default_images=True, env={"VIRGA_AGENT_DRIVERS": "container"})
        home = open(os.path.join(d, "datapath-home")).read().strip()
        assert home.startswith(DATAPATH_OUTSIDE + "/")
        ami = c.default_images()["virga-busybox-rootfs"]
        rc, out, err = aws(c, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.micro",
                           "--query", "Instances[0].InstanceId", "--output", "text")
        assert rc == 0, err
        iid = out.strip()
        deadline = time.time() + 120
        while True:
            rc, out, err = aws(c, "ec2", "describe-instances", "--instance-ids", iid, "--query",
                               "Reservations[0].Instances[0].[State.Name,StateReason.Message]", "--output", "text")
            assert rc == 0, err
            if out.split()[0] == "running":
                break
            assert time.time() < deadline, out   # it was: pending  NetworkNotReady: no network namespace ...
            time.sleep(0.5)
        # the VPC's dnsmasq runs from the outside directory, and nothing of the parent was opened up
        assert any(f.startswith("dhcp-") and f.endswith(".pid") for _, _, fs in os.walk(home) for f in fs), list(os.walk(home))
        assert os.stat(parent).st_mode & 0o777 == 0o700
        c.stop(remove=False)
        c = None
        assert not os.path.exists(home)   # a throwaway cloud's datapath directory goes with down
    finally:
        if c:
            c.stop(remove=False)
        shutil.rmtree(parent, ignore_errors=True)


def test_a_service_that_exits_while_starting_fails_up_at_once_with_its_log():
    with pytest.raises(RuntimeError) as ei:
        Cloud.start(env={"VIRGA_IMAGE_WORKERS": "65"})   # virga-image refuses to start
    text = str(ei.value)
    assert "image exited while starting" in text, text   # all of it: pytest would cut the cause short
    assert "image.workers must be 0..64" in text, text    # the tail of its log
    # it was noticed as an exit, not after the 90 s wait for health it used to sit through
    # (no timing here: the machine's load decides how long a start takes)
    assert "not every service became healthy" not in text, text


def test_explicit_default_images_that_do_not_exist_are_refused_before_anything_starts():
    d = tempfile.mkdtemp(prefix="virga-test-")
    try:
        r = subprocess.run([DEVCLOUD, "up", "--dir", d, "--port-base", str(pick_port_base()), "--throwaway",
                            "--default-images", os.path.join(d, "no-images")], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert "no manifest.json" in r.stderr and "deploy/images/build" in r.stderr
        assert not os.path.exists(os.path.join(d, "run"))   # nothing was started
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_virgadm_without_a_config_says_how_to_give_it_one():
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRGA_")}
    if os.path.exists("/etc/virga/virga.yaml"):
        pytest.skip("this machine has a system config")
    for args in (["status"], ["account", "list"]):
        r = subprocess.run([os.path.join(BIN, "virgadm"), *args], capture_output=True, text=True, timeout=20, env=env)
        assert r.returncode == 2, r.stderr
        assert "no configuration" in r.stderr
        assert "-c DIR/virga.yaml" in r.stderr and "VIRGA_CONFIG" in r.stderr
