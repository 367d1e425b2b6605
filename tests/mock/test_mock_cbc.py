"""libcouchbase's own command-line client against a three-node mock (HTTP and CCCP bootstrap)."""

import re
import subprocess

import pytest
from mock_helpers import find_tool

ADMIN = ["-u", "Administrator", "-P", "password"]


def cbc(*args, check=True):
    res = subprocess.run([find_tool("cbc")] + [str(a) for a in args], capture_output=True, text=True,
                         timeout=60)
    if check:
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


class Connstr(str):
    """A connection string that knows its bootstrap kind (for unique key names)."""


@pytest.fixture(params=["http", "cccp"])
def connstr(request, shared3):
    cs = Connstr(shared3.connstr() if request.param == "http" else shared3.kv_connstr(node=1))
    cs.kind = request.param
    return cs


def test_create_cat_rm(connstr):
    keys = ["cbc-%s-%d" % (connstr.kind, i) for i in range(12)]  # spread over the 3 nodes
    for k in keys:
        out = cbc("create", "-U", connstr, *ADMIN, "-V", "value-" + k, k)
        assert "Stored" in out.stderr
    out = cbc("cat", "-U", connstr, *ADMIN, *keys)
    for k in keys:
        assert "value-" + k in out.stdout
    out = cbc("rm", "-U", connstr, *ADMIN, *keys)
    assert out.stderr.count("Deleted") == len(keys)
    out = cbc("cat", "-U", connstr, *ADMIN, keys[0], check=False)
    assert "LCB_ERR_DOCUMENT_NOT_FOUND" in out.stderr


def test_incr_decr(connstr):
    key = "ctr-" + connstr.kind
    assert "Current value is 10." in cbc("incr", "-U", connstr, *ADMIN, "--initial", 10, key).stderr
    assert "Current value is 15." in cbc("incr", "-U", connstr, *ADMIN, "--delta", 5, key).stderr
    assert "Current value is 12." in cbc("decr", "-U", connstr, *ADMIN, "--delta", 3, key).stderr


def test_touch_lock_unlock(connstr, shared3):
    key = "lock-" + connstr.kind
    cbc("create", "-U", connstr, *ADMIN, "-V", "locked-value", key)
    assert "Touch" in cbc("touch", "-U", connstr, *ADMIN, "-e", 100, key).stderr
    out = cbc("lock", "-U", connstr, *ADMIN, "-e", 10, key)
    assert out.stdout == "locked-value"
    cas = re.search(r"CAS=(0x[0-9a-f]+)", out.stderr).group(1)
    # libcouchbase retries a locked document until its timeout: keep that short
    out = cbc("create", "-U", connstr, *ADMIN, "-D", "timeout=0.3", "-V", "other", key)
    assert "LCB_ERR_DOCUMENT_LOCKED" in out.stderr
    assert "Unlocked" in cbc("unlock", "-U", connstr, *ADMIN, key, cas).stderr
    assert "Stored" in cbc("create", "-U", connstr, *ADMIN, "-V", "other", key).stderr
    shared3.time_travel(200)
    out = cbc("cat", "-U", connstr, *ADMIN, key, check=False)
    assert "LCB_ERR_DOCUMENT_NOT_FOUND" not in out.stderr  # the second store cleared the expiry


def test_stats(connstr, shared3):
    out = cbc("stats", "-U", connstr, *ADMIN)
    servers = {line.split("\t")[0] for line in out.stdout.splitlines()}
    assert len(servers) == 3
    assert re.search(r"\tcurr_items\t\d+", out.stdout)
    out = cbc("stats", "-U", connstr, *ADMIN, "memory")
    assert "\tmem_used\t" in out.stdout
    cbc("create", "-U", connstr, *ADMIN, "-V", "v", "statkey")
    out = cbc("stats", "-U", connstr, *ADMIN, "--keystats", "statkey")
    assert "key_vb_state\tactive" in out.stdout and "key_vb_state\treplica" in out.stdout


def test_classic_bucket_auth(shared3):
    for cs in (shared3.connstr("protected"), shared3.kv_connstr("protected")):
        cbc("create", "-U", cs, "-u", "protected", "-P", "secret", "-V", "sec", "pk")
        assert cbc("cat", "-U", cs, "-u", "protected", "-P", "secret", "pk").stdout == "sec"
        # no user name: libcouchbase uses the bucket name
        assert cbc("cat", "-U", cs, "-P", "secret", "pk").stdout == "sec"


@pytest.mark.parametrize("kind", ["http", "cccp"])
def test_bootstrap_errors(shared3, kind):
    cs = shared3.connstr if kind == "http" else shared3.kv_connstr
    out = cbc("cat", "-U", cs("protected"), "-u", "protected", "-P", "wrong", "k", check=False)
    assert out.returncode != 0 and "LCB_ERR_AUTHENTICATION_FAILURE" in out.stderr
    out = cbc("cat", "-U", cs("default"), "-u", "Administrator", "-P", "wrong", "k", check=False)
    assert out.returncode != 0 and "LCB_ERR_AUTHENTICATION_FAILURE" in out.stderr
    out = cbc("cat", "-U", cs("nosuch"), *ADMIN, "k", check=False)
    assert out.returncode != 0 and "LCB_ERR_BUCKET_NOT_FOUND" in out.stderr


def test_memcached_bucket(mock3):
    mock3.create_bucket("memd", bucket_type="memcached")
    cs = mock3.connstr("memd")
    keys = ["m%d" % i for i in range(10)]
    for k in keys:
        cbc("create", "-U", cs, *ADMIN, "-V", "v" + k, k)
    out = cbc("cat", "-U", cs, *ADMIN, *keys)
    assert all("v" + k in out.stdout for k in keys)


def test_cbc_follows_failover_and_new_nodes(mock3):
    cs = mock3.connstr()
    keys = ["topo%d" % i for i in range(30)]
    for k in keys:
        cbc("create", "-U", cs, *ADMIN, "-V", k, k)
    mock3.failover(1)
    out = cbc("cat", "-U", cs, *ADMIN, *keys)
    assert all(k in out.stdout for k in keys)
    mock3.add_node()
    mock3.restart(1)
    out = cbc("cat", "-U", mock3.kv_connstr(node=3), *ADMIN, *keys)
    assert all(k in out.stdout for k in keys)
    out = cbc("stats", "-U", cs, *ADMIN)
    assert len({line.split("\t")[0] for line in out.stdout.splitlines()}) == 4


def test_admin_rest_via_cbc(mock1):
    cs = "couchbase://%s:%d=http" % (mock1.host, mock1.port)
    out = cbc("bucket-create", "-U", cs, *ADMIN, "--bucket-type=couchbase", "--ram-quota=100", "viacbc")
    assert "202" in out.stderr and "viacbc" in mock1.buckets
    out = cbc("bucket-list", "-U", cs, *ADMIN)
    assert "200" in out.stderr
    cbc("bucket-delete", "-U", cs, *ADMIN, "viacbc")
    assert "viacbc" not in mock1.buckets


def test_classic_credentials_for_missing_bucket_over_http(shared3):
    """Pre-RBAC behaviour (and CouchbaseMock's): the bucket-named user of a missing bucket gets a 404."""
    for extra in ([], ["-P", ""], ["-P", "pw"]):
        out = cbc("cat", "-U", shared3.connstr("nosuch"), *extra, "k", check=False)
        assert out.returncode != 0 and "LCB_ERR_BUCKET_NOT_FOUND" in out.stderr


def test_ping_and_collections(shared3):
    out = cbc("ping", "-U", shared3.connstr(), *ADMIN, "--count", "1")
    assert out.stdout.count('"status" : "ok"') == 3
    out = cbc("collection-manifest", "-U", shared3.kv_connstr(), *ADMIN)
    assert '"name":"_default"' in out.stdout
    out = cbc("collection-id", "-U", shared3.kv_connstr(), *ADMIN, "_default")
    assert "CollectionId=0x00" in out.stdout
    out = cbc("cat", "-U", shared3.connstr(), *ADMIN, "--scope", "_default", "--collection", "_default",
              "never-there", check=False)
    assert "LCB_ERR_DOCUMENT_NOT_FOUND" in out.stderr


def test_opfail_and_error_map_retries(mock1):
    cs = mock1.kv_connstr()
    cbc("create", "-U", cs, *ADMIN, "-V", "v", "of")
    mock1.opfail(0x7FF0, 3, "GET")  # "auto-retry" in the error map: libcouchbase retries
    out = cbc("cat", "-U", cs, *ADMIN, "-v", "of")
    assert out.stdout == "v" and out.stderr.count("DUMMY_ERROR_RETRY_CONSTANT (0x7ff0)") == 3
    mock1.opfail(0x04, 1, "GET")  # EINVAL: not retried
    out = cbc("cat", "-U", cs, *ADMIN, "of", check=False)
    assert "LCB_ERR_KVENGINE_INVALID_PACKET" in out.stderr
    assert cbc("cat", "-U", cs, *ADMIN, "of").stdout == "v"
