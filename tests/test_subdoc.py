"""lookup_in and mutate_in against the mock: each path's result or error,
xattrs and virtual attributes, CAS and store semantics, and what a failing
path of a mutation leaves (nothing)."""

import pytest

import couchbase.subdocument as SD
from couchbase import FMT_PLAIN, SubdocResult
from couchbase.exceptions import (
    ArgumentError,
    DocumentNotJsonError,
    KeyExistsError,
    NotFoundError,
    NumberTooBigError,
    PathExistsError,
    PathInvalidError,
    PathMismatchError,
    PathNotFoundError,
    SubdocError,
    XattrCannotModifyVirtualAttributeError,
    XattrUnknownVirtualAttributeError,
)

pytestmark = pytest.mark.every_kind  # each test against both connection kinds (tests/kinds.py)

DOC = {"name": "Ada", "tags": ["a", "b"], "n": 1, "nested": {"x": {"y": 2}}}

# -- lookup_in ------------------------------------------------------------------


def test_lookup_in_returns_each_paths_value(cb, key):
    cas = cb.set(key, DOC)
    result = cb.lookup_in(key, [SD.get("name"), SD.exists("tags"), SD.count("tags"), SD.get("nested.x.y"),
                                SD.exists("nope")])
    assert isinstance(result, SubdocResult)
    assert list(result) == ["Ada", True, 2, 2, False]
    assert result.cas == cas and len(result) == 5
    name, *_ = result
    assert name == "Ada"


def test_lookup_in_whole_document_and_array_positions(cb, key):
    cb.set(key, DOC)
    result = cb.lookup_in(key, [SD.get(""), SD.get("tags[-1]"), SD.get("tags[0]")])
    assert list(result) == [DOC, "b", "a"]


def test_a_missing_path_is_its_own_error_and_the_others_still_answer(cb, key):
    cb.set(key, DOC)
    result = cb.lookup_in(key, [SD.get("name"), SD.get("missing.path"), SD.get("tags[0].x")])
    assert result[0] == "Ada"
    assert result.exists(0) and not result.exists(1) and not result.exists(2)
    with pytest.raises(PathNotFoundError) as info:
        result[1]
    e = info.value
    assert (e.key, e.operation, e.path, e.index) == (key, "lookup_in", "missing.path", 1)
    assert f"lookup_in of key {key!r} failed: path 'missing.path' (spec 1): the path does not exist" in str(e)
    assert isinstance(result.error(2), PathMismatchError) and result.error(0) is None
    with pytest.raises(PathNotFoundError):  # unpacking reads every path
        _name, _missing, _mismatch = result


def test_lookup_in_of_a_missing_document(cb, key):
    with pytest.raises(NotFoundError) as info:
        cb.lookup_in(key, [SD.get("a")])
    assert info.value.key == key and info.value.operation == "lookup_in"
    assert cb.lookup_in(key, [SD.get("a")], quiet=True) is None


def test_lookup_in_of_a_document_that_is_not_json(cb, key):
    cb.set(key, b"plain bytes", format=FMT_PLAIN)
    with pytest.raises(DocumentNotJsonError) as info:
        cb.lookup_in(key, [SD.get("a")])[0]
    assert info.value.key == key


def test_xattrs_and_virtual_attributes(cb, key):
    cb.set(key, DOC)
    cb.mutate_in(key, [SD.upsert("meta.by", "test", xattr=True, create_parents=True), SD.upsert("n", 2)])
    result = cb.lookup_in(key, [SD.get("meta", xattr=True), SD.get("$document.exptime", xattr=True),
                                SD.get("$document.value_bytes", xattr=True), SD.get("n")])
    assert result[0] == {"by": "test"} and result[1] == 0 and result[2] > 0 and result[3] == 2
    with pytest.raises(XattrUnknownVirtualAttributeError):
        cb.lookup_in(key, [SD.get("$nonsense", xattr=True)])[0]
    # xattrs are not part of the document's body
    assert cb.get(key) == dict(DOC, n=2)


def test_lookup_in_many_keys(cb, key):
    keys = [f"{key}:{i}" for i in range(3)]
    cb.set({k: {"i": i} for i, k in enumerate(keys)})
    results = cb.lookup_in(keys + [f"{key}:missing"], [SD.get("i")], quiet=True)
    assert {k: (r[0] if r is not None else None) for k, r in results.items()} == {
        keys[0]: 0, keys[1]: 1, keys[2]: 2, f"{key}:missing": None}


# -- mutate_in ------------------------------------------------------------------


def test_mutate_in_changes_only_the_paths(cb, key):
    cb.set(key, DOC)
    result = cb.mutate_in(key, [
        SD.upsert("name", "Grace"),
        SD.insert("new", {"k": [1]}),
        SD.replace("n", 10),
        SD.remove("nested.x"),
        SD.array_append("tags", "c", "d"),
        SD.array_prepend("tags", "z"),
        SD.array_insert("tags[1]", "i"),
        SD.array_addunique("tags", "u"),
        SD.counter("count", 5),
        SD.upsert("deep.er.path", True, create_parents=True),
    ])
    assert result[8] == 5 and result[0] is None
    assert cb.get(key) == {"name": "Grace", "new": {"k": [1]}, "n": 10, "nested": {},
                           "tags": ["z", "i", "a", "b", "c", "d", "u"], "count": 5,
                           "deep": {"er": {"path": True}}}
    assert result.cas == cb.get(key, extended=True).cas


def test_a_failing_path_raises_and_nothing_is_applied(cb, key):
    cas = cb.set(key, DOC)
    with pytest.raises(PathExistsError) as info:
        cb.mutate_in(key, [SD.upsert("name", "changed"), SD.insert("n", 5), SD.counter("n", 1)])
    e = info.value
    assert (e.key, e.operation, e.path, e.index) == (key, "mutate_in", "n", 1)
    assert isinstance(e, SubdocError)
    assert cb.get(key, extended=True) == (DOC, 0, cas)  # the first path was not applied either


@pytest.mark.parametrize("spec, cls", [
    (SD.replace("missing", 1), PathNotFoundError),
    (SD.remove("missing"), PathNotFoundError),
    (SD.array_append("name", 1), PathMismatchError),
    (SD.array_addunique("tags", "a"), PathExistsError),
    (SD.counter("name", 1), PathMismatchError),
    (SD.upsert("a[", 1), PathInvalidError),
    (SD.upsert("$document.exptime", 1, xattr=True), XattrCannotModifyVirtualAttributeError),
])
def test_each_failure_has_its_class(cb, key, spec, cls):
    cb.set(key, DOC)
    with pytest.raises(cls) as info:
        cb.mutate_in(key, [spec])
    assert info.value.index == 0 and info.value.path == spec.path


def test_counter_overflow(cb, key):
    cb.set(key, {"n": (1 << 63) - 1})
    with pytest.raises(NumberTooBigError):
        cb.mutate_in(key, [SD.increment("n")])
    assert cb.get(key) == {"n": (1 << 63) - 1}


def test_mutate_in_cas(cb, key):
    cas = cb.set(key, DOC)
    cb.set(key, DOC)
    with pytest.raises(KeyExistsError) as info:
        cb.mutate_in(key, [SD.upsert("n", 3)], cas=cas)
    assert "changed since its CAS was read" in str(info.value)
    fresh = cb.get(key, extended=True).cas
    assert cb.mutate_in(key, [SD.upsert("n", 3)], cas=fresh).cas != fresh
    assert cb.get(key)["n"] == 3


def test_store_semantics(cb, key):
    with pytest.raises(NotFoundError):
        cb.mutate_in(key, [SD.upsert("a", 1)])  # REPLACE: the document must exist
    cb.mutate_in(key, [SD.upsert("a", 1)], store_semantics=SD.StoreSemantics.UPSERT)
    assert cb.get(key) == {"a": 1}
    cb.mutate_in(key, [SD.upsert("b", 2)], store_semantics=SD.StoreSemantics.UPSERT)
    assert cb.get(key) == {"a": 1, "b": 2}
    with pytest.raises(KeyExistsError):
        cb.mutate_in(key, [SD.upsert("a", 1)], store_semantics=SD.StoreSemantics.INSERT)
    cb.mutate_in(f"{key}:new", [SD.upsert("c", 3)], store_semantics=SD.StoreSemantics.INSERT)
    assert cb.get(f"{key}:new") == {"c": 3}


def test_mutate_in_ttl(cluster, cb, key):
    cb.mutate_in(key, [SD.upsert("a", 1)], store_semantics=SD.StoreSemantics.UPSERT, ttl=100)
    assert cb.lookup_in(key, [SD.get("$document.exptime", xattr=True)])[0] > 0
    cluster.time_travel(101)
    assert cb.get(key, quiet=True) is None


def test_mutation_macros(cb, key):
    cb.set(key, DOC)
    macro = SD.upsert("meta.cas", SD.MutationMacro.cas(), xattr=True, create_parents=True)
    result = cb.mutate_in(key, [macro])
    written = cb.lookup_in(key, [SD.get("meta.cas", xattr=True)])[0]
    # the server writes the CAS as little-endian hex
    assert int.from_bytes(bytes.fromhex(written[2:]), "little") == result.cas


# -- arguments ------------------------------------------------------------------


@pytest.mark.parametrize("call, words", [
    (lambda cb, key: cb.lookup_in(key, []), "at least one spec"),
    (lambda cb, key: cb.lookup_in(key, [SD.get(str(i)) for i in range(17)]), "at most 16"),
    (lambda cb, key: cb.lookup_in(key, [SD.upsert("a", 1)]), "spec 0 (upsert"),
    (lambda cb, key: cb.mutate_in(key, [SD.get("a")]), "spec 0 (get"),
    (lambda cb, key: cb.lookup_in(key, ["a"]), "spec 0 is a str"),
    (lambda cb, key: cb.lookup_in(key, SD.get("a")), "a list of specs"),
    (lambda cb, key: cb.mutate_in(key, [SD.upsert("a", 1)], store_semantics="upsert"), "StoreSemantics"),
    (lambda cb, key: cb.mutate_in(key, [SD.upsert("a", 1)], cas=-1), "cas"),
])
def test_bad_calls_say_why_and_send_nothing(cb, key, call, words):
    with pytest.raises(ArgumentError) as info:
        call(cb, key)
    assert words in str(info.value)
    assert cb.get(key, quiet=True) is None
