"""The pytest fixtures of couchbase.mock.pytest_plugin."""

import os
import subprocess
import sys

from mock_kvclient import KVClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_session_fixture(couchbase_mock):
    assert couchbase_mock.running
    assert couchbase_mock.buckets == {"default": "", "protected": "secret"}
    assert couchbase_mock.connstr() == "couchbase://127.0.0.1:%d=http/default" % couchbase_mock.port
    assert couchbase_mock.kv_connstr("protected") == "couchbase://127.0.0.1:%d/protected" % (
        couchbase_mock.kv_ports[0])
    with KVClient(couchbase_mock.host, couchbase_mock.kv_ports[0]) as c:
        c.bootstrap("protected", "secret", "protected")


def test_factory_fixture(couchbase_mock_factory):
    mock = couchbase_mock_factory(nodes=2, buckets=["a", "b:pw"])
    assert mock.buckets == {"a": "", "b": "pw"} and len(mock.kv_ports) == 2


USER_SUITE = '''
import pytest

from couchbase.exceptions import NotFoundError

seen = {}


def test_a_stores_in_the_shared_bucket(couchbase_connection, couchbase_key):
    couchbase_connection.set("left-over", 1)
    seen["key"] = couchbase_key
    seen["shared"] = couchbase_connection


def test_b_the_shared_bucket_keeps_it(couchbase_connection, couchbase_key):
    assert seen["shared"].closed and not couchbase_connection.closed
    assert couchbase_connection.get("left-over") == 1
    assert couchbase_key != seen["key"] and "test_b_the_shared_bucket_keeps_it" in couchbase_key


def test_c_a_flushed_bucket_is_empty(couchbase_flushed_connection, couchbase_mock):
    with pytest.raises(NotFoundError):
        couchbase_flushed_connection.get("left-over")
    couchbase_flushed_connection.set("mine", 2)
    assert couchbase_flushed_connection.get("mine") == 2
    assert couchbase_mock.keyinfo("mine")["found"]
    seen["flushed"] = couchbase_flushed_connection


def test_d_its_connection_was_closed(couchbase_flushed_connection):
    assert seen["flushed"].closed
    with pytest.raises(NotFoundError):
        couchbase_flushed_connection.get("mine")
'''


def test_the_connection_fixtures_in_a_users_suite(tmp_path):
    """A user's suite (its own pytest run): a Connection per test on the shared bucket, or on
    a bucket flushed for the test; each closed after its test."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["couchbase.mock.pytest_plugin"]\n')
    (tmp_path / "test_user.py").write_text(USER_SUITE)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              filter(None, [ROOT, os.environ.get("PYTHONPATH")]))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout
