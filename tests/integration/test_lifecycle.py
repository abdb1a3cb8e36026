"""Service life cycle against a running cloud: worker counts out of range are refused
with a clear message and a clean exit (no crash in the shutdown that follows: 65 image
workers used to crash fini). The shutdown order itself is tests/unit/test_service.c."""
import os
import subprocess
import tempfile

import pytest

from harness import BIN


def run_service(cloud, binary, *sets, timeout=60):
    """Start one more instance of a service binary against the cloud, with --set
    overrides; it is expected to stop by itself. Returns (returncode, log text)."""
    args = [os.path.join(BIN, binary), "-c", cloud.config]
    for s in sets:
        args += ["--set", s]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stderr


@pytest.mark.parametrize("workers", ["65", "1000", "-1"])
def test_image_workers_out_of_range_is_a_clear_error_not_a_crash(cloud, workers):
    with tempfile.TemporaryDirectory() as work:
        rc, log = run_service(cloud, "virga-image", "image.workers=" + workers, "image.work_dir=" + work)
    assert rc == 1, (rc, log)   # a crash would be negative (a signal)
    assert "image.workers must be 0..64, not %s" % workers in log


@pytest.mark.parametrize("workers", ["65", "-3"])
def test_bus_workers_out_of_range_is_a_clear_error(cloud, workers):
    rc, log = run_service(cloud, "virga-network", "bus.workers=" + workers)
    assert rc == 1, (rc, log)
    assert "bus.workers must be 1..64" in log
