"""Check that an install kept in the machine's cache (tests/lib/install_cache.sh) holds
exactly what the pinned file asks for, before a run trusts it: a partly deleted or
hand-changed cache directory is installed again instead of failing tests far from the
cause. Prints what is wrong and exits 1; exits 0 silently when all is there.

  PYTHON-OF-THE-VENV verify_pins.py pip REQUIREMENTS   every name==version installed
  /usr/bin/python3 verify_pins.py npm LOCKFILE NODE_MODULES
                                                       every package of the lockfile there
                                                       at its version
"""
import json
import os
import re
import sys


def check_pip(req):
    from importlib import metadata
    wrong = []
    for line in open(req):
        m = re.match(r"\s*([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)", line)
        if not m:
            continue
        name = re.sub(r"\[.*\]", "", m.group(1))
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != m.group(2):
            wrong.append("%s: want %s, have %s" % (name, m.group(2), have))
    return wrong


def check_npm(lockfile, node_modules):
    wrong = []
    packages = json.load(open(lockfile)).get("packages", {})
    top = os.path.dirname(node_modules)
    for path, info in packages.items():
        if not path.startswith("node_modules/") or info.get("link"):
            continue
        try:
            have = json.load(open(os.path.join(top, path, "package.json"))).get("version")
        except (OSError, ValueError):
            have = None
        if have is None and info.get("optional"):
            continue   # a package for another platform, which npm ci skips
        if have != info.get("version"):
            wrong.append("%s: want %s, have %s" % (path, info.get("version"), have))
    return wrong


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "pip":
        wrong = check_pip(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "npm":
        wrong = check_npm(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
    for w in wrong[:10]:
        print("verify_pins: " + w, file=sys.stderr)
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
