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
def key(request):
    """A key unique to this test (tests share one bucket)."""
    return f"{request.node.name}:{next(_counter)}"
