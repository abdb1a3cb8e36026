"""Shared fixtures: a throwaway Virga cloud started by deploy/devcloud.

Each test session gets its own directory under /tmp and its own port base, so tests
never collide with a developer's `make run` cloud (port base 8700, dir var/) or with
another test run."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from harness import Cloud  # noqa: E402


@pytest.fixture(scope="session")
def cloud():
    c = Cloud.start(default_images=True)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def dircloud():
    """A second cloud whose object store keeps objects in a local directory (the largest
    object 64 MiB, so that EntityTooLarge is cheap to reach)."""
    c = Cloud.start(extra_args=("--objectstore", "dir"), env={"VIRGA_OBJECTSTORE_MAX_OBJECT_BYTES": str(64 << 20)})
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(params=["rados", "dir"])
def anycloud(request):
    """The test runs once on each storage backend."""
    return request.getfixturevalue("cloud" if request.param == "rados" else "dircloud")
