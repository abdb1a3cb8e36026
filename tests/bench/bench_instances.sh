#!/bin/sh
# bench_instances.sh DIR BUILD - instances through the whole pipeline, on a cloud of its own
# whose host simulates instances (sim driver): RunInstances to running and terminate to
# terminated, p50/p99, with a client polling DescribeInstances every 0.1 s; and the launch
# rate of many clients. DIR (run.sh's cloud) is not used: its agent runs real drivers.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
echo "== instances (sim driver)"
/usr/bin/python3 "$here/bench_instances.py"
