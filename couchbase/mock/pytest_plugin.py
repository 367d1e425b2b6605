"""pytest plugin: ``pytest_plugins = ["couchbase.mock.pytest_plugin"]``.

Fixtures:

``couchbase_mock`` (session scope)
    A started ``MockCluster`` with buckets ``default`` (open, empty password) and
    ``protected`` (password ``secret``), admin ``Administrator``/``password``.
    Tests that change the topology or inject faults should rather use ``couchbase_mock_factory``.

``couchbase_tls_mock`` (session scope)
    The same buckets and admin on a ``MockCluster(tls=True)``: every node also serves a TLS KV
    port and an HTTPS management port, with certificates from the CA at ``ca_path``;
    ``tls_connstr()`` is a ``couchbases://`` connection string that verifies with it. Needs
    the ``trustme`` package.

``couchbase_mock_factory`` (function scope)
    ``couchbase_mock_factory(**kwargs)`` starts a fresh ``MockCluster(**kwargs)`` that is
    stopped when the test ends.

``couchbase_connection`` (function scope)
    An open ``Connection`` to bucket ``default`` of ``couchbase_mock``, closed after the test.
    The bucket is shared by the session's tests and keeps their documents: use
    ``couchbase_key`` for keys no other test touches.

``couchbase_flushed_connection`` (function scope)
    The same, on a bucket ``default`` flushed just before the test: the test starts with no
    document at all (whatever earlier tests stored is gone).

``couchbase_key`` (function scope)
    A key unique to the test (its name and a counter), for tests that share a bucket.
"""

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Callable

import pytest

from .mock_cluster import MockCluster

if TYPE_CHECKING:
    from couchbase import Connection

_keys = itertools.count()


@pytest.fixture(scope="session")
def couchbase_mock() -> Iterator[MockCluster]:
    """A session-wide mock cluster (buckets default and protected:secret)."""
    with MockCluster(buckets={"default": "", "protected": "secret"}) as mock:
        yield mock


@pytest.fixture(scope="session")
def couchbase_tls_mock() -> Iterator[MockCluster]:
    """A session-wide TLS mock cluster (buckets default and protected:secret; ``ca_path``)."""
    with MockCluster(buckets={"default": "", "protected": "secret"}, tls=True) as mock:
        yield mock


@pytest.fixture
def couchbase_mock_factory() -> "Iterator[Callable[..., MockCluster]]":
    """Start private mock clusters for one test: ``couchbase_mock_factory(nodes=3)``."""
    started = []

    def factory(**kwargs: object) -> MockCluster:
        mock = MockCluster(**kwargs).start()  # type: ignore[arg-type]
        started.append(mock)
        return mock

    yield factory
    for mock in started:
        mock.stop()


def _connect(mock: MockCluster) -> "Connection":
    from couchbase import Couchbase  # the compiled module only for tests that connect

    return Couchbase.connect(mock.host, mock.port, password="", bucket="default")


@pytest.fixture
def couchbase_connection(couchbase_mock: MockCluster) -> "Iterator[Connection]":
    """An open Connection to the session mock's shared bucket 'default', closed after the test."""
    conn = _connect(couchbase_mock)
    yield conn
    conn.close()


@pytest.fixture
def couchbase_flushed_connection(couchbase_mock: MockCluster) -> "Iterator[Connection]":
    """An open Connection to the session mock's bucket 'default', flushed before the test."""
    couchbase_mock.flush_bucket("default")
    conn = _connect(couchbase_mock)
    yield conn
    conn.close()


@pytest.fixture
def couchbase_key(request: pytest.FixtureRequest) -> str:
    """A key unique to this test (tests share one bucket)."""
    return f"{request.node.name}:{next(_keys)}"
