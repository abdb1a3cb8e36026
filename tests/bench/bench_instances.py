"""The figures bench_instances.sh prints (see there). Uses the real client (boto3) against
a cloud of its own whose one host simulates instances (the `sim` driver): every part of
the control plane runs for real (gateway, compute, its tasks, the network's ports, the
agent's sync loop); only the guest is simulated."""
import concurrent.futures
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Cloud, boto3_client  # noqa: E402

ROUNDS = 30          # sequential launches measured
RATE_N = 60          # instances launched for the rate, by RATE_CLIENTS clients
RATE_CLIENTS = 6
POLL_S = 0.1         # the client polls DescribeInstances this often, as issue 11 says


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def wait(ec2, iid, state, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        r = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        if r["State"]["Name"] == state:
            return
        time.sleep(POLL_S)
    raise SystemExit("bench_instances: %s never %s" % (iid, state))


def main():
    cloud = Cloud.start(extra_args=("--objectstore", "dir"), default_images=True,
                        env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "256",
                             "VIRGA_AGENT_MEMORY_MIB": "262144", "VIRGA_GATEWAY_RATE_LIMIT": "0",
                             "VIRGA_QUOTA_INSTANCES": "1000", "VIRGA_QUOTA_VCPUS": "4000",
                             "VIRGA_QUOTA_MEMORY_MIB": "10000000"})
    try:
        ami = cloud.default_images()["virga-busybox-rootfs"]
        ec2 = boto3_client(cloud, "ec2")
        # one unmeasured round: the first use of each service's consumer group and caches
        iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"]
        wait(ec2, iid, "running")
        ec2.terminate_instances(InstanceIds=[iid])
        up, down = [], []
        for _ in range(ROUNDS):
            t0 = time.time()
            iid = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)[
                "Instances"][0]["InstanceId"]
            wait(ec2, iid, "running")
            up.append(time.time() - t0)
            t0 = time.time()
            ec2.terminate_instances(InstanceIds=[iid])
            wait(ec2, iid, "terminated")
            down.append(time.time() - t0)
        print("RunInstances to running (sim, polling every %.1f s, %d rounds): p50 %.0f ms, p99 %.0f ms"
              % (POLL_S, ROUNDS, statistics.median(up) * 1000, pct(up, 99) * 1000))
        print("TerminateInstances to terminated (sim): p50 %.0f ms, p99 %.0f ms"
              % (statistics.median(down) * 1000, pct(down, 99) * 1000))

        clients = [boto3_client(cloud, "ec2") for _ in range(RATE_CLIENTS)]
        per = RATE_N // RATE_CLIENTS

        def launch(c):
            return [c.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)[
                "Instances"][0]["InstanceId"] for _ in range(per)]

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(RATE_CLIENTS) as pool:
            ids = [i for part in pool.map(launch, clients) for i in part]
        deadline = time.time() + 300
        while time.time() < deadline:
            got = [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                   for i in r["Instances"]]
            if got.count("running") == len(ids):
                break
            time.sleep(POLL_S)
        took = time.time() - t0
        print("launch rate, %d instances by %d clients to all running (sim): %.1f instances/s"
              % (len(ids), RATE_CLIENTS, len(ids) / took))
        ec2.terminate_instances(InstanceIds=ids)
    finally:
        cloud.stop()


if __name__ == "__main__":
    main()
