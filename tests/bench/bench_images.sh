#!/bin/sh
# bench_images.sh DIR BUILD - the image service's background work against the cloud in DIR
# (started by run.sh): how long a RegisterImage takes to become available (the bytes are
# hashed), an ImportImage of a vmdk (download, qemu-img check and convert to qcow2, upload)
# with the time spent in each step, and a CopyImage. Sizes are fixed; each wait is bounded.
set -eu
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 "$here/bench_images.py" "$dir"
