#!/bin/sh
# install-deps.sh - install, with apt, every Debian 12 package Virga needs to build, run
# and test, then the Apache Kafka broker's jars from Maven Central (deploy/kafka/fetch,
# checksummed) and librdkafka built from pinned source (deploy/librdkafka/build).
# Idempotent, and fast when everything is present (dpkg is asked first; apt runs only for
# what is missing; the jars are fetched and the library built once).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

PACKAGES="
build-essential clang pkg-config
libpq-dev zlib1g-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libsodium-dev
librados-dev libmicrohttpd-dev libssl-dev libxml2-dev libcmocka-dev libclang-rt-14-dev
libnftables-dev libmnl-dev
postgresql ceph-mon ceph-osd ceph-mgr ceph-common radosgw
qemu-system-x86 qemu-utils busybox-static dnsmasq-base nftables iproute2
awscli python3-boto3 python3-pytest python3-pytest-xdist python3-venv
wrk curl procps psmisc poppler-utils
chromium fonts-liberation
openjdk-17-jre-headless maven
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
# (chromium: the web console tests and bench drive it headless, tests/e2e/test_console.py)
# node and npm (>= 20) for the JavaScript SDK tests: kept when the machine has its own
# (this machine kind ships node 20 with npm), else Debian's.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
fetch_sources() { "$here/kafka/fetch" > /dev/null && "$here/librdkafka/build" > /dev/null; }
if [ -z "$missing" ]; then fetch_sources; exit 0; fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
# Debian starts a PostgreSQL cluster on 5432 at install; Virga runs its own clusters
# (devcloud), so the packaged one is left as the system's administrator configured it.
fetch_sources
