"""couchbase.aio.AsyncConnection: libcouchbase driven by the running event
loop through its own IO plugin. Every test runs on the standard asyncio loop
and on uvloop. What users rely on: the same results and exceptions as the
sync Connection, a timeout (never a hang) from a dead node, a loop that is
never blocked, and a close that fails what is in flight without crashing."""

import asyncio
import gc
import socket
import threading
import time
import warnings
import weakref

import kinds
import pytest

from couchbase import FMT_PICKLE, FMT_PLAIN
from couchbase.aio import AsyncConnection
from couchbase.exceptions import (
    ArgumentError,
    BadHandleError,
    ConnectError,
    NetworkError,
    NotFoundError,
    RequestCanceledError,
    TimeoutError,
    ValueFormatError,
)

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)


# run, faulty and faults: tests/conftest.py's


def _connect(mock, **options):
    return AsyncConnection.connect(mock.host, mock.port, password="", bucket="default", **options)


def test_set_get_close(run, cluster, key):
    async def main():
        cb = await _connect(cluster)
        cas = await cb.set(key, {"a": [1, 2]})
        assert isinstance(cas, int) and cas > 0
        assert await cb.get(key) == {"a": [1, 2]}
        value, flags, cas2 = await cb.get(key, extended=True)
        assert (value, cas2) == ({"a": [1, 2]}, cas)
        await cb.set(key + "p", {1, 2}, format=FMT_PICKLE)
        assert await cb.get(key + "p") == {1, 2}
        await cb.set(key + "b", b"\x00raw", format=FMT_PLAIN)
        assert await cb.get(key + "b") == b"\x00raw"
        await cb.close()
        assert cb.closed
        await cb.close()  # idempotent
        with pytest.raises(ConnectError, match="closed"):
            cb.get(key)
    run(main())


def test_async_with_and_the_sync_connection_see_the_same_data(run, cluster, cb, key):
    async def main():
        async with await _connect(cluster) as acb:
            await acb.set(key, "from async")
            assert cb.get(key) == "from async"
            cb.set(key, {"from": "sync"})
            assert await acb.get(key) == {"from": "sync"}
            return acb
    assert run(main()).closed


def test_missing_key_raises_not_found_like_the_sync_connection(run, cluster, cb, key):
    with pytest.raises(NotFoundError) as sync_error:
        cb.get(key)

    async def main():
        async with await _connect(cluster) as acb:
            with pytest.raises(NotFoundError) as info:
                await acb.get(key)
            assert await acb.get(key, quiet=True) is None
            return info.value
    error = run(main())
    assert (type(error), str(error), error.key) == (type(sync_error.value), str(sync_error.value), key)


def test_bad_input_is_refused_before_anything_is_sent(run, cluster, key):
    async def main():
        async with await _connect(cluster) as acb:
            with pytest.raises(ArgumentError, match="key must be str or bytes"):
                acb.get(123)
            with pytest.raises(ArgumentError, match="unknown format"):
                acb.set(key, 1, format=7)
            with pytest.raises(ArgumentError, match="ttl"):
                acb.set(key, 1, ttl=-1)
            assert await acb.get(key, quiet=True) is None  # nothing was stored
        with pytest.raises(ArgumentError, match="bucket name is required"):
            await AsyncConnection.connect(cluster.host, cluster.port, password="")
    run(main())


def test_10000_concurrent_gets(run, cluster, key):
    keys = [f"{key}:{i}" for i in range(100)]

    async def main():
        async with await _connect(cluster) as acb:
            await asyncio.gather(*[acb.set(k, i) for i, k in enumerate(keys)])
            wanted = [keys[i % 100] for i in range(10_000)]
            got = await asyncio.gather(*[acb.get(k) for k in wanted])
            assert got == [i % 100 for i in range(10_000)]
    run(main())


def test_a_sequential_get_costs_one_loop_call(run, cluster, key):
    """The cheap mapping: the reader stays registered, writes go out at
    once, the timer is not re-armed per operation; what is left is the one
    call_soon that flushes the operations of a loop iteration."""
    async def main():
        async with await _connect(cluster) as acb:
            await acb.set(key, 1)
            for _ in range(10):
                await acb.get(key)
            before = acb.loop_calls
            for _ in range(200):
                await acb.get(key)
            sequential = (acb.loop_calls - before) / 200
            before = acb.loop_calls
            await asyncio.gather(*[acb.get(key) for _ in range(1000)])
            return sequential, acb.loop_calls - before
    sequential, gathered = run(main())
    assert sequential <= 1.05
    assert gathered <= 3  # a thousand gets queued in one iteration: one flush


def test_stalled_node_times_out_within_the_operation_timeout(run, faults, key):
    async def main():
        async with await _connect(faults, timeout=0.5) as acb:
            await acb.set(key, 1)
            faults.stall(True)
            started = time.monotonic()
            with pytest.raises((TimeoutError, NetworkError)):
                await acb.get(key)
            elapsed = time.monotonic() - started
            faults.stall(False)
            deadline = time.monotonic() + 10
            while True:  # and it recovers
                try:
                    assert await acb.get(key) == 1
                    break
                except (TimeoutError, NetworkError):
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            return elapsed
    elapsed = run(main())
    assert 0.4 < elapsed < 3.0


def test_dropped_connections_recover(run, faults, key):
    async def main():
        async with await _connect(faults, timeout=1.0) as acb:
            await acb.set(key, "before")
            faults.drop_connections()
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert await acb.get(key) == "before"
                    break
                except (TimeoutError, NetworkError):
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            await acb.set(key, "after")
            assert await acb.get(key) == "after"
    run(main())


def test_cancelling_a_waiting_task_leaves_the_connection_usable(run, faults, key):
    async def main():
        async with await _connect(faults) as acb:
            await acb.set(key, "v")
            faults.hiccup(300)
            task = asyncio.ensure_future(acb.get(key))
            await asyncio.sleep(0.05)  # sent, reply delayed
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            never_sent = acb.get(key)
            never_sent.cancel()  # before the flush: not sent at all
            faults.hiccup(0)
            assert await acb.get(key) == "v"
            assert await asyncio.gather(*[acb.get(key) for _ in range(50)]) == ["v"] * 50
    run(main())


def test_use_from_another_loop_or_thread_raises_a_clear_error(run, cluster, key):
    errors = []

    def elsewhere(acb):
        try:
            acb.get(key)
        except BadHandleError as e:
            errors.append(str(e))
        other = asyncio.new_event_loop()

        async def use():
            acb.get(key)
        try:
            other.run_until_complete(use())
        except BadHandleError as e:
            errors.append(str(e))
        finally:
            other.close()

    async def main():
        async with await _connect(cluster) as acb:
            thread = threading.Thread(target=elsewhere, args=(acb,))
            thread.start()
            thread.join()
            await acb.set(key, "still fine")
            assert await acb.get(key) == "still fine"
    run(main())
    assert len(errors) == 2, errors
    assert "no running event loop in another thread" in errors[0]
    assert "another event loop in another thread" in errors[1]
    assert all("open one AsyncConnection per event loop" in e for e in errors)


def test_closing_with_operations_in_flight_fails_them_and_never_crashes(run, faults, key):
    async def main():
        acb = await _connect(faults)
        await acb.set(key, "v")
        faults.hiccup(300)
        in_flight = [acb.get(key) for _ in range(100)]
        await asyncio.sleep(0.05)  # sent; the replies are delayed
        queued = [acb.set(key, "x") for _ in range(10)]  # not flushed yet
        closing = acb.close()
        results = await asyncio.gather(*in_flight, *queued, return_exceptions=True)
        await closing
        return results
    results = run(main())
    assert all(isinstance(r, RequestCanceledError) and "in flight" in str(r) for r in results[:100])
    assert all(isinstance(r, ConnectError) and "before the operation was sent" in str(r)
               for r in results[100:])


def test_connecting_never_blocks_the_loop(run):
    """A node that accepts connections but never answers: the bootstrap
    times out, and meanwhile the loop keeps running other tasks."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]

    async def main():
        gaps = []

        async def ticker():
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
        ticking = asyncio.ensure_future(ticker())
        started = time.monotonic()
        with pytest.raises(ConnectError):
            await AsyncConnection.connect("localhost", port, password="", bucket="default",
                                          connect_timeout=1.0)
        elapsed = time.monotonic() - started
        ticking.cancel()
        return elapsed, gaps
    try:
        elapsed, gaps = run(main())
    finally:
        silent.close()
    assert 0.8 < elapsed < 5
    assert len(gaps) > 20 and max(gaps) < 0.5  # a blocked loop: one gap of the whole second


def test_unknown_host_raises_connect_error(run):
    async def main():
        with pytest.raises(ConnectError, match="bucket 'default'"):
            await AsyncConnection.connect("no-such-host.invalid", 8091, password="", bucket="default")
    run(main())


class _FailingLoop(asyncio.SelectorEventLoop):
    """A loop whose next add_reader call fails (as a loop may, e.g. on a
    closed or unsupported descriptor)."""
    fail_next_reader = False

    def add_reader(self, fd, callback, *args):
        if self.fail_next_reader:
            self.fail_next_reader = False
            raise OSError("injected add_reader failure")
        return super().add_reader(fd, callback, *args)


def test_a_failing_loop_call_is_reported_never_raised_into_libcouchbase(cluster, key, caplog):
    """The plugin's procs catch the exception (libcouchbase sees a failed
    watch and times out) and log it; the next operation registers again."""
    async def main():
        async with await _connect(cluster, timeout=0.5) as acb:
            asyncio.get_running_loop().fail_next_reader = True  # the KV socket's reader
            outcomes = []
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert await acb.get(key, quiet=True) is None
                    break
                except (TimeoutError, NetworkError) as e:
                    outcomes.append(e)
                    assert time.monotonic() < deadline
            await acb.set(key, "works")
            assert await acb.get(key) == "works"
    loop = _FailingLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert "injected add_reader failure" in caplog.text


def test_a_full_connection_string_with_host_names_and_options(run, cluster, key):
    """Host names are resolved by the loop; the options are libcouchbase's
    (sync_dtor, which would make close() run libcouchbase's own loop, is
    kept off)."""
    connstr = f"couchbase://localhost:{cluster.port}=http/default?sync_dtor=true&operation_timeout=2"

    async def main():
        async with await AsyncConnection.connect(connection_string=connstr, password="",
                                                 bucket="default") as acb:
            await acb.set(key, "via the connection string")
            assert await acb.get(key) == "via the connection string"
            assert acb.connection_string == connstr
    run(main())


def test_a_connection_never_closed_warns_and_is_freed(run, cluster, key):
    async def main():
        acb = await _connect(cluster)
        await acb.set(key, 1)
        with pytest.warns(ResourceWarning, match="unclosed"):
            del acb
            gc.collect()
        async with await _connect(cluster) as again:
            assert await again.get(key) == 1
    run(main())


def test_a_connection_dropped_with_a_get_in_flight_still_answers_it(run, cluster, key):
    """The last reference goes away in the get's own callback, inside
    libcouchbase: the instance is destroyed after that call returned."""
    async def main():
        acb = await _connect(cluster)
        await acb.set(key, "answered")
        pending = acb.get(key)
        alive = weakref.ref(acb)
        with warnings.catch_warnings():
            # (a recorded warning would keep the connection alive as its source)
            warnings.simplefilter("ignore", ResourceWarning)
            del acb
            gc.collect()
            assert alive() is not None  # the get in flight keeps it
            assert await pending == "answered"
            assert alive() is None  # freed by the get's callback
        await asyncio.sleep(0.05)  # the deferred destroy runs
        async with await _connect(cluster) as again:
            assert await again.get(key) == "answered"
    run(main())


def test_large_values_fill_the_socket_and_still_go_out(run, faults, key):
    """Values larger than the socket buffer: libcouchbase's write finds the
    socket full and the plugin waits for it to drain (add_writer)."""
    values = {f"{key}:{i}": bytes([65 + i]) * (3 * 1024 * 1024) for i in range(6)}

    async def main():
        async with await _connect(faults, timeout=10) as acb:
            await asyncio.gather(*[acb.set(k, v, format=FMT_PLAIN) for k, v in values.items()])
            got = await asyncio.gather(*[acb.get(k) for k in values])
            assert got == list(values.values())
    run(main())


def test_a_large_store_to_a_node_that_stopped_reading_times_out(run, faults, key):
    async def main():
        async with await _connect(faults, timeout=0.5) as acb:
            await acb.set(key, "small")
            faults.stall(True)
            with pytest.raises((TimeoutError, NetworkError)):
                await acb.set(key + ":huge", b"z" * (8 * 1024 * 1024), format=FMT_PLAIN)
            faults.stall(False)
            deadline = time.monotonic() + 15
            while True:
                try:
                    await acb.set(key + ":after", b"ok", format=FMT_PLAIN)
                    break
                except (TimeoutError, NetworkError):
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            assert await acb.get(key + ":after") == b"ok"
    run(main())


def test_secrets_never_reach_errors_or_reprs(run, caplog):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    secret = "s3cret-Pa55"
    connstr = f"couchbase://127.0.0.1:{silent.getsockname()[1]}=http/default?password={secret}"

    async def main():
        with pytest.raises(ConnectError) as info:
            await AsyncConnection.connect(connection_string=connstr, bucket="default",
                                          connect_timeout=0.3)
        return info.value
    try:
        error = run(main())
    finally:
        silent.close()
    assert secret not in str(error) and secret not in repr(error)
    assert secret not in caplog.text


def test_unpickle_is_honoured(run, cluster, key):
    async def main():
        async with await _connect(cluster) as acb:
            await acb.set(key, {"a"}, format=FMT_PICKLE)
        async with await _connect(cluster, unpickle=False) as refusing:
            with pytest.raises(ValueFormatError, match="pickle"):
                await refusing.get(key)
    run(main())



def _positive(cas):
    return cas > 0


def _value(result):
    return result.value


def test_every_operation_matches_the_sync_connection(run, cluster, cb, key):
    """Both connection kinds run one operation core: the same calls give the
    same results and the same exceptions (CAS values aside)."""
    big = b"z" * 100_000  # a large raw store goes out as a built packet
    steps = [  # (call, what of its result is compared)
        (lambda c, k: c.set(k, {"a": 1}), _positive),
        (lambda c, k: c.get(k), None),
        (lambda c, k: c.get(k, extended=True), _value),
        (lambda c, k: c.get([k, k + ":missing"], quiet=True), None),
        (lambda c, k: c.get([k, k + ":missing"]), None),
        (lambda c, k: c.set({k + ":1": 1, k + ":2": "two"}), sorted),
        (lambda c, k: c.get([k + ":1", k + ":2"]), None),
        (lambda c, k: c.get([]), None),
        (lambda c, k: c.delete([]), None),
        (lambda c, k: c.add(k, 1), None),
        (lambda c, k: c.replace(k + ":none", 1), None),
        (lambda c, k: c.set(k + ":raw", b"ab", format=FMT_PLAIN), _positive),
        (lambda c, k: c.append(k + ":raw", b"c"), _positive),
        (lambda c, k: c.prepend(k + ":raw", b"z"), _positive),
        (lambda c, k: c.get(k + ":raw"), None),
        (lambda c, k: c.set(k + ":big", big, format=FMT_PLAIN), _positive),
        (lambda c, k: c.get(k + ":big"), len),
        (lambda c, k: c.incr(k + ":n", initial=5), None),
        (lambda c, k: c.incr(k + ":n", amount=3), None),
        (lambda c, k: c.decr(k + ":n", extended=True), _value),
        (lambda c, k: c.incr(k), None),
        (lambda c, k: c.lock(k, ttl=5), _value),
        (lambda c, k: c.set(k, 1, timeout=kinds.LOCKED_KEY_TIMEOUT), None),  # locked
        (lambda c, k: c.unlock(k, 1, timeout=kinds.LOCKED_KEY_TIMEOUT), None),  # locked, a wrong CAS
        (lambda c, k: c.touch([k + ":1", k + ":2"], ttl=100), None),
        (lambda c, k: c.get(k + ":1", ttl=50), None),
        (lambda c, k: c.delete(k + ":1"), None),
        (lambda c, k: c.delete(k + ":1", quiet=True), None),
        (lambda c, k: c.delete(k + ":1"), None),
        (lambda c, k: c.stats(), lambda stats: "curr_items" in stats),
        (lambda c, k: c.stats([]), None),
        (lambda c, k: c.lock(k, ttl=31), None),
        (lambda c, k: c.get(k, format=9), None),
    ]

    def outcome(error, result, compare):
        if error is not None:
            return type(error).__name__, str(error).replace(":async", ":sync")
        return "ok", repr(compare(result) if compare else result).replace(":async", ":sync")

    sync = []
    for call, compare in steps:
        try:
            sync.append(outcome(None, call(cb, key + ":sync"), compare))
        except Exception as e:
            sync.append(outcome(e, None, None))

    async def main():
        outcomes = []
        async with await _connect(cluster) as acb:
            for call, compare in steps:
                try:
                    outcomes.append(outcome(None, await call(acb, key + ":async"), compare))
                except Exception as e:
                    outcomes.append(outcome(e, None, None))
        return outcomes
    assert run(main()) == sync


def test_empty_key_lists_resolve_at_once(run, cluster):
    async def main():
        async with await _connect(cluster) as acb:
            for future in (acb.get([]), acb.delete([]), acb.set({}), acb.touch([], ttl=1), acb.stats([])):
                assert future.done()
                assert await future in ([], {})
    run(main())


def test_a_multi_key_call_in_flight_fails_on_close(run, faults, key):
    async def main():
        acb = await _connect(faults)
        await acb.set({key + ":1": 1, key + ":2": 2})
        faults.hiccup(300)
        pending = acb.get([key + ":1", key + ":2"])
        await asyncio.sleep(0.05)  # sent; the replies are delayed
        closing = acb.close()
        with pytest.raises(RequestCanceledError, match="in flight"):
            await pending
        await closing
        assert acb._replays_stopped == 0  # the replay guard runs on this driver too
    run(main())


def test_each_operation_to_a_stalled_node_times_out_on_its_own_deadline(run, faults, key):
    """libcouchbase pushes a node's timer later with every command; the
    plugin keeps the timer's queued entry and queues it again when due: a
    steady stream of operations must still time out one by one, each within
    the operation timeout of its own start, never all at the last one's."""
    async def main():
        async with await _connect(faults, timeout=0.5) as acb:
            await acb.set(key, 1)
            faults.stall(True)
            loop = asyncio.get_running_loop()
            elapsed = []

            async def timed():
                started = loop.time()
                with pytest.raises((TimeoutError, NetworkError)):
                    await acb.get(key)
                elapsed.append(loop.time() - started)
            tasks = []
            for _ in range(8):
                tasks.append(asyncio.ensure_future(timed()))
                await asyncio.sleep(0.1)
            await asyncio.gather(*tasks)
            faults.stall(False)
            return elapsed
    elapsed = run(main())
    assert all(0.4 <= e <= 0.9 for e in elapsed), elapsed
