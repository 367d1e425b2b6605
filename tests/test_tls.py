"""TLS end to end against the mock's TLS ports: couchbases:// over CCCP and HTTPS, 1 and 3
nodes, failover and restart mid-workload, every certificate check (host name, CA, expiry)
refused with an error that says which and what to do, mutual TLS, TLS-only clusters and the
verification opt-out."""

import logging
import threading
import time
import warnings

import pytest
from test_faults import _write_through
from tls_util import connect_tls, tls_base

import couchbase
from couchbase import Couchbase, _libcouchbase_fixes
from couchbase.exceptions import (
    ArgumentError,
    BucketNotFoundError,
    ConnectError,
    NetworkError,
    UnpatchedLibcouchbaseWarning,
)
from couchbase.exceptions import TimeoutError as CBTimeoutError
from couchbase.mock import MockCluster


@pytest.fixture(scope="module")
def tls1():
    with MockCluster(buckets={"default": "", "protected": "secret"}, tls=True) as mock:
        yield mock


@pytest.fixture
def tls3():
    with MockCluster(nodes=3, buckets={"default": ""}, tls=True) as mock:
        yield mock


@pytest.mark.every_kind
@pytest.mark.parametrize("bootstrap", ["cccp", "http"])
def test_kv_over_tls_on_one_node(tls1, bootstrap, connect):
    with connect_tls(tls1, bootstrap, connect=connect) as cb:
        cb.set("tls:one:" + bootstrap, {"v": bootstrap})
        assert cb.get("tls:one:" + bootstrap) == {"v": bootstrap}
        big = b"x" * (1 << 20)  # a 1 MiB value: many TLS records each way
        cb.set("tls:big:" + bootstrap, big, format=couchbase.FMT_PLAIN)
        assert cb.get("tls:big:" + bootstrap) == big
    with connect_tls(tls1, bootstrap, bucket="protected", password="secret", connect=connect) as cb:
        cb.set("tls:p", 1)
        assert cb.get("tls:p") == 1


@pytest.mark.every_kind
@pytest.mark.parametrize("bootstrap", ["cccp", "http"])
def test_kv_over_tls_on_three_nodes(tls3, bootstrap, connect):
    keys = ["tls:three:%d" % i for i in range(300)]  # over every node's vbuckets
    with connect_tls(tls3, bootstrap, node=2, connect=connect) as cb:
        cb.set({k: i for i, k in enumerate(keys)})
        assert cb.get(keys) == list(range(300))
        # every node served this client on its TLS port only
        for node in tls3.core.nodes:
            conns = list(node.kv_conns)
            assert conns and all(c.transport.get_extra_info("ssl_object") is not None for c in conns)


def test_the_connection_string_forms_of_the_ca(tls1):
    """truststorepath in the string, and certpath alone (what named the CA before
    libcouchbase 3.3, which ignores it without keypath), verify as tls_ca_file does."""
    for option in ("truststorepath", "certpath"):
        connstr = "%s?%s=%s" % (tls_base(tls1), option, tls1.ca_path)
        with Couchbase.connect(bucket="default", password="", connection_string=connstr) as cb:
            cb.set("tls:form", option)
            assert cb.get("tls:form") == option


@pytest.mark.every_kind
def test_localhost_is_checked_as_a_host_name(tls1, connect):
    """A DNS name is checked against the certificate's names (and sent as SNI); an
    AsyncConnection keeps the name too (it resolves other names itself)."""
    connstr = tls_base(tls1).replace("127.0.0.1", "localhost")
    with connect(bucket="default", password="", connection_string=connstr, tls_ca_file=tls1.ca_path) as cb:
        cb.set("tls:localhost", 1)


def _write_around(cb, keys, change, after):
    """Write ``keys`` in a thread, make the topology ``change`` once ``after`` are
    acknowledged, and return every acknowledged write once all are."""
    acknowledged = {}
    writer = threading.Thread(target=_write_through, args=(cb, keys, acknowledged))
    writer.start()
    while len(acknowledged) < after and writer.is_alive():
        time.sleep(0.01)
    change()
    writer.join(120)
    assert not writer.is_alive() and len(acknowledged) == len(keys)
    return acknowledged


@pytest.mark.every_kind
def test_failover_mid_workload_over_tls(tls3, connect):
    keys = ["tls:fo:%d" % i for i in range(3000)]
    with connect_tls(tls3, "cccp", timeout=2.0, connect=connect) as cb:
        acknowledged = _write_around(cb, keys, lambda: tls3.failover(1), 1000)
        assert cb.get(keys) == [acknowledged[k] for k in keys]


def test_restart_mid_workload_over_tls(tls3):
    keys = ["tls:rs:%d" % i for i in range(2000)]
    with connect_tls(tls3, "http", timeout=1.0) as cb:
        acknowledged = _write_around(cb, keys, lambda: tls3.restart(0), 500)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert cb.get(keys) == [acknowledged[k] for k in keys]
                break
            except (CBTimeoutError, NetworkError) as e:
                assert time.monotonic() < deadline, e
                time.sleep(0.05)


@pytest.mark.parametrize("fault, check, says", [
    ("wrong_host", "host name", "issued for another IP address"),
    ("unknown_ca", "CA", "tls_ca_file="),
    ("expired", "expiry", "expired"),
])
@pytest.mark.parametrize("bootstrap", ["cccp", "http"])
@pytest.mark.every_kind
def test_a_bad_certificate_is_refused_saying_which_check_failed(fault, check, says, bootstrap, connect):
    with MockCluster(tls=True) as mock:
        mock.tls_fault(fault)
        with pytest.raises(ConnectError) as info:
            connect_tls(mock, bootstrap, connect_timeout=5, connect=connect)
        err = info.value
        assert err.error_name == "LCB_ERR_SSL_CANTVERIFY" and err.tls_check == check
        text = str(err)
        assert f"{check} check failed" in text and says in text, text
        port = mock.kv_tls_ports[0] if bootstrap == "cccp" else mock.mgmt_tls_ports[0]
        assert f"{mock.host}:{port}" in text
        mock.tls_fault(None)
        with connect_tls(mock, bootstrap, connect=connect) as cb:  # the same client, the node cert
            cb.set("k", 1)


def test_a_wrong_host_name_is_refused(tls1):
    """A certificate for 127.0.0.1 and localhost, reached as another name of this machine."""
    with MockCluster(tls=True) as mock:
        mock.tls_fault("wrong_host")
        connstr = tls_base(mock).replace("127.0.0.1", "localhost")
        with pytest.raises(ConnectError, match="host name check failed .hostname mismatch") as info:
            Couchbase.connect(bucket="default", password="", connection_string=connstr,
                              tls_ca_file=mock.ca_path, connect_timeout=5)
        assert "connect with the name" in str(info.value)


def test_no_ca_given_means_the_system_cas(tls1):
    with pytest.raises(ConnectError) as info:
        Couchbase.connect(bucket="default", password="", connection_string=tls_base(tls1), connect_timeout=5)
    assert info.value.tls_check == "CA" and "tls_ca_file=" in str(info.value)


def test_opting_out_of_verification_warns_every_time(caplog):
    with MockCluster(tls=True) as mock:
        mock.tls_fault("unknown_ca")
        for attempt in range(2):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="couchbase"):
                with connect_tls(mock, tls_verify=False) as cb:
                    cb.set("k", attempt)
            warned = [r for r in caplog.records if "TLS verification is OFF" in r.getMessage()]
            assert len(warned) == 1 and "not checked" in warned[0].getMessage()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="couchbase"):
            connstr = tls_base(mock) + "?ssl=no_verify"  # libcouchbase's own spelling warns alike
            with Couchbase.connect(bucket="default", password="", connection_string=connstr):
                pass
        assert any("TLS verification is OFF" in r.getMessage() for r in caplog.records)


def test_mutual_tls_a_client_certificate_is_the_credentials():
    with MockCluster(buckets={"default": "", "protected": "secret"}, tls_client_auth=True) as mock:
        mock.create_user("app", "not-used", ["bucket_full_access[protected]"])
        cert = mock.client_certificate("app")
        for bootstrap in ("cccp", "http"):
            with connect_tls(mock, bootstrap, bucket="protected", tls_cert_file=cert["cert"],
                             tls_key_file=cert["key"]) as cb:
                cb.set("mtls:" + bootstrap, bootstrap)
                assert cb.get("mtls:" + bootstrap) == bootstrap
        # the certificate's user has no access to another bucket
        with pytest.raises(BucketNotFoundError, match="does not exist"):  # as a node answers: EACCESS
            connect_tls(mock, bucket="default", tls_cert_file=cert["cert"], tls_key_file=cert["key"],
                        connect_timeout=5)


def test_tls_only_cluster(tmp_path):
    with MockCluster(nodes=2, tls_only=True) as mock:
        with connect_tls(mock, "http") as cb:
            cb.set({"tlsonly:%d" % i: i for i in range(100)})
            assert cb.get(["tlsonly:%d" % i for i in range(100)]) == list(range(100))
        with pytest.raises(ConnectError):
            Couchbase.connect(mock.host, mock.port, bucket="default", password="", connect_timeout=3)


@pytest.mark.parametrize("options, message", [
    ({"tls_ca_file": "ca.pem"}, "tls_ca_file needs TLS: give connection_string='couchbases://HOST'"),
    ({"tls_verify": False}, "tls_verify needs TLS"),
])
def test_tls_options_need_a_couchbases_string(options, message):
    with pytest.raises(ArgumentError, match=message):
        Couchbase.connect("127.0.0.1", 8091, bucket="default", password="", **options)
    with pytest.raises(ArgumentError, match=message.split(":")[0]):
        Couchbase.connect(bucket="default", password="", connection_string="couchbase://127.0.0.1/default",
                          **options)


def test_bad_tls_options_are_argument_errors(tmp_path, tls1):
    base = dict(bucket="default", password="", connection_string=tls_base(tls1))
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    for options, message in [
        ({"tls_ca_file": str(tmp_path / "missing.pem")},
         r"tls_ca_file '.*missing.pem' cannot be read: No such file"),
        ({"tls_ca_file": str(not_pem)}, "tls_ca_file '.*' is not a PEM file"),
        ({"tls_ca_file": 3}, "tls_ca_file must be a path"),
        ({"tls_cert_file": tls1.ca_path}, "needs both tls_cert_file and tls_key_file"),
        ({"tls_verify": "no"}, "tls_verify must be True or False"),
    ]:
        with pytest.raises(ArgumentError, match=message):
            Couchbase.connect(**base, **options)
    with pytest.raises(ArgumentError, match="both name the CA"):
        Couchbase.connect(bucket="default", password="", tls_ca_file=tls1.ca_path,
                          connection_string=tls_base(tls1) + "?truststorepath=" + tls1.ca_path)


def test_a_libcouchbase_without_the_host_name_check_is_warned_about(monkeypatch, tls1):
    lacking = "couchbase-lcb-patches:" + ",".join(_libcouchbase_fixes.EXPOSED)
    with pytest.warns(UnpatchedLibcouchbaseWarning, match="without patch 0003, host names .* not checked"):
        _libcouchbase_fixes.warn_tls(lacking, "3.3.4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _libcouchbase_fixes.warn_tls(lacking + ",0003", "3.3.4")
    monkeypatch.setattr(couchbase._lcb, "libcouchbase_changeset", lambda: lacking)
    with pytest.warns(UnpatchedLibcouchbaseWarning, match="host names"):
        connect_tls(tls1).close()
    with warnings.catch_warnings():  # a plain connection needs no TLS fix
        warnings.simplefilter("error")
        Couchbase.connect(tls1.host, tls1.port, bucket="default", password="").close()
