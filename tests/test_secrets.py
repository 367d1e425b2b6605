"""A password never shows, whichever route it came by (the password argument,
a ``password=`` option of the connection string, ``user:password@`` in it):
not in any exception's str, repr, traceback or pickle, not in the
Connection's repr or connection_string, not in any libcouchbase log line at
its lowest level (TRACE), whether the connect fails or succeeds."""

import logging
import pickle
import socket
import traceback
from urllib.parse import quote

import pytest

from couchbase.exceptions import (
    ArgumentError,
    AuthError,
    BucketNotFoundError,
    ConnectError,
    CouchbaseError,
    redact,
    secret_forms,
)
from couchbase.mock import MockCluster

pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)

# distinctive, and with characters a connection string must URL-encode
PASSWORD = "Zq9/pw!x#S3cr&t=%Lk"
BUCKET = "vault"


def _forms(secret):
    return {secret, quote(secret, safe=""), quote(secret)}


@pytest.fixture(scope="module")
def vault():
    with MockCluster(buckets={BUCKET: PASSWORD, "protected": "other"}) as mock:
        yield mock


@pytest.fixture(scope="module")
def dead_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connecting is refused


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=1)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def log_lines():
    """Every line of the 'couchbase' logger at libcouchbase's lowest level."""
    logger = logging.getLogger("couchbase")
    handler = _Capture()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(1)  # <= 5: the binding asks libcouchbase for TRACE
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _connstr(host, port, bucket, route):
    """The connection string of a route, with PASSWORD in it or not."""
    if route == "query":
        return f"couchbase://{host}:{port}=http/{bucket}?password={quote(PASSWORD, safe='')}"
    if route == "userinfo":
        return f"couchbase://{bucket}:{quote(PASSWORD, safe='')}@{host}:{port}=http/{bucket}"
    if route == "query-any-case":  # not libcouchbase's option name: an unknown option
        return f"couchbase://{host}:{port}=http/{bucket}?PassWord={quote(PASSWORD, safe='')}&x=1"
    return None


def _connect(connect, host, port, bucket, route, **options):
    connstr = _connstr(host, port, bucket, route)
    if connstr is None:
        return connect(host, port, password=PASSWORD, bucket=bucket, connect_timeout=5, **options)
    return connect(bucket=bucket, password=None, connection_string=connstr, connect_timeout=5, **options)


def _texts_of(error):
    """Everything an exception can show or carry."""
    yield str(error)
    yield repr(error)
    yield "".join(traceback.format_exception(type(error), error, error.__traceback__))
    yield repr(error.args)
    yield repr(vars(error))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        yield pickle.dumps(error, protocol).decode("latin-1")
        yield str(pickle.loads(pickle.dumps(error, protocol)))


def _assert_hidden(texts):
    for text in texts:
        for form in _forms(PASSWORD):
            assert form not in text, f"password shown in: {text[:300]}"


ROUTES = ["argument", "query", "userinfo"]


@pytest.mark.parametrize("route", ROUTES)
def test_successful_connect_shows_no_password(vault, route, log_lines, connect):
    with _connect(connect, vault.host, vault.port, BUCKET, route) as conn:
        conn.set("k", 1)
        assert conn.get("k") == 1
        _assert_hidden([repr(conn), conn.connection_string])
        if route == "query":
            assert "password=***" in conn.connection_string
        if route == "userinfo":  # the user information is taken out, for libcouchbase not to log it
            assert "@" not in conn.connection_string and conn.username == BUCKET
    _assert_hidden([repr(conn)])
    _assert_hidden(log_lines)
    # the line that would show it did go through, redacted
    assert any("Effective connection string" in line for line in log_lines)
    if route == "query":
        assert any("password=***" in line for line in log_lines)


@pytest.mark.parametrize("route", ROUTES + ["query-any-case"])
@pytest.mark.parametrize("failure", ["refused", "wrong password", "unknown bucket"])
def test_failed_connect_shows_no_password(vault, dead_port, route, failure, log_lines, connect):
    host, port, bucket = vault.host, vault.port, BUCKET
    expected = CouchbaseError
    if failure == "refused":
        port, expected = dead_port, ConnectError
    elif failure == "wrong password":
        bucket, expected = "protected", AuthError
    else:
        bucket, expected = "nosuchbucket", (BucketNotFoundError, AuthError)
    if route == "query-any-case":
        expected = CouchbaseError
    with pytest.raises(expected) as info:
        _connect(connect, host, port, bucket, route).close()
    _assert_hidden(_texts_of(info.value))
    _assert_hidden(log_lines)
    if route != "query-any-case":  # (refused before libcouchbase logs anything)
        assert any("Effective connection string" in line for line in log_lines)


def test_an_operation_error_and_close_show_no_password(vault, log_lines, connect):
    with _connect(connect, vault.host, vault.port, BUCKET, "query") as conn:
        with pytest.raises(CouchbaseError) as info:
            conn.get("missing")
        _assert_hidden(_texts_of(info.value))
    with pytest.raises(ConnectError) as info:
        conn.get("k")
    _assert_hidden(_texts_of(info.value))
    _assert_hidden(log_lines)


def test_a_bad_password_argument_is_not_shown(connect):
    for bad in ("\ud800" + PASSWORD, PASSWORD + "\0"):
        with pytest.raises(ArgumentError) as info:
            connect("127.0.0.1", password=bad, bucket="b")
        assert "password" in str(info.value) and info.value.operation == "connect"
        _assert_hidden(_texts_of(info.value))
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__


def test_a_bad_connection_string_is_not_shown(connect):
    with pytest.raises(ArgumentError) as info:
        connect(bucket="b", password="", connection_string=f"couchbase://h/b?password={PASSWORD}\udcff")
    _assert_hidden(_texts_of(info.value))


def test_exception_message_set_later_is_redacted():
    error = ConnectError("x", operation="connect")
    encoded = quote(PASSWORD, safe="")
    error.msg = f"at couchbase://u:{encoded}@h/b?password={encoded}"
    _assert_hidden(_texts_of(error))


@pytest.mark.parametrize("text", [
    "couchbase://h/b?password=S3CRET",
    "couchbase://h/b?x=1&PASSWORD=S3CRET&y=2",
    "couchbase://h/b?Pass=S3CRET",
    "couchbase://h/b?p%61ssword=S3CRET",
    "couchbase://h/b?password%3DS3CRET",
    "couchbase://h/b?sasl_password=S3CRET",
    "couchbase://user:S3CRET@h1,h2/b",
    "couchbase://user:S3C@RET@h1/b",
    "couchbase://user:S3C/RET@h1/b",
    "couchbase://:S3CRET@h1/b",
    "user:S3CRET@h1",
    "Effective connection string: couchbase://h:1=http/b?password=S3CRET. Bucket=b",
    "password: S3CRET",
])
def test_redact_forms(text):
    out = redact(text)
    assert "S3C" not in out and "RET" not in out and "***" in out


@pytest.mark.parametrize("text", [
    "couchbase://admin@h1:8091,h2/bucket?timeout=2&bootstrap_on=http",
    "Effective connection string: couchbase://127.0.0.1:8091=http/default. Bucket=default",
    "[1] (server) host 127.0.0.1:11210 user@example.org",
])
def test_redact_keeps_what_is_not_secret(text):
    assert redact(text) == text


def test_userinfo_with_unencoded_characters_is_taken_out(vault, log_lines, connect):
    raw = "raw/pw:with@signs"
    with MockCluster(buckets={"raw": raw}) as mock:
        connstr = f"couchbase://raw:{raw}@{mock.host}:{mock.port}=http/raw"
        with connect(bucket="raw", connection_string=connstr) as conn:
            assert conn.get("k", quiet=True) is None
            assert raw not in repr(conn) and "@" not in conn.connection_string
    assert not [line for line in log_lines if "pw:with" in line or raw in line]


def test_redact_known_secrets_anywhere():
    secrets = secret_forms("a/b c")
    assert redact("x a/b c y a%2Fb%20c z a%2Fb+c", secrets) == "x *** y *** z ***"
