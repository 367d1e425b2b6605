"""Runs in the official Couchbase Python SDK's own venv (not our package).

argv: connstr user password phase
  phase "write": stores documents the way the SDK's transcoders write them
  phase "read":  reads the documents our binding wrote and prints them as JSON
"""

import hashlib
import json
import sys
from datetime import timedelta

from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.options import ClusterOptions, GetOptions, UpsertOptions
from couchbase.transcoder import RawBinaryTranscoder, RawStringTranscoder

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
