"""Independent clients over the mock's TLS: libcouchbase's cbc with
couchbases://...?truststorepath=CA and the official Python SDK 4.x with its CA option
connect, do KV operations, and refuse a certificate from another CA."""

import os

import pytest
from sdk_venv import run_sdk
from test_mock_cbc import ADMIN, cbc

from couchbase.mock import MockCluster

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mock_sdk_tls_script.py")


@pytest.fixture(scope="module")
def tls3():
    with MockCluster(nodes=3, tls=True) as mock:
        yield mock


@pytest.mark.parametrize("bootstrap", ["cccp", "http"])
def test_cbc_create_and_cat_over_tls(tls3, bootstrap):
    connstr = tls3.tls_connstr(bootstrap=bootstrap, node=1)
    keys = ["cbc-tls-%s-%d" % (bootstrap, i) for i in range(9)]  # over the 3 nodes
    for k in keys:
        assert "Stored" in cbc("create", "-U", connstr, *ADMIN, "-V", "tls-" + k, k).stderr
    out = cbc("cat", "-U", connstr, *ADMIN, *keys)
    for k in keys:
        assert "tls-" + k in out.stdout


def test_cbc_refuses_a_certificate_from_another_ca():
    with MockCluster(tls=True) as mock:
        mock.tls_fault("unknown_ca")
        out = cbc("cat", "-U", mock.tls_connstr() + "&config_total_timeout=5", *ADMIN, "k", check=False)
        assert out.returncode != 0 and "LCB_ERR_SSL_CANTVERIFY" in out.stderr, out.stderr


def test_official_sdk_over_tls_and_refusing_another_ca(tls3):
    connstr = "couchbases://%s:%d" % (tls3.host, tls3.kv_tls_ports[0])
    out = run_sdk(SCRIPT, connstr, tls3.username, tls3.password, tls3.ca_path, "ok")
    assert "SDK TLS OK" in out, out[-2000:]
    with MockCluster(tls=True) as other:  # a CA of its own: not the one that signed tls3's nodes
        out = run_sdk(SCRIPT, connstr, tls3.username, tls3.password, other.ca_path, "refused")
    assert "SDK REFUSED" in out, out[-2000:]
