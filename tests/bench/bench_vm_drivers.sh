#!/bin/sh
# bench_vm_drivers.sh DIR BUILD - the agent's instance drivers, one instance at a time
# (container and qemu need root; no cloud needed, so DIR is unused): tests/bench/vm_drivers.c.
build=${2:-build}
echo "== instance drivers (ensure to running and to the ready line, remove)"
for d in sim container qemu; do
    "$build/bench/vm_drivers" --driver "$d" || echo "vm_drivers --driver $d failed"
done
