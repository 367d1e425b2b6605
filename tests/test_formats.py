"""Value formats: the 0.9 flag values, forced decoders, and documents written
the way other Couchbase SDKs write them."""

import json
import pickle
import shutil
import subprocess
from decimal import Decimal
from fractions import Fraction

import pytest

import couchbase
from couchbase import FMT_JSON, FMT_PICKLE, FMT_PLAIN
from couchbase.exceptions import ArgumentError, ValueFormatError

pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)


def test_format_constants_are_the_0_9_values():
    assert (FMT_JSON, FMT_PICKLE, FMT_PLAIN) == (0, 1, 2)


def test_json_is_the_default_and_stores_flags_0(cb, key):
    cb.set(key, "v")
    assert cb.get(key, extended=True).flags == FMT_JSON
    assert cb.get(key, format=FMT_PLAIN) == b'"v"'


def test_json_output_is_compact(cb, key):
    cb.set(key, {"a": [1, 2]})
    assert cb.get(key, format=FMT_PLAIN) == b'{"a":[1,2]}'


def test_json_falls_back_to_stdlib_for_what_orjson_refuses(cb, key):
    big = 2**70
    cb.set(key, {"big": big, 1: "int key"})
    assert cb.get(key) == {"big": big, "1": "int key"}


def test_json_unencodable_value_is_value_format_error_and_nothing_stored(cb, key):
    with pytest.raises(ValueFormatError) as info:
        cb.set(key, {"x": object()})
    assert info.value.key == key and info.value.operation == "set"
    assert cb.get(key, quiet=True) is None


def test_pickle_round_trip(cb, key):
    value = {"set": {1, 2}, "frac": Fraction(1, 3), "dec": Decimal("1.5"), "t": (1, 2)}
    cb.set(key, value, format=FMT_PICKLE)
    assert cb.get(key) == value
    assert cb.get(key, extended=True).flags == FMT_PICKLE


def test_plain_takes_bytes_and_returns_bytes(cb, key):
    cb.set(key, b"\x00\x01raw", format=FMT_PLAIN)
    assert cb.get(key) == b"\x00\x01raw"
    cb.set(key, bytearray(b"ba"), format=FMT_PLAIN)
    assert cb.get(key) == b"ba"


@pytest.mark.parametrize("value", ["text", 5, {"a": 1}, None])
def test_plain_refuses_non_bytes(cb, key, value):
    with pytest.raises(ValueFormatError) as info:
        cb.set(key, value, format=FMT_PLAIN)
    assert "bytes" in str(info.value)
    assert cb.get(key, quiet=True) is None


def test_forced_plain_returns_stored_bytes(cb, key):
    cb.set(key, {"a": 1}, format=FMT_PICKLE)
    assert cb.get(key, format=FMT_PLAIN) == pickle.dumps({"a": 1}, pickle.HIGHEST_PROTOCOL)


def test_decoding_json_as_pickle_and_pickle_as_json_fails_cleanly(cb, key):
    cb.set(key, {"a": 1})
    with pytest.raises(ValueFormatError):
        cb.get(key, format=FMT_PICKLE)
    cb.set(key, {"a": 1}, format=FMT_PICKLE)
    with pytest.raises(ValueFormatError):
        cb.get(key, format=FMT_JSON)


def test_unknown_format_is_argument_error(cb, key):
    with pytest.raises(ArgumentError):
        cb.set(key, 1, format=7)
    with pytest.raises(ArgumentError):
        cb.get(key, format="json")
    with pytest.raises(ArgumentError):
        cb.default_format = 99


def test_default_format_across_connections(cluster, key, connect):
    with connect(cluster.host, cluster.port, password="", bucket="default",
                           default_format=FMT_PICKLE) as pickler, \
            connect(cluster.host, cluster.port, password="", bucket="default") as jsoner:
        assert pickler.default_format == FMT_PICKLE and jsoner.default_format == FMT_JSON
        pickler.set(key, {"from": "pickler"})
        jsoner.set(key + ":j", {"from": "json"})
        # each reads what the other wrote, by the flags
        assert jsoner.get(key) == {"from": "pickler"}
        assert pickler.get(key + ":j") == {"from": "json"}
        jsoner.default_format = FMT_PLAIN
        jsoner.set(key + ":p", b"raw")
        assert pickler.get(key + ":p") == b"raw"


def test_set_json_converters(cb, key):
    previous = couchbase.set_json_converters(lambda v: json.dumps(v, indent=1), json.loads)
    try:
        cb.set(key, {"a": 1})
        assert cb.get(key, format=FMT_PLAIN) == b'{\n "a": 1\n}'
        assert cb.get(key) == {"a": 1}
    finally:
        couchbase.set_json_converters(*previous)
    with pytest.raises(ArgumentError):
        couchbase.set_json_converters(None, None)


# -- documents written by other SDKs, with their flags ---------------------------

CBC = shutil.which("cbc") or "/usr/local/bin/cbc"


def _cbc_create(cluster, key, value, flags, json_datatype=False):
    args = [CBC, "create", "-U", cluster.connstr("default"), "-u", cluster.username, "-P", cluster.password,
            "-V", value, "-f", str(flags), key]
    if json_datatype:
        args.insert(2, "-J")
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.mark.parametrize(
    "flags, stored, expected",
    [
        (0x02000000, '{"sdk": "4.x", "n": [1, 2]}', {"sdk": "4.x", "n": [1, 2]}),  # JSON
        (0x04000000, "plain UTF-8 text ☃", "plain UTF-8 text ☃"),  # string transcoder
        (0x03000000, "binary", b"binary"),  # raw binary transcoder
        (0x04, "legacy 1.x utf8", "legacy 1.x utf8"),  # 1.x FMT_UTF8
        (0x00, '"written as 0.9 JSON"', "written as 0.9 JSON"),
    ],
    ids=["common-json", "common-string", "common-binary", "legacy-utf8", "legacy-json"],
)
def test_reads_documents_written_with_other_sdks_flags(cb, cluster, key, flags, stored, expected):
    _cbc_create(cluster, key, stored, flags, json_datatype=flags == 0x02000000)
    assert cb.get(key) == expected
    assert cb.get(key, extended=True).flags == flags




def test_large_values_in_every_format(cb, key):
    # values from 16 KiB on take another path out of the callback
    doc = {"items": [{"i": i, "text": "x" * 100} for i in range(500)]}
    blob = bytes(range(256)) * 400
    cb.set({f"{key}:json": doc, f"{key}:small": 1})
    cb.set(f"{key}:pickle", doc, format=FMT_PICKLE)
    cb.set(f"{key}:plain", blob, format=FMT_PLAIN)
    assert cb.get([f"{key}:json", f"{key}:small", f"{key}:pickle", f"{key}:plain"]) == [doc, 1, doc, blob]
    assert cb.get(f"{key}:json", format=FMT_PLAIN) == json.dumps(doc, separators=(",", ":")).encode()
    with pytest.raises(ValueFormatError):
        cb.get(f"{key}:plain", format=FMT_JSON)
    result = cb.get(f"{key}:plain", extended=True)
    assert result.value == blob and result.flags == FMT_PLAIN
