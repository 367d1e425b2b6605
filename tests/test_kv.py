"""Every key-value method of Connection, single and multi-key, against the mock."""

import kinds
import pytest

from couchbase import FMT_PLAIN, Result
from couchbase.exceptions import (
    ArgumentError,
    DeltaBadvalError,
    KeyExistsError,
    KeyLockedError,
    NotFoundError,
    NotStoredError,
    TemporaryFailError,
)

pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)

# -- get ----------------------------------------------------------------------


def test_get_missing_raises_not_found_naming_key_and_operation(cb, key):
    with pytest.raises(NotFoundError) as info:
        cb.get(key)
    e = info.value
    assert e.key == key and e.operation == "get"
    assert repr(key) in str(e) and "get" in str(e)


def test_get_quiet_returns_none(cb, key):
    assert cb.get(key, quiet=True) is None
    assert cb.get(key, quiet=True, extended=True) == Result(None, 0, 0)


def test_connection_quiet_attribute_and_per_call_override(cb, key):
    cb.quiet = True
    assert cb.get(key) is None
    with pytest.raises(NotFoundError):
        cb.get(key, quiet=False)
    assert cb.delete(key) is False


def test_get_extended_is_a_named_tuple(cb, key):
    cas = cb.set(key, {"a": 1})
    result = cb.get(key, extended=True)
    assert isinstance(result, Result)
    value, flags, rcas = result
    assert (value, flags, rcas) == ({"a": 1}, 0, cas)
    assert result.value == {"a": 1} and result.cas == cas and result.flags == 0


def test_multi_get_returns_values_in_the_order_asked(cb, key):
    keys = [f"{key}:{i}" for i in range(50)]
    cb.set({k: i for i, k in enumerate(keys)})
    assert cb.get(list(reversed(keys))) == list(reversed(range(50)))
    assert cb.get(tuple(keys[:3])) == [0, 1, 2]


def test_multi_get_extended_returns_dict_of_results(cb, key):
    cas = cb.set({f"{key}:a": "A", f"{key}:b": "B"})
    results = cb.get([f"{key}:a", f"{key}:b"], extended=True)
    assert results == {f"{key}:a": Result("A", 0, cas[f"{key}:a"]),
                       f"{key}:b": Result("B", 0, cas[f"{key}:b"])}


def test_multi_get_partial_failure_attempts_every_key(cb, key):
    cb.set({f"{key}:1": 1, f"{key}:3": 3})
    with pytest.raises(NotFoundError) as info:
        cb.get([f"{key}:1", f"{key}:2", f"{key}:3"])
    e = info.value
    assert e.key == f"{key}:2"
    assert e.all_results[f"{key}:1"] == 1 and e.all_results[f"{key}:3"] == 3
    assert isinstance(e.all_results[f"{key}:2"], NotFoundError)


def test_multi_get_quiet_gives_none_for_missing(cb, key):
    cb.set(f"{key}:1", 1)
    assert cb.get([f"{key}:1", f"{key}:2"], quiet=True) == [1, None]


def test_get_with_ttl_touches(cb, cluster, key):
    cb.set(key, "v")
    assert cb.get(key, ttl=10) == "v"
    cluster.time_travel(11)
    assert cb.get(key, quiet=True) is None


def test_bytes_keys(cb):
    cb.set(b"bytes-key", "v")
    assert cb.get(b"bytes-key") == "v"
    assert cb.get("bytes-key") == "v"


def test_unicode_key(cb):
    cb.set("ключ-☃", 1)
    assert cb.get("ключ-☃".encode()) == 1


# -- set / add / replace ---------------------------------------------------------


def test_set_returns_new_cas_each_time(cb, key):
    c1 = cb.set(key, 1)
    c2 = cb.set(key, 2)
    assert c1 != c2 and c1 > 0 and c2 > 0


def test_set_with_stale_cas_is_key_exists(cb, key):
    cas = cb.set(key, 1)
    cb.set(key, 2)
    with pytest.raises(KeyExistsError) as info:
        cb.set(key, 3, cas=cas)
    assert info.value.key == key and info.value.operation == "set"
    assert cb.get(key) == 2


def test_set_with_current_cas_succeeds(cb, key):
    cas = cb.set(key, 1)
    assert cb.set(key, 2, cas=cas) != cas
    assert cb.get(key) == 2


def test_multi_set_returns_dict_of_cas(cb, key):
    result = cb.set({f"{key}:a": 1, f"{key}:b": 2})
    assert set(result) == {f"{key}:a", f"{key}:b"}
    assert all(isinstance(c, int) and c > 0 for c in result.values())


def test_multi_set_with_cas_is_argument_error_and_stores_nothing(cb, key):
    with pytest.raises(ArgumentError):
        cb.set({f"{key}:a": 1}, cas=123)
    assert cb.get(f"{key}:a", quiet=True) is None


def test_add_only_creates(cb, key):
    assert cb.add(key, "first") > 0
    with pytest.raises(KeyExistsError):
        cb.add(key, "second")
    assert cb.get(key) == "first"


def test_replace_only_changes_existing(cb, key):
    with pytest.raises(NotFoundError):
        cb.replace(key, "x")
    cb.set(key, "a")
    cb.replace(key, "b")
    assert cb.get(key) == "b"


def test_replace_with_stale_cas(cb, key):
    cas = cb.set(key, "a")
    cb.set(key, "b")
    with pytest.raises(KeyExistsError):
        cb.replace(key, "c", cas=cas)


def test_multi_add_partial_failure_reports_all_results(cb, key):
    cb.set(f"{key}:exists", "old")
    with pytest.raises(KeyExistsError) as info:
        cb.add({f"{key}:new1": 1, f"{key}:exists": 2, f"{key}:new2": 3})
    results = info.value.all_results
    assert isinstance(results[f"{key}:new1"], int) and isinstance(results[f"{key}:new2"], int)
    assert isinstance(results[f"{key}:exists"], KeyExistsError)
    assert cb.get([f"{key}:new1", f"{key}:exists", f"{key}:new2"]) == [1, "old", 3]


def test_ttl_expiry(cb, cluster, key):
    cb.set(key, "short", ttl=5)
    cb.set(f"{key}:long", "long", ttl=100)
    assert cb.get(key) == "short"
    cluster.time_travel(6)
    with pytest.raises(NotFoundError):
        cb.get(key)
    assert cb.get(f"{key}:long") == "long"


# -- append / prepend -------------------------------------------------------------


def test_append_prepend(cb, key):
    cb.set(key, b"middle", format=FMT_PLAIN)
    cb.append(key, b"-end")
    cb.prepend(key, b"start-")
    assert cb.get(key) == b"start-middle-end"


def test_append_to_missing_is_not_stored(cb, key):
    with pytest.raises(NotStoredError) as info:
        cb.append(key, b"x")
    assert info.value.operation == "append"


def test_append_keeps_format_flags(cb, key):
    cb.set(key, "abc")  # JSON string "abc"
    cb.append(key, b"")
    assert cb.get(key) == "abc"


def test_append_refuses_str(cb, key):
    from couchbase.exceptions import ValueFormatError

    cb.set(key, b"x", format=FMT_PLAIN)
    with pytest.raises(ValueFormatError):
        cb.append(key, "text")
    assert cb.get(key) == b"x"


def test_multi_append(cb, key):
    cb.set({f"{key}:a": b"a", f"{key}:b": b"b"}, format=FMT_PLAIN)
    cb.append({f"{key}:a": b"1", f"{key}:b": b"2"})
    assert cb.get([f"{key}:a", f"{key}:b"]) == [b"a1", b"b2"]


# -- delete ------------------------------------------------------------------------


def test_delete(cb, key):
    cb.set(key, 1)
    assert cb.delete(key) is True
    with pytest.raises(NotFoundError):
        cb.delete(key)
    assert cb.delete(key, quiet=True) is False


def test_delete_with_cas(cb, key):
    cas = cb.set(key, 1)
    cb.set(key, 2)
    with pytest.raises(KeyExistsError):
        cb.delete(key, cas=cas)
    value, _, cas = cb.get(key, extended=True)
    assert cb.delete(key, cas=cas) is True


def test_multi_delete_list_and_dict_of_cas(cb, key):
    cas = cb.set({f"{key}:a": 1, f"{key}:b": 2, f"{key}:c": 3})
    assert cb.delete([f"{key}:a", f"{key}:b"]) == {f"{key}:a": True, f"{key}:b": True}
    assert cb.delete({f"{key}:c": cas[f"{key}:c"]}) == {f"{key}:c": True}
    assert cb.delete([f"{key}:a", f"{key}:zz"], quiet=True) == {f"{key}:a": False, f"{key}:zz": False}


# -- incr / decr --------------------------------------------------------------------


def test_incr_decr(cb, key):
    assert cb.incr(key, initial=5) == 5
    assert cb.incr(key) == 6
    assert cb.incr(key, amount=10) == 16
    assert cb.decr(key, amount=6) == 10
    assert cb.get(key) == 10  # a counter reads back as a JSON number


def test_incr_missing_without_initial(cb, key):
    with pytest.raises(NotFoundError) as info:
        cb.incr(key)
    assert info.value.operation == "incr"


def test_decr_stops_at_zero(cb, key):
    cb.incr(key, initial=3)
    assert cb.decr(key, amount=10) == 0


def test_incr_non_numeric_is_delta_badval(cb, key):
    cb.set(key, "not a number")
    with pytest.raises(DeltaBadvalError):
        cb.incr(key)


def test_incr_extended_and_multi(cb, key):
    r = cb.incr(key, initial=1, extended=True)
    assert isinstance(r, Result) and r.value == 1 and r.cas > 0
    keys = [f"{key}:a", f"{key}:b"]
    assert cb.incr(keys, initial=7) == {keys[0]: 7, keys[1]: 7}
    results = cb.incr(keys, amount=2, extended=True)
    assert {k: r.value for k, r in results.items()} == {keys[0]: 9, keys[1]: 9}


def test_incr_with_ttl(cb, cluster, key):
    cb.incr(key, initial=1, ttl=5)
    cluster.time_travel(6)
    assert cb.get(key, quiet=True) is None


# -- touch / lock / unlock ---------------------------------------------------------------


def test_touch(cb, cluster, key):
    cb.set(key, "v", ttl=5)
    assert cb.touch(key, 100) is True
    cluster.time_travel(10)
    assert cb.get(key) == "v"
    with pytest.raises(NotFoundError):
        cb.touch(f"{key}:missing", 10)


def test_multi_touch(cb, cluster, key):
    keys = [f"{key}:a", f"{key}:b"]
    cb.set(dict.fromkeys(keys, 1))
    assert cb.touch(keys, 5) == dict.fromkeys(keys, True)
    cluster.time_travel(6)
    assert cb.get(keys, quiet=True) == [None, None]


def test_lock_and_unlock(cb, key):
    cb.set(key, "v")
    result = cb.lock(key, ttl=10)
    assert result.value == "v" and result.cas > 0
    with pytest.raises(TemporaryFailError) as info:  # KeyLockedError is one
        cb.set(key, "other", timeout=kinds.LOCKED_KEY_TIMEOUT)
    assert isinstance(info.value, (KeyLockedError, KeyExistsError, TemporaryFailError))
    assert cb.unlock(key, result.cas) is True
    cb.set(key, "after")
    assert cb.get(key) == "after"


def test_locked_key_can_be_changed_with_the_lock_cas(cb, key):
    cb.set(key, "v")
    result = cb.lock(key, ttl=10)
    cb.set(key, "changed", cas=result.cas)  # a mutation with the lock's CAS unlocks
    assert cb.get(key) == "changed"


def test_lock_expires(cb, cluster, key):
    cb.set(key, "v")
    cb.lock(key, ttl=2)
    cluster.time_travel(3)
    cb.set(key, "free again")


def test_multi_lock_unlock(cb, key):
    keys = [f"{key}:a", f"{key}:b"]
    cb.set(dict.fromkeys(keys, 0))
    locked = cb.lock(keys, ttl=5)
    assert set(locked) == set(keys)
    assert cb.unlock({k: r.cas for k, r in locked.items()}) == dict.fromkeys(keys, True)


@pytest.mark.parametrize("ttl", [0, 31, -1, "5"])
def test_lock_ttl_bounds(cb, key, ttl):
    with pytest.raises(ArgumentError):
        cb.lock(key, ttl=ttl)


def test_unlock_needs_cas(cb, key):
    with pytest.raises(ArgumentError):
        cb.unlock(key, None)


# -- stats -----------------------------------------------------------------------------


def test_stats_default_group(cb, key):
    cb.set(key, 1)
    stats = cb.stats()
    assert "curr_items" in stats
    (node, value), = stats["curr_items"].items()
    assert isinstance(value, int) and value >= 1
    assert ":" in node


def test_stats_named_groups(cb):
    stats = cb.stats("memory")
    assert "mem_used" in stats
    both = cb.stats(["memory", ""])
    assert "mem_used" in both and "curr_items" in both


def test_stats_bad_argument(cb):
    with pytest.raises(ArgumentError):
        cb.stats(42)
