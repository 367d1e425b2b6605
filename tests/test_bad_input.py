"""Bad input: a clear exception before anything is sent, and nothing stored."""

import pytest

from couchbase import FMT_PLAIN
from couchbase.exceptions import ArgumentError, ConnectError, CouchbaseError, TooBigError, ValueFormatError

pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)

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


def test_closed_connection_is_a_clear_error(cluster, key, connect):
    conn = connect(cluster.host, cluster.port, password="", bucket="default")
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


def test_bad_connect_arguments(connect):
    with pytest.raises(ArgumentError):
        connect("127.0.0.1", port="8091", bucket="default", password="")
    with pytest.raises(ArgumentError):
        connect("127.0.0.1", bucket="default", password="", timeout=-1)
    with pytest.raises(ArgumentError):
        connect("127.0.0.1", bucket="default", password="", default_format=9)
    with pytest.raises(ArgumentError):
        connect("127.0.0.1", bucket=5, password="")


# -- input that used to escape the error contract -------------------------------

SURROGATE = "k\ud800ey"


def _single_and_multi(cb, op, key):
    """The call of op for key alone, and for key among others."""
    single = {
        "get": lambda: cb.get(key), "set": lambda: cb.set(key, 1), "add": lambda: cb.add(key, 1),
        "replace": lambda: cb.replace(key, 1), "append": lambda: cb.append(key, b"x"),
        "prepend": lambda: cb.prepend(key, b"x"), "delete": lambda: cb.delete(key),
        "touch": lambda: cb.touch(key, 1), "incr": lambda: cb.incr(key), "decr": lambda: cb.decr(key),
        "lock": lambda: cb.lock(key, 5), "unlock": lambda: cb.unlock(key, 5),
    }[op]
    keys = ["fine", key]
    multi = {
        "get": lambda: cb.get(keys), "set": lambda: cb.set(dict.fromkeys(keys, 1)),
        "add": lambda: cb.add(dict.fromkeys(keys, 1)), "replace": lambda: cb.replace(dict.fromkeys(keys, 1)),
        "append": lambda: cb.append(dict.fromkeys(keys, b"x")),
        "prepend": lambda: cb.prepend(dict.fromkeys(keys, b"x")), "delete": lambda: cb.delete(keys),
        "touch": lambda: cb.touch(keys, 1), "incr": lambda: cb.incr(keys), "decr": lambda: cb.decr(keys),
        "lock": lambda: cb.lock(keys, 5), "unlock": lambda: cb.unlock(dict.fromkeys(keys, 5)),
    }[op]
    return single, multi


@pytest.mark.parametrize("op", ["get", "set", "add", "replace", "append", "prepend", "delete", "touch",
                                "incr", "decr", "lock", "unlock"])
def test_surrogate_key_is_an_argument_error_naming_key_and_operation(cb, op):
    for call in _single_and_multi(cb, op, SURROGATE):
        with pytest.raises(ArgumentError) as info:
            call()
        error = info.value
        assert error.key == SURROGATE and error.operation == op
        assert "surrogate" in str(error) and op in str(error) and "'k\\ud800ey'" in str(error)


def test_surrogate_in_a_multi_set_stores_nothing(cb, cluster, key):
    with pytest.raises(ArgumentError):
        cb.set({key: 1, SURROGATE: 2})
    assert not cluster.keyinfo(key)["found"]


@pytest.mark.parametrize("field", ["bucket", "username", "host", "password", "connection_string"])
@pytest.mark.parametrize("bad", ["\ud800", "a\0b"], ids=["surrogate", "nul"])
def test_connect_text_arguments_are_checked(field, bad, connect):
    kwargs = {"host": "127.0.0.1", "bucket": "default", "password": ""}
    kwargs[field] = f"couchbase://h/{bad}" if field == "connection_string" else bad
    with pytest.raises(ArgumentError) as info:
        connect(**kwargs)
    assert info.value.operation == "connect" and field in str(info.value)


@pytest.mark.parametrize("host", ["h/b?password=x", "h,other", "h b", "user@h", "h?x=1"])
def test_host_cannot_inject_into_the_connection_string(host, connect):
    with pytest.raises(ArgumentError) as info:
        connect(host, bucket="default", password="")
    assert "host" in str(info.value)


def test_bucket_is_quoted_in_the_connection_string(cluster, connect):
    with pytest.raises(CouchbaseError) as info:  # no such bucket: nothing injected
        connect(cluster.host, cluster.port, bucket="default?bootstrap_on=cccp", password="",
                          connect_timeout=5)
    assert not isinstance(info.value, ArgumentError)


class _Hostile:
    """An object every dunder method of which raises."""

    def _boom(self, *args):
        raise RuntimeError("boom")

    __repr__ = __str__ = __eq__ = __hash__ = __len__ = __iter__ = __bool__ = __index__ = _boom
    __lt__ = __gt__ = __le__ = __ge__ = __int__ = __float__ = __reduce__ = __reduce_ex__ = _boom


class _HostileStr(str):
    __repr__ = __str__ = __eq__ = __hash__ = __len__ = __iter__ = _Hostile._boom


class _HostileInt(int):
    __repr__ = __str__ = __eq__ = __hash__ = __lt__ = __gt__ = __le__ = __ge__ = _Hostile._boom
    __bool__ = __index__ = __int__ = __float__ = _Hostile._boom


class _HostileList(list):
    __repr__ = __iter__ = __len__ = _Hostile._boom


def test_a_key_whose_methods_raise_still_gives_a_printable_error(cb):
    for key in (_Hostile(), [_Hostile()]):
        with pytest.raises(ArgumentError) as info:
            cb.get(key)
        assert "str or bytes" in str(info.value) and "repr raised" in str(info.value)
        assert repr(info.value)


def test_a_str_subclass_key_whose_methods_raise_works(cb, cluster, key):
    hostile = _HostileStr(key)
    assert cb.set(hostile, 1)
    assert cb.get(hostile) == 1
    assert cb.get([hostile]) == [1]
    assert cb.delete([hostile]) == {key: True}
    with pytest.raises(CouchbaseError) as info:
        cb.replace(hostile, 3)
    assert key in str(info.value)


def test_number_arguments_whose_methods_raise(cb, cluster, key):
    evil = _HostileInt(5)
    cb.set(key, 1, ttl=evil)  # an int is taken as the int it is
    assert cluster.keyinfo(key)["exp"] > 0
    assert cb.incr(f"{key}:n", amount=evil, initial=evil) == 5
    with pytest.raises(ArgumentError):
        cb.get(key, extended=_Hostile())
    with pytest.raises(ArgumentError):
        cb.get(key, quiet=_Hostile())
    with pytest.raises(ArgumentError):
        cb.set(key, 1, format=_Hostile())
    with pytest.raises(ArgumentError):
        cb.get(_HostileList([key]))
    with pytest.raises(ArgumentError):
        cb.stats(_HostileList(["x"]))


def test_a_value_whose_methods_raise_is_a_value_format_error(cb, cluster, key):
    from couchbase import FMT_PICKLE

    for fmt in (None, FMT_PICKLE, FMT_PLAIN):
        with pytest.raises(ValueFormatError) as info:
            cb.set(key, _Hostile(), format=fmt)
        assert info.value.key == key and str(info.value)
    assert not cluster.keyinfo(key)["found"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), [1.0, {"x": float("nan")}],
                                   {"big": 2**70, "nan": float("nan")}])
def test_nan_and_infinity_are_refused_not_stored_as_null(cb, cluster, key, value):
    with pytest.raises(ValueFormatError) as info:
        cb.set(key, value)
    assert info.value.key == key and "NaN" in str(info.value)
    assert not cluster.keyinfo(key)["found"]


def test_nan_written_by_the_0_9_client_still_reads(cb, key):
    import json

    cb.set(key, json.dumps([float("nan"), float("inf")]).encode(), format=FMT_PLAIN)
    from couchbase import FMT_JSON

    value = cb.get(key, format=FMT_JSON)
    assert value[0] != value[0] and value[1] == float("inf")


@pytest.mark.parametrize("name", ["timeout", "connect_timeout"])
@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 0, -1, 1e-7, 4295, 2**100, True, "1", None])
def test_timeouts_must_be_representable(name, bad, connect):
    with pytest.raises(ArgumentError) as info:
        connect("127.0.0.1", bucket="default", password="", **{name: bad})
    assert name in str(info.value)


def test_timeout_extremes_that_libcouchbase_can_hold(cluster, key, connect):
    with connect(cluster.host, cluster.port, password="", bucket="default",
                           timeout=4294.967295, connect_timeout=4294) as conn:
        conn.set(key, 1)
        assert conn.get(key) == 1


@pytest.mark.parametrize("call", [
    lambda cb, k: cb.set(k, 1, ttl=2**32), lambda cb, k: cb.set(k, 1, cas=2**64),
    lambda cb, k: cb.incr(k, amount=2**64), lambda cb, k: cb.incr(k, initial=2**64),
    lambda cb, k: cb.incr(k, amount=True), lambda cb, k: cb.touch(k, ttl=-1),
    lambda cb, k: cb.lock(k, ttl=31), lambda cb, k: cb.lock(k, ttl=0), lambda cb, k: cb.unlock(k, 0),
    lambda cb, k: cb.set(k, 1, ttl=10**400), lambda cb, k: cb.get(k, extended=2),
])
def test_edge_values_of_numbers(cb, cluster, key, call):
    with pytest.raises(ArgumentError):
        call(cb, key)
    assert not cluster.keyinfo(key)["found"]


def test_edge_values_that_are_allowed(cb, key):
    assert cb.incr(key, amount=2**63 - 1, initial=2**64 - 1) == 2**64 - 1
    assert cb.incr(key, amount=0) == 2**64 - 1
    cb.set(f"{key}:t", 1, ttl=0)
    cb.set(f"{key}:t", 1, ttl=2**32 - 1)


def test_a_bytes_subclass_is_stored_as_its_bytes(cb, key):
    class Sneaky(bytes):
        def __bytes__(self):
            raise RuntimeError("boom")

    cb.set(key, Sneaky(b"raw"), format=FMT_PLAIN)
    assert cb.get(key) == b"raw"


@pytest.mark.parametrize("option", ["operation_timeout=inf", "timeout=nan", "config_total_timeout=5000",
                                    "timeout=1000000h", "timeout=-1", "config_node_timeout=1e400",
                                    "operation_timeout=Infinity"])
def test_time_options_of_the_connection_string_are_checked(option, connect):
    with pytest.raises(ArgumentError) as info:
        connect(bucket="default", password="", connection_string=f"couchbase://127.0.0.1/default?{option}")
    assert option.split("=")[0] in str(info.value)


@pytest.mark.parametrize("option", ["operation_timeout=2.5", "timeout=500ms", "config_total_timeout=1m30s"])
def test_time_options_in_range_are_passed_on(cluster, key, option, connect):
    connstr = f"couchbase://{cluster.host}:{cluster.port}=http/default?{option}"
    with connect(bucket="default", password="", connection_string=connstr) as conn:
        conn.set(key, 1)
