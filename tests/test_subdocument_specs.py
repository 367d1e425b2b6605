"""couchbase.subdocument's builders: what each spec carries and what each
refuses. Pure Python; lookup_in/mutate_in against the mock are in test_subdoc.py."""
import pytest

import couchbase.subdocument as SD
from couchbase.exceptions import ArgumentError

Op = SD.Op


@pytest.mark.parametrize(
    "spec, op, path, flags, value",
    [
        (SD.get("a.b[1]"), Op.GET, "a.b[1]", 0, None),
        (SD.get(""), Op.GET, "", 0, None),  # the whole document
        (SD.exists("x", xattr=True), Op.EXISTS, "x", SD.F_XATTRPATH, None),
        (SD.count("list"), Op.COUNT, "list", 0, None),
        (SD.upsert("a.b", {"x": [1, None]}, create_parents=True), Op.DICT_UPSERT, "a.b",
         SD.F_MKINTERMEDIATES, b'{"x":[1,null]}'),
        (SD.insert("n", "é"), Op.DICT_ADD, "n", 0, '"é"'.encode()),
        (SD.replace("", {"whole": True}), Op.REPLACE, "", 0, b'{"whole":true}'),
        (SD.remove("gone"), Op.REMOVE, "gone", 0, None),
        (SD.array_append("l", 1, "two", [3]), Op.ARRAY_ADD_LAST, "l", 0, b'1,"two",[3]'),
        (SD.array_prepend("l", 0), Op.ARRAY_ADD_FIRST, "l", 0, b"0"),
        (SD.array_insert("l[2]", True), Op.ARRAY_INSERT, "l[2]", 0, b"true"),
        (SD.array_addunique("tags", "t"), Op.ARRAY_ADD_UNIQUE, "tags", 0, b'"t"'),
        (SD.counter("n", -(1 << 63)), Op.COUNTER, "n", 0, -(1 << 63)),
        (SD.increment("n"), Op.COUNTER, "n", 0, 1),
        (SD.decrement("n", 5), Op.COUNTER, "n", 0, -5),
        (SD.upsert("meta.cas", SD.MutationMacro.cas(), xattr=True), Op.DICT_UPSERT, "meta.cas",
         SD.F_XATTRPATH | SD.F_XATTR_MACROVALUES, b'"${Mutation.CAS}"'),
    ],
)
def test_each_builder_makes_its_spec(spec, op, path, flags, value):
    assert (spec.op, spec.path, spec.flags, spec.value) == (op, path, flags, value)
    assert spec.op.is_lookup == (op <= Op.COUNT)


def test_specs_are_values():
    assert SD.get("a") == SD.get("a") and hash(SD.get("a")) == hash(SD.get("a"))
    assert SD.get("a") != SD.get("a", xattr=True)
    with pytest.raises(AttributeError):
        SD.get("a").path = "b"  # type: ignore[misc]
    assert repr(SD.upsert("a", 1)) == "Spec(upsert, path='a', xattr=False, value=b'1')"


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: SD.get(3), "subdocument.get: the path must be a str, not int"),
        (lambda: SD.get(b"a"), "must be a str, not bytes"),
        (lambda: SD.get("a\ud800"), "lone surrogate"),
        (lambda: SD.get("a\x00b"), "NUL"),
        (lambda: SD.get("x" * 1025), "1025 bytes; the server allows 1024"),
        (lambda: SD.get("", xattr=True), "an extended attribute needs a path"),
        (lambda: SD.get("a", xattr=1), "xattr must be True or False"),
        (lambda: SD.upsert("a", 1, create_parents="yes"), "create_parents must be True or False"),
        (lambda: SD.upsert("a", float("nan")), "subdocument.upsert path 'a': the value is not JSON: NaN"),
        (lambda: SD.upsert("a", object()), "the value is not JSON"),
        (lambda: SD.upsert("", 1), "needs a path"),
        (lambda: SD.remove(""), "delete() removes the whole document"),
        (lambda: SD.array_append("l"), "give at least one value"),
        (lambda: SD.array_insert("l", 1), "must end in an array index"),
        (lambda: SD.array_addunique("l", [1]), "must be a JSON scalar"),
        (lambda: SD.counter("n", 0), "non-zero signed 64-bit"),
        (lambda: SD.counter("n", 1 << 63), "non-zero signed 64-bit"),
        (lambda: SD.counter("n", 1.5), "delta must be an int, not float"),
        (lambda: SD.counter("n", True), "delta must be an int, not bool"),
        (lambda: SD.counter("", 1), "needs a path"),
        (lambda: SD.increment("n", -1), "use decrement"),
        (lambda: SD.upsert("a", SD.MutationMacro.cas()), "only into an extended attribute"),
    ],
)
def test_bad_specs_say_which_builder_path_and_why(build, words):
    with pytest.raises(ArgumentError) as info:
        build()
    assert words in str(info.value)
