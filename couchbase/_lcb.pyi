"""Type stubs for the compiled module couchbase._lcb."""

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, overload

from couchbase.durability import Durability
from couchbase.result import ReplicaResult, Result, SubdocResult
from couchbase.subdocument import Spec, StoreSemantics

Key = str | bytes

FMT_JSON: Literal[0]
FMT_PICKLE: Literal[1]
FMT_PLAIN: Literal[2]
FMT_MASK: Literal[3]

def set_json_converters(
    encode: Callable[[Any], bytes | str], decode: Callable[[bytes], Any]
) -> tuple[Callable[[Any], bytes | str], Callable[[bytes], Any]]: ...
def libcouchbase_version() -> tuple[str, int]: ...
def libcouchbase_changeset() -> str: ...

# the built-packet path's limits, for its tests
_FORWARD_MAX_HEAD: int
_FORWARD_MAX_PACKET: int

def _forwarding_fits(nhead: int, nvalue: int) -> bool: ...

class Connection:
    host: str | None
    port: int | None
    bucket: str
    username: str
    connection_string: str
    quiet: bool
    default_format: int
    @property
    def closed(self) -> bool: ...
    @property
    def unpickle(self) -> bool | Literal["bytes"]: ...
    def _replays_stopped(self) -> int: ...
    def __init__(
        self,
        host: str = ...,
        port: int = ...,
        username: str | None = ...,
        password: str | None = ...,
        bucket: str | None = ...,
        quiet: bool = ...,
        *,
        connection_string: str | None = ...,
        timeout: float = ...,
        connect_timeout: float = ...,
        default_format: int = ...,
        enable_tracing: bool = ...,
        enable_operation_metrics: bool = ...,
        unpickle: bool | Literal["bytes"] = ...,
        tls_ca_file: str | os.PathLike[str] | None = ...,
        tls_cert_file: str | os.PathLike[str] | None = ...,
        tls_key_file: str | os.PathLike[str] | None = ...,
        tls_verify: bool = ...,
    ) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Connection: ...
    def __exit__(self, *exc_info: object) -> Literal[False]: ...
    @overload
    def get(
        self,
        keys: Key,
        extended: Literal[False] = ...,
        format: int | None = ...,
        quiet: bool | None = ...,
        ttl: int | None = ...,
        *,
        replica: bool = ...,
        timeout: float | None = ...,
    ) -> Any: ...
    @overload
    def get(
        self,
        keys: Key,
        extended: Literal[True],
        format: int | None = ...,
        quiet: bool | None = ...,
        ttl: int | None = ...,
        *,
        replica: bool = ...,
        timeout: float | None = ...,
    ) -> Result: ...
    @overload
    def get(
        self,
        keys: Iterable[Key],
        extended: Literal[False] = ...,
        format: int | None = ...,
        quiet: bool | None = ...,
        ttl: int | None = ...,
        *,
        replica: bool = ...,
        timeout: float | None = ...,
    ) -> list[Any]: ...
    @overload
    def get(
        self,
        keys: Iterable[Key],
        extended: Literal[True],
        format: int | None = ...,
        quiet: bool | None = ...,
        ttl: int | None = ...,
        *,
        replica: bool = ...,
        timeout: float | None = ...,
    ) -> dict[Key, Result]: ...
    @overload
    def lock(self, keys: Key, ttl: int, *, timeout: float | None = ...) -> Result: ...
    @overload
    def lock(self, keys: Iterable[Key], ttl: int, *, timeout: float | None = ...) -> dict[Key, Result]: ...
    @overload
    def unlock(self, key: Key, cas: int, *, timeout: float | None = ...) -> bool: ...
    @overload
    def unlock(
        self, key: Mapping[Key, int], cas: None = ..., *, timeout: float | None = ...
    ) -> dict[Key, bool]: ...
    @overload
    def touch(self, keys: Key, ttl: int, *, timeout: float | None = ...) -> bool: ...
    @overload
    def touch(self, keys: Iterable[Key], ttl: int, *, timeout: float | None = ...) -> dict[Key, bool]: ...
    @overload
    def set(
        self,
        key: Key,
        value: Any,
        cas: int = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> int: ...
    @overload
    def set(
        self,
        key: Mapping[Key, Any],
        value: None = ...,
        cas: int = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> dict[Key, int]: ...
    @overload
    def add(
        self,
        key: Key,
        value: Any,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> int: ...
    @overload
    def add(
        self,
        key: Mapping[Key, Any],
        value: None = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> dict[Key, int]: ...
    @overload
    def replace(
        self,
        key: Key,
        value: Any,
        cas: int = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> int: ...
    @overload
    def replace(
        self,
        key: Mapping[Key, Any],
        value: None = ...,
        cas: int = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> dict[Key, int]: ...
    @overload
    def append(
        self,
        key: Key,
        value: bytes,
        cas: int = ...,
        ttl: int = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> int: ...
    @overload
    def append(
        self,
        key: Mapping[Key, bytes],
        value: None = ...,
        cas: int = ...,
        ttl: int = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> dict[Key, int]: ...
    @overload
    def prepend(
        self,
        key: Key,
        value: bytes,
        cas: int = ...,
        ttl: int = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> int: ...
    @overload
    def prepend(
        self,
        key: Mapping[Key, bytes],
        value: None = ...,
        cas: int = ...,
        ttl: int = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> dict[Key, int]: ...
    @overload
    def delete(
        self,
        keys: Key,
        cas: int = ...,
        quiet: bool | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> bool: ...
    @overload
    def delete(
        self,
        keys: Iterable[Key] | Mapping[Key, int],
        cas: int = ...,
        quiet: bool | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> dict[Key, bool]: ...
    @overload
    def incr(
        self,
        keys: Key,
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        extended: Literal[False] = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> int: ...
    @overload
    def incr(
        self,
        keys: Key,
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        *,
        extended: Literal[True],
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> Result: ...
    @overload
    def incr(
        self,
        keys: Iterable[Key],
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        extended: bool = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> dict[Key, Any]: ...
    @overload
    def decr(
        self,
        keys: Key,
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        extended: Literal[False] = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> int: ...
    @overload
    def decr(
        self,
        keys: Key,
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        *,
        extended: Literal[True],
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> Result: ...
    @overload
    def decr(
        self,
        keys: Iterable[Key],
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        extended: bool = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> dict[Key, Any]: ...
    @overload
    def exists(self, keys: Key, extended: Literal[False] = ..., *, timeout: float | None = ...) -> bool: ...
    @overload
    def exists(self, keys: Key, extended: Literal[True], *, timeout: float | None = ...) -> Result: ...
    @overload
    def exists(
        self, keys: Iterable[Key], extended: bool = ..., *, timeout: float | None = ...
    ) -> dict[Key, Any]: ...
    @overload
    def get_all_replicas(
        self, keys: Key, format: int | None = ..., quiet: bool | None = ..., *, timeout: float | None = ...
    ) -> list[ReplicaResult]: ...
    @overload
    def get_all_replicas(
        self,
        keys: Iterable[Key],
        format: int | None = ...,
        quiet: bool | None = ...,
        *,
        timeout: float | None = ...,
    ) -> dict[Key, list[ReplicaResult]]: ...
    @overload
    def lookup_in(
        self, keys: Key, specs: Sequence[Spec], *, quiet: bool | None = ..., timeout: float | None = ...
    ) -> SubdocResult: ...
    @overload
    def lookup_in(
        self,
        keys: Iterable[Key],
        specs: Sequence[Spec],
        *,
        quiet: bool | None = ...,
        timeout: float | None = ...,
    ) -> dict[Key, SubdocResult | None]: ...
    def mutate_in(
        self,
        key: Key,
        specs: Sequence[Spec],
        cas: int = ...,
        ttl: int = ...,
        *,
        store_semantics: StoreSemantics | None = ...,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> SubdocResult: ...
    def stats(
        self, stats: str | list[str] | tuple[str, ...] | None = ..., *, timeout: float | None = ...
    ) -> dict[str, dict[str, Any]]: ...

# The asyncio driver (couchbase/_aio_io.pxi); its public class is couchbase.aio.AsyncConnection.

class _AsyncCore:
    """Every operation of Connection, each returning a Future of Connection's result."""

    host: str | None
    port: int | None
    bucket: str
    username: str
    connection_string: str
    quiet: bool
    default_format: int
    @property
    def closed(self) -> bool: ...
    @property
    def unpickle(self) -> bool | Literal["bytes"]: ...
    @property
    def loop_calls(self) -> int: ...
    def _start(
        self, loop: asyncio.AbstractEventLoop, options: dict[str, Any], connection_string: str
    ) -> asyncio.Future[None]: ...
    def close(self) -> asyncio.Future[None]: ...
    @property
    def _replays_stopped(self) -> int: ...
    # BEGIN generated by tools/generate_aio_stub.py from Connection's stubs: do not edit
    @overload
    def get(
        self,
        keys: Key,
        extended: Literal[False] = ...,
        format: int | None = ...,
        quiet: bool | None = ...,
        ttl: int | None = ...,
        *,
        replica: bool = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[Any]: ...
    @overload
    def get(
        self,
        keys: Key,
        extended: Literal[True],
        format: int | None = ...,
        quiet: bool | None = ...,
        ttl: int | None = ...,
        *,
        replica: bool = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[Result]: ...
    @overload
    def get(
        self,
        keys: Iterable[Key],
        extended: Literal[False] = ...,
        format: int | None = ...,
        quiet: bool | None = ...,
        ttl: int | None = ...,
        *,
        replica: bool = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[list[Any]]: ...
    @overload
    def get(
        self,
        keys: Iterable[Key],
        extended: Literal[True],
        format: int | None = ...,
        quiet: bool | None = ...,
        ttl: int | None = ...,
        *,
        replica: bool = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, Result]]: ...
    @overload
    def get_all_replicas(
        self,
        keys: Key,
        format: int | None = ...,
        quiet: bool | None = ...,
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[list[ReplicaResult]]: ...
    @overload
    def get_all_replicas(
        self,
        keys: Iterable[Key],
        format: int | None = ...,
        quiet: bool | None = ...,
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, list[ReplicaResult]]]: ...
    @overload
    def lock(self, keys: Key, ttl: int, *, timeout: float | None = ...) -> asyncio.Future[Result]: ...
    @overload
    def lock(
        self,
        keys: Iterable[Key],
        ttl: int,
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, Result]]: ...
    @overload
    def set(
        self,
        key: Key,
        value: Any,
        cas: int = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[int]: ...
    @overload
    def set(
        self,
        key: Mapping[Key, Any],
        value: None = ...,
        cas: int = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, int]]: ...
    @overload
    def add(
        self,
        key: Key,
        value: Any,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[int]: ...
    @overload
    def add(
        self,
        key: Mapping[Key, Any],
        value: None = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, int]]: ...
    @overload
    def replace(
        self,
        key: Key,
        value: Any,
        cas: int = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[int]: ...
    @overload
    def replace(
        self,
        key: Mapping[Key, Any],
        value: None = ...,
        cas: int = ...,
        ttl: int = ...,
        format: int | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, int]]: ...
    @overload
    def append(
        self,
        key: Key,
        value: bytes,
        cas: int = ...,
        ttl: int = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[int]: ...
    @overload
    def append(
        self,
        key: Mapping[Key, bytes],
        value: None = ...,
        cas: int = ...,
        ttl: int = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, int]]: ...
    @overload
    def prepend(
        self,
        key: Key,
        value: bytes,
        cas: int = ...,
        ttl: int = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[int]: ...
    @overload
    def prepend(
        self,
        key: Mapping[Key, bytes],
        value: None = ...,
        cas: int = ...,
        ttl: int = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, int]]: ...
    @overload
    def delete(
        self,
        keys: Key,
        cas: int = ...,
        quiet: bool | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[bool]: ...
    @overload
    def delete(
        self,
        keys: Iterable[Key] | Mapping[Key, int],
        cas: int = ...,
        quiet: bool | None = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, bool]]: ...
    @overload
    def touch(self, keys: Key, ttl: int, *, timeout: float | None = ...) -> asyncio.Future[bool]: ...
    @overload
    def touch(
        self,
        keys: Iterable[Key],
        ttl: int,
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, bool]]: ...
    @overload
    def unlock(self, key: Key, cas: int, *, timeout: float | None = ...) -> asyncio.Future[bool]: ...
    @overload
    def unlock(
        self,
        key: Mapping[Key, int],
        cas: None = ...,
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, bool]]: ...
    @overload
    def incr(
        self,
        keys: Key,
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        extended: Literal[False] = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[int]: ...
    @overload
    def incr(
        self,
        keys: Key,
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        *,
        extended: Literal[True],
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[Result]: ...
    @overload
    def incr(
        self,
        keys: Iterable[Key],
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        extended: bool = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, Any]]: ...
    @overload
    def decr(
        self,
        keys: Key,
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        extended: Literal[False] = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[int]: ...
    @overload
    def decr(
        self,
        keys: Key,
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        *,
        extended: Literal[True],
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[Result]: ...
    @overload
    def decr(
        self,
        keys: Iterable[Key],
        amount: int = ...,
        initial: int | None = ...,
        ttl: int = ...,
        extended: bool = ...,
        *,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, Any]]: ...
    @overload
    def exists(
        self,
        keys: Key,
        extended: Literal[False] = ...,
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[bool]: ...
    @overload
    def exists(
        self,
        keys: Key,
        extended: Literal[True],
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[Result]: ...
    @overload
    def exists(
        self,
        keys: Iterable[Key],
        extended: bool = ...,
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, Any]]: ...
    @overload
    def lookup_in(
        self,
        keys: Key,
        specs: Sequence[Spec],
        *,
        quiet: bool | None = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[SubdocResult]: ...
    @overload
    def lookup_in(
        self,
        keys: Iterable[Key],
        specs: Sequence[Spec],
        *,
        quiet: bool | None = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[Key, SubdocResult | None]]: ...
    def mutate_in(
        self,
        key: Key,
        specs: Sequence[Spec],
        cas: int = ...,
        ttl: int = ...,
        *,
        store_semantics: StoreSemantics | None = ...,
        durability: Durability | None = ...,
        persist_to: int = ...,
        replicate_to: int = ...,
        timeout: float | None = ...,
    ) -> asyncio.Future[SubdocResult]: ...
    def stats(
        self,
        stats: str | list[str] | tuple[str, ...] | None = ...,
        *,
        timeout: float | None = ...,
    ) -> asyncio.Future[dict[str, dict[str, Any]]]: ...
    # END generated by tools/generate_aio_stub.py

def _bootstrap_error(
    rc: int, bucket: str, host: str | None, port: int | None, connection_string: str, secrets: tuple[str, ...]
) -> Exception: ...
def _own_operations(cls: type) -> None: ...
def _connect_options(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Connection.__init__'s arguments, checked, as what opening a connection needs."""
