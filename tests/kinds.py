"""The connection kinds the behavioural suite runs against, from one set of
test functions: ``sync`` (:class:`couchbase.Connection`), ``asyncio`` and
``uvloop`` (:class:`couchbase.aio.AsyncConnection` on that loop).

A test body stays the one it is for the sync Connection: for the async kinds
it gets an :class:`Awaited` connection, which runs the AsyncConnection on an
event loop in a thread of its own (one per loop kind, for the whole session;
the loop keeps running between calls, as in an application) and, for each
call, calls the AsyncConnection's method on that loop and waits for its
Future there. Whatever the method raises, when called or through its Future,
reaches the test as raised; what it returns is the Future's result. So every
assertion a behavioural test makes about results, exceptions and messages is
checked on every kind (as uvloop runs its TCP tests once per loop from one
mixin).

A module opts in with ``pytestmark = pytest.mark.every_kind`` (a single test
with ``@pytest.mark.every_kind``); its tests that use ``cb``, ``connect``,
``each_path``, ``lcb_path`` or ``kind`` then run once per kind
(tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from typing import Any, Callable

try:
    import uvloop
except ImportError:  # no uvloop build for this platform: the asyncio loop only
    uvloop = None

KINDS = ["sync", "asyncio"] + (["uvloop"] if uvloop is not None else [])
LOOP_KINDS = [k for k in KINDS if k != "sync"]

# a call that neither returns nor raises within this many seconds fails the
# test (the operation timeouts the suite uses are all far shorter)
CALL_DEADLINE = 120.0

# the operation timeout of a call a test expects to find its key locked:
# libcouchbase retries a locked key until the call's deadline and then raises
# KeyLockedError, so the connection's default (2.5 s) would be waited in full
LOCKED_KEY_TIMEOUT = 0.5


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A fresh event loop of the kind named (``asyncio`` or ``uvloop``)."""
    if kind == "uvloop":
        return uvloop.new_event_loop()
    if kind == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"not a loop kind: {kind!r}")


class LoopThread:
    """An event loop of one kind running forever in a daemon thread."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.loop = new_loop(kind)
        self._tasks: set[asyncio.Task] = set()  # the loop holds tasks weakly: these until done
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"{kind}-loop", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call fn on the loop's thread; if it returns an awaitable, wait for
        that too. Whatever fn or its awaitable raises is raised here."""
        done: concurrent.futures.Future = concurrent.futures.Future()

        def settle(fut: asyncio.Future) -> None:
            if fut.cancelled():
                done.set_exception(asyncio.CancelledError())
            elif fut.exception() is not None:
                done.set_exception(fut.exception())
            else:
                done.set_result(fut.result())

        def start() -> None:
            try:
                result = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 (handed to the caller)
                done.set_exception(e)
                return
            if asyncio.isfuture(result):
                result.add_done_callback(settle)
            elif asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(settle)
            else:
                done.set_result(result)

        self.loop.call_soon_threadsafe(start)
        concurrent.futures.wait([done], CALL_DEADLINE)
        if not done.done():  # (not result()'s timeout: TimeoutError is what an operation may raise)
            raise AssertionError(f"{getattr(fn, '__name__', fn)} neither returned nor raised "
                                 f"within {CALL_DEADLINE} s on the {self.kind} loop")
        return done.result()


_loops: dict[str, LoopThread] = {}
_loops_lock = threading.Lock()


def loop_thread(kind: str) -> LoopThread:
    """The session's running loop of that kind (started on first use)."""
    with _loops_lock:
        if kind not in _loops:
            _loops[kind] = LoopThread(kind)
        return _loops[kind]


class Awaited:
    """An AsyncConnection used as if it were a sync Connection: each method
    call runs on the connection's loop and returns the awaited result;
    attributes are read and set on the loop's thread."""

    def __init__(self, runner: LoopThread, acb: Any) -> None:
        object.__setattr__(self, "_runner", runner)
        object.__setattr__(self, "_acb", acb)

    @property
    def aio(self) -> Any:
        """The AsyncConnection itself."""
        return self._acb

    def __getattr__(self, name: str) -> Any:
        runner, acb = self._runner, self._acb
        if callable(getattr(type(acb), name, None)):
            method = getattr(acb, name)

            @functools.wraps(method)
            def awaited(*args: Any, **kwargs: Any) -> Any:
                return runner.call(method, *args, **kwargs)
            return awaited
        return runner.call(getattr, acb, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._runner.call(setattr, self._acb, name, value)

    def __repr__(self) -> str:
        return self._runner.call(repr, self._acb)

    def close(self) -> None:
        """Close the AsyncConnection (awaits its close)."""
        self._runner.call(self._acb.close)

    def __enter__(self) -> Awaited:
        return self

    def __exit__(self, *exc_info: object) -> bool:
        self.close()
        return False


def connector(kind: str) -> Callable[..., Any]:
    """``connect(host, port, username, password, bucket, quiet, **options)``
    for the kind: ``Couchbase.connect`` for sync, else an :class:`Awaited`
    ``AsyncConnection.connect`` on that kind's loop thread."""
    from couchbase import Couchbase

    if kind == "sync":
        return Couchbase.connect
    from couchbase.aio import AsyncConnection

    runner = loop_thread(kind)

    def connect(*args: Any, **kwargs: Any) -> Awaited:
        return Awaited(runner, runner.call(AsyncConnection.connect, *args, **kwargs))
    connect.__doc__ = AsyncConnection.connect.__doc__
    return connect
