"""Bad input: a clear exception before anything is sent, and nothing stored."""

import pytest

from couchbase import FMT_PLAIN, Couchbase
from couchbase.exceptions import ArgumentError, ConnectError, TooBigError, ValueFormatError

BAD_KEYS = [None, 42, 4.2, ["nested"], object(), ("t",)]


@pytest.mark.parametrize("bad", BAD_KEYS[:3] + [BAD_KEYS[4]], ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("op", ["get", "delete", "touch", "incr", "set", "add", "replace", "lock"])
def test_key_of_wrong_type(cb, op, bad):
    call = {
        "get": lambda: cb.get(bad),
        "delete": lambda: cb.delete(bad),
        "touch": lambda: cb.touch(bad, 1),
        "incr": lambda: cb.incr(bad),
        "set": lambda: cb.set(bad, 1),
        "add": lambda: cb.add(bad, 1),
        "replace": lambda: cb.replace(bad, 1),
        "lock": lambda: cb.lock(bad, 5),
    }[op]
    with pytest.raises(ArgumentError) as info:
        call()
    assert info.value.operation == op
    assert "str or bytes" in str(info.value)


@pytest.mark.parametrize("bad", ["", b""])
def test_empty_key(cb, bad):
    with pytest.raises(ArgumentError) as info:
        cb.set(bad, 1)
    assert "empty" in str(info.value)


def test_key_over_250_bytes(cb):
    with pytest.raises(ArgumentError) as info:
        cb.set("k" * 251, 1)
    assert "250" in str(info.value)
    cb.set("k" * 250, 1)  # the limit itself is fine
    # the limit is in UTF-8 bytes, not characters
    with pytest.raises(ArgumentError):
        cb.set("☃" * 84, 1)


def test_one_bad_key_in_a_multi_set_stores_nothing(cb, key):
    with pytest.raises(ArgumentError):
        cb.set({f"{key}:good": 1, 42: 2})
    with pytest.raises(ValueFormatError):
        cb.set({f"{key}:good": 1, f"{key}:bad": object()})
    assert cb.get(f"{key}:good", quiet=True) is None


def test_one_bad_key_in_a_multi_get_sends_nothing(cb, key):
    with pytest.raises(ArgumentError):
        cb.get([key, None])


@pytest.mark.parametrize("ttl", [-1, 1.5, "10", 2**32, True])
def test_bad_ttl(cb, key, ttl):
    with pytest.raises(ArgumentError) as info:
        cb.set(key, 1, ttl=ttl)
    assert "ttl" in str(info.value)
    assert cb.get(key, quiet=True) is None


@pytest.mark.parametrize("kwargs", [{"amount": -1}, {"amount": 1.5}, {"amount": "1"}, {"initial": -5},
                                    {"initial": 2**64}, {"ttl": -1}, {"amount": 2**63}])
def test_bad_counter_arguments(cb, key, kwargs):
    with pytest.raises(ArgumentError):
        cb.incr(key, **kwargs)
    assert cb.get(key, quiet=True) is None


@pytest.mark.parametrize("cas", [-1, "123", 1.0, 2**64])
def test_bad_cas(cb, key, cas):
    with pytest.raises(ArgumentError):
        cb.set(key, 1, cas=cas)


def test_append_cannot_set_a_ttl(cb, key):
    cb.set(key, b"a", format=FMT_PLAIN)
    with pytest.raises(ArgumentError) as info:
        cb.append(key, b"b", ttl=10)
    assert "touch" in str(info.value)
    assert cb.get(key) == b"a"


def test_counter_ttl_without_initial(cb, key):
    with pytest.raises(ArgumentError) as info:
        cb.incr(key, ttl=10)
    assert "initial" in str(info.value)


def test_cas_on_multi_set(cb, key):
    with pytest.raises(ArgumentError) as info:
        cb.set({key: 1}, cas=5)
    assert "CAS" in str(info.value)


def test_plain_with_non_bytes(cb, key):
    with pytest.raises(ValueFormatError):
        cb.set(key, "str", format=FMT_PLAIN)


def test_item_over_the_server_limit_is_too_big(cb, key):
    with pytest.raises(TooBigError) as info:
        cb.set(key, b"x" * (20 * 1024 * 1024 + 1), format=FMT_PLAIN)
    assert info.value.key == key
    assert cb.get(key, quiet=True) is None
    cb.set(key, b"x" * (1024 * 1024), format=FMT_PLAIN)  # 1 MiB is fine
    assert len(cb.get(key)) == 1024 * 1024


def test_closed_connection_is_a_clear_error(cluster, key):
    conn = Couchbase.connect(cluster.host, cluster.port, password="", bucket="default")
    conn.close()
    conn.close()  # idempotent
    assert conn.closed
    for call in (lambda: conn.get(key), lambda: conn.set(key, 1), lambda: conn.delete(key),
                 lambda: conn.incr(key), lambda: conn.stats(), lambda: conn.touch(key, 1),
                 lambda: conn.get([key, key + "2"])):
        with pytest.raises(ConnectError) as info:
            call()
        assert "closed" in str(info.value)
    assert "closed" in repr(conn)


def test_bad_connect_arguments():
    with pytest.raises(ArgumentError):
        Couchbase.connect("127.0.0.1", port="8091", bucket="default", password="")
    with pytest.raises(ArgumentError):
        Couchbase.connect("127.0.0.1", bucket="default", password="", timeout=-1)
    with pytest.raises(ArgumentError):
        Couchbase.connect("127.0.0.1", bucket="default", password="", default_format=9)
    with pytest.raises(ArgumentError):
        Couchbase.connect("127.0.0.1", bucket=5, password="")
