"""One client process of bench/aio_bench.py, driven over stdin/stdout with
bench/_worker.py's line protocol (its serve and timed; "run" takes a workload
name here).

    python bench/_aio_worker.py CLIENT CONN_JSON

CLIENT: ``sync`` (this binding's Connection: bench/_worker.py's client),
``asyncio`` / ``uvloop`` (its AsyncConnection on that loop), ``acouchbase``
(the official SDK's asyncio API, on the standard asyncio loop). Workloads,
each over the same 16-byte values:

    get1        sequential ``await get(key)``
    set1        sequential ``await set(key, value)``
    gather1000  ``await asyncio.gather(*[get(k) for k in 1,000 keys])``
    get100      one awaited 100-key get (acouchbase has no multi-key get: a gather of 100)
    set100      one awaited 100-key set (acouchbase: a gather of 100 upserts)

One operation is one key. A run answers {"ops", "calls", "elapsed", "utime",
"stime", "minflt"}: CPU from getrusage(RUSAGE_SELF) around the timed loop,
so every thread of the process counts (acouchbase does its I/O on threads of
its own C++ core).

Like bench/_worker.py (the one file of the repository it imports, from its
own directory) it imports nothing from the repository (the SDK runs from
outside the checkout with PYTHONPATH cleared).
"""

import asyncio
import json
import sys
import time

from _worker import Ours, chunks, serve

WORKLOADS = {"get1": ("get", 1), "set1": ("set", 1), "gather1000": ("get", 1000),
             "get100": ("get", 100), "set100": ("set", 100)}


class Sync(Ours):
    """This binding's sync Connection, bench/_worker.py's client and timed loops;
    gather1000 has no sync form."""

    prefix = "as:"

    def run(self, workload, keys, value, deadline):
        if workload == "gather1000":
            raise RuntimeError("no sync form")
        op, batch = WORKLOADS[workload]
        return self.loop(op, batch, keys, value, deadline)


class _OnLoop:
    """A client whose calls run on an event loop owned by this process."""

    def new_loop(self):
        return asyncio.new_event_loop()

    def __init__(self, conn):
        self.loop = self.new_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.aconnect(conn))

    def populate(self, keys, value):
        self.loop.run_until_complete(self.apopulate(keys, value))

    def check(self, keys, value):
        self.loop.run_until_complete(self.acheck(keys, value))

    def run(self, workload, keys, value, deadline):
        return self.loop.run_until_complete(self.aloop(workload, keys, value, deadline))


class Aio(_OnLoop):
    """This binding's AsyncConnection (multi-key forms for get100/set100)."""

    prefix = "aa:"

    async def aconnect(self, conn):
        from couchbase import FMT_PLAIN
        from couchbase.aio import AsyncConnection

        self.cb = await AsyncConnection.connect(conn["host"], conn["port"], bucket="default", password="",
                                                default_format=FMT_PLAIN)

    async def apopulate(self, keys, value):
        for part in chunks(keys, 100):
            await self.cb.set(dict.fromkeys(part, value))

    async def acheck(self, keys, value):
        assert await self.cb.get(keys[:3]) == [value] * 3, "populate check failed"

    async def aloop(self, workload, keys, value, deadline):
        cb, now, calls, nk = self.cb, time.perf_counter, 0, len(keys)
        get, set_ = cb.get, cb.set
        if workload in ("get1", "set1"):
            i = 0
            if workload == "get1":
                while True:
                    await get(keys[i])
                    calls += 1
                    i = i + 1 if i + 1 < nk else 0
                    if now() >= deadline:
                        return calls
            while True:
                await set_(keys[i], value)
                calls += 1
                i = i + 1 if i + 1 < nk else 0
                if now() >= deadline:
                    return calls
        if workload == "gather1000":
            gather = asyncio.gather
            while True:
                await gather(*[get(k) for k in keys])
                calls += 1
                if now() >= deadline:
                    return calls
        lists = chunks(keys, 100)
        if workload == "get100":
            while True:
                for ks in lists:
                    await get(ks)
                    calls += 1
                    if now() >= deadline:
                        return calls
        dicts = [dict.fromkeys(ks, value) for ks in lists]
        while True:
            for d in dicts:
                await set_(d)
                calls += 1
                if now() >= deadline:
                    return calls


class AioUvloop(Aio):
    def new_loop(self):
        import uvloop

        return uvloop.new_event_loop()


class Acouchbase(_OnLoop):
    """The official SDK's asyncio API (acouchbase), raw bytes."""

    prefix = "ac:"

    async def aconnect(self, conn):
        from datetime import timedelta

        from acouchbase.cluster import Cluster
        from couchbase.auth import PasswordAuthenticator
        from couchbase.options import ClusterOptions
        from couchbase.transcoder import RawBinaryTranscoder

        opts = ClusterOptions(PasswordAuthenticator(conn["username"], conn["password"]),
                              transcoder=RawBinaryTranscoder())
        self.cluster = await Cluster.connect("couchbase://%s:%d" % (conn["host"], conn["kv_port"]), opts)
        await self.cluster.wait_until_ready(timedelta(seconds=20))
        bucket = self.cluster.bucket("default")
        await bucket.on_connect()
        self.coll = bucket.default_collection()

    async def apopulate(self, keys, value):
        for part in chunks(keys, 100):
            await asyncio.gather(*[self.coll.upsert(k, value) for k in part])

    async def acheck(self, keys, value):
        assert (await self.coll.get(keys[0])).value == value, "populate check failed"

    async def aloop(self, workload, keys, value, deadline):
        coll, now, calls, nk = self.coll, time.perf_counter, 0, len(keys)
        get, upsert, gather = coll.get, coll.upsert, asyncio.gather
        if workload in ("get1", "set1"):
            i = 0
            if workload == "get1":
                while True:
                    (await get(keys[i])).value  # noqa: B018 (decoded on access)
                    calls += 1
                    i = i + 1 if i + 1 < nk else 0
                    if now() >= deadline:
                        return calls
            while True:
                await upsert(keys[i], value)
                calls += 1
                i = i + 1 if i + 1 < nk else 0
                if now() >= deadline:
                    return calls
        if workload in ("gather1000", "get100"):
            lists = [keys] if workload == "gather1000" else chunks(keys, 100)
            while True:
                for ks in lists:
                    for r in await gather(*[get(k) for k in ks]):
                        r.value  # noqa: B018
                    calls += 1
                    if now() >= deadline:
                        return calls
        lists = chunks(keys, 100)
        while True:
            for ks in lists:
                await gather(*[upsert(k, value) for k in ks])
                calls += 1
                if now() >= deadline:
                    return calls


CLIENTS = {"sync": Sync, "asyncio": Aio, "uvloop": AioUvloop, "acouchbase": Acouchbase}


def main():
    name, conn = sys.argv[1], json.loads(sys.argv[2])
    client = CLIENTS[name](conn)

    def workload(cmd):
        wl = cmd["workload"]
        return (lambda keys, value, deadline: client.run(wl, keys, value, deadline)), WORKLOADS[wl][1]

    serve(name, client, workload)


if __name__ == "__main__":
    main()
