#!/bin/sh
# run.sh BUILD - the benchmarks behind the figures in docs/performance.md. Starts its
# own throwaway cloud (own directory and port base), runs every benchmark against
# loopback only, prints the figures, and stops the cloud. Every load is bounded in time.
# VIRGA_BENCH_ONLY=bus runs only the cloud and bus figures (start, idle CPU, broker
# memory, RPC on Kafka and on the mock, the broker killed during a storm).
set -eu
build=${1:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export VIRGA_BIN_DIR="$root/$build/bin"

dir=$(mktemp -d /tmp/virga-bench.XXXXXX); chmod 755 "$dir"
base=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "tests/lib"); import harness; print(harness.pick_port_base())')
cleanup() { deploy/devcloud down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
# Benchmarks measure capacity, so the per-key rate limit is off in this cloud, and so is
# the per-address limit on failed authentications (every wrk client is 127.0.0.1). Ceph runs
# on bluestore (a sparse file), as for `make run`: memstore keeps everything in a 2 GiB
# RAM device that the 4 MiB phases would fill. Replaced objects are collected after 10 s
# instead of 300, since the load overwrites the same keys over and over.
t0=$(date +%s.%N)
VIRGA_GATEWAY_RATE_LIMIT=0 VIRGA_GATEWAY_AUTH_FAIL_RATE=0 VIRGA_OBJECTSTORE_GC_GRACE_S=10 VIRGA_OBJECTSTORE_RECONCILE_INTERVAL_S=2 \
    deploy/devcloud up --dir "$dir" --port-base "$base" > /dev/null
t1=$(date +%s.%N)
. "$dir/env"
echo "== the cloud"
echo "cloud start (devcloud up, first use, Ceph on bluestore): $(echo "$t1 - $t0" | bc) s"

echo "== bus RPC on the real broker (sys.echo to compute, Apache Kafka, bus.fetch_wait_ms=$(sed -n 's/ *fetch_wait_ms: *//p' "$dir/virga.yaml"))"
# 10 s unmeasured first: the broker's JIT compiles its hot paths (docs/performance.md)
"$build/bench/bus_rpc" -c "$dir/virga.yaml" --set bus.principal=virgadm --rate 1000 --seconds 10 --threads 16 \
    --throughput-seconds 0 > /dev/null
"$build/bench/bus_rpc" -c "$dir/virga.yaml" --set bus.principal=virgadm --rate 1000 --seconds 10 --threads 16 \
    --throughput-seconds 5

echo "== bus message authentication (signature against pairwise MAC, CPU time)"
"$build/bench/bus_auth_cost" 2000

echo "== the reply path of a large answer (1,005 security groups: bus envelope dump, JSON to XML; CPU time)"
"$build/bench/reply_path_cost" 1005 30

echo "== a DescribeInstances page of 1,000: compute's item text, the gateway's XML (CPU time)"
"$build/bench/describe_page_cost" 1000 30

# The same on librdkafka's mock (virga-busd) in the same run: an echo server as compute,
# the same client, the mock's fetch wait of 2 ms (it does not long-poll).
mock_port=$((base + 3))
"$build/bin/virga-busd" --set busd.port=$mock_port --set log.level=warn \
    --set busd.topics=virga.reply.virgadm,virga.reply.compute > "$dir/log/busd.log" 2>&1 &
busd=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$mock_port") 2>/dev/null && break; sleep 0.1; done
mock_set="--set bus.brokers=127.0.0.1:$mock_port --set bus.security_protocol=plaintext --set bus.fetch_wait_ms=2"
# shellcheck disable=SC2086
"$build/bench/bus_rpc" -c "$dir/virga.yaml" $mock_set --set bus.principal=compute --serve 60 > "$dir/log/mock-echo.log" 2>&1 &
echo_srv=$!
echo "== bus RPC on librdkafka's mock (virga-busd, bus.fetch_wait_ms=2)"
# shellcheck disable=SC2086
"$build/bench/bus_rpc" -c "$dir/virga.yaml" $mock_set --set bus.principal=virgadm --rate 1000 --seconds 10 \
    --threads 16 --throughput-seconds 5
kill "$echo_srv" "$busd" 2>/dev/null || true
wait "$echo_srv" "$busd" 2>/dev/null || true

if [ "${VIRGA_BENCH_ONLY:-}" != bus ]; then
echo "== HTTP layer (GET /healthz on the gateway, wrk 2 threads, 32 connections, 10 s)"
wrk -t2 -c32 -d10s "$VIRGA_EC2_URL/healthz" | sed -n 's/^Requests\/sec: *\(.*\)/http requests\/s: \1/p; s/^ *Latency *\([^ ]*\) .*/http latency avg: \1/p'

# further benchmarks: tests/bench/bench_*.sh DIR BUILD, against the same cloud
for b in tests/bench/bench_*.sh; do
    if [ -f "$b" ]; then sh "$b" "$dir" "$build"; fi
done
fi

# CPU ticks (1/100 s) a process has used so far
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
services="identity compute image network objectstore gateway accounting agent"
idle_s=${VIRGA_BENCH_IDLE_S:-60}
sleep 10   # after the load above: the broker's JIT has compiled what it needed
k0=$(ticks "$(cat "$dir/run/kafka.pid")")
for s in $services; do eval "t0_$s=$(ticks "$(cat "$dir/run/$s.pid")")"; done
sleep "$idle_s"
k1=$(ticks "$(cat "$dir/run/kafka.pid")"); sum=0; each=""
for s in $services; do
    eval "d=\$(( $(ticks "$(cat "$dir/run/$s.pid")") - t0_$s ))"
    sum=$((sum + d)); each="$each $s $(echo "scale=2; $d / $idle_s" | bc)"
done
echo "idle CPU over ${idle_s} s: Virga's 8 processes together $(echo "scale=2; $sum / $idle_s" | bc) % of a core, the Kafka broker $(echo "scale=2; ($k1 - $k0) / $idle_s" | bc) %"
echo "idle CPU per process (% of a core):$each"
echo "Kafka broker resident memory: $(($(ps -o rss= -p "$(cat "$dir/run/kafka.pid")") / 1024)) MiB"


# Last, as it disturbs the cloud: kill -9 of the broker during 1,000 RPCs and 1,000 events.
echo "== broker killed (kill -9) during a storm of 1,000 RPCs and 1,000 events, restarted by devcloud up"
storm_out=$dir/log/storm.out
"$build/bench/bus_storm" -c "$dir/virga.yaml" --calls 1000 --events 1000 --rate 150 --limit-s 300 > "$storm_out" 2>&1 &
storm=$!
for _ in $(seq 1 600); do grep -q "killing time" "$storm_out" && break; sleep 0.2; done
kill -KILL "$(cat "$dir/run/kafka.pid")"
sleep 2
tk=$(date +%s.%N)
deploy/devcloud up --dir "$dir" > /dev/null 2>&1
echo "broker restart (devcloud up after kill -9): $(echo "$(date +%s.%N) - $tk" | bc) s"
wait "$storm" || true
tail -n 1 "$storm_out"
