#!/bin/sh
# bench_hybrid.sh DIR BUILD - bursting (docs/hybrid.md): RunInstances -> running for a
# burst instance against moto's EC2 server and a second Virga cloud, and each public
# cloud's own launch time, on clouds of its own (DIR, run.sh's cloud, is not used).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
echo "== hybrid (burst to public clouds; sim driver in the private and the Virga public cloud)"
/usr/bin/python3 "$here/bench_hybrid.py"
