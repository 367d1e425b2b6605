"""Shared fixtures: one mock cluster per test session, run in its own thread,
and a fresh Connection to it per test."""

import itertools

import pytest

from couchbase import Couchbase
from couchbase.mock import MockCluster

_counter = itertools.count()


@pytest.fixture(scope="session")
def cluster():
    """A started mock cluster with an open bucket 'default' and a bucket
    'protected' whose password is 'secret'."""
    with MockCluster(buckets={"default": "", "protected": "secret"}) as mock:
        yield mock


@pytest.fixture
def cb(cluster):
    """A Connection to the 'default' bucket, closed after the test."""
    conn = Couchbase.connect(cluster.host, cluster.port, password="", bucket="default")
    yield conn
    conn.close()


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
def key(request):
    """A key unique to this test (tests share one bucket)."""
    return f"{request.node.name}:{next(_counter)}"
