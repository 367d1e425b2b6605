"""No reference or memory is leaked per call, on success and on error paths."""

import gc
import sys
import tracemalloc

import pytest

from couchbase import FMT_PICKLE, FMT_PLAIN
from couchbase.exceptions import CouchbaseError

# run under the sanitizers too (scripts/run-sanitized); each test once per connection kind (tests/kinds.py)
pytestmark = [pytest.mark.sanitize, pytest.mark.every_kind]


def _mixed_calls(cb, key, value, big):
    cb.set(key, value)
    cb.get(key)
    cb.get(key, extended=True)
    cb.set({key: value, key + ":2": value})
    cb.get([key, key + ":2"])
    cb.set(key + ":big", big, format=FMT_PLAIN)
    cb.get([key + ":big", key])
    cb.set(key + ":p", value, format=FMT_PICKLE)
    cb.get(key + ":p")
    cb.incr(key + ":n", initial=1)
    cb.delete(key + ":n")
    cb.get(key + ":missing", quiet=True)
    cb.touch(key, 100)
    for call in (lambda: cb.get(key + ":missing"), lambda: cb.add(key, value),
                 lambda: cb.get([key, key + ":missing"]), lambda: cb.set(42, value),
                 lambda: cb.set(key, object())):
        try:
            call()
        except CouchbaseError:
            pass


def test_no_reference_leaked_to_keys_and_values(cb, key):
    value = {"v": [1, 2, 3]}
    big = b"b" * 40000
    _mixed_calls(cb, key, value, big)
    gc.collect()
    before = (sys.getrefcount(key), sys.getrefcount(value), sys.getrefcount(big))
    for _ in range(200):
        _mixed_calls(cb, key, value, big)
    gc.collect()
    assert (sys.getrefcount(key), sys.getrefcount(value), sys.getrefcount(big)) == before


def test_no_memory_growth_over_many_calls(cb, key):
    value = {"v": "x" * 100}
    big = b"b" * 40000
    for _ in range(100):
        _mixed_calls(cb, key, value, big)
    gc.collect()
    tracemalloc.start()
    try:
        before = _client_memory()
        for _ in range(400):
            _mixed_calls(cb, key, value, big)
        gc.collect()
        grown = _client_memory() - before
    finally:
        tracemalloc.stop()
    # ~10,000 calls: a leak of one small object per call would be 300 kB or more
    assert grown < 64 * 1024, f"Python memory grew by {grown} bytes"


# The mock cluster runs in this process too; what it allocates is not ours.
_NOT_THE_CLIENT = [tracemalloc.Filter(False, pattern) for pattern in (
    "*/couchbase/mock/*", "*/asyncio/*", "*/selectors.py", "*/socket.py", "*/threading.py",
    # and the async kinds' thread hand-over (tests/kinds.py)
    "*/concurrent/futures/*", "*/tests/kinds.py")]


def _client_memory():
    snapshot = tracemalloc.take_snapshot().filter_traces(_NOT_THE_CLIENT)
    return sum(stat.size for stat in snapshot.statistics("filename"))


@pytest.mark.parametrize("n", [1, 100])
def test_live_objects_do_not_accumulate(cb, key, n):
    keys = [f"{key}:{i}" for i in range(n)]
    cb.set(dict.fromkeys(keys, 1))
    for _ in range(50):
        cb.get(keys)
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(500):
        cb.get(keys)
        cb.set(dict.fromkeys(keys, 1))
    gc.collect()
    assert len(gc.get_objects()) - before < 50
