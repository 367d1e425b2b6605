"""The official Couchbase Python SDK 4.x (its own venv: it shares our import name) against a
three-node mock, bootstrapping over CCCP as it always does."""

import os

from sdk_venv import run_sdk

from couchbase.mock import MockCluster

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mock_sdk_script.py")
TLS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mock_sdk_tls_script.py")


def test_official_sdk_crud_subdoc_and_failover(mock3):
    connstr = "couchbase://%s:%d" % (mock3.host, mock3.kv_ports[0])
    out = run_sdk(SCRIPT, connstr, mock3.username, mock3.password, mock3.port)
    assert "SDK OK" in out, out[-2000:]


def test_official_sdk_over_tls_and_refusing_another_ca():
    """Over the mock's TLS KV port with PasswordAuthenticator(cert_path=CA)."""
    with MockCluster(nodes=3, tls=True) as tls3, MockCluster(tls=True) as other:
        connstr = "couchbases://%s:%d" % (tls3.host, tls3.kv_tls_ports[0])
        out = run_sdk(TLS_SCRIPT, connstr, tls3.username, tls3.password, tls3.ca_path, "ok")
        assert "SDK TLS OK" in out, out[-2000:]
        # another cluster's CA: not the one that signed tls3's nodes
        out = run_sdk(TLS_SCRIPT, connstr, tls3.username, tls3.password, other.ca_path, "refused")
        assert "SDK REFUSED" in out, out[-2000:]
