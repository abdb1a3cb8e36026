#!/bin/sh
# bench_datapath.sh DIR BUILD - network datapath figures (needs root; no cloud needed, so
# DIR is unused): see tests/bench/bench_datapath.py.
echo "== network datapath (linux driver, namespaces of its own)"
/usr/bin/python3 "$(dirname "$0")/bench_datapath.py" --build "${2:-build}" --count 40
