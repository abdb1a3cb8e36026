#!/bin/sh
# run.sh BUILD - the benchmarks behind the figures in docs/performance.md. Starts its
# own throwaway cloud (own directory and port base), runs every benchmark against
# loopback only, prints the figures, and stops the cloud. Every load is bounded in time.
set -eu
build=${1:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export VIRGA_BIN_DIR="$root/$build/bin"

dir=$(mktemp -d /tmp/virga-bench.XXXXXX); chmod 755 "$dir"
base=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "tests/lib"); import harness; print(harness.pick_port_base())')
cleanup() { deploy/devcloud down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
# Benchmarks measure capacity, so the per-key rate limit is off in this cloud. Ceph runs
# on bluestore (a sparse file), as for `make run`: memstore keeps everything in a 2 GiB
# RAM device that the 4 MiB phases would fill. Replaced objects are collected after 10 s
# instead of 300, since the load overwrites the same keys over and over.
VIRGA_GATEWAY_RATE_LIMIT=0 VIRGA_OBJECTSTORE_GC_GRACE_S=10 VIRGA_OBJECTSTORE_RECONCILE_INTERVAL_S=2 \
    deploy/devcloud up --dir "$dir" --port-base "$base" > /dev/null
. "$dir/env"

echo "== bus RPC (sys.echo to compute through virga-busd, bus.fetch_wait_ms=$(sed -n 's/ *fetch_wait_ms: *//p' "$dir/virga.yaml"))"
"$build/bench/bus_rpc" -c "$dir/virga.yaml" --rate 1000 --seconds 10 --threads 16 --throughput-seconds 5

echo "== HTTP layer (GET /healthz on the gateway, wrk 2 threads, 32 connections, 10 s)"
wrk -t2 -c32 -d10s "$VIRGA_EC2_URL/healthz" | sed -n 's/^Requests\/sec: *\(.*\)/http requests\/s: \1/p; s/^ *Latency *\([^ ]*\) .*/http latency avg: \1/p'

# further benchmarks: tests/bench/bench_*.sh DIR BUILD, against the same cloud
for b in tests/bench/bench_*.sh; do
    if [ -f "$b" ]; then sh "$b" "$dir" "$build"; fi
done
