"""The pytest fixtures of couchbase.mock.pytest_plugin."""

from mock_kvclient import KVClient


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
