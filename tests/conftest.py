"""Shared fixtures: one mock cluster per test session, run in its own thread,
and a fresh Connection to it per test. The cluster, the Connection and the
unique key are the shipped pytest plugin's (couchbase.mock.pytest_plugin),
under the names the suite's tests use.

A module marked ``pytestmark = pytest.mark.every_kind`` (or a test marked so)
runs each test that uses ``cb``, ``connect`` or ``kind`` once per connection
kind (tests/kinds.py): the sync Connection and the AsyncConnection on asyncio
and on uvloop."""

import kinds
import pytest

pytest_plugins = ["couchbase.mock.pytest_plugin"]


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker("every_kind"):
        # module scope: a module-scoped fixture (a shared connection) may use the kind too
        metafunc.parametrize("kind", kinds.KINDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def kind(request):
    """The connection kind under test: ``sync`` unless the module is marked
    every_kind, then each of tests/kinds.py's KINDS in turn."""
    return getattr(request, "param", "sync")


@pytest.fixture(params=kinds.LOOP_KINDS)
def run(request):
    """Run a coroutine to completion on a fresh event loop, once per loop
    kind (asyncio, uvloop)."""
    def runner(coro):
        loop = kinds.new_loop(request.param)
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
    return runner


@pytest.fixture(scope="module")
def faulty():
    """A private cluster (one per module) for tests that stall or delay its replies."""
    from couchbase.mock import MockCluster

    with MockCluster(buckets={"default": ""}) as mock:
        yield mock


@pytest.fixture
def faults(faulty):
    """The module's private cluster, its stall and reply delay undone after the test."""
    yield faulty
    faulty.stall(False)
    faulty.hiccup(0)


@pytest.fixture(scope="module")
def connect(kind):
    """``connect(host, port, username, password, bucket, quiet, **options)``
    making a connection of the kind under test (used as a sync Connection)."""
    return kinds.connector(kind)


@pytest.fixture(scope="session")
def cluster(couchbase_mock):
    """A started mock cluster with an open bucket 'default' and a bucket
    'protected' whose password is 'secret'."""
    return couchbase_mock


@pytest.fixture
def cb(kind, cluster, connect, request):
    """A Connection to the 'default' bucket of the kind under test, closed
    after the test."""
    if kind == "sync":
        return request.getfixturevalue("couchbase_connection")
    conn = connect(cluster.host, cluster.port, password="", bucket="default")
    request.addfinalizer(conn.close)
    return conn


@pytest.fixture
def lcb_path_connstr(cluster):
    """A connection string under which gets and stores all go through
    libcouchbase's own commands, none as packets built by the binding
    (compression asked for: replies may come compressed)."""
    return f"couchbase://{cluster.host}:{cluster.port}=http/default?compression=on"


@pytest.fixture
def lcb_path(lcb_path_connstr, connect):
    """A Connection (of the kind under test) that uses libcouchbase's own
    commands only."""
    with connect(bucket="default", password="", connection_string=lcb_path_connstr) as conn:
        yield conn


@pytest.fixture(params=["built packets", "libcouchbase"])
def each_path(request, kind):
    """The test's Connection once per path: `cb` (plain gets and large raw
    stores as packets built by the binding) and `lcb_path`."""
    return request.getfixturevalue("cb" if request.param == "built packets" else "lcb_path")


@pytest.fixture
def key(couchbase_key):
    """A key unique to this test (tests share one bucket)."""
    return couchbase_key
