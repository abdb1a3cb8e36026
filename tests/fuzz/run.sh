#!/bin/sh
# run.sh [SECONDS] - build the libFuzzer targets (query parser and structuring; SigV4
# header, presigned-query and canonicalisation parsers; the object store's aws-chunked
# decoder; policy documents: validation, conditions and evaluation) into build/fuzz/ with
# clang and ASan+UBSan, run each for SECONDS (default 20) on a scratch copy of its seed
# corpus so the checked-in seeds never grow, and print "fuzz: N passed, M failed". A fuzzer that
# exits nonzero (crash, sanitizer report, leak, timeout) counts as failed: its output and
# the crashing input in hex are shown and the input is kept under build/fuzz/crashes/.
# Only the files the targets need are linked, so work in progress elsewhere in the tree
# cannot break the fuzz build. Runtime is bounded: build + 4 x SECONDS.
#
# Each run starts from what the runs before it found, not from the seeds alone: after a
# clean run the inputs the fuzzer added (each new coverage) are kept in the machine's
# cache, VIRGA_FUZZ_CORPUS (default /var/cache/virga/fuzz-corpus/TARGET when it can be
# written; "none" for the seeds only), and the next run loads them with the seeds, so
# SECONDS go into new paths instead of finding the same ones again on every clean clone
# (minimized when it grows past VIRGA_FUZZ_CORPUS_MAX inputs: keep_corpus below).
# The runs themselves are bounded by time, not work, so they run at nice 10: beside
# `make test`'s pytest workers they take only the CPU those leave idle and still end on
# time (the build is work, at the normal priority: niced, it was starved until after
# pytest had ended).
set -u

secs=${1:-20}
case $secs in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/../.." && pwd) || exit 2
cd "$root" || exit 2

CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "fuzz: '$CLANG' not found; libFuzzer needs clang (and libclang-rt-dev)" >&2
    exit 2
fi

out=build/fuzz
mkdir -p "$out/crashes" || exit 2
cflags="-std=gnu11 -Wall -Wextra -Werror -g -O1 -D_GNU_SOURCE -Icommon \
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
 $(pkg-config --cflags jansson libsodium)"
libs="$(pkg-config --libs jansson libsodium) -lpthread"
src="common/query.c common/sigv4.c common/err.c common/jsonutil.c common/byte_runs.c common/strbuf.c common/policy.c common/policy_cond.c common/ids.c"

for f in fuzz_query fuzz_sigv4 fuzz_s3_chunked fuzz_policy; do
    extra=""
    case $f in
        fuzz_s3_chunked) extra="-Iservices/objectstore services/objectstore/s3_chunked.c" ;;
    esac
    echo "fuzz: building $out/$f"
    # shellcheck disable=SC2086 # flag lists are meant to split
    if ! "$CLANG" $cflags $extra "tests/fuzz/$f.c" $src -o "$out/$f" $libs; then
        echo "fuzz: building $f failed" >&2
        exit 2
    fi
done

keep_root=${VIRGA_FUZZ_CORPUS:-/var/cache/virga/fuzz-corpus}
if [ "$keep_root" != none ] && ! { mkdir -p "$keep_root" 2>/dev/null && [ -w "$keep_root" ]; }; then
    keep_root=none
fi

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

pass=0 fail=0
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# keep_corpus FUZZER WORK KEEP: add the run's inputs to the kept corpus. Bounded: past
# VIRGA_FUZZ_CORPUS_MAX inputs (2,000) the kept corpus is replaced by its smallest subset
# with the same coverage (libFuzzer's -merge=1), made beside it and swapped in by rename.
keep_corpus() {
    cp -n "$2/corpus"/* "$3/" 2>/dev/null
    [ "$(find "$3" -type f | wc -l)" -gt "${VIRGA_FUZZ_CORPUS_MAX:-2000}" ] || return 0
    min="$3.min.$$" old="$3.old.$$"
    mkdir -p "$min" &&
        timeout -k 10 300 nice -n 10 "$out/$1" -merge=1 -max_len=4096 -timeout=25 "$min" "$3" >"$2/merge.log" 2>&1 &&
        [ -n "$(ls "$min")" ] && mv "$3" "$old" && mv "$min" "$3" &&
        echo "$1: kept corpus minimized to $(find "$3" -type f | wc -l) inputs"
    rm -rf "$min" "$old"
}

# run_one FUZZER SEED_DIR
run_one() {
    f=$1 seeds=$2 work="$tmp/$1"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp "$seeds"/* "$work/corpus/" 2>/dev/null
    keep=""
    if [ "$keep_root" != none ]; then
        keep=$keep_root/$f
        mkdir -p "$keep" && cp "$keep"/* "$work/corpus/" 2>/dev/null
    fi
    echo "fuzz: running $f for ${secs}s from $(find "$work/corpus" -type f | wc -l) inputs"
    # timeout is a backstop in case the fuzzer itself wedges past max_total_time; an input
    # counts as hung after 25 s (10 before nice: a starved process must not look hung)
    timeout -k 10 $((secs + 120)) nice -n 10 "$out/$f" -max_total_time="$secs" -max_len=4096 \
        -timeout=25 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
        "$work/corpus" >"$work/log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n1)
    if [ "$rc" = 0 ]; then
        n=$(find "$work/corpus" -type f | wc -l)
        echo "$f: ok, ${runs:-?} runs, ${speed:-?} exec/s, corpus $n inputs"
        # libFuzzer names an input by its SHA-1: a copy under the same name is the same
        # input, so runs side by side (other clones) can add to the same directory
        [ -z "$keep" ] || keep_corpus "$f" "$work" "$keep"
        pass=$((pass + 1))
        return
    fi
    fail=$((fail + 1))
    echo "$f: FAILED (exit $rc); fuzzer output follows"
    tail -n 80 "$work/log"
    for a in "$work/artifacts"/*; do
        [ -f "$a" ] || continue
        keep="$out/crashes/$f-$(basename "$a")"
        cp "$a" "$keep"
        echo "$f: crashing input kept as $keep ($(wc -c <"$a") bytes), hex:"
        od -An -tx1 -v "$a" | head -n 64
    done
}

run_one fuzz_query tests/fuzz/corpus/query
run_one fuzz_sigv4 tests/fuzz/corpus/sigv4
run_one fuzz_s3_chunked tests/fuzz/corpus/s3_chunked
run_one fuzz_policy tests/fuzz/corpus/policy

echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
