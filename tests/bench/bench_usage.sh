#!/bin/sh
# bench_usage.sh DIR BUILD - usage accounting (docs/accounting.md), on a cloud of its own
# whose host simulates instances: events per second from the logs into records, the lag
# from a lifecycle change to its record acknowledged on virga.usage, and the time of a
# month's invoice for an account with 10,000 instances. DIR (run.sh's cloud) is not used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
echo "== usage accounting (sim driver)"
/usr/bin/python3 "$here/bench_usage.py"
