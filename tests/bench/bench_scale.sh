#!/bin/sh
# bench_scale.sh DIR BUILD - compute at scale on a cloud of its own: 1,000 hosts (one real
# sim agent, the rest simulated hosts registered in bulk, named simbulk-NNNN) and 20,000
# instances; placement time per instance as instances grow, DescribeInstances page of
# 1,000 and one-instance filter p50/p99, every service's resident memory.
# SCALE_HOSTS / SCALE_INSTANCES shrink it. DIR (run.sh's cloud) is not used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 "$here/bench_scale.py"
