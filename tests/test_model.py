"""A Hypothesis state machine drives the binding and the mock cluster beside a
plain Python model of a bucket, with faults injected between steps (dropped
connections, truncated replies, a restarted node, a failover and its return,
delayed replies), and compares every result with the model.

The model holds, per key, every state the key may be in. A call that succeeds
or fails definitely narrows it to what the result allows; one that raises
OutcomeUnknownError, or a TimeoutError of a mutation (the request may or may
not have been applied), widens it to "as before, or as if applied once"; a
read that times out tells nothing. So the exactly-once rule is checked at
every read: a mutation applied twice, or one reported as applied that was
not, leaves the server in a state the model never allowed.

Bounded for the suite; COUCHBASE_LCB_MODEL_EXAMPLES raises the number of runs
(each of up to 50 steps) for a longer hunt.
"""

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from couchbase import FMT_PLAIN, Couchbase
from couchbase.exceptions import (
    KeyExistsError,
    NotFoundError,
    NotStoredError,
    OutcomeUnknownError,
    TimeoutError,
)
from couchbase.mock import MockCluster

ABSENT = None
COUNTERS = ["c0", "c1", "c2"]  # JSON integers: set, incr, decr, delete
TEXTS = ["t0", "t1", "t2"]     # raw bytes: set, add, replace, append, prepend, delete
EXAMPLES = int(os.environ.get("COUCHBASE_LCB_MODEL_EXAMPLES", "25"))
# the operation timeout of the mutation made while replies are cut short
# (truncate_next_replies); the other calls keep the connection's 5 s
TRUNCATED_TIMEOUT = 0.3

counter_keys = st.sampled_from(COUNTERS)
text_keys = st.sampled_from(TEXTS)
small_bytes = st.binary(min_size=0, max_size=8)


@pytest.fixture(scope="module")
def cluster3():
    with MockCluster(nodes=3, buckets={"default": ""}) as mock:
        yield mock


class BucketModel(RuleBasedStateMachine):
    """Per key, the set of states it may be in: ABSENT, an int (counters) or
    bytes (texts)."""

    mock = None  # set by the test below

    @initialize()
    def start(self):
        self.mock.flush_bucket("default")
        self.cb = Couchbase.connect(self.mock.host, self.mock.port, bucket="default", password="",
                                    timeout=5.0)
        self.possible = {key: {ABSENT} for key in COUNTERS + TEXTS}
        self.failed_over = None
        self.ambiguous = 0

    def teardown(self):
        self.mock.truncate(None)
        self.mock.hiccup(0)
        if self.failed_over is not None:
            self.mock.restart(self.failed_over)
        if hasattr(self, "cb"):
            self.cb.close()

    # -- the model ---------------------------------------------------------------------------

    def _mutate(self, key, call, apply, refusals):
        """Run `call`; `apply(state)` is the state after it succeeds from
        `state`, or the exception class the server answers instead.
        `refusals` are the exception classes a definite refusal may be."""
        before = self.possible[key]
        outcomes = {state: apply(state) for state in before}
        try:
            result = call()
        except (OutcomeUnknownError, TimeoutError):
            self.ambiguous += 1
            self.possible[key] = before | {o for o in outcomes.values() if not isinstance(o, type)}
            return None
        except refusals as e:
            allowed = {s for s, o in outcomes.items() if isinstance(o, type) and isinstance(e, o)}
            assert allowed, f"{key}: {type(e).__name__} from states {before}"
            self.possible[key] = allowed
            return None
        after = {o for o in outcomes.values() if not isinstance(o, type)}
        assert after, f"{key}: the call succeeded, but from {before} it must have failed"
        self.possible[key] = after
        return result

    def _observe(self, key, value):
        assert value in self.possible[key], f"{key} is {value!r}; the model allows {self.possible[key]}"
        self.possible[key] = {value}

    # -- counters ----------------------------------------------------------------------------

    @rule(key=counter_keys, value=st.integers(0, 1000))
    def set_counter(self, key, value):
        self._mutate(key, lambda: self.cb.set(key, value), lambda s: value, ())

    @rule(key=counter_keys, delta=st.integers(1, 5), initial=st.none() | st.integers(0, 9))
    def incr(self, key, delta, initial):
        self._incr(key, delta, initial)

    def _incr(self, key, delta, initial, **options):
        def apply(state):
            if state is ABSENT:
                return NotFoundError if initial is None else initial
            return state + delta
        result = self._mutate(key, lambda: self.cb.incr(key, delta, initial=initial, **options), apply,
                              (NotFoundError,))
        if result is not None:
            self._observe(key, result)

    @rule(key=counter_keys, delta=st.integers(1, 5))
    def decr(self, key, delta):
        def apply(state):
            return NotFoundError if state is ABSENT else max(0, state - delta)
        result = self._mutate(key, lambda: self.cb.decr(key, delta), apply, (NotFoundError,))
        if result is not None:
            self._observe(key, result)

    def _read(self, key, **options):
        try:
            self._observe(key, self.cb.get(key, quiet=True, **options))
        except TimeoutError:
            pass  # a read that timed out changed nothing and tells nothing

    @rule(key=counter_keys)
    def get_counter(self, key):
        self._read(key)

    # -- texts -------------------------------------------------------------------------------

    def _store(self, key, call, when_absent, when_present, refusals):
        self._mutate(key, call, lambda s: when_absent if s is ABSENT else when_present(s), refusals)

    @rule(key=text_keys, value=small_bytes)
    def set_text(self, key, value):
        self._store(key, lambda: self.cb.set(key, value, format=FMT_PLAIN), value, lambda s: value, ())

    @rule(key=text_keys, value=small_bytes)
    def add(self, key, value):
        self._store(key, lambda: self.cb.add(key, value, format=FMT_PLAIN), value, lambda s: KeyExistsError,
                    (KeyExistsError,))

    @rule(key=text_keys, value=small_bytes)
    def replace(self, key, value):
        self._store(key, lambda: self.cb.replace(key, value, format=FMT_PLAIN), NotFoundError,
                    lambda s: value, (NotFoundError,))

    @rule(key=text_keys, value=st.binary(min_size=1, max_size=4))
    def append(self, key, value):
        self._store(key, lambda: self.cb.append(key, value), NotStoredError, lambda s: s + value,
                    (NotStoredError,))

    @rule(key=text_keys, value=st.binary(min_size=1, max_size=4))
    def prepend(self, key, value):
        self._store(key, lambda: self.cb.prepend(key, value), NotStoredError, lambda s: value + s,
                    (NotStoredError,))

    @rule(key=text_keys)
    def get_text(self, key):
        self._read(key, format=FMT_PLAIN)

    # -- both ----------------------------------------------------------------------------------

    @rule(key=st.sampled_from(COUNTERS + TEXTS))
    def delete(self, key):
        self._store(key, lambda: self.cb.delete(key), NotFoundError, lambda s: ABSENT, (NotFoundError,))

    @rule(keys=st.lists(st.sampled_from(COUNTERS), min_size=2, max_size=3, unique=True))
    def multi_incr(self, keys):
        """Several keys in one call: each key's outcome on its own (all_results)."""
        before = {k: self.possible[k] for k in keys}
        try:
            results = self.cb.incr(keys, 1, initial=0)
        except Exception as e:  # one key failed: every key's own result is attached
            results = getattr(e, "all_results", None)
            if results is None:
                raise
        for key in keys:
            outcome = results[key]
            if isinstance(outcome, (OutcomeUnknownError, TimeoutError)):
                self.ambiguous += 1
                self.possible[key] = before[key] | {0 if s is ABSENT else s + 1 for s in before[key]}
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                self.possible[key] = {0 if s is ABSENT else s + 1 for s in before[key]}
                self._observe(key, outcome)

    # -- faults between steps ----------------------------------------------------------------

    @rule()
    def drop_connections(self):
        self.mock.drop_connections()

    @rule(limit=st.integers(0, 64))
    def truncate_next_replies(self, limit):
        """Cut replies short (and close) for one mutation, then stop cutting.

        While every reply is cut, the mutation either fits in the cut (a
        result), is written and its reply cut (OutcomeUnknownError), or, its
        node's connection being down, every new connection's handshake is cut
        and it waits, unwritten, to its deadline (TimeoutError): a short one."""
        self.mock.truncate(limit)
        try:
            self._incr(COUNTERS[0], 1, 0, timeout=TRUNCATED_TIMEOUT)
        finally:
            self.mock.truncate(None)

    @rule(node=st.integers(0, 2))
    def restart(self, node):
        self.mock.restart(node)
        if node == self.failed_over:
            self.failed_over = None

    @precondition(lambda self: self.failed_over is None)
    @rule(node=st.integers(1, 2))
    def failover(self, node):
        self.mock.failover(node)
        self.failed_over = node

    @rule(msecs=st.sampled_from([0, 5, 20]))
    def hiccup(self, msecs):
        self.mock.hiccup(msecs)

    @invariant()
    def connection_open(self):
        if hasattr(self, "cb"):
            assert not self.cb.closed


def test_the_binding_behaves_like_the_model_under_faults(cluster3):
    BucketModel.mock = cluster3
    run_state_machine_as_test(BucketModel, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=50, deadline=None,
        suppress_health_check=list(HealthCheck)))
