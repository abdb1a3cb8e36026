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
def dir_cloud():
    """The one cloud whose object store keeps objects in a local directory (the session
    cloud's is RADOS), shared by every suite that holds both backends to the same
    behaviour; its 64 MiB object limit makes EntityTooLarge cheap to reach."""
    c = Cloud.start(extra_args=("--objectstore", "dir"),
                    env={"VIRGA_OBJECTSTORE_MAX_OBJECT_BYTES": str(64 * 1024 * 1024)})
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(params=["rados", "dir"])
def anycloud(request):
    """Each storage backend in turn: both must behave the same."""
    return request.getfixturevalue("cloud" if request.param == "rados" else "dir_cloud")
