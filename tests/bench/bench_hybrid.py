"""The figures bench_hybrid.sh prints: RunInstances -> running for a burst instance (policy
public, one zone per region) in the private cloud, as a client sees it polling
DescribeInstances every 0.1 s, against each public cloud (moto's EC2 server and a second
Virga cloud); and the public cloud's own launch time (RunInstances -> running there,
asked directly the same way), so the difference is what the private control plane and the
ec2 driver add. Everything on loopback; each cloud of its own."""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import boto3_client, new_tenant  # noqa: E402
from hybrid import MOTO_AMI, Moto, moto_client, moto_region, start_private, start_public_virga, virga_region  # noqa: E402

ROUNDS = 10
POLL_S = 0.1


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def launch(ec2, ready, seconds=120, **kw):
    """Seconds from RunInstances to ready(instance), polling every POLL_S; the id."""
    t0 = time.monotonic()
    iid = ec2.run_instances(MinCount=1, MaxCount=1, **kw)["Instances"][0]["InstanceId"]
    while time.monotonic() - t0 < seconds:
        i = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        if ready(i):
            return time.monotonic() - t0, iid
        time.sleep(POLL_S)
    raise SystemExit("bench_hybrid: %s never ready" % iid)


def burst_ready(i):
    return i["State"]["Name"] == "running" and any(t["Key"] == "virga:remote-instance-id" for t in i.get("Tags", []))


def running(i):
    return i["State"]["Name"] == "running"


def main():
    moto = Moto()
    pub = start_public_virga()
    priv = None
    try:
        env = {"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "2", "VIRGA_GATEWAY_RATE_LIMIT": "0",
               "VIRGA_GATEWAY_AVAILABILITY_ZONES": "us-east-1a,us-east-1b,us-east-1c"}
        priv = start_private([moto_region("moto", moto.url, "us-east-1b", "      poll_ms: 50\n"),
                              virga_region("vpub", pub, "us-east-1c", "      poll_ms: 50\n")], env=env)
        _, k, s = new_tenant(priv, "bench-hybrid")
        ec2 = boto3_client(priv, "ec2", k, s)
        import json
        ami = priv.default_images()["virga-busybox-rootfs"]
        tag = [{"ResourceType": "instance", "Tags": [{"Key": "virga:placement", "Value": "public"}]}]
        ec2.create_key_pair(KeyName="bench-key")
        # the tenant's key pair (ImportKeyPair there, once) and user-data travel with the launch
        extras = {"KeyName": "bench-key", "UserData": "#!/bin/sh\necho bench\n"}
        mdirect = {"ImageId": MOTO_AMI, "InstanceType": "t2.micro"}
        targets = [("moto", "us-east-1b", moto_client(moto.url), mdirect, {}),
                   ("moto, with a key pair and user-data", "us-east-1b", moto_client(moto.url), mdirect, extras),
                   ("second Virga", "us-east-1c", pub["ec2"], {"ImageId": pub["ami"], "InstanceType": "t3.nano"}, {})]
        for name, zone, remote, direct, extra in targets:
            burst, own = [], []
            for r in range(ROUNDS + 1):   # the first round is unmeasured (consumer groups, caches)
                t, iid = launch(ec2, burst_ready, ImageId=ami, InstanceType="t3.nano", TagSpecifications=tag,
                                Placement={"AvailabilityZone": zone}, **extra)
                ec2.terminate_instances(InstanceIds=[iid])
                t2, rid = launch(remote, running, **direct)
                remote.terminate_instances(InstanceIds=[rid])
                if r:
                    burst.append(t)
                    own.append(t2)
            print("burst to %s: RunInstances -> running p50 %.2f s, p99 %.2f s (%d rounds)"
                  % (name, pct(burst, 50), pct(burst, 99), ROUNDS))
            print("%s's own launch (RunInstances -> running there): p50 %.2f s, p99 %.2f s"
                  % (name, pct(own, 50), pct(own, 99)))
            print("ec2 driver + private control plane overhead over %s: %.2f s (median of the differences)"
                  % (name, statistics.median(b - o for b, o in zip(burst, own))))
    finally:
        if priv:
            priv.stop()
        pub["cloud"].stop()
        moto.stop()


if __name__ == "__main__":
    main()
