"""The public surface: the 0.9 import paths, and a docstring on every public call."""

import inspect

import couchbase
import couchbase.aio
import couchbase.exceptions
import couchbase.libcouchbase
from couchbase.mock import MockCluster


def test_seed_import_paths():
    from couchbase import FMT_JSON, FMT_PICKLE, FMT_PLAIN, Couchbase  # noqa: F401
    from couchbase.exceptions import NotFoundError  # noqa: F401
    from couchbase.libcouchbase import Connection, CouchbaseError

    assert Couchbase.connect.__doc__
    assert issubclass(CouchbaseError, Exception)
    assert Connection is couchbase.Connection


def _public_callables(obj):
    for name, member in inspect.getmembers(obj):
        if not name.startswith("_") and (callable(member) or isinstance(member, property)):
            yield name, member


def test_every_public_call_has_a_docstring():
    missing = []
    for owner in (couchbase.libcouchbase.Connection, couchbase.aio.AsyncConnection, couchbase.Couchbase,
                  MockCluster):
        for name, member in _public_callables(owner):
            if not (member.__doc__ or "").strip():
                missing.append(f"{owner.__name__}.{name}")
    for module in (couchbase, couchbase.aio, couchbase.exceptions):
        for name in module.__all__:
            if not (getattr(module, name).__doc__ or "").strip() and name != "__version__":
                missing.append(f"{module.__name__}.{name}")
    assert not missing, missing


def test_async_connection_has_every_member_of_connection_with_the_same_signature():
    """One API in two kinds: every public method and attribute of Connection
    exists on AsyncConnection, each method taking the same arguments."""
    sync, aio = couchbase.libcouchbase.Connection, couchbase.aio.AsyncConnection
    missing, differing = [], []
    for name, member in _public_callables(sync):
        other = getattr(aio, name, None)
        if other is None:
            missing.append(name)
        elif callable(member) and inspect.signature(member) != inspect.signature(other):
            differing.append(f"{name}{inspect.signature(member)} vs {inspect.signature(other)}")
    for name in ("host", "port", "bucket", "username", "connection_string", "quiet", "default_format",
                 "unpickle", "closed"):
        if not hasattr(aio, name):
            missing.append(name)
    assert not missing and not differing, (missing, differing)
