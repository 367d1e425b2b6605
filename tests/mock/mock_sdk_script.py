"""Runs inside the official Couchbase Python SDK's venv (not our package): argv = connstr user password."""
import sys
import time
from datetime import timedelta

from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.options import (
    ClusterOptions,
    DeltaValue,
    GetOptions,
    IncrementOptions,
    SignedInt64,
    UpsertOptions,
)

from couchbase.exceptions import (
    CasMismatchException,
    DocumentNotFoundException,
    PathExistsException,
    RequestCanceledException,
)

connstr, user, password = sys.argv[1:4]
opts = ClusterOptions(PasswordAuthenticator(user, password))
opts.apply_profile("wan_development")
cluster = Cluster(connstr, opts)
cluster.wait_until_ready(timedelta(seconds=15))
coll = cluster.bucket("default").default_collection()

keys = ["sdk-%d" % i for i in range(50)]  # spread over every node's vbuckets
for k in keys:
    coll.upsert(k, {"k": k, "n": 1})
for k in keys:
    assert coll.get(k).content_as[dict] == {"k": k, "n": 1}, k
res = coll.get(keys[0])
coll.replace(keys[0], {"n": 2}, cas=res.cas)
try:
    coll.replace(keys[0], {"n": 3}, cas=res.cas)
except CasMismatchException:
    pass
else:
    raise AssertionError("stale CAS accepted")
assert coll.get(keys[0]).content_as[dict] == {"n": 2}
coll.remove(keys[1])
INCR = IncrementOptions(initial=SignedInt64(10), delta=DeltaValue(5))
try:
    coll.get(keys[1])
except DocumentNotFoundException:
    pass
else:
    raise AssertionError("removed document still readable")
assert coll.exists(keys[2]).exists is True
assert coll.exists(keys[1]).exists is False
assert coll.exists("never-written").exists is False
counter = coll.binary().increment("sdk-counter", INCR)
assert counter.content == 10, counter.content
counter = coll.binary().increment("sdk-counter", INCR)
assert counter.content == 15, counter.content
coll.touch(keys[3], timedelta(seconds=100))
assert coll.get(keys[3]).content_as[dict] == {"k": keys[3], "n": 1}

# sub-document API (multi lookup / multi mutation), expiry through the $document vattr
import couchbase.subdocument as SD  # noqa: E402

coll.upsert("sd", {"name": "n", "tags": ["a"], "count": 1}, UpsertOptions(expiry=timedelta(seconds=500)))
expiry = coll.get("sd", GetOptions(with_expiry=True)).expiryTime
assert expiry is not None, "no expiry"
res = coll.lookup_in("sd", [SD.get("name"), SD.exists("missing"), SD.count("tags")])
assert res.content_as[str](0) == "n" and res.exists(1) is False and res.content_as[int](2) == 1
coll.mutate_in("sd", [SD.upsert("name", "m"), SD.array_append("tags", "b"), SD.increment("count", 5),
                      SD.upsert("new.deep", True, create_parents=True)])
doc = coll.get("sd").content_as[dict]
assert doc == {"name": "m", "tags": ["a", "b"], "count": 6, "new": {"deep": True}}, doc
try:
    coll.mutate_in("sd", [SD.insert("name", "dup")])
except PathExistsException:
    pass
else:
    raise AssertionError("insert over an existing path accepted")
projected = coll.get("sd", GetOptions(project=["tags"])).content_as[dict]
assert projected == {"tags": ["a", "b"]}, projected

# topology changes through the mock's HTTP control API: the SDK must follow them
if len(sys.argv) > 4:
    import json
    import urllib.request

    def control(command):
        with urllib.request.urlopen("http://127.0.0.1:%s/mock/%s" % (sys.argv[4], command), timeout=10) as r:
            return json.loads(r.read())

    assert control("failover?idx=2")["failed"] == [2]
    for k in keys[5:]:
        # an upsert sent to the failed node before the SDK applied the new map is
        # cancelled when that node's connection closes (as with a real cluster);
        # an application sends it again
        for attempt in range(20):
            try:
                coll.upsert(k, {"k": k, "n": 2})
                break
            except RequestCanceledException:
                if attempt == 19:
                    raise
                time.sleep(0.1)
    for k in keys[5:]:
        assert coll.get(k).content_as[dict]["n"] == 2, k
    control("add_node")
    control("restart?idx=2")
    for k in keys[5:]:
        assert coll.get(k).content_as[dict]["n"] == 2, k
cluster.close()
print("SDK OK")
