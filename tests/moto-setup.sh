#!/bin/sh
# moto-setup.sh - install moto's EC2 server (moto[server], PyPI) into tests/.venv-moto from
# the pinned tests/requirements-moto.txt, for tests/e2e/test_hybrid.py (a public EC2 cloud
# nobody here wrote) and the ec2 driver's contract run. Idempotent: redone only when the
# pinned file changed. A registry that cannot be reached is a failure (exit 1), never a
# skip. Prints `moto_server=<path>` on stdout; the installer talks on stderr.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/tests/.venv-moto
req=$root/tests/requirements-moto.txt
want=$(sha256sum "$req" | cut -c1-64)
# One install at a time: run-all.sh starts one in the background while the tests that
# need moto (tests/lib/hybrid.py) run this script too; the second waits for the first
# (bounded) instead of clearing the venv under it, then finds it installed.
exec 9> "$venv.lock" && flock -w 1200 9 ||
    { echo "moto-setup: timed out waiting for another install into $venv" >&2; exit 1; }
if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
    echo "moto-setup: installing $(grep -c '==' "$req") pinned PyPI packages into $venv" >&2
    /usr/bin/python3 -m venv --clear "$venv" || { echo "moto-setup: python3 -m venv failed" >&2; exit 1; }
    "$venv/bin/pip" install --disable-pip-version-check --no-input -q --timeout 30 --retries 2 -r "$req" >&2 ||
        { echo "moto-setup: pip install -r $req failed (is PyPI reachable?)" >&2; exit 1; }
    echo "$want" > "$venv/.installed"
fi
echo "moto_server=$venv/bin/moto_server"
