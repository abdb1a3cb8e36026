#!/bin/sh
# bench_network.sh DIR BUILD - the network control plane's figures: a security group change
# reaching 100 simulated hosts, address allocations/s, DescribeSecurityGroups with 1,000
# groups (a throwaway cloud of its own, so DIR is unused): see tests/bench/bench_network.py.
/usr/bin/python3 "$(dirname "$0")/bench_network.py" --build "${2:-build}"
