"""What a user's code using the mock sees under ``mypy --strict`` (type-checked
by tests/test_typing.py, never run): ``MockCluster`` and its control methods,
made at run time from the control commands, have the types of the commands'
definitions. A line that must be a type error carries a ``type: ignore``:
mypy --strict reports the comment as unused if the types ever accept it."""

from typing import Any

from typing_extensions import assert_type

from couchbase.mock import BucketError, MockCluster


def faults(mock: MockCluster) -> None:
    assert_type(mock.failover(1), dict[str, Any])
    assert_type(mock.restart(node_index=1), dict[str, Any])
    mock.add_node(rebalance=False)
    mock.hiccup(50, offset=10)
    mock.stall(False)
    mock.truncate(None)
    mock.opfail(0x86, 3, "GET", bucket="default")
    mock.opfail(0x86, 3, 0x00)
    mock.mangle("k", count=1, body=b"\x00", status=0x86, cas=1)
    mock.mangle(b"k", magic=0x18, keylen=1 << 8)
    mock.time_travel(3600.5)
    mock.drop_connections()
    mock.failover("1")  # type: ignore[arg-type]
    mock.mangle("k", stauts=1)  # type: ignore[call-arg]
    mock.hiccup()  # type: ignore[call-arg]


def buckets_and_users(mock: MockCluster) -> None:
    try:
        mock.create_bucket("b", bucket_type="memcached", replicas=None, ram_quota_mb=100)
    except BucketError as error:
        assert_type(error.errors, dict[str, str])
    mock.flush_bucket("b")
    mock.delete_bucket("b")
    mock.create_user("u", "password", roles=["bucket_full_access[default]"])
    mock.delete_user("u")
    mock.set_sasl_mechanisms(["PLAIN"])
    mock.set_sasl_mechanisms("PLAIN SCRAM-SHA1")
    assert_type(mock.keyinfo("k")["vbucket"], Any)
    assert_type(mock.info(), dict[str, Any])
    assert_type(mock.help(), dict[str, Any])


with MockCluster(nodes=3, buckets={"default": ""}, port=0) as mock:
    assert_type(mock, MockCluster)
    assert_type(mock.kv_ports, list[int])
    assert_type(mock.port, int)
    assert_type(mock.buckets, dict[str, str])
    assert_type(mock.connstr("default"), str)
    assert_type(mock.running, bool)
    faults(mock)
    buckets_and_users(mock)
MockCluster(buckets=["default", "protected:secret"]).start().stop()
MockCluster(nodes="3")  # type: ignore[arg-type]
