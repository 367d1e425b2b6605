"""Runs in the official Couchbase Python SDK's own venv (not our package).

argv: connstr user password phase [args]
  phase "write":    stores documents the way the SDK's transcoders write them
  phase "read":     reads the documents our binding wrote and prints them as JSON
  phase "features": exists, replica reads, lookup_in/mutate_in and MAJORITY durable writes
                    on the documents our binding wrote; prints what it got as JSON
  phase "stalled":  args = management port, key, node index: stalls that node (the key's
                    active one) and prints how a replica read and a plain get fared
"""

import hashlib
import json
import sys
import time
import urllib.request
from datetime import timedelta

from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.options import (
    ClusterOptions,
    GetAnyReplicaOptions,
    GetOptions,
    MutateInOptions,
    UpsertOptions,
)
from couchbase.transcoder import RawBinaryTranscoder, RawStringTranscoder

import couchbase.subdocument as SD
from couchbase.durability import DurabilityLevel, ServerDurability
from couchbase.exceptions import CouchbaseException

connstr, user, password, phase = sys.argv[1:5]
options = ClusterOptions(PasswordAuthenticator(user, password))
options.apply_profile("wan_development")
cluster = Cluster(connstr, options)
cluster.wait_until_ready(timedelta(seconds=15))
coll = cluster.bucket("default").default_collection()

if phase == "write":
    coll.upsert("sdk:json", {"from": "sdk", "list": [1, 2.5, None, True], "nested": {"ü": "☃"}})
    coll.upsert("sdk:string", "plain text ☃", UpsertOptions(transcoder=RawStringTranscoder()))
    coll.upsert("sdk:binary", b"\x00\x01\xff raw", UpsertOptions(transcoder=RawBinaryTranscoder()))
    coll.upsert("sdk:number", 42)
    print("WRITTEN")
elif phase == "features":
    majority = ServerDurability(DurabilityLevel.MAJORITY)
    any_replica = coll.get_any_replica("ours:doc")
    all_replicas = sorted([r.content_as[dict], r.is_replica] for r in coll.get_all_replicas("ours:doc"))
    looked = coll.lookup_in("ours:doc", [SD.get("a"), SD.exists("nope"), SD.count("list")])
    coll.mutate_in("ours:doc", [SD.upsert("b", 2), SD.array_append("list", 2)])
    started = time.monotonic()
    coll.upsert("sdk:durable", {"d": 1}, UpsertOptions(durability=majority))
    durable_seconds = time.monotonic() - started
    coll.mutate_in("sdk:durable", [SD.upsert("e", 1)], MutateInOptions(durability=majority))
    out = {
        "exists": [coll.exists(k).exists for k in ("ours:doc", "ours:deleted", "never:written")],
        "any_replica": any_replica.content_as[dict],
        "all_replicas": all_replicas,
        "lookup_in": [looked.content_as[int](0), looked.exists(1), looked.content_as[int](2)],
        "durable_seconds": durable_seconds,
        "ours_durable": coll.get("ours:durable").content_as[dict],
    }
    print("FEATURES " + json.dumps(out))
elif phase == "stalled":
    port, key, node = sys.argv[5:8]

    def stall(on):
        url = "http://127.0.0.1:%s/mock/stall?on=%d&idx=%s" % (port, on, node)
        urllib.request.urlopen(url, timeout=10).read()

    coll.get(key)  # connections to every node are up
    stall(1)
    out = {}
    try:
        started = time.monotonic()
        try:
            got = coll.get_any_replica(key, GetAnyReplicaOptions(timeout=timedelta(seconds=2)))
            out["replica"] = [got.content_as[dict], got.is_replica]
        except CouchbaseException as e:
            out["replica"] = type(e).__name__
        out["replica_seconds"] = time.monotonic() - started
        started = time.monotonic()
        try:
            out["get"] = coll.get(key, GetOptions(timeout=timedelta(seconds=1))).content_as[dict]
        except CouchbaseException as e:
            out["get"] = type(e).__name__
        out["get_seconds"] = time.monotonic() - started
    finally:
        stall(0)
    print("STALLED " + json.dumps(out))
else:
    out = {
        "ours:json": coll.get("ours:json").content_as[dict],
        "ours:str": coll.get("ours:str").content_as[str],
        "ours:int": coll.get("ours:int").content_as[int],
        "ours:bytes": coll.get("ours:bytes", GetOptions(transcoder=RawBinaryTranscoder()))
        .content_as[bytes].hex(),
        "ours:counter": coll.get("ours:counter").content_as[int],
        "ours:bigbytes": hashlib.sha256(
            coll.get("ours:bigbytes", GetOptions(transcoder=RawBinaryTranscoder())).content_as[bytes]
        ).hexdigest(),
    }
    print("READ " + json.dumps(out))
cluster.close()
