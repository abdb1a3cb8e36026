"""Shared fixtures: a throwaway Virga cloud started by deploy/devcloud.

Each test session gets its own directory under /tmp and its own port base, so tests
never collide with a developer's `make run` cloud (port base 8700, dir var/) or with
another test run."""
import collections
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from harness import Cloud, wait_stopped  # noqa: E402

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
        c.stop_later()   # beside dir_cloud's stop; pytest_sessionfinish waits for both


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
        c.stop_later()


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


# ---- clouds shared by several modules ----
# Modules whose clouds differed only in settings none of their tests depends on (the size
# of the simulated host, say) share one: a cloud's start is tens of seconds of a loaded
# machine. Their tests make their own tenants and look only at those, so none assumes it
# is alone in the cloud. The modules of a shared cloud run one after another in one worker
# (one xdist group, below; run-all.sh runs pytest with --dist loadgroup), the cloud starts
# with the first test that needs it and stops after the last (pytest_runtest_teardown).
SHARED_CLOUDS = {
    # EC2 on one `sim` host with room for every module's instances, default images, the
    # object store in a directory: test_ec2_sdks, test_ec2_js_sdk,
    # test_ec2_instance_interfaces, test_operator_api
    "sim_cloud": dict(extra_args=("--objectstore", "dir"), default_images=True,
                      env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "16",
                           "VIRGA_AGENT_MEMORY_MIB": "32768",
                           # compute's repair pull of interface facts every 2 s, not 10:
                           # test_ec2_instance_interfaces waits for a repair
                           "VIRGA_COMPUTE_INTERFACE_SYNC_S": "2"}),
    # real guests (the container and qemu drivers, RADOS, default images):
    # test_instances_real and test_create_image, whose clouds differed only in the agent's
    # metadata cache (60 s for test_instances_real, which proves that an answer the agent
    # must drop is dropped, not aged out; create_image's guests read only their own)
    "real_cloud": dict(default_images=True,
                       env={"VIRGA_AGENT_DRIVERS": "container,qemu", "VIRGA_AGENT_RECONCILE_INTERVAL_S": "2",
                            "VIRGA_AGENT_METADATA_CACHE_S": "60"}),
    # small limits where each module's own service reads them, the object store in a
    # directory, no images: test_ec2_network_limits (network.groups_per_vpc and
    # rules_per_group 3: EC2 only) and test_objectstore_key_wait (the object store's one
    # HTTP thread, identity frozen: S3 only). Each started a cloud of its own for a test
    # or two (16 and 26 s on CI, most of it the start)
    "limits_cloud": dict(extra_args=("--objectstore", "dir"),
                         env={"VIRGA_NETWORK_GROUPS_PER_VPC": "3", "VIRGA_NETWORK_RULES_PER_GROUP": "3",
                              "VIRGA_OBJECTSTORE_HTTP_THREADS": "1"}),
    # accounting on a `sim` host, default images, the object store in a directory:
    # test_billing (its price list) and test_usage (object store passes every second; GET
    # bytes reach the log only when the object store stops, the test of a stop losing
    # nothing; the recount looks at once). Both stop accounting and move their own
    # instances' events to a past timeline; each reads only its own tenants' records.
    "accounting_cloud": dict(extra_args=("--objectstore", "dir"), default_images=True,
                             env={"VIRGA_AGENT_DRIVERS": "sim", "VIRGA_AGENT_VCPUS": "16",
                                  "VIRGA_AGENT_MEMORY_MIB": "32768", "VIRGA_ACCOUNTING_POLL_MS": "500",
                                  "VIRGA_ACCOUNTING_PRICE_LIST": os.path.join(os.path.dirname(
                                      os.path.abspath(__file__)), "lib", "billing_prices.yaml"),
                                  "VIRGA_OBJECTSTORE_RECONCILE_INTERVAL_S": "1",
                                  "VIRGA_OBJECTSTORE_TRANSFER_FLUSH_MS": "3600000",
                                  "VIRGA_OBJECTSTORE_RECOUNT_INTERVAL_S": "1"}),
}
_running_shared = {}   # name -> the Cloud this process started for it


def shared_cloud(name):
    if name not in _running_shared:
        _running_shared[name] = Cloud.start(**SHARED_CLOUDS[name])
    return _running_shared[name]


def shared_cloud_fixture(name):
    """The module fixture `name`: SHARED_CLOUDS[name], started once for the modules that
    use it in a row."""
    def fixture():
        return shared_cloud(name)
    fixture.__doc__ = shared_cloud_fixture.__doc__.replace("`name`", name)
    return pytest.fixture(scope="module", name=name)(fixture)


# one fixture per shared cloud, named after it (sim_cloud, real_cloud, ...)
for _name in SHARED_CLOUDS:
    globals()[_name] = shared_cloud_fixture(_name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    for name in list(_running_shared):
        if nextitem is None or name not in nextitem.fixturenames:   # its last test in this row
            _running_shared.pop(name).stop_later()
    if nextitem is None:
        # the session's last test (its fixtures are gone by now): the clouds stopped in the
        # background must be down, and a failed stop fails this teardown, as it failed the
        # teardown of its fixture when stops waited
        errors = wait_stopped()
        if errors:
            raise RuntimeError("; ".join(errors))


def pytest_sessionfinish(session):
    for name in list(_running_shared):   # an interrupted run
        _running_shared.pop(name).stop_later()
    errors = wait_stopped()   # an interrupted run: the clouds still stopping in the background
    if errors:
        sys.stderr.write("".join("\nERROR %s\n" % e for e in errors))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# The session's dir_cloud is one cloud per worker: the files that use it (directly or
# through anycloud) are one work unit too, so that it starts (and idles) in one worker
# only instead of in each of them. Together they take well under a worker's share of the
# run, and they already shared a dir_cloud within a worker.
DIR_CLOUD_FIXTURES = ("dir_cloud", "anycloud")


def xdist_group(item, dir_cloud_files):
    """The work unit of an item: the shared cloud it uses, else "dir_cloud" for a file
    of which any test uses the session's dir_cloud, else its file (as --dist loadfile
    would: a module's own cloud starts once)."""
    for name in SHARED_CLOUDS:
        if name in item.fixturenames:
            return name
    path = os.path.relpath(str(item.fspath), os.path.dirname(os.path.abspath(__file__)))
    return "dir_cloud" if path in dir_cloud_files else path


class WorkUnits:
    """Marks every item with its work unit (xdist_group), once all are collected (a file's
    unit depends on all its tests) and before pytest-xdist's pytest_collection_modifyitems
    reads the marks. A plugin of its own: this module's hook of that name orders the units,
    last."""
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items):
        here = os.path.dirname(os.path.abspath(__file__))
        dir_cloud_files = {os.path.relpath(str(it.fspath), here) for it in items
                           if any(f in it.fixturenames for f in DIR_CLOUD_FIXTURES)}
        for item in items:
            if not item.get_closest_marker("xdist_group"):
                item.add_marker(pytest.mark.xdist_group(xdist_group(item, dir_cloud_files)))


def pytest_configure(config):
    config.pluginmanager.register(WorkUnits(), "virga-work-units")


def group_of(item):
    mark = item.get_closest_marker("xdist_group")
    return mark.kwargs.get("name", mark.args[0] if mark.args else "")


# Longest work units first. pytest-xdist (--dist loadgroup) hands each worker the next
# unit (a file, or the files of a shared cloud) in collection order when it runs short of
# work, so a long unit collected last runs alone at the end while the other workers idle.
# Ordered by the seconds their files took in the last run (tests/run-all.sh writes them
# to VIRGA_TEST_FILE_TIMES from its --junitxml); without that file, by
# tests/file-seconds.json: what they took on the 2-core CI machine (three workers,
# 2026-12-06). A unit in neither comes after these, in its usual order; a unit's tests stay
# together (so that even without xdist a shared cloud starts once). Every worker computes
# the same order, as xdist requires.
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
    files = collections.defaultdict(set)   # unit -> its files
    first = {}                             # unit -> where its first test was
    for i, it in enumerate(items):
        g = group_of(it)
        files[g].add(os.path.relpath(str(it.fspath), here))
        first.setdefault(g, i)
    seconds = {g: sum(times.get(f, 0) for f in fs) for g, fs in files.items()}
    items.sort(key=lambda it: (-seconds[group_of(it)], first[group_of(it)]))   # stable: a file stays in order
