"""Hypothesis over every public method's arguments: whatever a caller passes
(any type, size, unicode including lone surrogates, nesting, huge ints,
NaN/Infinity, objects whose dunder methods raise), a call returns or raises a
documented exception (a CouchbaseError, whose str and repr work), and a store
that is refused stores nothing (checked on the mock's side).

Bounded for the suite (about 10 s here: 40 examples a test on the sync
Connection, 10 on each async kind, see _fuzz); COUCHBASE_FUZZ_EXAMPLES=N runs N
examples per test instead (N/4 on the async kinds), for a longer hunt.
"""

import itertools
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchbase import FMT_JSON, FMT_PICKLE, FMT_PLAIN
from couchbase.exceptions import ArgumentError, CouchbaseError, ValueFormatError, safe_repr

EXAMPLES = int(os.environ.get("COUCHBASE_FUZZ_EXAMPLES", "40"))
pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get(
    "COUCHBASE_FUZZ_EXAMPLES"), suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                        HealthCheck.too_slow, HealthCheck.data_too_large])

_example = itertools.count()


def _fuzz(kind, examples=EXAMPLES):
    """FUZZ with `examples` examples for the sync Connection, a quarter of them (10 at
    least) for the async kinds. An AsyncConnection runs the sync Connection's operation
    core, argument checks included (couchbase/aio.py: bad arguments raise at the call,
    before anything is queued); what it adds is the Future that carries the result or
    the exception, whatever the arguments were, so it repeats the sync property on
    fewer of them."""
    return settings(FUZZ, max_examples=examples if kind == "sync" else max(10, examples // 4))


# -- objects a caller might pass ---------------------------------------------------

class Boom(Exception):
    pass


def _raiser(*args):
    raise Boom("a caller's dunder method raised")


_DUNDERS = ("__repr__", "__str__", "__hash__", "__eq__", "__len__", "__iter__", "__bool__", "__index__",
            "__int__", "__float__", "__lt__", "__gt__", "__reduce_ex__", "__getattribute__", "__bytes__")


def _hostile_class(base, raising):
    return type(f"Hostile{base.__name__.title()}", (base,), {name: _raiser for name in raising})


@st.composite
def hostile(draw, base=object, value=None):
    """An instance of base (object, str, int, float, list, dict) whose chosen
    dunder methods raise."""
    raising = draw(st.sets(st.sampled_from(_DUNDERS), min_size=1, max_size=4))
    if base is object:
        raising.discard("__getattribute__")  # (object() cannot be made without it)
    cls = _hostile_class(base, raising)
    return cls() if value is None else cls(value)


any_text = st.text(st.characters(exclude_categories=()), max_size=40)
long_text = st.text(st.characters(exclude_categories=()), min_size=200, max_size=300)
EDGE_INTS = [0, 1, -1, 2**32 - 1, 2**32, 2**63, 2**64 - 1, 2**64, 10**400]
numbers = st.one_of(
    st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
)
junk = st.one_of(st.none(), numbers, any_text, st.binary(max_size=20), st.lists(st.integers(), max_size=3),
                 st.builds(object), hostile(), hostile(int, 3), hostile(float, 1.5))

def _nested(depth):
    """A list nested depth levels deep."""
    value = []
    for _ in range(depth):
        value = [value]
    return value


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, any_text, st.binary(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4),
                            st.dictionaries(st.integers(), inner, max_size=2), st.tuples(inner)),
    max_leaves=12,
)
values = st.one_of(json_values, junk, st.binary(max_size=300), st.builds(_nested, st.integers(250, 1100)),
                   hostile(list, [1]), hostile(dict, {"a": 1}), hostile(bytes, b"v"),
                   hostile(bytearray, b"v"), hostile(str, "v"))



# A key is drawn as a recipe: the test body makes it unique to the example
# (so "nothing stored" can be checked), or uses it as given when it is junk.
key_recipe = st.one_of(
    st.tuples(st.just("str"), st.one_of(any_text, long_text)),
    st.tuples(st.just("bytes"), st.binary(max_size=260)),
    st.tuples(st.just("hostile-str"), any_text),
    st.tuples(st.just("junk"), junk),
)


def _key(recipe, prefix):
    kind, raw = recipe
    if kind == "str":
        return prefix + raw
    if kind == "bytes":
        return prefix.encode() + raw
    if kind == "hostile-str":
        return _hostile_class(str, ("__repr__", "__hash__", "__eq__"))(prefix + raw)
    return raw


def _fresh(recipes, keys):
    """The keys made unique to this example (junk ones may repeat across examples)."""
    return [k for r, k in zip(recipes, keys) if r[0] != "junk"]


def _checkable(key):
    """The key as the server would see it, if it is a key the client could send."""
    if type(key) is str:
        try:
            key = key.encode("utf-8")
        except UnicodeEncodeError:
            return None
    if type(key) is not bytes or not 0 < len(key) <= 250:
        return None
    return key


def _stored_keys(cluster, keys):
    return [k for k in keys if (b := _checkable(k)) is not None and cluster.keyinfo(b)["found"]]


def _assert_documented(error):
    assert isinstance(error, CouchbaseError), f"undocumented {type(error).__name__}: {error!r}"
    assert isinstance(str(error), str) and isinstance(repr(error), str)


# -- operations ---------------------------------------------------------------------

formats = st.one_of(st.none(), st.sampled_from([FMT_JSON, FMT_PICKLE, FMT_PLAIN]), junk)
maybe = st.one_of(st.none(), junk)
ttls = st.one_of(st.just(0), st.integers(0, 2**32), junk)
casses = st.one_of(st.just(0), st.integers(0, 2**64), junk)

STORES = ("set", "add", "replace", "append", "prepend")


@st.composite
def store_call(draw, op):
    """(keys, key argument, kwargs) of a store, single or multi."""
    multi = draw(st.booleans())
    recipes = draw(st.lists(key_recipe, min_size=1, max_size=4)) if multi else [draw(key_recipe)]
    kwargs = {"ttl": draw(ttls)}
    if op in ("set", "add", "replace"):
        kwargs["format"] = draw(formats)
    if op != "add":
        kwargs["cas"] = draw(casses)
    return multi, recipes, [draw(values) for _ in recipes], kwargs


def _store_args(multi, recipes, vals, prefix):
    keys = [_key(r, f"{prefix}{i}:") for i, r in enumerate(recipes)]
    if not multi:
        return keys, (keys[0], vals[0])
    try:
        mapping = dict(zip(keys, vals))
    except Exception:  # an unhashable or hostile key: keep the valid ones
        mapping = {k: v for k, v in zip(keys, vals) if type(k) in (str, bytes)}
    return keys, (mapping,)


@pytest.fixture(scope="module")
def fuzz_cb(cluster, connect):
    conn = connect(cluster.host, cluster.port, password="", bucket="default", timeout=5)
    yield conn
    conn.close()


@pytest.mark.parametrize("op", STORES)
def test_stores(fuzz_cb, cluster, kind, op):
    @_fuzz(kind)
    @given(data=st.data())
    def check(data):
        multi, recipes, vals, kwargs = data.draw(store_call(op))
        prefix = f"hyp:{op}:{next(_example)}:"
        if op in ("replace", "append", "prepend") and data.draw(st.booleans()):
            fuzz_cb.set(f"{prefix}0:exists", b"v", format=FMT_PLAIN)  # some targets exist
        keys, args = _store_args(multi, recipes, vals, prefix)
        try:
            getattr(fuzz_cb, op)(*args, **kwargs)
        except CouchbaseError as e:
            _assert_documented(e)
            if isinstance(e, (ArgumentError, ValueFormatError)):
                assert not _stored_keys(cluster, _fresh(recipes, keys)), f"{op} refused ({e}) but stored"
        except Exception as e:  # noqa: BLE001 (what this test looks for)
            pytest.fail(f"{op}{safe_repr(args)} {safe_repr(kwargs)} raised undocumented "
                        f"{type(e).__name__}: {e}")

    check()


@st.composite
def read_call(draw, op):
    multi = draw(st.sampled_from(["one", "list", "tuple", "set", "dict", "hostile"]))
    recipes = draw(st.lists(key_recipe, min_size=1, max_size=4)) if multi != "one" else [draw(key_recipe)]
    kwargs = {}
    if op == "get":
        kwargs = {"extended": draw(maybe), "format": draw(formats), "quiet": draw(maybe),
                  "ttl": draw(st.one_of(st.none(), ttls))}
    elif op in ("touch", "lock"):
        kwargs = {"ttl": draw(st.one_of(st.integers(0, 40), junk))}
    elif op == "delete":
        kwargs = {"cas": draw(casses), "quiet": draw(maybe)}
    elif op == "unlock":
        kwargs = {"cas": draw(casses)}
    elif op in ("incr", "decr"):
        kwargs = {"amount": draw(st.one_of(st.integers(0, 2**64), junk)),
                  "initial": draw(st.one_of(st.none(), st.integers(0, 2**64), junk)),
                  "ttl": draw(ttls), "extended": draw(maybe)}
    return multi, recipes, kwargs, draw(st.lists(junk, max_size=2))


def _keys_argument(multi, keys, values):
    if multi == "one":
        return keys[0]
    if multi == "hostile":
        return _hostile_class(list, ("__iter__", "__len__"))(keys)
    if multi == "dict":
        try:
            return dict(zip(keys, values))
        except Exception:
            return {k: v for k, v in zip(keys, values) if type(k) in (str, bytes)}
    try:
        return {"list": list, "tuple": tuple, "set": set}[multi](keys)
    except Exception:
        return [k for k in keys if type(k) in (str, bytes)]


@pytest.mark.parametrize("op", ["get", "delete", "touch", "lock", "unlock", "incr", "decr"])
def test_reads_and_other_operations(fuzz_cb, cluster, kind, op):
    @_fuzz(kind)
    @given(data=st.data())
    def check(data):
        multi, recipes, kwargs, cas_values = data.draw(read_call(op))
        prefix = f"hyp:{op}:{next(_example)}:"
        keys = [_key(r, f"{prefix}{i}:") for i, r in enumerate(recipes)]
        if data.draw(st.booleans()) and _checkable(keys[0]) is not None and type(keys[0]) in (str, bytes):
            fuzz_cb.set(keys[0], 1)  # some keys exist
        existing = set(_stored_keys(cluster, _fresh(recipes, keys)))
        argument = _keys_argument(multi, keys, cas_values + [0] * len(keys))
        try:
            getattr(fuzz_cb, op)(argument, **kwargs)  # (a key locked here is not used again)
        except CouchbaseError as e:
            _assert_documented(e)
            if op in ("incr", "decr") and isinstance(e, ArgumentError):
                assert set(_stored_keys(cluster, _fresh(recipes, keys))) == existing, \
                    "a refused counter call created a key"
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{op}({safe_repr(argument)}, {safe_repr(kwargs)}) raised undocumented "
                        f"{type(e).__name__}: {e}")

    check()


def test_stats(fuzz_cb, kind):
    @_fuzz(kind)
    @given(groups=st.one_of(st.none(), any_text, st.lists(st.one_of(any_text, junk), max_size=4),
                            st.tuples(any_text), junk, hostile(list, ["x"])))
    def check(groups):
        try:
            result = fuzz_cb.stats(groups)
            assert isinstance(result, dict)
        except CouchbaseError as e:
            _assert_documented(e)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"stats({safe_repr(groups)}) raised undocumented {type(e).__name__}: {e}")

    check()


# -- the constructor ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bounded_seconds():
    """Timeouts: anything, but a valid one is at most 2 s (a call that
    connects must end quickly)."""
    return st.one_of(st.floats(min_value=0.05, max_value=2),
                     junk.filter(lambda v: not (type(v) in (int, float) and 2 < v <= 4295)))


@st.composite
def connect_kwargs(draw, cluster, closed_port):
    # hosts that need no DNS: the mock's, or text no resolver is asked about
    host = draw(st.one_of(st.sampled_from([cluster.host, "127.0.0.1"]),
                          any_text.filter(lambda h: not h or any(c in h for c in "/?@ \0,\ud800")),
                          junk))
    kwargs = {
        "host": host,
        "port": draw(st.one_of(st.sampled_from([cluster.port, closed_port]), junk)),
        "bucket": draw(st.one_of(st.sampled_from(["default", "protected", "nosuch"]), any_text, junk)),
        "password": draw(st.one_of(st.sampled_from(["", "secret", "wrong"]), any_text, junk)),
        "username": draw(st.one_of(st.none(), st.sampled_from(["default", "protected"]), any_text, junk)),
        "quiet": draw(maybe),
        "timeout": draw(_bounded_seconds()),
        "connect_timeout": draw(_bounded_seconds()),
        "default_format": draw(formats.filter(lambda f: f is not None)),
        "enable_tracing": draw(maybe),
        "unpickle": draw(st.one_of(st.booleans(), st.just("bytes"), junk)),
    }
    if draw(st.booleans()):
        kwargs["connection_string"] = draw(st.one_of(
            st.builds(lambda b, q: f"couchbase://{cluster.host}:{cluster.port}=http/{b}?{q}",
                      st.sampled_from(["default", "nosuch"]), any_text),
            st.builds(lambda u: f"couchbase://{u}@{cluster.host}:{cluster.port}=http/default", any_text),
            junk.filter(lambda v: type(v) is not str),
        ))
    return kwargs


def test_constructor(cluster, closed_port, connect, kind):
    @_fuzz(kind, max(EXAMPLES, 60))
    @given(data=st.data())
    def check(data):
        kwargs = data.draw(connect_kwargs(cluster, closed_port))
        try:
            conn = connect(**kwargs)
        except CouchbaseError as e:
            _assert_documented(e)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"connect({safe_repr(kwargs)}) raised undocumented {type(e).__name__}: {e}")
        else:
            assert isinstance(repr(conn), str)
            conn.close()

    check()
