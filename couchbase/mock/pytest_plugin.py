"""pytest plugin: ``pytest_plugins = ["couchbase.mock.pytest_plugin"]``.

Fixtures:

``couchbase_mock`` (session scope)
    A started ``MockCluster`` with buckets ``default`` (open, empty password) and
    ``protected`` (password ``secret``), admin ``Administrator``/``password``.
    Tests that change the topology or inject faults should rather use ``couchbase_mock_factory``.

``couchbase_mock_factory`` (function scope)
    ``couchbase_mock_factory(**kwargs)`` starts a fresh ``MockCluster(**kwargs)`` that is
    stopped when the test ends.
"""

import pytest

from .cluster import MockCluster


@pytest.fixture(scope="session")
def couchbase_mock():
    """A session-wide mock cluster (buckets default and protected:secret)."""
    with MockCluster(buckets={"default": "", "protected": "secret"}) as mock:
        yield mock


@pytest.fixture
def couchbase_mock_factory():
    """Start private mock clusters for one test: ``couchbase_mock_factory(nodes=3)``."""
    started = []

    def factory(**kwargs):
        mock = MockCluster(**kwargs).start()
        started.append(mock)
        return mock

    yield factory
    for mock in started:
        mock.stop()
