"""libcouchbase's cbc over the mock's TLS: couchbases://...?truststorepath=CA connects and
does KV operations, and refuses a certificate from another CA (the official SDK's TLS test is
in test_mock_sdk.py)."""

import pytest
from test_mock_cbc import ADMIN, cbc

from couchbase.mock import MockCluster


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
