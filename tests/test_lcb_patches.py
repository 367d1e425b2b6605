"""The defects patches/libcouchbase/ fixes in libcouchbase 3.3.4, each
shown by the reply that triggers it. Each scenario runs in a child process:
on an unpatched libcouchbase the child dies (an abort, a segfault) or spins,
which this test reports as a failure instead of losing the whole suite.

With the patches, each hostile reply is an error for its key within the
operation timeout, and the Connection recovers."""

import json
import pathlib
import subprocess
import sys
import textwrap
import warnings

import pytest

import couchbase._lcb
from couchbase import _libcouchbase_fixes
from couchbase.exceptions import UnpatchedLibcouchbaseError, UnpatchedLibcouchbaseWarning

pytestmark = pytest.mark.sanitize  # run under the sanitizers too (scripts/run-sanitized)

CHILD = textwrap.dedent("""
    import json, sys, time
    from couchbase import Couchbase, FMT_PLAIN
    from couchbase.exceptions import CouchbaseError
    from couchbase.mock import MockCluster

    connstr, mangle, op = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    cb = Couchbase.connect(bucket="default", password="", connection_string=connstr, timeout=1.0)
    cb.set({"hostile:victim": b"v", "hostile:other": b"o"}, format=FMT_PLAIN)
    cluster_url = sys.argv[4]
    import urllib.request, urllib.parse
    def control(name, **params):
        query = urllib.parse.urlencode(params)
        urllib.request.urlopen(f"{cluster_url}/mock/{name}?{query}", timeout=10).read()
    control("mangle", key="hostile:victim", count=1, **mangle)
    started = time.monotonic()
    try:
        if op == "get":
            cb.get("hostile:victim", format=FMT_PLAIN)
        else:
            cb.get("hostile:victim", format=FMT_PLAIN, ttl=60)  # libcouchbase's own command
        outcome = "no error"
    except CouchbaseError as e:
        outcome = type(e).__name__
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 10
    while True:  # the connection recovers
        try:
            recovered = cb.get("hostile:other", format=FMT_PLAIN) == b"o"
            break
        except CouchbaseError:
            if time.monotonic() > deadline:
                recovered = False
                break
            time.sleep(0.1)
    cb.close()
    print(json.dumps({"outcome": outcome, "seconds": elapsed, "recovered": recovered}))
""")

CASES = {
    # handle_unknown_error left the error at SUCCESS: lcb_assert in dispatch_ufwd_error
    "status not in the error map, built packet": ({"status": 0x21}, "get"),
    "status needing special handling, built packet": ({"status": 0xEE}, "get"),
    # 24 + bodylen wrapped in 32 bits: a spin (built) or an abort in the rope code (own)
    "body length that wraps 32 bits, built packet": ({"bodylen": 0xFFFFFFF0}, "get"),
    "body length that wraps 32 bits, own command": ({"bodylen": 0xFFFFFFF0}, "gat"),
    # a STAT reply with a key for a GAT was handled as a STAT: segfault
    "STAT reply with a key, own command": ({"opcode": 0x10, "keylen": 3, "body": "6b6579"}, "gat"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_reply_is_an_error_not_a_crash(cluster, case):
    mangle, op = CASES[case]
    connstr = f"couchbase://{cluster.host}:{cluster.port}=http/default"
    url = f"http://{cluster.host}:{cluster.port}"
    proc = subprocess.run([sys.executable, "-c", CHILD, connstr, json.dumps(mangle), op, url],
                          capture_output=True, text=True, timeout=60)
    cluster.mangle("hostile:victim", count=0)
    assert proc.returncode == 0, f"the client died ({proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] != "no error", result
    assert result["seconds"] < 1.0 + 4.0, result  # the timeout, and a loaded machine's slack
    assert result["recovered"], result


PATCH_DIR = pathlib.Path(__file__).resolve().parent.parent / "patches" / "libcouchbase"


def test_every_patch_says_what_its_absence_exposes():
    numbers = {path.name.split("-")[0] for path in PATCH_DIR.glob("*.patch")}
    assert numbers and numbers == set(_libcouchbase_fixes.EXPOSED)


def test_the_libcouchbase_in_use_carries_every_patch():
    changeset = couchbase._lcb.libcouchbase_changeset()
    assert _libcouchbase_fixes.missing(changeset) == [], changeset


@pytest.mark.parametrize("changeset", ["0xdeadbeef", "", "couchbase-lcb-patches:0001"])
def test_a_libcouchbase_lacking_a_fix_is_refused_with_what_it_exposes(monkeypatch, changeset):
    monkeypatch.delenv(_libcouchbase_fixes.ALLOW_UNPATCHED, raising=False)
    with pytest.raises(UnpatchedLibcouchbaseError) as info:
        _libcouchbase_fixes.require(changeset, "3.3.4")
    text = str(info.value)
    for number in _libcouchbase_fixes.missing(changeset):
        assert f"patch {number}" in text and _libcouchbase_fixes.EXPOSED[number] in text
    assert _libcouchbase_fixes.ALLOW_UNPATCHED in text  # and how to go on anyway


def test_allowing_an_unpatched_libcouchbase_warns_instead(monkeypatch):
    monkeypatch.setenv(_libcouchbase_fixes.ALLOW_UNPATCHED, "1")
    with pytest.warns(UnpatchedLibcouchbaseWarning, match="without patch 0002"):
        _libcouchbase_fixes.require("couchbase-lcb-patches:0001", "3.3.4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _libcouchbase_fixes.require("couchbase-lcb-patches:" + ",".join(_libcouchbase_fixes.EXPOSED), "3.3.4")
