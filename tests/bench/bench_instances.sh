#!/bin/sh
# bench_instances.sh DIR BUILD - instances through the whole pipeline, each on a cloud of
# its own: RunInstances to running and terminate to terminated, p50/p99, with a client
# polling DescribeInstances every 0.1 s, and the launch rate of many clients. Always with
# the sim driver (only the guest simulated); as root also with real containers and a few
# QEMU guests (TCG without KVM). DIR (run.sh's cloud) is not used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
echo "== instances (sim driver)"
/usr/bin/python3 "$here/bench_instances.py" sim
if [ "$(id -u)" = 0 ]; then
    echo "== instances (container driver)"
    /usr/bin/python3 "$here/bench_instances.py" container
    echo "== instances (qemu driver, a few rounds)"
    /usr/bin/python3 "$here/bench_instances.py" qemu
else
    echo "== instances (container, qemu): skipped, real guests need root"
fi
