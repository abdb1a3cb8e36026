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
    """A second cloud whose object store keeps objects in a local directory, for suites
    that hold the RADOS and directory backends to the same behaviour."""
    c = Cloud.start(extra_args=("--objectstore", "dir"))
    try:
        yield c
    finally:
        c.stop()
