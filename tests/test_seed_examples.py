"""The examples of the 0.9 documentation (reference/seed-couchbase-package.txt),
run as written against the mock cluster."""

import pytest

import couchbase
from couchbase import Couchbase
from couchbase.exceptions import KeyExistsError


@pytest.fixture
def seed_cb(cluster):
    cb = Couchbase.connect(host=cluster.host, port=cluster.port, password="secret", bucket="protected")
    yield cb
    cb.close()


def test_get_examples(seed_cb):
    cb = seed_cb
    cb.set({"key": "v", "foo": 1, "bar": 2, "baz": 3})
    value = cb.get("key")
    assert value == "v"
    assert cb.get(["foo", "bar", "baz"]) == [1, 2, 3]
    value, flags, cas = cb.get("key", extended=True)
    result = cb.get("key", extended=True)
    assert (result.value, result.flags, result.cas) == (value, flags, cas)
    multi = cb.get(["foo", "bar"], extended=True)
    assert {k: v[0] for k, v in multi.items()} == {"foo": 1, "bar": 2}


def test_set_examples(seed_cb):
    cb = seed_cb
    cb.set("key", "value")
    cb.set("foo", {"bar": "baz"}, format=couchbase.FMT_JSON)
    # optimistic locking with a CAS that is no longer (or never was) current
    with pytest.raises((KeyExistsError, couchbase.exceptions.NotFoundError)):
        cb.set("foo", "bar", cas=8835713818674332672)
    assert cb.set({"foo": "bar", "baz": "value"}).keys() == {"foo", "baz"}


def test_delete_examples(seed_cb):
    cb = seed_cb
    cb.set({"key": 1, "key1": 1, "key2": 2, "key3": 3})
    ok = cb.delete("key")
    assert ok is True
    ok = cb.delete("key", quiet=True)
    assert ok is False
    cb.set("key", "again")
    value, flags, cas = cb.get("key", extended=True)
    cb.delete("key", cas=cas)
    oks = cb.delete(["key1", "key2", "key3"])
    assert oks == {"key1": True, "key2": True, "key3": True}
    cas1, cas2, cas3 = (cb.set(k, 0) for k in ("key1", "key2", "key3"))
    oks = cb.delete({"key1": cas1, "key2": cas2, "key3": cas3})
    assert all(oks.values())


def test_incr_examples(seed_cb):
    cb = seed_cb
    cb.delete(["key", "foo", "bar", "baz"], quiet=True)
    cb.set("key", 0)
    ok = cb.incr("key")
    assert ok == 1
    ok = cb.incr("key", amount=10)
    assert ok == 11
    cb.delete("key")
    ok = cb.incr("key", amount=20, initial=5)
    assert ok == 5
    cb.set({"foo": 1, "bar": 2, "baz": 3})
    kv = cb.incr(["foo", "bar", "baz"], extended=True)
    lines = ["Key %s has value %d now" % (key, result.value) for key, result in kv.items()]
    assert lines == ["Key foo has value 2 now", "Key bar has value 3 now", "Key baz has value 4 now"]


def test_stats_examples(seed_cb):
    cb = seed_cb
    total = 0
    for key, value in cb.stats()["total_items"].items():  # noqa: B007 - the seed example as written
        total += value
    assert total >= 0
    assert "mem_used" in cb.stats("memory")
