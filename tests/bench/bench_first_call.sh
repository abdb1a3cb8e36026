#!/bin/sh
# bench_first_call.sh DIR - the first tenant request after the gateway starts: the
# gateway of the cloud in DIR (started by run.sh or deploy/devcloud) is stopped by its
# pid and started again by `deploy/devcloud up`, three times; each time one signed
# DescribeRegions (botocore, Debian's /usr/bin/python3) is timed 2 s after the start
# (its signing key comes from identity over the bus), then a second one. Loopback only.
set -eu
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$dir/env"
for round in 1 2 3; do
    kill "$(cat "$dir/run/gateway.pid")"
    while kill -0 "$(cat "$dir/run/gateway.pid")" 2>/dev/null; do sleep 0.1; done
    "$here/../../deploy/devcloud" up --dir "$dir" > /dev/null 2>&1
    sleep 2
    /usr/bin/python3 - "$round" <<'PY'
import os, sys, time
import boto3
c = boto3.client("ec2", endpoint_url=os.environ["VIRGA_EC2_URL"])
t = []
for _ in range(2):
    t0 = time.monotonic()
    c.describe_regions()
    t.append((time.monotonic() - t0) * 1000)
print("round %s: first signed DescribeRegions after a gateway start %.1f ms, the next %.1f ms" % (sys.argv[1], t[0], t[1]))
PY
done
