#!/bin/sh
# bench_console.sh DIR BUILD - the web console's figures (docs/console.md), in headless
# Chromium (tests/js/console_e2e.mjs) against run.sh's cloud in DIR:
#   - first page load on loopback: from the navigation's start to the login form in the
#     page (performance.mark, the page's own clock), and the bytes transferred (encoded),
#     median of 10 fresh browsers;
#   - launch button to `running` shown in the instances list (a container instance of the
#     default busybox image; as root only, else the figure is skipped and says why).
set -eu
dir=$1
build=${2:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
echo "== web console (headless Chromium, loopback)"
if [ ! -x /usr/bin/chromium ]; then echo "console: skipped (no /usr/bin/chromium: deploy/install-deps.sh)"; exit 0; fi
node=$(sh "$root/tests/sdk-setup.sh" 2>/dev/null | sed -n 's/^node=//p')
. "$dir/env"
virgadm="$root/$build/bin/virgadm"
name=bench-console-$(date +%s)
acct=$("$virgadm" -c "$dir/virga.yaml" account create "$name" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["account_id"])')
echo "bench-console-password" | "$virgadm" -c "$dir/virga.yaml" user password "$acct" admin > /dev/null
cfg() { printf '{"scenario":"%s","url":"%s","account":"%s","user":"admin","password":"bench-console-password"%s}' \
    "$1" "$VIRGA_EC2_URL" "$name" "${2:-}"; }
loads=$dir/console-loads.txt
: > "$loads"
for _ in 1 2 3 4 5 6 7 8 9 10; do
    "$node" "$root/tests/js/console_e2e.mjs" "$(cfg first_load)" | tail -1 >> "$loads"
done
/usr/bin/python3 - "$loads" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ms = statistics.median(r["login_shown_ms"] for r in rows)
wall = statistics.median(r["first_load_ms"] for r in rows)
kib = statistics.median(r["first_load_bytes"] for r in rows) / 1024
dcl = statistics.median(r["dom_content_loaded_ms"] for r in rows)
print("console first page load: %.0f ms from navigation to the login form shown (page clock; DOMContentLoaded %.0f ms; "
      "%.0f ms as the driver saw it), %.1f KiB transferred (median of %d)" % (ms, dcl, wall, kib, len(rows)))
PY
image=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("virga-busybox-rootfs", ""))' \
        "$dir/default-images.json" 2>/dev/null || true)
if [ "$(id -u)" != 0 ] || [ -z "$image" ]; then
    echo "console launch to running: skipped (needs root and the default busybox image)"
    exit 0
fi
for i in 1 2 3; do
    "$node" "$root/tests/js/console_e2e.mjs" "$(cfg instance ",\"image\":\"$image\",\"console_needle\":\"\"")" | tail -1
done | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
bad = [r["error"] for r in rows if "error" in r]
if bad:
    print("console launch to running: failed: %s" % bad[0][:300])
else:
    t = [r["launch_to_running_ms"] / 1000 for r in rows]
    print("console launch button to running in the list (container, polling 3 s): median %.1f s, max %.1f s (%d launches)"
          % (statistics.median(t), max(t), len(t)))'
