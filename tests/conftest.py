"""Shared fixtures: one mock cluster per test session, run in its own thread,
and a fresh Connection to it per test. The cluster, the Connection and the
unique key are the shipped pytest plugin's (couchbase.mock.pytest_plugin),
under the names the suite's tests use."""

import pytest

from couchbase import Couchbase

pytest_plugins = ["couchbase.mock.pytest_plugin"]


@pytest.fixture(scope="session")
def cluster(couchbase_mock):
    """A started mock cluster with an open bucket 'default' and a bucket
    'protected' whose password is 'secret'."""
    return couchbase_mock


@pytest.fixture
def cb(couchbase_connection):
    """A Connection to the 'default' bucket, closed after the test."""
    return couchbase_connection


@pytest.fixture
def lcb_path_connstr(cluster):
    """A connection string under which gets and stores all go through
    libcouchbase's own commands, none as packets built by the binding
    (compression asked for: replies may come compressed)."""
    return f"couchbase://{cluster.host}:{cluster.port}=http/default?compression=on"


@pytest.fixture
def lcb_path(lcb_path_connstr):
    """A Connection that uses libcouchbase's own commands only."""
    with Couchbase.connect(bucket="default", password="", connection_string=lcb_path_connstr) as conn:
        yield conn


@pytest.fixture(params=["built packets", "libcouchbase"])
def each_path(request):
    """The test's Connection once per path: `cb` (plain gets and large raw
    stores as packets built by the binding) and `lcb_path`."""
    return request.getfixturevalue("cb" if request.param == "built packets" else "lcb_path")


@pytest.fixture
def key(couchbase_key):
    """A key unique to this test (tests share one bucket)."""
    return couchbase_key
