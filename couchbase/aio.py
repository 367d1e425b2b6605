"""asyncio: :class:`AsyncConnection`, driven by the running event loop.

Every operation of :class:`couchbase.libcouchbase.Connection` (get with
``ttl=`` get-and-touch, lock, set, add, replace, append, prepend, delete,
touch, unlock, incr, decr, stats), with the same arguments, multi-key forms,
``extended``, ``quiet``, formats, results, exception classes and messages,
each returning a Future of what Connection returns. Both connection kinds run
the same operation core (each operation is written once), so they agree by
construction; that includes the exactly-once rule: a mutation whose
connection fails after it was written is never sent again (it fails with
OutcomeUnknownError).

Example::

    from couchbase.aio import AsyncConnection

    async with await AsyncConnection.connect("localhost", 8091, password="", bucket="default") as cb:
        await cb.set("key", {"a": 1})
        print(await cb.get("key"))
        values = await cb.get(["key", "other"], quiet=True)

libcouchbase runs inside the loop through an IO plugin of its own (no thread,
no ``lcb_wait``), on the standard asyncio loop and on uvloop alike. Methods
return Futures, not coroutines, so ``asyncio.gather`` over many of them costs
no Task each; the operations queued in one loop iteration go out in one
write per node. An AsyncConnection belongs to the loop it was connected on:
using it from another loop or thread raises BadHandleError. ``await
cb.close()`` (or leaving ``async with``) fails what is still queued
(ConnectError: nothing was sent) or in flight (RequestCanceledError: whether
it was applied is unknown) and then releases libcouchbase.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from couchbase import _status
from couchbase import exceptions as _exc
from couchbase._lcb import _AsyncCore, _bootstrap_error, _connect_options, _own_operations

__all__ = ["AsyncConnection"]


class AsyncConnection(_AsyncCore):
    """A connection to one Couchbase bucket, used from one asyncio event loop.

    Made with :meth:`connect`. Every operation of the synchronous Connection,
    with its arguments, returns a Future of what Connection returns (its
    exceptions set on the Future; bad arguments raise at the call, before
    anything is queued). Using it from another event loop or thread raises
    BadHandleError. :meth:`close` fails what is still queued (ConnectError)
    or in flight (RequestCanceledError: whether it was applied is unknown).
    """

    @classmethod
    async def connect(cls, host: str = "localhost", port: int = 8091, username: str | None = None,
                      password: str | None = None, bucket: str | None = None, quiet: bool = False,
                      **options: Any) -> AsyncConnection:
        """Connect to a bucket; the arguments and keyword options are those of
        :class:`couchbase.libcouchbase.Connection`. Host names are resolved
        with the loop's ``getaddrinfo``, so connecting never blocks the loop."""
        loop = asyncio.get_running_loop()
        settings = _connect_options(host, port, username, password, bucket, quiet, **options)
        connstr = await _resolve_hosts(loop, settings)
        self = cls()
        bootstrapped = self._start(loop, settings, connstr)
        try:
            await bootstrapped
        except BaseException:
            await self.close()
            raise
        return self

    async def __aenter__(self) -> AsyncConnection:
        """``async with await AsyncConnection.connect(...) as cb:``: the connection itself."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the connection (see :meth:`close`) when the block ends."""
        await self.close()


_own_operations(AsyncConnection)  # a method call costs less on its object's own class


async def _resolve_hosts(loop, settings: dict) -> str:
    """The connection string with every host name replaced by its addresses
    (libcouchbase's own resolver would block the loop). A name with several
    addresses becomes several hosts, tried in order as libcouchbase would."""
    connstr = settings["connstr"]
    scheme, sep, rest = connstr.partition("://")
    if not sep:
        scheme, rest = "", connstr
    if "dnssrv" in scheme:
        raise _exc.ArgumentError("DNS SRV lookups would block the event loop; name the hosts "
                                 "(couchbase://host1,host2/bucket)", operation="connect")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    hosts, tail = rest[:end], rest[end:]
    entries = [h for h in hosts.replace(";", ",").split(",") if h.strip()] or ["localhost"]
    resolved: list[str] = []
    for entry in entries:
        for address in await _resolve_entry(loop, entry.strip(), settings):
            if address not in resolved:
                resolved.append(address)
    if "?" not in tail:
        tail += "?"
    elif not tail.endswith(("?", "&")):
        tail += "&"
    # one host without a port would make libcouchbase look up DNS SRV records (blocking)
    tail += "dnssrv=off"
    if "dnssrv=on" in tail or "dnssrv=true" in tail or "dnssrv=1" in tail:
        raise _exc.ArgumentError("DNS SRV lookups would block the event loop; name the hosts",
                                 operation="connect")
    return (scheme + "://" if sep else "") + ",".join(resolved) + tail


async def _resolve_entry(loop, entry: str, settings: dict) -> list[str]:
    """One connection-string host (``name``, ``name:port``, ``[v6]:port=http``)
    as the same entry for each of its addresses."""
    if entry.startswith("["):
        host, _, suffix = entry[1:].partition("]")
    else:
        host, colon, port = entry.partition(":")
        suffix = colon + port
        if not colon:
            host, eq, proto = entry.partition("=")
            suffix = eq + proto
    try:
        ipaddress.ip_address(host)
        return [entry]
    except ValueError:
        pass
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise _bootstrap_error(_status.LCB_ERR_UNKNOWN_HOST, settings["bucket"], settings["host"],
                               settings["port"], settings["connection_string"], settings["secrets"]) from e
    out = []
    for family, _, _, _, sockaddr in infos:
        address = sockaddr[0]
        text = f"[{address}]" if family == socket.AF_INET6 else address
        if text + suffix not in out:
            out.append(text + suffix)
    return out
