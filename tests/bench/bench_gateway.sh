#!/bin/sh
# bench_gateway.sh DIR BUILD - signed EC2 requests against the cloud in DIR (started by
# run.sh with the rate limit off): DescribeRegions, answered by the gateway itself after
# SigV4 verification with a cached signing key, and DescribeKeyPairs, which also makes
# a bus round trip to compute and a PostgreSQL query, with as many connections as the
# gateway has HTTP threads (16) and with 4 and 16 times as many (forwarded actions hold
# no thread while the bus works); then a flood of requests signed with an access key
# identity does not know (refused from the gateway's memory of unknown keys, run.sh turns
# the per-address failure limit off since wrk's clients all come from 127.0.0.1) beside
# a tenant's DescribeKeyPairs. wrk, 10 s each, loopback only.
set -eu
dir=$1
. "$dir/env"
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

report() {   # name, wrk output
    rps=$(echo "$2" | sed -n 's/^Requests\/sec: *//p')
    p50=$(echo "$2" | awk '$1=="50%"{print $2}')
    p99=$(echo "$2" | awk '$1=="99%"{print $2}')
    non2xx=$(echo "$2" | sed -n 's/^ *Non-2xx or 3xx responses: *//p')
    echo "$1: ${rps} requests/s, p50 ${p50}, p99 ${p99}, non-2xx ${non2xx:-0}"
}

/usr/bin/python3 "$here/sign_request.py" DescribeRegions > "$tmp/regions.lua"
/usr/bin/python3 "$here/sign_request.py" DescribeKeyPairs > "$tmp/keys.lua"
# warm the key cache and make one key pair so DescribeKeyPairs returns something
/usr/bin/aws --endpoint-url "$VIRGA_EC2_URL" ec2 create-key-pair --key-name bench > /dev/null

echo "== gateway: signed DescribeRegions (wrk 2 threads, 64 connections, 10 s)"
report "DescribeRegions" "$(wrk -t2 -c64 -d10s --latency -s "$tmp/regions.lua" "$VIRGA_EC2_URL/")"
echo "== gateway: signed DescribeKeyPairs, through the bus to compute (wrk 2 threads, 16 connections, 10 s)"
report "DescribeKeyPairs" "$(wrk -t2 -c16 -d10s --latency -s "$tmp/keys.lua" "$VIRGA_EC2_URL/")"
echo "== gateway: signed DescribeKeyPairs, more connections than HTTP threads (wrk 2 threads, 64 connections, 10 s)"
report "DescribeKeyPairs c64" "$(wrk -t2 -c64 -d10s --latency -s "$tmp/keys.lua" "$VIRGA_EC2_URL/")"
echo "== gateway: signed DescribeKeyPairs (wrk 2 threads, 256 connections, 10 s)"
report "DescribeKeyPairs c256" "$(wrk -t2 -c256 -d10s --latency -s "$tmp/keys.lua" "$VIRGA_EC2_URL/")"
echo "== gateway: unknown access key flood (wrk 1 thread, 64 connections) beside a tenant's DescribeKeyPairs (wrk 1 thread, 16 connections), 10 s"
AWS_ACCESS_KEY_ID=AKIAUNKNOWNBENCHKEY01 /usr/bin/python3 "$here/sign_request.py" DescribeKeyPairs > "$tmp/unknown.lua"
wrk -t1 -c64 -d10s --latency -s "$tmp/unknown.lua" "$VIRGA_EC2_URL/" > "$tmp/unknown.out" &
flood=$!
tenant=$(wrk -t1 -c16 -d10s --latency -s "$tmp/keys.lua" "$VIRGA_EC2_URL/")
wait "$flood"
report "unknown key (all refused 401)" "$(cat "$tmp/unknown.out")"
report "tenant DescribeKeyPairs meanwhile" "$tenant"
echo "== gateway: where a forwarded DescribeKeyPairs spends its time (8 s at 16, 64 and 256 connections)"
for c in 16 64 256; do /usr/bin/python3 "$here/gateway_breakdown.py" "$dir" "$2" "$c" 8; done
