#!/bin/sh
# run-all.sh BUILD - every test: the Python integration and end-to-end suites (which start
# their own clouds with deploy/devcloud on their own ports and directories) and, beside
# them, the C unit tests, the RADOS backend test on a throwaway Ceph cluster and bounded
# fuzzing. The last line is "N passed, N failed".
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Each step's wall time, printed as it ends and all together before the last line.
run_start=$(date +%s); step_start=$run_start; times=""
step_done() {
    now=$(date +%s)
    echo "time: $1 $((now - step_start)) s"
    times="$times $1=$((now - step_start))s"
    step_start=$now
}
# The machine's CPU busy (all cores, every process: /proc/stat) between two marks, in %:
# how much room the waiting suites leave, so whether another pytest worker or more work
# beside pytest would find idle CPU (docs/testing.md).
cpu_mark() { read -r _ u n s i w q sq st _ < /proc/stat; echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"; }
cpu_busy() {   # cpu_busy "MARK": % busy since MARK
    set -- $1 $(cpu_mark)
    echo $(( ($3 - $1) * 100 / ($4 - $2 + 1) ))
}
run_cpu=$(cpu_mark)
# bg NAME CMD...: run CMD in the background, its output in $bg_dir/NAME.log and its own
# wall time in $bg_dir/NAME.secs; bg_done NAME prints that time as the step's.
bg_dir=$(mktemp -d /tmp/virga-run-all.XXXXXX)
trap 'rm -rf "$bg_dir"' EXIT
bg() {
    name=$1; shift
    (start=$(date +%s); "$@" > "$bg_dir/$name.log" 2>&1; rc=$?
     echo $(($(date +%s) - start)) > "$bg_dir/$name.secs"; exit $rc) &
}
bg_done() {
    secs=$(cat "$bg_dir/$1.secs" 2>/dev/null || echo "?")
    echo "time: $1 $secs s (in the background)"
    times="$times $1=${secs}s"
}

# Everything but pytest runs in the background, started at once: the RADOS backend test
# (its own throwaway Ceph cluster), fuzzing (a fixed time per target), the installs of
# the SDKs (tests/sdk-setup.sh) and of moto (tests/moto-setup.sh: a few seconds when the
# machine's cache has them, tests/lib/install_cache.sh), the guest images build
# and, once the images and moto are there, the unit tests. None uses another's ports or
# files, and each mostly waits (a Ceph cluster starting, the package registries) or runs
# for a fixed time. pytest, the longest by far, starts at once too and needs none of them
# to begin: the tests that use the SDKs or moto run the install script themselves
# (tests/conftest.py's `sdks`, test_console, tests/lib/hybrid.py), which waits for the
# background one (both scripts hold a lock while they install), and a cloud with the
# default images waits for their build (below), so a test waits only if it comes before
# what it needs is done. The pytest workers mostly wait (clouds starting, guests booting,
# deadlines), so the CPU of these steps fits in their idle time instead of coming before
# pytest (on CI: 63 s of images and moto, then 92 s of unit tests). A background step's
# time below is its own (from its start); the total is the run's wall time.
bg rados bash tests/objectstore/run-rados-test.sh "$build"; rados_pid=$!
# Fuzzing's build at the normal priority: niced, it (one core for ~40 s) was starved while
# the pytest workers kept the cores busy and ended after pytest did (a run at load 50-80:
# 1,173 s of fuzzing with 3 s a target), so it would add its whole time, on one core, to
# a run whose pytest keeps the CPU busy, where now it shares the cores early. The fuzzers'
# runs, bounded by time rather than work, are niced by tests/fuzz/run.sh: they take the
# CPU pytest leaves idle and still end on time, starting from the corpus earlier runs kept.
bg fuzz sh tests/fuzz/run.sh "${VIRGA_FUZZ_SECONDS:-20}"; fuzz_pid=$!
bg sdk-setup sh tests/sdk-setup.sh; sdk_pid=$!
bg moto-setup sh tests/moto-setup.sh; moto_pid=$!

# The guest images (cached after the first run), in the background too: the test clouds
# register them as defaults, and the unit tests' instance drivers (test_vm_drivers) boot
# them. pytest starts meanwhile: a cloud with default images that starts before the build
# has ended registers them once it has (tests/lib/harness.py, VIRGA_TEST_IMAGES_DONE, a
# file this writes at the end of the build), so the build overlaps the first clouds'
# starts. The kernel package is kept in the machine's cache (/var/cache/virga, as
# librdkafka's build and devcloud's PostgreSQL template are) when it can be written, for
# this build and tests/images' (exported): a clean clone does not download and unpack it
# again.
if [ -z "${VIRGA_IMAGES_CACHE:-}" ] && mkdir -p /var/cache/virga/images 2>/dev/null && [ -w /var/cache/virga/images ]; then
    VIRGA_IMAGES_CACHE=/var/cache/virga/images
fi
export VIRGA_IMAGES_CACHE=${VIRGA_IMAGES_CACHE:-$root/build/cache/images}
images_done="$bg_dir/images.done"
export VIRGA_TEST_IMAGES_DONE="$images_done"
bg images sh -c 'bash deploy/images/build; rc=$?; echo $rc > "$1"; exit $rc' sh "$images_done"; images_pid=$!

# The unit tests, in the background beside pytest, once the images are built and moto is
# installed (pinned, PyPI, tests/.venv-moto; the ec2 driver's contract run skips without
# it): moto-setup.sh waits for the install started above, then only prints where moto is.
bg unit sh -c 'while [ ! -f "$2" ]; do sleep 1; done
    sh tests/moto-setup.sh >/dev/null 2>&1 ||
        echo "tests/moto-setup.sh failed: the ec2 driver contract skips, the hybrid tests fail"
    exec sh tests/run-unit.sh "$1"' sh "$build" "$images_done"; unit_pid=$!

# Three pytest workers (pytest-xdist) by default: the suites mostly wait on clouds
# starting, on guests booting and on the network, so with two workers the two cores
# were busy about half the time (load average 2-5 during pytest on a clean CI run,
# 1,323 s). --dist loadgroup keeps a file's tests in one worker, so a module's cloud is
# started once, and the files that share a cloud (tests/conftest.py, SHARED_CLOUDS) in
# one worker too, so that it starts once. Every cloud has its own ports
# (tests/lib/harness.py reserves them per process) and directories.
# VIRGA_TEST_WORKERS=0 runs them one after another.
workers=${VIRGA_TEST_WORKERS:-3}
par=""
if [ "$workers" != 0 ] && /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
    par="-n $workers --dist loadgroup"
fi
junit=$(mktemp /tmp/virga-junit.XXXXXX.xml)
pytest_cpu=$(cpu_mark)
# The seconds each file took last time: tests/conftest.py starts the longest files first,
# so that no long file is left to run alone at the end (see docs/testing.md).
file_times="$root/$build/pytest-file-times.json"
# shellcheck disable=SC2086
VIRGA_BIN_DIR="$root/$build/bin" VIRGA_TEST_FILE_TIMES="$file_times" /usr/bin/python3 -m pytest -p no:cacheprovider \
    -q $par --durations=30 --junitxml="$junit" tests/integration tests/e2e tests/images
pyrc=$?
counts=$(/usr/bin/python3 - "$junit" "$file_times" <<'PY'
import collections, json, os, sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 1"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
# seconds per file (setup, call and teardown of its tests), kept with the build
per_file = collections.Counter()
for case in root.iter("testcase"):
    mod = case.get("classname", "").split(".")
    if len(mod) >= 3 and mod[0] == "tests":
        per_file["%s/%s.py" % (mod[1], mod[2])] += float(case.get("time") or 0)
if per_file:
    old = {}
    try:
        with open(sys.argv[2]) as fh:
            old = json.load(fh)
    except (OSError, ValueError):
        pass
    old.update({k: round(v, 1) for k, v in per_file.items()})
    with open(sys.argv[2] + ".tmp", "w") as fh:
        json.dump(old, fh, indent=1, sort_keys=True)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    print("pytest: slowest files:", ", ".join("%s %.0f s" % kv for kv in per_file.most_common(10)), file=sys.stderr)
print(t - f - sk, f)
PY
)
rm -f "$junit"
echo "cpu: $(cpu_busy "$pytest_cpu") % busy during pytest ($(nproc) cores)"
step_done pytest
pp=${counts% *}; pf=${counts#* }
if [ "$pyrc" != 0 ] && [ "$pyrc" != 5 ] && [ "$pf" = 0 ]; then pf=1; fi

# What ran beside pytest: normally long done by now.
wait "$images_pid" || { tail -n 5 "$bg_dir/images.log"; echo "deploy/images/build failed: the default-image tests fail, the container and qemu driver tests skip"; }
bg_done images
wait "$moto_pid" || { tail -n 5 "$bg_dir/moto-setup.log"; echo "tests/moto-setup.sh failed: the ec2 driver contract skips, the hybrid tests fail"; }
bg_done moto-setup
wait "$sdk_pid" || { tail -n 5 "$bg_dir/sdk-setup.log"; echo "tests/sdk-setup.sh failed: the SDK tests fail"; }
bg_done sdk-setup

# result_of LOG NAME: "P F" from the line "NAME: P passed, F failed" of LOG; "0 1" (a failure)
# when the step ended without it.
result_of() {
    line=$(sed -n "s/^$2: \([0-9]*\) passed, \([0-9]*\) failed\$/\1 \2/p" "$1" | tail -n 1)
    echo "${line:-0 1}"
}

wait "$unit_pid"
cat "$bg_dir/unit.log"
set -- $(result_of "$bg_dir/unit.log" unit); up=$1; uf=$2
bg_done unit

# The RADOS backend against a throwaway single-node Ceph cluster.
wait "$rados_pid"
tail -n 1 "$bg_dir/rados.log"
set -- $(result_of "$bg_dir/rados.log" "rados backend"); rp=$1; rf=$2
if [ "$rf" != 0 ]; then tail -n 40 "$bg_dir/rados.log"; fi
bg_done rados

# Fuzzing of the Query API and SigV4 parsers, the aws-chunked decoder and policies
# (VIRGA_FUZZ_SECONDS each).
wait "$fuzz_pid"
tail -n 5 "$bg_dir/fuzz.log"
set -- $(result_of "$bg_dir/fuzz.log" fuzz); fp=$1; ff=$2
bg_done fuzz

passed=$((up + rp + fp + pp)); failed=$((uf + rf + ff + pf))
echo "cpu: $(cpu_busy "$run_cpu") % busy during the run ($(nproc) cores)"
echo "time:$times total=$(($(date +%s) - run_start))s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
