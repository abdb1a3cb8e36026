#!/bin/sh
# run-unit.sh BUILD - run every cmocka unit test binary; print "unit: N passed, N failed".
#
# test_vm_drivers (guests under QEMU's TCG: a core busy for a minute or more) runs beside
# the others, which mostly wait (their own PostgreSQL, timers, sockets) and need little
# CPU: the step takes about the longer of the two instead of their sum. It shares nothing
# with them (its host and namespaces are named after its pid, its instances are its own).
build=${1:-build}
pass=0 fail=0
beside="test_vm_drivers"
tmp=$(mktemp -d /tmp/virga-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# one NAME: run the binary; its output on stdout, its exit code in $tmp/NAME.rc
one() {
    "$build/tests/$1" > "$tmp/$1.out" 2>&1
    echo $? > "$tmp/$1.rc"
}

# count NAME: its result line and totals from $tmp/NAME.{out,rc}
count() {
    out=$(cat "$tmp/$1.out"); rc=$(cat "$tmp/$1.rc")
    p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
    f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi   # crashed before its summary
    if [ "$f" != 0 ]; then echo "$out"; fi
    echo "$1: $p passed, $f failed"
    pass=$((pass + p)); fail=$((fail + f))
}

pids=""
for name in $beside; do
    [ -x "$build/tests/$name" ] || continue
    one "$name" & pids="$pids $!"
done
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    case " $beside " in *" $name "*) continue ;; esac
    one "$name"
    count "$name"
done
for pid in $pids; do wait "$pid"; done
for name in $beside; do
    [ -f "$tmp/$name.rc" ] && count "$name"
done
echo "unit: $pass passed, $fail failed"
[ "$fail" = 0 ]
