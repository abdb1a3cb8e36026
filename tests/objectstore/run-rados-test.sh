#!/usr/bin/env bash
# run-rados-test.sh - run tests/objectstore/test_backend_rados.c against a throwaway
# one-node Ceph cluster (memstore) started with deploy/ceph/ceph-up in a temp dir on a
# free port range, then stopped and removed. Prints the cmocka output and a summary line
# "rados backend: N passed, N failed"; exits nonzero on any failure.
#
#   tests/objectstore/run-rados-test.sh [BUILD]     (BUILD: where libvirga-common.a is; default build)
#   CC=clang SAN="-fsanitize=address,undefined" tests/objectstore/run-rados-test.sh build-asan
#   KEEP=1 ...   leave the cluster and dir in place (printed) for a look afterwards
set -euo pipefail

cd "$(dirname "$0")/../.."
build=${1:-build}
cc=${CC:-cc}
san=${SAN:-}
opt=${OPT:--O2}
die() { echo "run-rados-test: $*" >&2; exit 1; }

[ -x deploy/ceph/ceph-up ] || die "deploy/ceph/ceph-up is missing"
[ -f "$build/lib/libvirga-common.a" ] || make -s BUILD="$build" "$build/lib/libvirga-common.a"

# A port base whose whole range (base+80..base+99, see ceph-up) nobody listens on.
port_free() { ! ss -Htln 2> /dev/null | awk '{print $4}' | grep -qE ":$1\$"; }
pick_base() {
    for _ in $(seq 50); do
        local base=$((30000 + 100 * $(shuf -i 0-299 -n 1))) p ok=1
        for p in $(seq $((base + 80)) $((base + 99))); do port_free "$p" || { ok=0; break; }; done
        [ $ok = 1 ] && { echo "$base"; return; }
    done
    die "no free port range found"
}

dir=$(mktemp -d /tmp/virga-rados-test.XXXXXX)
chmod 755 "$dir"
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "run-rados-test: kept $dir (stop: deploy/ceph/ceph-down --dir $dir)"; return; fi
    deploy/ceph/ceph-down --dir "$dir" > /dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

base=$(pick_base)
deploy/ceph/ceph-up --dir "$dir" --port-base "$base" --store memstore > "$dir/ceph-up.out" 2>&1 ||
    { cat "$dir/ceph-up.out" >&2; die "ceph-up failed"; }

# the build's own flags and libraries (librdkafka is the pinned one in the cache, linked
# statically: there may be no system librdkafka for pkg-config to find)
flags=(-s --no-print-directory BUILD="$build" CC="$cc" OPT="$opt" SAN="$san")
cflags=$(make "${flags[@]}" print-CFLAGS)
libs=$(make "${flags[@]}" print-LDLIBS)
# shellcheck disable=SC2086
"$cc" $cflags -Iservices/objectstore \
    tests/objectstore/test_backend_rados.c services/objectstore/backend*.c \
    "$build/lib/libvirga-common.a" -o "$dir/test_backend_rados" \
    $libs -lcmocka

set +e
out=$(VIRGA_OBJECTSTORE_RADOS_CONF=$dir/ceph/ceph.conf \
      VIRGA_OBJECTSTORE_RADOS_KEYRING=$dir/ceph/ceph.client.virga.keyring \
      VIRGA_OBJECTSTORE_RADOS_USER=virga VIRGA_OBJECTSTORE_RADOS_POOL=virga \
      "$dir/test_backend_rados" 2>&1)
rc=$?
set -e
echo "$out"
p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
p=${p:-0}; f=${f:-0}
if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
echo "rados backend: $p passed, $f failed"
[ "$f" = 0 ]
