#!/bin/sh
# sdk-setup.sh - install today's S3 clients for tests/e2e/test_s3_sdks.py, from the
# project's pinned files: the current boto3 / awscli (PyPI) into tests/.venv from
# tests/requirements-sdk.txt, and the AWS SDK for JavaScript v3 (@aws-sdk/client-s3,
# @aws-sdk/lib-storage, npm) into tests/js/node_modules from tests/js/package-lock.json
# with `npm ci`. Idempotent and fast once installed: each side records the hash of what
# it installed from and is redone only when that file (or the node version) changed.
# A registry that cannot be reached is a failure (exit 1 with the reason), never a skip.
# Only the lines below go to stdout (the suite parses them); installers talk on stderr.
#
#   tests/sdk-setup.sh            install what is missing; print where the clients are
#   NODE=/path/to/node NPM=...    use another node / npm (default: PATH, then /usr/bin)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
tests=$root/tests
die() { echo "sdk-setup: $*" >&2; exit 1; }
hash_of() { sha256sum "$@" | sha256sum | cut -c1-64; }

# One install at a time: run-all.sh starts one in the background while the tests that
# need the SDKs (tests/conftest.py's `sdks`, test_console) run this script too; the second
# waits for the first (bounded) instead of clearing the venv or node_modules under it,
# then finds both installed.
exec 9> "$tests/.sdk-setup.lock" && flock -w 1200 9 ||
    die "timed out waiting for another install of the SDKs"

# ---- Python: tests/.venv ----
venv=$tests/.venv
req=$tests/requirements-sdk.txt
want=$(hash_of "$req")
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
    echo "sdk-setup: installing $(grep -c '==' "$req") pinned PyPI packages into $venv" >&2
    /usr/bin/python3 -m venv --clear "$venv" || die "python3 -m venv failed (install python3-venv)"
    "$venv/bin/pip" install --disable-pip-version-check --no-input -q --timeout 30 --retries 2 -r "$req" >&2 ||
        die "pip install -r $req failed (is PyPI reachable?)"
    echo "$want" > "$venv/.installed"
fi

# ---- JavaScript: tests/js/node_modules ----
node=${NODE:-$(command -v node || echo /usr/bin/node)}
npm=${NPM:-$(command -v npm || echo /usr/bin/npm)}
[ -x "$node" ] || die "no node (install nodejs >= 20; deploy/install-deps.sh does)"
[ -x "$npm" ] || die "no npm (install npm; deploy/install-deps.sh does)"
major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node $("$node" --version) is too old: the AWS SDK for JavaScript v3 needs node >= 20"
js=$tests/js
want=$( (cat "$js/package-lock.json"; "$node" --version) | sha256sum | cut -c1-64)
if [ ! -d "$js/node_modules" ] || [ "$(cat "$js/node_modules/.installed" 2>/dev/null)" != "$want" ]; then
    echo "sdk-setup: npm ci in $js" >&2
    (cd "$js" && PATH="$(dirname "$node"):$PATH" "$npm" ci --no-audit --no-fund --loglevel=error \
        --fetch-timeout=30000 --fetch-retries=2 >&2) || die "npm ci failed (is the npm registry reachable?)"
    echo "$want" > "$js/node_modules/.installed"
fi

echo "python=$venv/bin/python"
echo "aws=$venv/bin/aws"
echo "node=$node"
