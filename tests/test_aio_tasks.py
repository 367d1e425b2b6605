"""AsyncConnection under the ways asyncio programs use it: tasks cancelled
while their operation is in flight, ``asyncio.timeout()`` and ``wait_for``
around a call, 10,000 concurrent tasks, calls from the wrong thread or loop,
and a close with every kind of operation in flight. What users rely on: a
cancelled call leaves nothing behind and the connection carries on; a
timeout raises what ``except TimeoutError`` catches; misuse is a clear
BadHandleError, never a crash; close fails what it cuts off with a clear
exception. Each test runs on the standard asyncio loop and on uvloop (the
``run`` fixture, tests/conftest.py)."""

import asyncio
import builtins
import gc
import sys
import threading
import time
import weakref

import pytest

from couchbase import FMT_PLAIN
from couchbase.aio import AsyncConnection
from couchbase.exceptions import BadHandleError, ConnectError, CouchbaseError, RequestCanceledError

# every operation, single-key and multi-key, as a call on an AsyncConnection
# for the key k (set up by _prepare)
OPERATIONS = {
    "get": lambda c, k: c.get(k),
    "get multi": lambda c, k: c.get([k, k + ":2"]),
    "get and touch": lambda c, k: c.get(k, ttl=100),
    "lock": lambda c, k: c.lock(k + ":missing", ttl=5),  # (a locked key would be retried until the timeout)
    "set": lambda c, k: c.set(k, "v"),
    "set multi": lambda c, k: c.set({k: "v", k + ":2": "v"}),
    "add": lambda c, k: c.add(k + ":new", 1),
    "replace": lambda c, k: c.replace(k, "v"),
    "append": lambda c, k: c.append(k + ":raw", b"a"),
    "prepend": lambda c, k: c.prepend(k + ":raw", b"p"),
    "delete": lambda c, k: c.delete(k + ":del", quiet=True),
    "touch": lambda c, k: c.touch(k, ttl=100),
    "unlock": lambda c, k: c.unlock(k + ":unlocked", 1),
    "incr": lambda c, k: c.incr(k + ":n", initial=0),
    "decr multi": lambda c, k: c.decr([k + ":n", k + ":n2"], initial=100),
    "stats": lambda c, k: c.stats(),
}


def _connect(mock, **options):
    return AsyncConnection.connect(mock.host, mock.port, password="", bucket="default", **options)


async def _prepare(acb, k):
    await acb.set({k: "v", k + ":2": "v", k + ":unlocked": "v"})
    await acb.set(k + ":raw", b"", format=FMT_PLAIN)


class _LoopErrors:
    """What reaches the loop's exception handler ("Future exception was
    never retrieved", an exception in a callback): nothing should."""

    def __init__(self):
        self.contexts = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: self.contexts.append(ctx))

    def check(self):
        gc.collect()  # a Future with an unretrieved exception reports when freed
        assert not self.contexts, [c.get("message") for c in self.contexts]


# -- cancellation ---------------------------------------------------------------


def test_tasks_cancelled_in_flight_leave_nothing_behind(run, faults, key):
    """Tasks awaiting every kind of operation, cancelled while the replies
    are delayed: each raises CancelledError, the replies that arrive later
    are dropped quietly, the calls' state is freed (the keys and values they
    held, their Futures), an increment that was sent is applied once
    (cancelling the caller does not unsend it), and the connection keeps
    working."""
    async def awaiting(future):
        return await future

    async def main():
        errors = _LoopErrors()
        async with await _connect(faults) as acb:
            k = "".join([key, ":cancelled"])  # an object of its own: its references are counted
            value = bytes(1000)  # held by its sets until written
            await _prepare(acb, k)
            await acb.set(k + ":count", 0)
            for _ in range(3):  # warm up whatever is allocated once
                await asyncio.gather(*[op(acb, k) for op in OPERATIONS.values()], return_exceptions=True)
            await _prepare(acb, k)
            gc.collect()
            refs = sys.getrefcount(k), sys.getrefcount(value)
            faults.hiccup(250)
            futures = [call(acb, k) for call in OPERATIONS.values()]
            futures += [acb.incr(k + ":count") for _ in range(20)]
            futures += [acb.set(k, value, format=FMT_PLAIN) for _ in range(5)]
            tasks = [asyncio.ensure_future(awaiting(f)) for f in futures]
            freed = [weakref.ref(f) for f in futures]
            del futures
            await asyncio.sleep(0.05)  # sent; the replies are delayed
            assert sys.getrefcount(k) > refs[0] and sys.getrefcount(value) > refs[1]  # (held in flight)
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes
            del tasks, task, outcomes  # (a cancelled task's traceback holds its frame: its Future)
            faults.hiccup(0)
            await asyncio.sleep(0.5)  # the delayed replies arrive for cancelled Futures
            gc.collect()
            assert (sys.getrefcount(k), sys.getrefcount(value)) == refs
            assert [i for i, f in enumerate(freed) if f() is not None] == []
            assert await acb.get(k + ":count") == 20  # each sent increment applied once
            assert await acb.get(k, format=FMT_PLAIN) == value
            assert await asyncio.gather(*[acb.get(k + ":2") for _ in range(100)]) == ["v"] * 100
        errors.check()
    run(main())


def test_a_future_cancelled_before_the_flush_is_never_sent(run, cluster, key):
    async def main():
        async with await _connect(cluster) as acb:
            await acb.set(key, 0)
            futures = [acb.incr(key) for _ in range(10)]
            for f in futures[::2]:
                f.cancel()  # in this loop iteration: before anything is written
            done = await asyncio.gather(*futures[1::2])
            assert sorted(done) == [1, 2, 3, 4, 5]
            assert await acb.get(key) == 5
    run(main())


# -- timeouts around a call -----------------------------------------------------


async def _wait_until_answered(acb, key, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await acb.get(key)
        except CouchbaseError:
            assert time.monotonic() < deadline, "the node never answered again"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["timeout", "wait_for"])
def test_an_asyncio_timeout_around_a_call_raises_timeout_error_at_its_deadline(run, faults, key, how):
    """A deadline shorter than the operation timeout: the call raises
    TimeoutError when the deadline passes (not when the operation times out),
    the operation's own outcome is dropped quietly later, and the connection
    works once the node answers."""
    if how == "timeout" and not hasattr(asyncio, "timeout"):
        pytest.skip("asyncio.timeout() is Python 3.11+ (wait_for is tested on every version)")

    async def main():
        errors = _LoopErrors()
        async with await _connect(faults, timeout=2.0) as acb:
            await acb.set(key, "v")
            faults.stall(True)
            started = time.monotonic()
            with pytest.raises(builtins.TimeoutError) as info:
                if how == "timeout":
                    async with asyncio.timeout(0.2):
                        await acb.get(key)
                else:
                    await asyncio.wait_for(acb.set(key, "w"), 0.2)
            elapsed = time.monotonic() - started
            assert not isinstance(info.value, CouchbaseError)  # asyncio's, at its deadline
            faults.stall(False)
            assert await _wait_until_answered(acb, key) in ("v", "w")
            await asyncio.sleep(0.05)
        errors.check()
        return elapsed
    assert 0.15 < run(main()) < 1.0


def test_the_operation_timeout_inside_a_longer_asyncio_timeout_is_caught_as_timeout_error(run, faults, key):
    """The other way round: the operation timeout fires first; its
    couchbase TimeoutError is also the builtin TimeoutError, so one
    ``except TimeoutError`` handles both."""
    async def main():
        async with await _connect(faults, timeout=0.3) as acb:
            await acb.set(key, "v")
            faults.stall(True)
            started = time.monotonic()
            try:
                await asyncio.wait_for(acb.get(key), 5)
            except TimeoutError as e:
                caught = e
            elapsed = time.monotonic() - started
            faults.stall(False)
            assert await _wait_until_answered(acb, key) == "v"
            return caught, elapsed
    caught, elapsed = run(main())
    assert isinstance(caught, CouchbaseError) and caught.key == key and caught.operation == "get"
    assert 0.25 < elapsed < 2.0


# -- many tasks -----------------------------------------------------------------


def test_10000_concurrent_tasks_on_one_connection(run, cluster, key):
    """10,000 tasks (coroutines, each awaiting several operations in turn)
    on one AsyncConnection: every result is right and every increment of the
    shared counter counted once."""
    n = 10_000

    async def one(acb, i):
        k = f"{key}:{i}"
        cas = await acb.set(k, {"i": i})
        assert (await acb.get(k, extended=True)) == ({"i": i}, 0, cas)
        return await acb.incr(key + ":count", initial=1)

    async def main():
        async with await _connect(cluster) as acb:
            counts = await asyncio.gather(*[asyncio.ensure_future(one(acb, i)) for i in range(n)])
            assert sorted(counts) == list(range(1, n + 1))
            assert await acb.get(key + ":count") == n
            some = range(0, n, 97)
            assert await acb.get([f"{key}:{i}" for i in some]) == [{"i": i} for i in some]
    run(main())


# -- the wrong thread or loop ----------------------------------------------------


def test_every_operation_refuses_another_thread_and_another_loop(run, cluster, key):
    """Each operation (and close) called from a thread without a loop, and
    from another loop in another thread: BadHandleError naming the operation
    and what to do; nothing reaches libcouchbase, and the connection works
    on its own loop after."""
    refusals = {}

    def elsewhere(acb):
        for name, call in {**OPERATIONS, "close": lambda c, k: c.close()}.items():
            try:
                call(acb, key)
                refusals[name, "thread"] = None
            except BadHandleError as e:
                refusals[name, "thread"] = str(e)

        async def on_another_loop():
            for name, call in OPERATIONS.items():
                try:
                    call(acb, key)
                    refusals[name, "loop"] = None
                except BadHandleError as e:
                    refusals[name, "loop"] = str(e)
        other = asyncio.new_event_loop()
        try:
            other.run_until_complete(on_another_loop())
        finally:
            other.close()

    async def main():
        async with await _connect(cluster) as acb:
            await _prepare(acb, key)
            thread = threading.Thread(target=elsewhere, args=(acb,))
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.01)
            assert not acb.closed
            assert await acb.get(key) == "v"
            await acb.set(key, "still fine")
            assert await acb.get(key) == "still fine"
    run(main())
    assert len(refusals) == 2 * len(OPERATIONS) + 1
    for (name, where), message in refusals.items():
        assert message is not None, f"{name} from another {where} was not refused"
        assert "open one AsyncConnection per event loop" in message, message
        assert message.startswith(f"{name.split()[0]} failed: "), message


def test_a_connection_is_refused_from_a_loop_that_has_stopped(cluster, key):
    """Its loop stopped and closed: a call raises BadHandleError, never a
    crash, and so does close (the connection is released with the process's
    other garbage, with a ResourceWarning)."""
    loop = asyncio.new_event_loop()
    acb = loop.run_until_complete(_connect(cluster))
    loop.close()
    with pytest.raises(BadHandleError):
        acb.get(key)
    with pytest.raises(BadHandleError):
        acb.close()
    with pytest.warns(ResourceWarning, match="unclosed"):
        del acb
        gc.collect()


# -- close with operations in flight -----------------------------------------------


def test_close_with_every_operation_in_flight_fails_each_clearly(run, faults, key):
    """Every kind of operation sent (replies delayed) and more queued, then
    close: each in flight fails with RequestCanceledError (applied or not is
    unknown), each queued with ConnectError (never sent), none succeeds late,
    nothing reaches the loop's exception handler, and the loop goes on (a new
    connection works)."""
    async def main():
        errors = _LoopErrors()
        acb = await _connect(faults)
        await _prepare(acb, key)
        faults.hiccup(300)
        in_flight = {name: call(acb, key) for name, call in OPERATIONS.items()}
        await asyncio.sleep(0.05)  # sent; the replies are delayed
        queued = {name: call(acb, key) for name, call in OPERATIONS.items()}  # not flushed yet
        closing = acb.close()
        again = acb.close()  # a second close while the first runs
        sent = await asyncio.gather(*in_flight.values(), return_exceptions=True)
        unsent = await asyncio.gather(*queued.values(), return_exceptions=True)
        await closing
        await again
        faults.hiccup(0)
        with pytest.raises(ConnectError, match="closed"):
            acb.get(key)
        async with await _connect(faults) as fresh:
            assert await fresh.get(key) == "v"
        errors.check()
        return dict(zip(in_flight, sent)), dict(zip(queued, unsent))
    sent, unsent = run(main())
    for name, outcome in sent.items():
        assert isinstance(outcome, RequestCanceledError) and "in flight" in str(outcome), (name, outcome)
    for name, outcome in unsent.items():
        assert isinstance(outcome, ConnectError) and "before the operation was sent" in str(outcome), \
            (name, outcome)


def test_close_right_after_connect_and_during_a_gather(run, cluster, key):
    """Closing at once after connecting, and closing from a task while
    another task's gather of 1,000 gets is in flight: no crash, every get
    either answered or failed with a CouchbaseError."""
    async def main():
        acb = await _connect(cluster)
        await acb.close()
        acb = await _connect(cluster)
        await acb.set(key, 1)
        gathering = asyncio.ensure_future(asyncio.gather(*[acb.get(key) for _ in range(1000)],
                                                         return_exceptions=True))
        await asyncio.sleep(0)
        await acb.close()
        return await gathering
    outcomes = run(main())
    assert all(o == 1 or isinstance(o, CouchbaseError) for o in outcomes)
