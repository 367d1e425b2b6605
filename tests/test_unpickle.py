"""Whoever can write to a bucket chooses what unpickling a value runs: a
Connection can refuse to unpickle (unpickle=False: ValueFormatError naming the
key) or hand back the pickled bytes (unpickle='bytes'); the 0.9 default
(unpickle=True) stays, and the command line never unpickles."""

import pickle

import pytest

from couchbase import FMT_PICKLE, FMT_PLAIN
from couchbase.__main__ import main
from couchbase.exceptions import ArgumentError, ValueFormatError

pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)


def _record(what):
    _Detonator.ran.append(what)


class _Detonator:
    """A pickle that would run code when loaded (here: record it ran)."""

    ran = []

    def __reduce__(self):
        return (_record, ("unpickled",))


@pytest.fixture
def stored(cb, key):
    """key: a pickle that runs code; key:json: a JSON value."""
    cb.set(key, _Detonator(), format=FMT_PICKLE)
    cb.set(f"{key}:json", {"a": 1})
    _Detonator.ran.clear()
    return key


def _connect(connect, cluster, unpickle):
    return connect(cluster.host, cluster.port, password="", bucket="default", unpickle=unpickle)


def test_default_unpickles_as_0_9_did(cluster, stored, connect):
    with connect(cluster.host, cluster.port, password="", bucket="default") as conn:
        assert conn.unpickle is True
        conn.get(stored)
    assert _Detonator.ran == ["unpickled"]


def test_refuse_raises_naming_the_key_and_runs_nothing(cluster, stored, connect):
    with _connect(connect, cluster, False) as conn:
        assert conn.unpickle is False
        for call in (lambda: conn.get(stored), lambda: conn.get(stored, format=FMT_PICKLE),
                     lambda: conn.get(stored, extended=True)):
            with pytest.raises(ValueFormatError) as info:
                call()
            error = info.value
            assert error.key == stored and error.operation == "get"
            assert "pickle" in str(error) and "FMT_PLAIN" in str(error)
            assert f"{len(pickle.dumps(_Detonator(), pickle.HIGHEST_PROTOCOL))} bytes" in str(error)
        with pytest.raises(ValueFormatError) as info:
            conn.lock(stored, ttl=5)
        conn.unlock(stored, info.value.cas)  # the error carries the lock's CAS
        # the bytes are still readable, explicitly
        raw = conn.get(stored, format=FMT_PLAIN)
        assert raw == pickle.dumps(_Detonator(), pickle.HIGHEST_PROTOCOL)
    assert _Detonator.ran == []


def test_refuse_in_a_multi_get_keeps_the_other_values(cluster, stored, connect):
    with _connect(connect, cluster, False) as conn:
        with pytest.raises(ValueFormatError) as info:
            conn.get([f"{stored}:json", stored])
        results = info.value.all_results
        assert results[f"{stored}:json"] == {"a": 1}
        assert isinstance(results[stored], ValueFormatError) and results[stored].key == stored
    assert _Detonator.ran == []


def test_bytes_mode_returns_the_pickled_bytes(cluster, stored, connect):
    expected = pickle.dumps(_Detonator(), pickle.HIGHEST_PROTOCOL)
    with _connect(connect, cluster, "bytes") as conn:
        assert conn.unpickle == "bytes"
        assert conn.get(stored) == expected
        assert conn.get([stored, f"{stored}:json"]) == [expected, {"a": 1}]
        result = conn.get([stored, f"{stored}:json"], extended=True)
        assert result[stored].value == expected and result[stored].flags == FMT_PICKLE
        assert result[f"{stored}:json"].value == {"a": 1}
        # storing pickles still works: only reading is governed
        conn.set(f"{stored}:2", [1, 2], format=FMT_PICKLE)
        assert pickle.loads(conn.get(f"{stored}:2")) == [1, 2]
    assert _Detonator.ran == []


@pytest.mark.parametrize("bad", [None, 0, 1, "yes", "BYTES", b"bytes", [True]])
def test_unpickle_option_is_checked(cluster, bad, connect):
    with pytest.raises(ArgumentError) as info:
        _connect(connect, cluster, bad)
    assert "unpickle" in str(info.value)


def test_command_line_get_never_unpickles(cluster, stored, capsys):
    base = ["--host", cluster.host, "--port", str(cluster.port)]
    status = main(base + ["get", f"{stored}:json", stored, f"{stored}:missing"])
    out = capsys.readouterr().out.splitlines()
    assert _Detonator.ran == []
    assert status == 1  # one value was not shown
    assert out[0] == f"{stored}:json: {{'a': 1}}"
    assert out[1].startswith(f"{stored}: not shown: ") and "pickle of" in out[1] and "bytes" in out[1]
    assert out[2] == f"{stored}:missing: not found"


def test_command_line_get_of_json_values(cluster, key, capsys):
    base = ["--host", cluster.host, "--port", str(cluster.port)]
    assert main(base + ["set", key, '{"x": [1, 2]}']) == 0
    assert main(base + ["get", key]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{key}: {{'x': [1, 2]}}"
