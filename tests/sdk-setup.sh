#!/bin/sh
# sdk-setup.sh - install today's S3 clients for tests/e2e/test_s3_sdks.py, from the
# project's pinned files: the current boto3 / awscli (PyPI) into tests/.venv from
# tests/requirements-sdk.txt, and the AWS SDK for JavaScript v3 (@aws-sdk/client-s3,
# @aws-sdk/lib-storage, npm) into tests/js/node_modules from tests/js/package-lock.json
# with `npm ci`. Idempotent and fast once installed: each side records the hash of what
# it installed from and is redone only when that file (or the node version) changed.
# Both are kept in the machine's cache and linked from the tree (tests/lib/install_cache.sh),
# so a clean clone installs nothing when the pins are the ones installed before.
# A registry that cannot be reached is a failure (exit 1 with the reason), never a skip.
# Only the lines below go to stdout (the suite parses them); installers talk on stderr.
#
#   tests/sdk-setup.sh            install what is missing; print where the clients are
#   NODE=/path/to/node NPM=...    use another node / npm (default: PATH, then /usr/bin)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
tests=$root/tests
die() { echo "sdk-setup: $*" >&2; exit 1; }
. "$tests/lib/install_cache.sh"

# One install at a time: run-all.sh starts one in the background while the tests that
# need the SDKs (tests/conftest.py's `sdks`, test_console) run this script too; the second
# waits for the first (bounded) instead of clearing the venv or node_modules under it,
# then finds both installed.
exec 9> "$tests/.sdk-setup.lock" && flock -w 1200 9 ||
    die "timed out waiting for another install of the SDKs"

# ---- Python: tests/.venv (a link to the machine's cache: tests/lib/install_cache.sh) ----
req=$tests/requirements-sdk.txt
want=$( (cat "$req"; /usr/bin/python3 --version) | sha256sum | cut -c1-64)
venv=$(install_cache_dir venv-sdk "$want")
if [ -n "$venv" ]; then
    install_cache_lock "$venv" || die "timed out waiting for the install into $venv"
else
    [ ! -L "$tests/.venv" ] || rm -f "$tests/.venv"   # no cache now: install into the tree
    venv=$tests/.venv
fi
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ] ||
   ! "$venv/bin/python" "$tests/lib/verify_pins.py" pip "$req"; then
    echo "sdk-setup: installing $(grep -c '==' "$req") pinned PyPI packages into $venv" >&2
    /usr/bin/python3 -m venv --clear "$venv" || die "python3 -m venv failed (install python3-venv)"
    "$venv/bin/pip" install --disable-pip-version-check --no-input -q --timeout 30 --retries 2 -r "$req" >&2 ||
        die "pip install -r $req failed (is PyPI reachable?)"
    "$venv/bin/python" "$tests/lib/verify_pins.py" pip "$req" || die "$venv does not hold what $req pins after the install"
    echo "$want" > "$venv/.installed"
fi
[ "$venv" = "$tests/.venv" ] || { install_cache_link "$tests/.venv" "$venv"; install_cache_prune venv-sdk "$venv"; }
install_cache_unlock

# ---- JavaScript: tests/js/node_modules ----
node=${NODE:-$(command -v node || echo /usr/bin/node)}
npm=${NPM:-$(command -v npm || echo /usr/bin/npm)}
[ -x "$node" ] || die "no node (install nodejs >= 20; deploy/install-deps.sh does)"
[ -x "$npm" ] || die "no npm (install npm; deploy/install-deps.sh does)"
major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node $("$node" --version) is too old: the AWS SDK for JavaScript v3 needs node >= 20"
js=$tests/js
want=$( (cat "$js/package.json" "$js/package-lock.json"; "$node" --version) | sha256sum | cut -c1-64)
# npm ci installs into the node_modules beside package.json: in the cache, a directory
# with copies of both; tests/js/node_modules links to its node_modules (node resolves
# the packages' own imports from where they really are, in the cache).
top=$(install_cache_dir npm-sdk "$want")
if [ -n "$top" ]; then
    install_cache_lock "$top" || die "timed out waiting for the install into $top"
    mkdir -p "$top" && cp "$js/package.json" "$js/package-lock.json" "$top/" || die "cannot write $top"
else
    [ ! -L "$js/node_modules" ] || rm -f "$js/node_modules"   # no cache now: install into the tree
    top=$js
fi
if [ ! -d "$top/node_modules" ] || [ "$(cat "$top/node_modules/.installed" 2>/dev/null)" != "$want" ] ||
   ! /usr/bin/python3 "$tests/lib/verify_pins.py" npm "$top/package-lock.json" "$top/node_modules"; then
    echo "sdk-setup: npm ci in $top" >&2
    (cd "$top" && PATH="$(dirname "$node"):$PATH" "$npm" ci --no-audit --no-fund --loglevel=error \
        --fetch-timeout=30000 --fetch-retries=2 >&2) || die "npm ci failed (is the npm registry reachable?)"
    /usr/bin/python3 "$tests/lib/verify_pins.py" npm "$top/package-lock.json" "$top/node_modules" ||
        die "$top/node_modules does not hold what the lockfile pins after npm ci"
    echo "$want" > "$top/node_modules/.installed"
fi
[ "$top" = "$js" ] || { install_cache_link "$js/node_modules" "$top/node_modules"; install_cache_prune npm-sdk "$top"; }
install_cache_unlock

echo "python=$tests/.venv/bin/python"
echo "aws=$tests/.venv/bin/aws"
echo "node=$node"
