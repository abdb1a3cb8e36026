"""The examples of README.md and docs/*.md run as written: every ```sh block that
starts with `. var/env` (what a reader types in the directory where `make run` made
var/) and every ```python block, in file order, against a test cloud. They run in a
scratch directory where var/ is the cloud's directory and build/ this tree's, with
nothing else of the environment: a missing import, a file nothing makes or a command
that fails is a failure here."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness import BIN, ROOT

DOCS = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
                              if f.endswith(".md"))
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def examples():
    out = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc)) as f:
            text = f.read()
        for m in FENCE.finditer(text):
            lang, body = m.group(1), m.group(2)
            line = text.count("\n", 0, m.start()) + 1
            if (lang == "sh" and body.startswith(". var/env\n")) or lang == "python":
                out.append(("%s:%d" % (doc, line), lang, body))
    return out


EXAMPLES = examples()


def test_there_are_examples_to_run():
    # the convention above must keep matching what the docs hold
    docs = {e[0].split(":")[0] for e in EXAMPLES}
    assert {"README.md", "docs/api.md", "docs/objectstore.md", "docs/images.md"} <= docs, docs
    assert len(EXAMPLES) >= 6


@pytest.fixture(scope="module")
def scratch(cloud):
    d = tempfile.mkdtemp(prefix="virga-docs-")
    os.symlink(cloud.dir, os.path.join(d, "var"))
    os.symlink(os.path.dirname(BIN), os.path.join(d, "build"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("where,lang,body", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_runs_as_written(cloud, scratch, where, lang, body):
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": scratch, "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1"}
    if lang == "sh":
        args = ["bash", "-euo", "pipefail", "-c", body]
    else:
        # as a reader who has sourced var/env in their shell, then runs the snippet
        env.update(cloud.env)
        args = ["/usr/bin/python3", "-c", body]
    r = subprocess.run(args, cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "%s failed (%d):\n%s\n%s" % (where, r.returncode, r.stdout[-3000:], r.stderr[-3000:])
