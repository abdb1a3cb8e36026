"""Shared fixtures: a throwaway Virga cloud started by deploy/devcloud.

Each test session gets its own directory under /tmp and its own port base, so tests
never collide with a developer's `make run` cloud (port base 8700, dir var/) or with
another test run."""
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from harness import Cloud  # noqa: E402

# A stalled request body is refused after this many seconds (the default is 20): short,
# so that the tests of it wait little, and still long beside any pause of a client that
# is sending (a server thread busy elsewhere does not count, see docs/architecture.md).
BODY_IDLE_S = 5
IDLE_ENV = {"VIRGA_OBJECTSTORE_BODY_IDLE_TIMEOUT_S": str(BODY_IDLE_S),
            "VIRGA_GATEWAY_BODY_IDLE_TIMEOUT_S": str(BODY_IDLE_S)}


@pytest.fixture(scope="session")
def cloud():
    c = Cloud.start(default_images=True, env=IDLE_ENV)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def dir_cloud():
    """The one cloud whose object store keeps objects in a local directory (the session
    cloud's is RADOS), shared by every suite that holds both backends to the same
    behaviour; its 64 MiB object limit makes EntityTooLarge cheap to reach."""
    c = Cloud.start(extra_args=("--objectstore", "dir"),
                    env={"VIRGA_OBJECTSTORE_MAX_OBJECT_BYTES": str(64 * 1024 * 1024), **IDLE_ENV})
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(params=["rados", "dir"])
def anycloud(request):
    """Each storage backend in turn: both must behave the same."""
    return request.getfixturevalue("cloud" if request.param == "rados" else "dir_cloud")


@pytest.fixture(scope="session")
def sdks():
    """Today's SDKs (boto3/awscli from PyPI in tests/.venv, the AWS SDK for JavaScript v3
    in tests/js), installed from the project's pinned files by tests/sdk-setup.sh; a failed
    install fails the tests that use them. A dict: python, aws, node."""
    r = subprocess.run(["sh", os.path.join(os.path.dirname(__file__), "sdk-setup.sh")], capture_output=True,
                       text=True, timeout=1200)
    if r.returncode != 0:
        pytest.fail("tests/sdk-setup.sh failed (today's SDKs are part of the suite):\n" + r.stderr[-4000:])
    return dict(line.split("=", 1) for line in r.stdout.split())


# Longest files first. pytest-xdist (--dist loadfile) hands each worker the next file in
# collection order when it runs short of work, so a long file collected last runs alone
# at the end while the other worker idles. Ordered by the seconds each file took in the
# last run (tests/run-all.sh writes them to VIRGA_TEST_FILE_TIMES from its --junitxml);
# without that file, by tests/file-seconds.json: what they took on the 2-core CI machine
# (three workers, 2026-12-06). A file in neither comes after these, in its usual order.
# Every worker computes the same order, as xdist requires.
FILE_SECONDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "file-seconds.json")


def file_seconds():
    times = {}
    for path in (FILE_SECONDS, os.environ.get("VIRGA_TEST_FILE_TIMES")):
        if path and os.path.exists(path):
            try:
                with open(path) as f:
                    times.update({k: float(v) for k, v in json.load(f).items()})
            except (OSError, ValueError, AttributeError):
                pass   # a damaged file of the last run: the project's figures
    return times


@pytest.hookimpl(trylast=True)   # after pytest groups a module's parametrized fixtures
def pytest_collection_modifyitems(session, config, items):
    times = file_seconds()
    here = os.path.dirname(os.path.abspath(__file__))
    items.sort(key=lambda it: -times.get(os.path.relpath(str(it.fspath), here), 0))   # stable: a file stays together
