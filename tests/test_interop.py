"""Documents cross between this binding and the official Couchbase Python SDK
4.x in both directions, with the flags each writes."""

import hashlib
import json
import os

import pytest
from sdk_venv import run_sdk

import couchbase.subdocument as SD
from couchbase import FMT_PLAIN, Couchbase, Durability
from couchbase.mock import MockCluster

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk_interop_script.py")


def test_documents_cross_both_ways(cluster):
    connstr = f"couchbase://{cluster.host}:{cluster.kv_ports[0]}"
    args = (connstr, cluster.username, cluster.password)
    with Couchbase.connect(cluster.host, cluster.port, password="", bucket="default") as cb:
        # the SDK writes, we read
        assert "WRITTEN" in run_sdk(SCRIPT, *args, "write")
        assert cb.get("sdk:json") == {"from": "sdk", "list": [1, 2.5, None, True], "nested": {"ü": "☃"}}
        assert cb.get("sdk:string") == "plain text ☃"
        assert cb.get("sdk:binary") == b"\x00\x01\xff raw"
        assert cb.get("sdk:number") == 42
        # we write, the SDK reads
        cb.set("ours:json", {"from": "lcb", "n": [1, 2]})
        cb.set("ours:str", "text ☃")
        cb.set("ours:int", 7)
        cb.set("ours:bytes", b"\x00raw\xff", format=FMT_PLAIN)
        big = os.urandom(100_000)  # large: sent as a packet the binding builds
        cb.set("ours:bigbytes", big, format=FMT_PLAIN)
        cb.delete("ours:counter", quiet=True)
        cb.incr("ours:counter", initial=99)
        out = run_sdk(SCRIPT, *args, "read")
    read = json.loads(out.split("READ ", 1)[1])
    assert read == {"ours:json": {"from": "lcb", "n": [1, 2]}, "ours:str": "text ☃", "ours:int": 7,
                    "ours:bytes": b"\x00raw\xff".hex(), "ours:counter": 99,
                    "ours:bigbytes": hashlib.sha256(big).hexdigest()}


@pytest.fixture
def cluster3():
    """Three nodes, one replica per vbucket: what replica reads and durable writes need."""
    with MockCluster(nodes=3, replicas=1, vbuckets=64) as mock:
        yield mock


def test_sdk_replica_reads_subdoc_and_durable_writes_on_our_documents(cluster3):
    connstr = f"couchbase://{cluster3.host}:{cluster3.kv_ports[0]}"
    with Couchbase.connect(cluster3.host, cluster3.port, password="", bucket="default") as cb:
        cb.set("ours:doc", {"a": 1, "list": [1]})
        cb.set("ours:deleted", 1)
        cb.delete("ours:deleted")
        # the same calls through this binding, before the SDK changes the document
        specs = [SD.get("a"), SD.exists("nope"), SD.count("list")]
        ours = {"exists": [cb.exists(k) for k in ("ours:doc", "ours:deleted", "never:written")],
                "any_replica": cb.get("ours:doc", replica=True),
                "all_replicas": sorted([c.value, c.is_replica] for c in cb.get_all_replicas("ours:doc")),
                "lookup_in": list(cb.lookup_in("ours:doc", specs))}
        cb.set("ours:durable", {"d": 0}, durability=Durability.MAJORITY)
        cluster3.replication_delay(lag_ms=300)  # a MAJORITY write waits for its replica
        out = run_sdk(SCRIPT, connstr, cluster3.username, cluster3.password, "features")
        got = json.loads(out.split("FEATURES ", 1)[1])
        assert got.pop("durable_seconds") >= 0.3
        assert got.pop("ours_durable") == {"d": 0}  # our MAJORITY write, read by the SDK
        doc = {"a": 1, "list": [1]}
        assert got == ours == {"exists": [True, False, False], "any_replica": doc,
                               "all_replicas": [[doc, False], [doc, True]],  # the active copy and the replica
                               "lookup_in": [1, False, 1]}
        # what the SDK wrote, we read
        assert cb.get("ours:doc") == {"a": 1, "list": [1, 2], "b": 2}
        assert cb.get("sdk:durable") == {"d": 1, "e": 1}
    frames = [(f["opcode"], f["key"], f["level"]) for f in cluster3.durability_frames()["frames"]]
    assert frames == [(0x01, "ours:durable", 1), (0x01, "sdk:durable", 1), (0xD1, "sdk:durable", 1)]


def test_sdk_replica_read_answers_while_the_active_node_is_stalled(cluster3):
    connstr = f"couchbase://{cluster3.host}:{cluster3.kv_ports[0]}"
    # a key active on another node than the one the SDK bootstraps from
    key = next(k for k in (f"stalled:{i}" for i in range(100)) if cluster3.keyinfo(k)["active"] != 0)
    active = cluster3.keyinfo(key)["active"]
    with Couchbase.connect(cluster3.host, cluster3.port, password="", bucket="default") as cb:
        cb.set(key, {"v": 1})
    out = run_sdk(SCRIPT, connstr, cluster3.username, cluster3.password, "stalled", cluster3.port, key,
                  active)
    got = json.loads(out.split("STALLED ", 1)[1])
    assert got["replica"] == [{"v": 1}, True] and got["replica_seconds"] < 1.0, got
    assert got["get"] in ("UnAmbiguousTimeoutException", "AmbiguousTimeoutException", "TimeoutException"), got
    assert got["get_seconds"] >= 1.0, got
