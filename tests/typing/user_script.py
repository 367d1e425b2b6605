"""What a user's code sees under ``mypy --strict`` (type-checked by
tests/test_typing.py, never run). A line that must be a type error carries a
``type: ignore``: mypy --strict reports the comment as unused if the stubs
ever accept it."""

from typing import Any, Union

from typing_extensions import assert_type

from couchbase import Connection, Couchbase, Result
from couchbase.aio import AsyncConnection
from couchbase.exceptions import CouchbaseError
from couchbase.libcouchbase import Connection as SeedConnection


def use(cb: Connection) -> None:
    assert_type(cb.set("k", 1), int)
    assert_type(cb.set({"a": 1, "b": 2}), dict[Union[str, bytes], int])
    assert_type(cb.get(["a", "b"]), list[Any])
    assert_type(cb.get("k", extended=True), Result)
    assert_type(cb.lock("k", ttl=5), Result)
    assert_type(cb.incr("n", initial=0), int)
    assert_type(cb.delete("k"), bool)
    cb.touch("k", ttl="5")  # type: ignore[call-overload]
    cb.set("k", 1, ttl="5")  # type: ignore[call-overload]


async def use_async() -> None:
    acb = await AsyncConnection.connect("localhost", bucket="default", password="")
    assert_type(acb, AsyncConnection)
    async with acb:
        assert_type(await acb.get("k"), Any)
        assert_type(await acb.get(["a", "b"]), list[Any])
        assert_type(await acb.get("k", extended=True), Result)
        assert_type(await acb.set("k", 1), int)
        assert_type(await acb.set({"a": 1}), dict[Union[str, bytes], int])
        assert_type(await acb.incr("n", initial=0), int)
        assert_type(await acb.delete("k"), bool)
        assert_type(await acb.stats(), dict[str, dict[str, Any]])
        await acb.get("k", ttl="5")  # type: ignore[call-overload]
        await acb.touch("k", ttl="5")  # type: ignore[call-overload]


cb = Couchbase.connect("localhost", bucket="default", password="")
assert_type(cb, Connection)
seed: SeedConnection = cb
try:
    use(cb)
except CouchbaseError as e:
    assert_type(e.key, Any)
finally:
    cb.close()
