#!/bin/sh
# bench_s3.sh DIR BUILD - Virga's object store against Ceph's own S3 gateway (radosgw)
# on the same single-node Ceph cluster of the cloud in DIR, with the same client
# (s3_load: 16 threads, SigV4 with UNSIGNED-PAYLOAD), in the same run: 4 KiB and 4 MiB
# PUT then GET, 10 s each, first as plain requests, then with the checksums today's SDKs
# send (a CRC32 header on each PUT, x-amz-checksum-mode on each GET: Virga verifies and
# returns them), then the peak memory (VmHWM) of both servers. Loopback only.
set -eu
dir=$1 build=$2
. "$dir/env"
if [ "$(cat "$dir/objectstore-backend" 2>/dev/null)" != rados ]; then
    echo "bench_s3: the cloud in $dir does not use RADOS; skipped"
    exit 0
fi
base=$(cat "$dir/port-base")
rgw_port=$((base + 75))   # outside Ceph's own N+80..N+99
deploy/ceph/rgw-up --dir "$dir" --port "$rgw_port" --access-key BENCHRGWACCESSKEY000 \
    --secret-key benchrgwsecretkey0000000000000000000000 > /dev/null

secs=${VIRGA_BENCH_S3_SECONDS:-10}
run() {   # name endpoint ak sk size [s3_load options]
    name=$1 ep=$2 ak=$3 sk=$4 size=$5
    shift 5
    "$build/bench/s3_load" --endpoint "$ep" --bucket "bench-$size" --access-key "$ak" --secret-key "$sk" \
        --size "$size" --threads 16 --seconds "$secs" --objects 64 "$@" | sed "s/^/$name /"
}
hwm() { awk '/VmHWM/{print $2/1024 " MiB"}' "/proc/$1/status"; }

echo "== S3: Virga object store vs radosgw, same Ceph cluster (bluestore), s3_load 16 threads, ${secs} s per phase"
for ck in "" crc32; do
    for size in 4096 4194304; do
        run virga "$VIRGA_S3_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" $size ${ck:+--checksum $ck}
        run radosgw "http://127.0.0.1:$rgw_port" BENCHRGWACCESSKEY000 benchrgwsecretkey0000000000000000000000 $size \
            ${ck:+--checksum $ck}
    done
done
echo "peak memory: virga-objectstore $(hwm "$(cat "$dir/run/objectstore.pid")"), radosgw $(hwm "$(cat "$dir/run/radosgw.pid")")"
