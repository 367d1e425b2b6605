"""Fixtures for the mock's own tests."""

import os
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, _ROOT)
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from couchbase.mock import MockCluster  # noqa: E402  (the plugin's fixtures: tests/conftest.py)


@pytest.fixture
def mock1():
    """A fresh one-node cluster with buckets default (open) and protected:secret."""
    with MockCluster(buckets={"default": "", "protected": "secret"}) as mock:
        yield mock


@pytest.fixture
def mock3():
    """A fresh three-node cluster with buckets default (open) and protected:secret."""
    with MockCluster(nodes=3, buckets={"default": "", "protected": "secret"}) as mock:
        yield mock


@pytest.fixture(scope="module")
def shared3():
    """A three-node cluster shared by a module's read-mostly tests."""
    with MockCluster(nodes=3, buckets={"default": "", "protected": "secret"}) as mock:
        yield mock
