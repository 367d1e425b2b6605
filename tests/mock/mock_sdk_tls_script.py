"""Runs inside the official Couchbase Python SDK's venv (not our package), against a TLS mock:
argv = connstr user password ca_path expect ("ok": KV operations over TLS; "refused": the
bootstrap must fail, the certificate not verifying with this CA)."""
import os
import sys
import threading
from datetime import timedelta

from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.options import ClusterOptions, ClusterTimeoutOptions

from couchbase.exceptions import CouchbaseException, DocumentNotFoundException

connstr, user, password, ca_path, expect = sys.argv[1:6]
REFUSED_AFTER = 5
opts = ClusterOptions(PasswordAuthenticator(user, password, cert_path=ca_path))
opts.apply_profile("wan_development")
if expect == "refused":
    # the SDK (4.6) retries a bootstrap whose certificate does not verify without end, inside
    # Cluster(): not ready after 5 s (an accepted certificate is ready in well under 1 s) is
    # a refusal
    opts["timeout_options"] = ClusterTimeoutOptions(connect_timeout=timedelta(seconds=3),
                                                    bootstrap_timeout=timedelta(seconds=3))

    def refused():
        print("SDK REFUSED (not ready after %d s)" % REFUSED_AFTER, flush=True)
        os._exit(0)

    watchdog = threading.Timer(REFUSED_AFTER, refused)
    watchdog.daemon = True
    watchdog.start()
try:
    cluster = Cluster(connstr, opts)
    cluster.wait_until_ready(timedelta(seconds=3 if expect == "refused" else 15))
    coll = cluster.bucket("default").default_collection()
    coll.upsert("sdk:tls", {"over": "tls"})
except CouchbaseException as e:
    if expect == "refused":
        print("SDK REFUSED %s" % type(e).__name__)
        sys.exit(0)
    raise
assert expect == "ok", "the SDK accepted a certificate it cannot verify"
assert coll.get("sdk:tls").content_as[dict] == {"over": "tls"}
coll.upsert_multi({"sdk:tls:%d" % i: i for i in range(50)})
assert [coll.get("sdk:tls:%d" % i).content_as[int] for i in range(50)] == list(range(50))
coll.remove("sdk:tls")
try:
    coll.get("sdk:tls")
    raise AssertionError("removed document still there")
except DocumentNotFoundException:
    pass
cluster.close()
print("SDK TLS OK")
