#!/bin/sh
# bench_memory.sh DIR BUILD - every Virga service's resident memory (VmRSS, Pss, private
# anonymous, threads) idle, right after a bounded workload (300 sim instances,
# DescribeInstances pages, S3 PUT/GET) and settled, on a cloud of its own
# (tests/bench/bench_memory.py). DIR (run.sh's cloud) is not used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
VIRGA_BIN_DIR=${VIRGA_BIN_DIR:-$2/bin} /usr/bin/python3 "$here/bench_memory.py"
