"""Exactly once: a connection that fails after the server applied a request
but before its reply arrived must never make the client apply it again.

Each fault test runs thousands of increments and appends while the mock
cluster injects the fault over and over, and keeps, per key, how many
requests were acknowledged, how many raised OutcomeUnknownError (or timed
out: also unknown) and how many failed for sure. Then for every key the
change the server holds must lie between the acknowledged count and the
acknowledged plus the unknown count, and no request may have been applied
twice: every append carries a token of its own, so a token found twice is a
request applied twice, a token of an acknowledged append must be there once
and one of a failed append not at all.
"""

import asyncio
import collections
import contextlib
import itertools
import os
import random
import threading
import time

import kinds
import pytest
from threads_util import run_threads

from couchbase import FMT_PLAIN, Couchbase
from couchbase.aio import AsyncConnection
from couchbase.exceptions import CouchbaseError, OutcomeUnknownError, TimeoutError
from couchbase.mock import MockCluster

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)

KEYS = 24  # per test: spread over the nodes' vbuckets
BATCH = 8  # keys per multi-key call
# at least this many increments and appends (keys counted singly) per test;
# scripts/run-sanitized asks for fewer (instrumented code is 2-3x slower)
OPS_PER_FAULT = int(os.environ.get("COUCHBASE_LCB_EXACTLY_ONCE_OPS", "3000"))
MIN_SECONDS = 2.5  # and for at least this long, so that the fault strikes many times
MAX_SECONDS = 20  # but no longer (a loaded machine)
# the tests of one scenario run once per connection kind (tests/kinds.py); the
# workloads under repeated faults run from threads (sync) and from tasks (async)
EVERY_KIND = pytest.mark.every_kind


@pytest.fixture
def cluster3():
    """A private 3-node cluster (these tests inject faults into it)."""
    with MockCluster(nodes=3, buckets={"default": ""}) as mock:
        yield mock


def _connect(mock, connect=Couchbase.connect, **options):
    """A connection (of the kind `connect` makes: tests/kinds.py) to the
    mock's bucket default."""
    options.setdefault("timeout", 5.0)
    return connect(mock.host, mock.port, password="", bucket="default", **options)


class Ledger:
    """What the client reported for each key's requests. Thread-safe."""

    def __init__(self, keys):
        self.keys = list(keys)
        self.acked = collections.Counter()
        self.unknown = collections.Counter()  # OutcomeUnknownError
        self.timeouts = collections.Counter()  # no reply in time: unknown as well
        self.failed = collections.Counter()  # any other error: not applied
        self.tokens = {}  # append token -> "acked", "unknown" or "failed"
        self._lock = threading.Lock()

    def record(self, key, outcome, token=None):
        if isinstance(outcome, OutcomeUnknownError):
            kind, counter = "unknown", self.unknown
        elif isinstance(outcome, TimeoutError):
            kind, counter = "unknown", self.timeouts
        elif isinstance(outcome, CouchbaseError):
            kind, counter = "failed", self.failed
        else:
            kind, counter = "acked", self.acked
        with self._lock:
            counter[key] += 1
            if token is not None:
                self.tokens[token] = kind

    def record_call(self, keys, call, arg, tokens=None, value=None):
        """Run call(arg) (or call(arg, value)), a single- or multi-key call,
        and record each key's outcome."""
        try:
            result = call(arg) if value is None else call(arg, value)
        except CouchbaseError as e:
            result = e
        self.record_result(keys, result, tokens)

    def record_result(self, keys, result, tokens=None):
        """Record each key's outcome of a call that returned `result` or
        raised it (a CouchbaseError)."""
        if isinstance(result, CouchbaseError):
            e = result
            if e.all_results is None:
                results = dict.fromkeys(keys, e)
            else:
                results = e.all_results
                if isinstance(e, OutcomeUnknownError):
                    assert e.key in results and results[e.key] is e
        else:
            results = result if isinstance(result, dict) else {keys[0]: result}
        assert sorted(results) == sorted(keys)
        for key in keys:
            self.record(key, results[key], tokens[key] if tokens else None)

    def totals(self):
        names = ("acked", "unknown", "timeouts", "failed")
        return {name: sum(getattr(self, name).values()) for name in names}


def _read_back(cb, keys):
    """The keys' final values, once the cluster answers again."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return dict(zip(keys, cb.get(keys, format=FMT_PLAIN)))
        except CouchbaseError:
            assert time.monotonic() < deadline, "the cluster never came back"
            time.sleep(0.1)


def _check_counters(ledger, final):
    """acked <= final - initial (0) <= acked + unknown, for every key."""
    silent = 0
    for key in ledger.keys:
        delta = int(final[key])
        low = ledger.acked[key]
        high = low + ledger.unknown[key] + ledger.timeouts[key]
        assert delta >= low, f"{key}: {delta} applied, {low} acknowledged: an acknowledged incr was lost"
        silent += max(0, delta - high)
    return silent


def _check_appends(ledger, final):
    """Each token at most once; acknowledged ones once, failed ones never."""
    seen = collections.Counter()
    for key in ledger.keys:
        seen.update(t for t in final[key].decode().split(",") if t)
    silent = sum(n - 1 for n in seen.values() if n > 1)
    for token, kind in ledger.tokens.items():
        if kind == "acked":
            assert seen[token] >= 1, f"acknowledged append {token} was lost"
        elif kind == "failed":
            assert seen[token] == 0, f"append {token} failed without 'outcome unknown', yet was applied"
    silent += sum(n for token, n in seen.items() if token not in ledger.tokens)  # applied, never asked
    counts = collections.Counter(ledger.tokens.values())
    applied_unknown = sum(1 for t, k in ledger.tokens.items() if k == "unknown" and seen[t])
    return silent, counts, applied_unknown


class Workload:
    """Increments and appends, single-key and multi-key, from one thread or
    several sharing the Connection, until `ops` key-operations are done and
    MIN_SECONDS have passed (or MAX_SECONDS)."""

    def __init__(self, cb, prefix, ops):
        self.cb = cb
        self.counters = Ledger(f"{prefix}:n{i}" for i in range(KEYS))
        self.appended = Ledger(f"{prefix}:a{i}" for i in range(KEYS))
        self.ops = ops
        self.done = 0
        self.start = time.monotonic()
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        cb.set(dict.fromkeys(self.counters.keys, 0))
        cb.set(dict.fromkeys(self.appended.keys, b""), format=FMT_PLAIN)

    def finished(self):
        elapsed = time.monotonic() - self.start
        return elapsed > MAX_SECONDS or (self.done >= self.ops and elapsed > MIN_SECONDS)

    def _claim(self, n):
        with self._lock:
            if self.finished():
                return False
            self.done += n
            return True

    def _token(self):
        return f"t{next(self._tokens)}"

    def next_call(self, rnd):
        """The workload's next call, (ledger, keys, operation, arg, tokens,
        value) for ``ledger.record_call(keys, getattr(cb, operation), arg,
        tokens, value)``; None once finished."""
        while True:
            form = rnd.randrange(4)
            if form == 0 and self._claim(1):
                key = rnd.choice(self.counters.keys)
                return self.counters, [key], "incr", key, None, None
            elif form == 1 and self._claim(BATCH):
                keys = rnd.sample(self.counters.keys, BATCH)
                return self.counters, keys, "incr", keys, None, None
            elif form == 2 and self._claim(1):
                key = rnd.choice(self.appended.keys)
                token = self._token()
                return self.appended, [key], "append", key, {key: token}, token.encode() + b","
            elif form == 3 and self._claim(BATCH):
                keys = rnd.sample(self.appended.keys, BATCH)
                tokens = {k: self._token() for k in keys}
                values = {k: t.encode() + b"," for k, t in tokens.items()}
                return self.appended, keys, "append", values, tokens, None
            elif self.finished():
                return None

    def run(self, worker):
        rnd = random.Random(worker)
        while (call := self.next_call(rnd)) is not None:
            ledger, keys, operation, arg, tokens, value = call
            ledger.record_call(keys, getattr(self.cb, operation), arg, tokens, value)

    async def run_task(self, acb, worker):
        """run(), as a task on an AsyncConnection's loop."""
        rnd = random.Random(worker)
        while (call := self.next_call(rnd)) is not None:
            ledger, keys, operation, arg, tokens, value = call
            method = getattr(acb, operation)
            try:
                result = await (method(arg) if value is None else method(arg, value))
            except CouchbaseError as e:
                result = e
            ledger.record_result(keys, result, tokens)

    def check(self):
        """Assert exactly-once; return the figures."""
        final = _read_back(self.cb, self.counters.keys + self.appended.keys)
        silent_incr = _check_counters(self.counters, final)
        silent_append, kinds, applied_unknown = _check_appends(self.appended, final)
        assert self.done >= self.ops, f"only {self.done} operations in {MAX_SECONDS} s"
        figures = {"incr": self.counters.totals(), "append": self.appended.totals(),
                   "unknown appends applied": applied_unknown,
                   "silent duplicates": silent_incr + silent_append}
        assert silent_incr == 0 and silent_append == 0, figures
        return figures


def _truncate(mock, rnd, node):
    mock.truncate(rnd.choice([0, 10, 24, 40]))  # cut the next reply batch, close
    time.sleep(0.003)
    mock.truncate(None)


def _drop(mock, rnd, node):
    mock.drop_connections(node)


def _restart(mock, rnd, node):
    mock.restart(node)


def _failover(mock, rnd, node):
    mock.failover(node)
    time.sleep(0.05)
    mock.restart(node)  # back into the cluster, for the next round


# fault -> (injector, pause between injections in s, reply delay in ms). The
# delay keeps requests applied but unanswered when the fault strikes: the
# window in which a replay doubles them.
FAULTS = {
    "truncate": (_truncate, 0.02, 0),
    "drop_connections": (_drop, 0.03, 3),
    "restart": (_restart, 0.1, 3),
    "failover": (_failover, 0.2, 3),
}


def _inject(mock, fault, stop):
    inject, pause, _ = FAULTS[fault]
    rnd = random.Random(fault)
    rounds = 0
    while not stop.is_set():
        inject(mock, rnd, rnd.randrange(mock.nodes))
        rounds += 1
        stop.wait(pause)
    return rounds


@contextlib.contextmanager
def _fault_injected(mock, fault):
    """Inject the fault over and over (from a thread) while the block runs;
    yields a list that then holds the number of rounds injected."""
    stop = threading.Event()
    rounds = []

    def injector():
        try:
            rounds.append(_inject(mock, fault, stop))
        except BaseException as e:  # reported by the test
            rounds.append(e)

    thread = threading.Thread(target=injector, daemon=True)
    mock.hiccup(FAULTS[fault][2])
    thread.start()
    try:
        yield rounds
    finally:
        stop.set()
        thread.join(30)
        mock.hiccup(0)
    assert rounds and isinstance(rounds[0], int), rounds


def _run_under_fault(mock, fault, threads, ops):
    with _connect(mock) as cb:
        work = Workload(cb, f"{fault}:{threads}", ops)
        with _fault_injected(mock, fault) as rounds:
            run_threads(work.run, threads, timeout=120)
        figures = work.check()
        figures["fault rounds"] = rounds[0]
        figures["replays stopped"] = cb._replays_stopped
        print(f"\n{fault} ({threads} thread(s)): {figures}")
        return figures


def _run_tasks_under_fault(mock, fault, loop_kind, tasks, ops):
    """The workload as `tasks` concurrent tasks on one AsyncConnection (its
    keys set up and read back by a sync Connection)."""
    async def main(work):
        async with await AsyncConnection.connect(mock.host, mock.port, password="", bucket="default",
                                                 timeout=5.0) as acb:
            await asyncio.wait_for(asyncio.gather(*[work.run_task(acb, i) for i in range(tasks)]), 120)
            return acb._replays_stopped

    with _connect(mock) as cb:
        work = Workload(cb, f"{fault}:{loop_kind}:{tasks}", ops)
        loop = kinds.new_loop(loop_kind)
        try:
            with _fault_injected(mock, fault) as rounds:
                stopped = loop.run_until_complete(main(work))
        finally:
            loop.close()
        figures = work.check()
        figures["fault rounds"] = rounds[0]
        figures["replays stopped"] = stopped
        print(f"\n{fault} ({tasks} tasks on {loop_kind}): {figures}")
        return figures


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_no_request_is_applied_twice(cluster3, fault):
    figures = _run_under_fault(cluster3, fault, 1, OPS_PER_FAULT)
    assert figures["fault rounds"] > 0


def test_no_request_is_applied_twice_from_4_threads(cluster3):
    figures = _run_under_fault(cluster3, "drop_connections", 4, OPS_PER_FAULT)
    assert figures["fault rounds"] > 0


@pytest.mark.parametrize("loop_kind", kinds.LOOP_KINDS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_no_request_is_applied_twice_from_16_tasks(cluster3, fault, loop_kind):
    """The same rule for the AsyncConnection, with 16 calls in flight."""
    figures = _run_tasks_under_fault(cluster3, fault, loop_kind, 16, OPS_PER_FAULT)
    assert figures["fault rounds"] > 0


def _until_answered(call, arg, seconds=20):
    """call(arg) once the cluster answers again (network errors retried)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call(arg)
        except CouchbaseError:
            assert time.monotonic() < deadline, "the cluster never came back"
            time.sleep(0.05)


def _in_flight(mock, node=None, delay_ms=300):
    """Drop the connections while requests sent now are applied but
    unanswered (their replies are delayed)."""
    mock.hiccup(delay_ms)
    timer = threading.Timer(delay_ms / 3000, lambda: mock.drop_connections(node))
    timer.start()
    return timer


@EVERY_KIND
def test_a_multi_key_call_marks_each_unknown_key(cluster3, connect):
    with _connect(cluster3, connect) as cb:
        keys = [f"multi:{i}" for i in range(40)]
        cb.set(dict.fromkeys(keys, 10))
        timer = _in_flight(cluster3)
        try:
            with pytest.raises(OutcomeUnknownError) as info:
                cb.incr(keys)
        finally:
            timer.join()
            cluster3.hiccup(0)
        results = info.value.all_results
        assert sorted(results) == sorted(keys)
        unknown = {k for k, r in results.items() if isinstance(r, OutcomeUnknownError)}
        assert unknown and all(results[k] == 11 for k in set(keys) - unknown)
        for key in unknown:
            error = results[key]
            assert error.key == key and error.operation == "incr"
            assert key in str(error) and "incr" in str(error) and "may have been applied" in str(error)
        final = _until_answered(cb.get, keys)
        assert all(v in (10, 11) for v in final)  # applied once or not at all
        assert all(v == 11 for k, v in zip(keys, final) if k not in unknown)


@EVERY_KIND
def test_reads_are_retried_across_a_dropped_connection(cluster3, connect):
    with _connect(cluster3, connect) as cb:
        keys = [f"read:{i}" for i in range(40)]
        cb.set({k: i for i, k in enumerate(keys)})
        timer = _in_flight(cluster3)
        try:
            assert cb.get(keys) == list(range(40))  # written, dropped, sent again
            assert cb.get(keys[0], ttl=100) == 0  # get-and-touch too
            assert cb.touch(keys, ttl=0) == dict.fromkeys(keys, True)
        finally:
            timer.join()
            cluster3.hiccup(0)
        timer = _in_flight(cluster3)
        try:  # exists (a built GET_META) is a read too
            found = cb.exists(keys + ["read:missing"])
            assert found == dict(dict.fromkeys(keys, True), **{"read:missing": False})
        finally:
            timer.join()
            cluster3.hiccup(0)


@EVERY_KIND
def test_a_request_never_written_is_sent_once_the_connection_is_up(connect):
    """Requests queued while their node's connection is not up yet (the node
    does not answer its handshake) are sent, once, when it is: they succeed."""
    with MockCluster(nodes=1, buckets={"default": ""}) as mock:
        setup = _connect(mock, connect)
        keys = [f"queued:{i}" for i in range(20)]
        setup.set(dict.fromkeys(keys, 0))
        setup.close()
        cb = _connect(mock, connect)  # no KV connection yet: made by the first call
        mock.stall(True)
        results = []
        worker = threading.Thread(target=lambda: results.append(cb.incr(keys)))
        worker.start()
        time.sleep(0.3)
        mock.stall(False)
        worker.join(10)
        assert results == [dict.fromkeys(keys, 1)]
        assert cb.get(keys) == [1] * 20
        cb.close()


@EVERY_KIND
def test_requests_that_failed_unwritten_never_reach_the_node_later(connect):
    """Requests queued while every connection attempt to their node fails (its
    handshake replies are cut short) fail without being written. They must
    never reach the node later: a read of the keys finds them unchanged.
    libcouchbase 3.3.4 kept their bytes queued and sent them on the next
    connection that opened, so an increment reported as failed was applied
    after all (patches/libcouchbase/0002)."""
    with MockCluster(nodes=1, buckets={"default": ""}) as mock:
        keys = [f"unwritten:{i}" for i in range(10)]
        with _connect(mock, connect) as setup:
            setup.set(dict.fromkeys(keys, 0))
        with _connect(mock, connect, timeout=1.0) as cb:  # no KV connection yet: made by the first call
            mock.truncate(10)
            try:
                with pytest.raises(CouchbaseError) as info:
                    cb.incr(keys)
            finally:
                mock.truncate(None)
            # sent again on each new connection attempt until the timeout
            assert all(isinstance(r, TimeoutError) for r in info.value.all_results.values())
            # the connection comes back; a read travels behind anything still queued
            assert _until_answered(cb.get, keys) == [0] * 10
            assert cb.incr(keys) == dict.fromkeys(keys, 1)


@EVERY_KIND
def test_requests_queued_through_failed_connection_attempts_are_applied_once(connect):
    """Mutations queued while their node's connection attempts fail were never
    written: they are sent again on the next attempt, and applied once when
    one succeeds (they do not raise OutcomeUnknownError)."""
    with MockCluster(nodes=1, buckets={"default": ""}) as mock:
        keys = [f"requeued:{i}" for i in range(10)]
        with _connect(mock, connect) as setup:
            setup.set(dict.fromkeys(keys, 0))
        with _connect(mock, connect, timeout=5.0) as cb:  # no KV connection yet: made by the first call
            mock.truncate(10)
            healer = threading.Timer(0.5, mock.truncate, args=(None,))
            healer.start()
            try:
                assert cb.incr(keys) == dict.fromkeys(keys, 1)
            finally:
                healer.join()
            assert cb.get(keys) == [1] * 10


@EVERY_KIND
def test_replies_that_say_not_applied_are_retried(cb, cluster, key):
    """NOT_MY_VBUCKET and temporary failures are answers: the request was not
    applied, and libcouchbase sends it again."""
    cb.set(key, 5)
    cluster.opfail(0x86, 2, opcode="INCREMENT")  # ETMPFAIL twice
    assert cb.incr(key) == 6
    cluster.opfail(0x07, 2, opcode="APPEND")  # NOT_MY_VBUCKET twice
    cb.set(key, b"a", format=FMT_PLAIN)
    assert cb.append(key, b"b")
    assert cb.get(key, format=FMT_PLAIN) == b"ab"


@EVERY_KIND
@pytest.mark.parametrize("fault", ["drop_connections", "failover"])
def test_large_appends_sent_as_built_packets_are_never_applied_twice(cluster3, fault, connect):
    """Values from 16 KiB on go out as packets the binding builds
    (_forward.pxi): the same rule holds for them."""
    with _connect(cluster3, connect) as cb:
        work = Workload(cb, f"large:{fault}", 0)
        pad = b"." * 16384
        stop = threading.Event()
        rounds = []
        injector = threading.Thread(target=lambda: rounds.append(_inject(cluster3, fault, stop)), daemon=True)
        cluster3.hiccup(3)
        injector.start()
        try:
            for i in range(300):
                key = work.appended.keys[i % 6]
                token = work._token()
                work.appended.record_call([key], cb.append, key, {key: token}, pad + token.encode() + b",")
        finally:
            stop.set()
            injector.join(30)
            cluster3.hiccup(0)
        final = _read_back(cb, work.appended.keys)
        final = {k: v.replace(b".", b"") for k, v in final.items()}
        silent, _, _ = _check_appends(work.appended, final)
        assert silent == 0 and rounds and rounds[0] > 0


@EVERY_KIND
def test_a_failover_never_moves_an_applied_request_to_the_new_owner(cluster3, connect):
    """A configuration that removes a node made libcouchbase 3.3.4 move the
    node's unanswered requests to the new owner without asking the retry
    strategy, written or not (the IO plugin's watch, couchbase/_wire.h,
    stopped those written). With patch 0005 a written one stays with its node
    and the strategy fails it as unknown; nothing is left to stop."""
    in_flight = 0
    with _connect(cluster3, connect) as cb:
        for attempt in range(10):
            key = next(f"moved:{attempt}:{i}" for i in itertools.count()
                       if cluster3.keyinfo(f"moved:{attempt}:{i}")["active"] == 1)
            cb.set(key, 0)
            cluster3.hiccup(300)  # applied at once, answered late
            timer = threading.Timer(0.1, cluster3.failover, (1,))
            timer.start()
            try:
                outcome = cb.incr(key)
            except OutcomeUnknownError as e:
                outcome = e
            finally:
                timer.join()
                cluster3.hiccup(0)
            assert _until_answered(cb.get, key) == 1  # applied once, never twice
            assert outcome == 1 or isinstance(outcome, OutcomeUnknownError)
            in_flight += isinstance(outcome, OutcomeUnknownError)
            cluster3.restart(1)  # back into the cluster
        assert in_flight > 0, "no increment was in flight when its node failed over"
        assert cb._replays_stopped == 0, "libcouchbase moved a written request"
