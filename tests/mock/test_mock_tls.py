"""The mock's TLS: ports, the advertised config, certificates, faults, TLS-only, client
certificates and the command line, checked with Python's own ssl module (no libcouchbase)."""

import base64
import json
import os
import signal
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mock_helpers import mock_process
from mock_kvclient import KVClient

from couchbase.mock import MockCluster
from couchbase.mock.protocol import Op, Status

ADMIN_AUTH = "Basic " + base64.b64encode(b"Administrator:password").decode()


@pytest.fixture(scope="module")
def tls3():
    with MockCluster(nodes=3, buckets={"default": "", "protected": "secret"}, tls=True) as mock:
        yield mock


def _verifying(mock):
    return ssl.create_default_context(cafile=mock.ca_path)


def _https(mock, path, node=0, context=None, auth=ADMIN_AUTH, host=None):
    url = "https://%s:%d%s" % (host or mock.host, mock.mgmt_tls_ports[node], path)
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", auth)
    with urllib.request.urlopen(req, context=context or _verifying(mock), timeout=10) as res:
        return json.loads(res.read())


def test_every_node_serves_tls_beside_its_plain_ports(tls3):
    assert tls3.tls and not tls3.tls_only and os.path.isfile(tls3.ca_path)
    assert len(set(tls3.kv_tls_ports + tls3.mgmt_tls_ports + tls3.kv_ports + tls3.mgmt_ports)) == 12
    for node in range(3):
        with KVClient(tls3.host, tls3.kv_tls_ports[node], tls=_verifying(tls3)) as c:
            c.bootstrap("protected", "secret", "protected")
            assert c.call(Op.NOOP).status == Status.SUCCESS
        with KVClient(tls3.host, tls3.kv_ports[node]) as c:  # the plain port still serves
            c.bootstrap("protected", "secret", "protected")


def test_config_advertises_kvssl_and_mgmtssl_in_nodesext(tls3):
    """Where Couchbase Server publishes them and libcouchbase (vbucket.c) looks: services
    "kvSSL" and "mgmtSSL", node order as in the vBucketMap, over CCCP and over HTTPS."""
    with KVClient(tls3.host, tls3.kv_tls_ports[1], tls=_verifying(tls3)) as c:
        c.bootstrap()
        cccp = c.config()
    https = _https(tls3, "/pools/default/b/default", node=2)
    for cfg in (cccp, https):
        services = [n["services"] for n in cfg["nodesExt"]]
        assert [s["kvSSL"] for s in services] == tls3.kv_tls_ports
        assert [s["mgmtSSL"] for s in services] == tls3.mgmt_tls_ports
        assert [s["kv"] for s in services] == tls3.kv_ports
    assert [n["ports"]["httpsMgmt"] for n in _https(tls3, "/pools/default")["nodes"]] == tls3.mgmt_tls_ports


def test_a_plain_cluster_advertises_no_tls():
    with MockCluster() as mock:
        assert not mock.tls and mock.ca_path is None and mock.kv_tls_ports == []
        with KVClient(mock.host, mock.kv_ports[0]) as c:
            c.bootstrap()
            assert "kvSSL" not in c.config()["nodesExt"][0]["services"]
        assert "ca_path" not in mock.info()
        with pytest.raises(ValueError, match="needs a TLS cluster"):
            mock.tls_fault("expired")
        with pytest.raises(ValueError, match="needs a TLS cluster"):
            mock.tls_connstr()


def test_node_certificate_names_the_host_and_chains_to_the_ca(tls3):
    ctx = _verifying(tls3)
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection((tls3.host, tls3.kv_tls_ports[0])) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                cert = s.getpeercert()
        assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
        assert dict(x[0] for x in cert["subject"])["commonName"] == "node0"
    with socket.create_connection((tls3.host, tls3.kv_tls_ports[2])) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert dict(x[0] for x in s.getpeercert()["subject"])["commonName"] == "node2"


@pytest.mark.parametrize("fault, reason", [("wrong_host", "IP address mismatch"),
                                           ("unknown_ca", "unable to get local issuer certificate"),
                                           ("expired", "certificate has expired")])
def test_certificate_faults_are_refused_by_a_verifying_client(fault, reason):
    with MockCluster(nodes=2, tls=True) as mock:
        mock.tls_fault(fault, node_index=1)
        with pytest.raises(ssl.SSLCertVerificationError, match=reason):
            KVClient(mock.host, mock.kv_tls_ports[1], tls=_verifying(mock))
        with pytest.raises(urllib.error.URLError, match=reason):
            _https(mock, "/pools", node=1)
        with KVClient(mock.host, mock.kv_tls_ports[0], tls=_verifying(mock)) as c:  # node 0 is sound
            c.bootstrap()
        mock.tls_fault(None)
        with KVClient(mock.host, mock.kv_tls_ports[1], tls=_verifying(mock)) as c:
            c.bootstrap()
        with pytest.raises(ValueError, match="no TLS fault 'bogus'"):
            mock.tls_fault("bogus")


def test_tls_fault_over_http_control(tls3):
    """The fault is a control command like the others: /mock/tls_fault on a node's port."""
    try:
        assert _https(tls3, "/mock/tls_fault?fault=expired&idx=2")["nodes"] == [2]
        with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
            KVClient(tls3.host, tls3.kv_tls_ports[2], tls=_verifying(tls3))
    finally:
        tls3.tls_fault(None)


def test_tls_only_closes_the_plain_ports_and_keeps_them_advertised():
    with MockCluster(nodes=2, tls_only=True) as mock:
        assert mock.tls and mock.tls_only
        for port in mock.kv_ports + mock.mgmt_ports:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((mock.host, port), timeout=5).close()
        with KVClient(mock.host, mock.kv_tls_ports[1], tls=_verifying(mock)) as c:
            c.bootstrap()
            # as on a strict-encryption cluster: clients count data nodes by the plain port
            assert [n["services"]["kv"] for n in c.config()["nodesExt"]] == mock.kv_ports
        mock.restart(1)  # a restarted node keeps its ports closed and its TLS ports
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((mock.host, mock.kv_ports[1]), timeout=5).close()
        with KVClient(mock.host, mock.kv_tls_ports[1], tls=_verifying(mock)) as c:
            c.bootstrap()


def test_client_certificate_authenticates_without_a_password():
    with MockCluster(buckets={"default": "", "protected": "secret"}, tls_client_auth=True) as mock:
        mock.create_user("reader", "unused-password", ["bucket_full_access[protected]"])
        cert = mock.client_certificate("reader")
        assert os.path.isfile(cert["cert"]) and os.path.isfile(cert["key"])
        ctx = _verifying(mock)
        ctx.load_cert_chain(cert["cert"], cert["key"])
        with KVClient(mock.host, mock.kv_tls_ports[0], tls=ctx) as c:
            c.hello()
            assert c.select("protected") == Status.SUCCESS  # no SASL: the certificate is the user
            assert c.call(Op.NOOP).status == Status.SUCCESS
            assert c.select("default") == Status.EACCESS  # and only that user's access
        assert _https(mock, "/pools/default/buckets/protected", context=ctx, auth=None)["name"] == "protected"
        # without a certificate the same port asks for SASL as usual
        with KVClient(mock.host, mock.kv_tls_ports[0], tls=_verifying(mock)) as c:
            c.hello()
            assert c.select("protected") == Status.EACCESS
        with KVClient(mock.host, mock.kv_tls_ports[0], tls=_verifying(mock)) as c:
            c.bootstrap("Administrator", "password", "protected")
        with pytest.raises(KeyError):
            mock.client_certificate("nobody")


def test_a_certificate_from_another_ca_authenticates_no_one():
    with MockCluster(tls_client_auth=True) as mock, MockCluster(tls=True) as other:
        mine = mock.client_certificate("Administrator")
        theirs = other.client_certificate("Administrator")
        assert Path(mine["cert"]).read_bytes() != Path(theirs["cert"]).read_bytes()
        ctx = _verifying(mock)
        ctx.load_cert_chain(theirs["cert"], theirs["key"])
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with KVClient(mock.host, mock.kv_tls_ports[0], tls=ctx) as c:
                c.hello()  # the node refuses a certificate it cannot verify
                c.select("default")


def test_cli_tls_ready_line_names_the_ca():
    with mock_process("--tls-only", "--nodes", "2") as (proc, info):
        assert info["tls_only"] is True and info["tls_client_auth"] is False
        assert os.path.isfile(info["ca_path"]) and len(info["kv_tls_ports"]) == 2
        ctx = ssl.create_default_context(cafile=info["ca_path"])
        with KVClient(info["host"], info["kv_tls_ports"][1], tls=ctx) as c:
            c.bootstrap(info["username"], info["password"], "default")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_fixed_ports_put_tls_after_every_plain_port():
    mock = None
    for attempt in range(10):  # a free range of 36 ports
        base = 20000 + (os.getpid() * 37 + attempt * 997) % 20000
        try:
            mock = MockCluster(nodes=2, port=base, tls=True).start()
            break
        except OSError:
            continue
    assert mock is not None, "no free range of ports found"
    with mock:
        assert mock.mgmt_ports == [base, base + 2] and mock.kv_ports == [base + 1, base + 3]
        assert mock.mgmt_tls_ports == [base + 32, base + 34] and mock.kv_tls_ports == [base + 33, base + 35]


def test_plugin_tls_fixture(couchbase_tls_mock):
    assert couchbase_tls_mock.tls and couchbase_tls_mock.running
    cs = couchbase_tls_mock.tls_connstr("protected", bootstrap="http")
    assert cs == "couchbases://127.0.0.1:%d=https/protected?truststorepath=%s" % (
        couchbase_tls_mock.mgmt_tls_ports[0], couchbase_tls_mock.ca_path)
    with KVClient(couchbase_tls_mock.host, couchbase_tls_mock.kv_tls_ports[0],
                  tls=_verifying(couchbase_tls_mock)) as c:
        c.bootstrap("protected", "secret", "protected")
