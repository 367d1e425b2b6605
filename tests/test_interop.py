"""Documents cross between this binding and the official Couchbase Python SDK
4.x in both directions, with the flags each writes."""

import hashlib
import json
import os

from sdk_venv import run_sdk

from couchbase import FMT_PLAIN, Couchbase

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
