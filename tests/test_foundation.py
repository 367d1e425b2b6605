"""The first end-to-end slice: a real set/get round trip over TCP through
libcouchbase to the mock cluster, and connect errors in the 0.9 classes."""

import pytest

from couchbase import Couchbase
from couchbase.exceptions import (
    ArgumentError,
    AuthError,
    BucketNotFoundError,
    ConnectError,
    CouchbaseError,
)
from couchbase.libcouchbase import Connection

pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)


@pytest.mark.parametrize(
    "value",
    ["hello", "", {"a": 1, "b": [1, 2, {"c": None}]}, [1, "two", 3.5, True, None], 42, -7,
     2**63 - 1, 3.25, "unicodé ☃ 日本語 🎉", {"ключ": "значение"}, True, None],
    ids=lambda v: type(v).__name__,
)
def test_set_get_round_trip(cb, key, value):
    cas = cb.set(key, value)
    assert isinstance(cas, int) and cas > 0
    assert cb.get(key) == value
    assert type(cb.get(key)) is type(value)


def test_connect_returns_a_seed_connection(cluster):
    with Couchbase.connect(cluster.host, cluster.port, password="", bucket="default") as conn:
        assert isinstance(conn, Connection)
        assert conn.username == "default"


def test_connect_positional_arguments_like_the_seed(cluster, connect):
    with connect(cluster.host, cluster.port, None, "secret", "protected") as conn:
        conn.set("positional", "ok")
        assert conn.get("positional") == "ok"


def test_protected_bucket_with_its_password(cluster, connect):
    with connect(cluster.host, cluster.port, password="secret", bucket="protected") as conn:
        conn.set("k", {"v": 1})
        assert conn.get("k") == {"v": 1}


def test_admin_credentials(cluster, connect):
    with connect(cluster.host, cluster.port, username=cluster.username,
                           password=cluster.password, bucket="default") as conn:
        conn.set("admin-k", "v")
        assert conn.get("admin-k") == "v"


def _closed_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_connect_to_a_closed_port_is_a_connect_error(connect):
    port = _closed_port()
    with pytest.raises(ConnectError) as info:
        connect("127.0.0.1", port, password="", bucket="default", connect_timeout=5)
    msg = str(info.value)
    assert f"127.0.0.1:{port}" in msg and "'default'" in msg
    assert info.value.operation == "connect"


def test_wrong_password_is_an_auth_error(cluster, connect):
    with pytest.raises(AuthError) as info:
        connect(cluster.host, cluster.port, password="wrong", bucket="protected")
    msg = str(info.value)
    assert f"{cluster.host}:{cluster.port}" in msg and "'protected'" in msg
    assert "wrong" not in msg  # never show the password


def test_unknown_bucket_is_bucket_not_found(cluster, connect):
    with pytest.raises(BucketNotFoundError) as info:
        connect(cluster.host, cluster.port, username=cluster.username,
                          password=cluster.password, bucket="nosuchbucket")
    assert "'nosuchbucket'" in str(info.value)
    assert f"{cluster.host}:{cluster.port}" in str(info.value)


def test_unknown_bucket_with_classic_credentials(cluster, connect):
    # The user name defaults to the bucket name. A server may then answer 401
    # (no such user) or 404 (no such bucket); either way the error names the
    # bucket and is one of the two classes a caller handles.
    with pytest.raises((AuthError, BucketNotFoundError)) as info:
        connect(cluster.host, cluster.port, password="", bucket="nosuchbucket")
    assert "'nosuchbucket'" in str(info.value)
    if isinstance(info.value, AuthError):
        assert "bucket exists" in str(info.value)


@pytest.mark.parametrize("kwargs, word", [({"password": ""}, "bucket"), ({"bucket": "default"}, "password")])
def test_missing_bucket_or_password_is_an_argument_error(kwargs, word, connect):
    with pytest.raises(ArgumentError) as info:
        connect("127.0.0.1", 8091, **kwargs)
    assert word in str(info.value)


def test_all_connect_errors_are_couchbase_errors():
    assert issubclass(ConnectError, CouchbaseError)
    assert issubclass(AuthError, CouchbaseError)
    assert issubclass(BucketNotFoundError, CouchbaseError)
