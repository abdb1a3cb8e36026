#!/bin/sh
# moto-setup.sh - install moto's EC2 server (moto[server], PyPI) into tests/.venv-moto from
# the pinned tests/requirements-moto.txt, for tests/e2e/test_hybrid.py (a public EC2 cloud
# nobody here wrote) and the ec2 driver's contract run. Idempotent: redone only when the
# pinned file changed. The venv is kept in the machine's cache and tests/.venv-moto links
# to it (tests/lib/install_cache.sh), so a clean clone installs nothing when the pins are
# the ones installed before. A registry that cannot be reached is a failure (exit 1),
# never a skip. Prints `moto_server=<path>` on stdout; the installer talks on stderr.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/install_cache.sh"
link=$root/tests/.venv-moto
req=$root/tests/requirements-moto.txt
want=$( (cat "$req"; /usr/bin/python3 --version) | sha256sum | cut -c1-64)
# One install at a time: run-all.sh starts one in the background while the tests that
# need moto (tests/lib/hybrid.py) run this script too; the second waits for the first
# (bounded) instead of clearing the venv under it, then finds it installed.
exec 9> "$link.lock" && flock -w 1200 9 ||
    { echo "moto-setup: timed out waiting for another install into $link" >&2; exit 1; }
venv=$(install_cache_dir venv-moto "$want")
if [ -n "$venv" ]; then
    install_cache_lock "$venv" || { echo "moto-setup: timed out waiting for the install into $venv" >&2; exit 1; }
else
    [ ! -L "$link" ] || rm -f "$link"   # no cache now: install into the tree, not the link's target
    venv=$link
fi
if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ] ||
   ! "$venv/bin/python" "$root/tests/lib/verify_pins.py" pip "$req"; then
    echo "moto-setup: installing $(grep -c '==' "$req") pinned PyPI packages into $venv" >&2
    /usr/bin/python3 -m venv --clear "$venv" || { echo "moto-setup: python3 -m venv failed" >&2; exit 1; }
    "$venv/bin/pip" install --disable-pip-version-check --no-input -q --timeout 30 --retries 2 -r "$req" >&2 ||
        { echo "moto-setup: pip install -r $req failed (is PyPI reachable?)" >&2; exit 1; }
    "$venv/bin/python" "$root/tests/lib/verify_pins.py" pip "$req" ||
        { echo "moto-setup: $venv does not hold what $req pins after the install" >&2; exit 1; }
    echo "$want" > "$venv/.installed"
fi
[ "$venv" = "$link" ] || { install_cache_link "$link" "$venv"; install_cache_prune venv-moto "$venv"; }
echo "moto_server=$link/bin/moto_server"
