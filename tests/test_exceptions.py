"""couchbase.exceptions and the status table generated from libcouchbase's error.h.

Pure Python: needs neither the compiled extension nor a cluster.
"""

import ast
import builtins
import importlib.util
import pathlib
import pickle
import re
import sys
import types

import pytest

pytestmark = pytest.mark.every_kind  # each connection test once per connection kind (tests/kinds.py)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEED_DOC = ROOT.parent / "shared" / "reference" / "seed-couchbase-package.txt"


def _import_package_modules():
    try:
        from couchbase import _status, exceptions
    except ImportError:
        # Not installed, or couchbase/__init__.py needs something missing (such
        # as the compiled extension): load the pure-Python modules from the
        # checkout without running the package's __init__.
        if "couchbase" not in sys.modules or not hasattr(sys.modules["couchbase"], "__path__"):
            pkg = types.ModuleType("couchbase")
            pkg.__path__ = [str(ROOT / "couchbase")]
            sys.modules["couchbase"] = pkg
        from couchbase import _status, exceptions
    return exceptions, _status


exc, status = _import_package_modules()


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "generate_status_table", ROOT / "tools" / "generate_status_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

# The classes couchbase 0.9 documents, each with its documented direct base.
SEED_CLASSES = {
    "ArgumentError": "CouchbaseError",
    "ValueFormatError": "CouchbaseError",
    "AuthError": "CouchbaseError",
    "DeltaBadvalError": "CouchbaseError",
    "TooBigError": "CouchbaseError",
    "BusyError": "CouchbaseError",
    "InternalError": "CouchbaseError",
    "InvalidError": "CouchbaseError",
    "NoMemoryError": "CouchbaseError",
    "RangeError": "CouchbaseError",
    "LibcouchbaseError": "CouchbaseError",
    "TemporaryFailError": "CouchbaseError",
    "KeyExistsError": "CouchbaseError",
    "NotFoundError": "CouchbaseError",
    "DlopenFailedError": "CouchbaseError",
    "DlsymFailedError": "CouchbaseError",
    "NetworkError": "CouchbaseError",
    "NotMyVbucketError": "CouchbaseError",
    "NotStoredError": "CouchbaseError",
    "NotSupportedError": "CouchbaseError",
    "UnknownCommandError": "CouchbaseError",
    "UnknownHostError": "ConnectError",  # every failure to reach the cluster is a ConnectError
    "ProtocolError": "CouchbaseError",
    "TimeoutError": "CouchbaseError",
    "ConnectError": "CouchbaseError",
    "BucketNotFoundError": "CouchbaseError",
    "ClientNoMemoryError": "CouchbaseError",
    "ClientTemporaryFailError": "CouchbaseError",
    "BadHandleError": "CouchbaseError",
}

PUBLIC_CLASSES = [
    obj
    for name, obj in vars(exc).items()
    if isinstance(obj, type) and issubclass(obj, exc.CouchbaseError) and not name.startswith("_")
]

ERROR_CODES = sorted(code for code in status.STATUS if code != status.LCB_SUCCESS)


# -- the classes --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SEED_CLASSES))
def test_seed_class_exists_with_its_base(name):
    cls = getattr(exc, name)
    assert cls.__module__ == exc.__name__
    # the seed's base first; any other is the built-in for the same failure
    assert cls.__bases__[0] is getattr(exc, SEED_CLASSES[name])
    assert all(base.__module__ == "builtins" for base in cls.__bases__[1:])
    assert issubclass(cls, exc.CouchbaseError)
    assert name in exc.__all__


def test_seed_classes_are_all_listed():
    """The hand list above matches the seed's documentation, when it is around."""
    if not SEED_DOC.exists():
        pytest.skip(f"{SEED_DOC} not available")
    seed = SEED_DOC.read_text(encoding="utf-8")
    names = re.findall(r"^exception couchbase\.exceptions\.(\w+)", seed, flags=re.M)
    assert sorted(names) == sorted(SEED_CLASSES)


def test_seed_docstrings():
    if not SEED_DOC.exists():
        pytest.skip(f"{SEED_DOC} not available")
    seed = SEED_DOC.read_text(encoding="utf-8").replace("\u2019", "'")  # typographic apostrophes
    titles = re.findall(
        r"^exception couchbase\.exceptions\.(\w+)\[source\]\n\nBases: [\w.]+\n\n(.+)$", seed, flags=re.M
    )
    assert len(titles) == len(SEED_CLASSES)
    for name, title in titles:
        assert getattr(exc, name).__doc__.splitlines()[0] == title.strip()


@pytest.mark.parametrize("cls, builtin", [
    (exc.TimeoutError, builtins.TimeoutError),
    (exc.ArgumentError, ValueError),
    (exc.ArgumentError, TypeError),
    (exc.ValueFormatError, ValueError),
    (exc.NetworkError, ConnectionError),
    (exc.ConnectError, ConnectionError),
    (exc.UnknownHostError, ConnectionError),
    (exc.OutcomeUnknownError, ConnectionError),
])
def test_classes_are_also_the_builtin_for_the_same_failure(cls, builtin):
    """Generic handlers catch them; the seed's class (not the builtin) keeps
    its name, attributes and message."""
    assert cls is not builtin and issubclass(cls, builtin) and issubclass(cls, exc.CouchbaseError)
    e = cls("it failed", error=201, key="k", operation="get")
    assert (e.msg, e.error, e.key, e.operation) == ("it failed", 201, "k", "get")
    assert str(e) == "get of key 'k' failed: it failed (LCB_ERR_TIMEOUT, 201)"
    copy = pickle.loads(pickle.dumps(e))
    assert type(copy) is cls and str(copy) == str(e)


def test_a_real_timeout_is_caught_as_the_builtin(cluster, connect):

    with connect(cluster.host, cluster.port, bucket="default", password="", timeout=0.3) as cb:
        cluster.stall(True)
        try:
            with pytest.raises(builtins.TimeoutError) as info:
                cb.get("stalled")
        finally:
            cluster.stall(False)
    assert isinstance(info.value, exc.TimeoutError) and info.value.key == "stalled"


def test_a_bad_argument_is_caught_as_value_error(cb):
    with pytest.raises(ValueError):
        cb.get("")
    with pytest.raises(TypeError):
        cb.get(42)


def test_extra_classes():
    assert issubclass(exc.KeyLockedError, exc.TemporaryFailError)
    assert issubclass(exc.RequestCanceledError, exc.ConnectError)
    assert exc.DurabilityError.__bases__ == (exc.CouchbaseError,)
    assert exc.CollectionNotFoundError.__bases__ == (exc.CouchbaseError,)
    # quiet turns NotFoundError into None: a missing collection must not be one
    assert not issubclass(exc.CollectionNotFoundError, exc.NotFoundError)


def test_durability_classes_keep_what_callers_catch():
    # every durability failure is a DurabilityError; a pending durable write
    # stays the TemporaryFailError retry loops already catch
    for cls in (exc.DurabilityImpossibleError, exc.DurabilityAmbiguousError):
        assert issubclass(cls, exc.DurabilityError)
    assert issubclass(exc.DurableWriteInProgressError, exc.TemporaryFailError)
    assert not issubclass(exc.DurabilityAmbiguousError, exc.ConnectError)


def test_each_subdoc_status_has_a_class_of_its_own():
    subdoc = [c for c in ERROR_CODES if status.STATUS[c][0].startswith("LCB_ERR_SUBDOC_")]
    classes = [exc.class_for_status(c) for c in subdoc]
    assert len(subdoc) == 17 and len(set(classes)) == len(subdoc)
    for cls in classes:
        assert issubclass(cls, exc.SubdocError)
        # a missing path is not a missing document: quiet must not hide it
        assert not issubclass(cls, exc.NotFoundError)
    for cls in (exc.PathInvalidError, exc.ValueInvalidError, exc.XattrUnknownMacroError):
        assert issubclass(cls, exc.InvalidError)  # input the server refused


def test_subdoc_error_names_the_path_and_spec():
    err = exc.exception_for_status(status.LCB_ERR_SUBDOC_PATH_NOT_FOUND, key="doc", operation="lookup_in")
    err.path, err.index = "a.b[2]", 1
    assert str(err) == (
        "lookup_in of key 'doc' failed: path 'a.b[2]' (spec 1): the path does not exist in the document "
        "(LCB_ERR_SUBDOC_PATH_NOT_FOUND, 313)"
    )
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), copy.path, copy.index, str(copy)) == (type(err), "a.b[2]", 1, str(err))
    assert exc.PathNotFoundError().path is None
    no_path = "operation on key 'k' failed: The path does not exist in the document"
    assert str(exc.PathNotFoundError(key="k")) == no_path


def test_all_lists_every_public_name_and_each_has_a_docstring():
    warnings = {name for name, obj in vars(exc).items() if isinstance(obj, type) and issubclass(obj, Warning)
                and obj.__module__ == exc.__name__}
    public = {c.__name__ for c in PUBLIC_CLASSES} | warnings | {"class_for_status", "exception_for_status"}
    assert set(exc.__all__) == public
    assert len(exc.__all__) == len(set(exc.__all__))
    for name in exc.__all__:
        assert getattr(exc, name).__doc__, name


def test_error_name_is_documented_property():
    assert exc.CouchbaseError.error_name.__doc__


# -- the table ------------------------------------------------------------------


def test_status_table_has_every_xerror_entry():
    assert len(status.STATUS) == 127  # libcouchbase 3.3's LCB_XERROR
    for code, (name, etype, flags, desc) in status.STATUS.items():
        assert getattr(status, name) == code
        assert isinstance(etype, int) and isinstance(flags, int) and desc


@pytest.mark.parametrize("code", ERROR_CODES, ids=lambda c: status.STATUS[c][0])
def test_every_status_maps_to_a_couchbase_error(code):
    cls = exc.class_for_status(code)
    assert isinstance(cls, type) and issubclass(cls, exc.CouchbaseError)
    assert cls in PUBLIC_CLASSES


def test_every_status_is_in_the_explicit_table():
    missing = [status.STATUS[c][0] for c in ERROR_CODES if c not in exc._BY_STATUS]
    assert missing == []
    assert status.LCB_SUCCESS not in exc._BY_STATUS
    assert set(exc._BY_STATUS) <= set(status.STATUS)


def test_explicit_table_names_each_status_once():
    """A repeated key in the dict literal would silently drop a mapping."""
    tree = ast.parse((ROOT / "couchbase" / "exceptions.py").read_text(encoding="utf-8"))
    (table,) = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_BY_STATUS" for t in node.targets)
    ]
    names = [key.attr for key in table.keys]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
    assert len(names) == len(ERROR_CODES)


def test_success_is_not_an_error():
    with pytest.raises(ValueError):
        exc.class_for_status(status.LCB_SUCCESS)
    with pytest.raises(ValueError):
        exc.exception_for_status(0)


@pytest.mark.parametrize(
    "name, cls_name",
    [
        ("LCB_ERR_DOCUMENT_NOT_FOUND", "NotFoundError"),
        ("LCB_ERR_DOCUMENT_EXISTS", "KeyExistsError"),
        ("LCB_ERR_CAS_MISMATCH", "KeyExistsError"),
        ("LCB_ERR_NOT_STORED", "NotStoredError"),
        ("LCB_ERR_VALUE_TOO_LARGE", "TooBigError"),
        ("LCB_ERR_INVALID_DELTA", "DeltaBadvalError"),
        ("LCB_ERR_INVALID_RANGE", "RangeError"),
        ("LCB_ERR_TIMEOUT", "TimeoutError"),
        ("LCB_ERR_AMBIGUOUS_TIMEOUT", "TimeoutError"),
        ("LCB_ERR_UNAMBIGUOUS_TIMEOUT", "TimeoutError"),
        ("LCB_ERR_AUTHENTICATION_FAILURE", "AuthError"),
        ("LCB_ERR_BUCKET_NOT_FOUND", "BucketNotFoundError"),
        ("LCB_ERR_TEMPORARY_FAILURE", "TemporaryFailError"),
        ("LCB_ERR_DOCUMENT_LOCKED", "KeyLockedError"),
        ("LCB_ERR_CONNECTION_REFUSED", "ConnectError"),
        ("LCB_ERR_CONNECT_ERROR", "ConnectError"),
        ("LCB_ERR_SOCKET_SHUTDOWN", "ConnectError"),
        ("LCB_ERR_NETWORK", "NetworkError"),
        ("LCB_ERR_UNKNOWN_HOST", "UnknownHostError"),
        ("LCB_ERR_PROTOCOL_ERROR", "ProtocolError"),
        ("LCB_ERR_NO_MEMORY", "ClientNoMemoryError"),
        ("LCB_ERR_INVALID_ARGUMENT", "ArgumentError"),
        ("LCB_ERR_EMPTY_KEY", "ArgumentError"),
        ("LCB_ERR_NOT_MY_VBUCKET", "NotMyVbucketError"),
        ("LCB_ERR_UNSUPPORTED_OPERATION", "NotSupportedError"),
        ("LCB_ERR_DLOPEN_FAILED", "DlopenFailedError"),
        ("LCB_ERR_DLSYM_FAILED", "DlsymFailedError"),
        ("LCB_ERR_INTERNAL_SERVER_FAILURE", "InternalError"),
        ("LCB_ERR_BUSY", "BusyError"),
        ("LCB_ERR_COLLECTION_NOT_FOUND", "CollectionNotFoundError"),
        ("LCB_ERR_DURABILITY_IMPOSSIBLE", "DurabilityImpossibleError"),
        ("LCB_ERR_REQUEST_CANCELED", "RequestCanceledError"),
        ("LCB_ERR_DECODING_FAILURE", "ValueFormatError"),
        ("LCB_ERR_DURABILITY_AMBIGUOUS", "DurabilityAmbiguousError"),
        ("LCB_ERR_DURABILITY_LEVEL_NOT_AVAILABLE", "DurabilityImpossibleError"),
        ("LCB_ERR_DURABLE_WRITE_IN_PROGRESS", "DurableWriteInProgressError"),
        ("LCB_ERR_SUBDOC_PATH_NOT_FOUND", "PathNotFoundError"),
        ("LCB_ERR_SUBDOC_PATH_EXISTS", "PathExistsError"),
        ("LCB_ERR_SUBDOC_PATH_MISMATCH", "PathMismatchError"),
        ("LCB_ERR_SUBDOC_DOCUMENT_NOT_JSON", "DocumentNotJsonError"),
        ("LCB_ERR_SUBDOC_XATTR_INVALID_ORDER", "XattrInvalidOrderError"),
    ],
)
def test_key_mappings(name, cls_name):
    assert exc.class_for_status(getattr(status, name)) is getattr(exc, cls_name)


def test_fallback_by_flags_for_unknown_statuses():
    assert exc.class_for_status(1999) is exc.LibcouchbaseError
    assert exc.class_for_status(1999, flags=status.LCB_ERROR_FLAG_NETWORK) is exc.NetworkError
    assert exc.class_for_status(1999, flags=status.LCB_ERROR_FLAG_INPUT) is exc.InvalidError
    assert exc.class_for_status(1999, flags=status.LCB_ERROR_FLAG_TRANSIENT) is exc.ClientTemporaryFailError
    assert exc.class_for_status(399, flags=status.LCB_ERROR_FLAG_TRANSIENT) is exc.TemporaryFailError
    e = exc.exception_for_status(1999, key="k", operation="get")
    assert type(e) is exc.LibcouchbaseError
    assert e.error == 1999 and e.error_name is None
    assert "(error 1999)" in str(e)


def test_connect_failures_are_connect_errors():
    for name in ("LCB_ERR_TIMEOUT", "LCB_ERR_NETWORK", "LCB_ERR_PROTOCOL_ERROR", "LCB_ERR_FD_LIMIT_REACHED"):
        e = exc.exception_for_status(getattr(status, name), operation="connect")
        assert type(e) is exc.ConnectError, name
        assert e.error_name == name
    assert type(exc.exception_for_status(status.LCB_ERR_UNKNOWN_HOST, operation="connect")) is (
        exc.UnknownHostError
    )
    assert type(exc.exception_for_status(status.LCB_ERR_AUTHENTICATION_FAILURE, operation="connect")) is (
        exc.AuthError
    )
    assert type(exc.exception_for_status(status.LCB_ERR_BUCKET_NOT_FOUND, operation="connect")) is (
        exc.BucketNotFoundError
    )
    # outside connect a timeout stays a TimeoutError
    assert type(exc.exception_for_status(status.LCB_ERR_TIMEOUT, operation="get")) is exc.TimeoutError


# -- attributes and messages ----------------------------------------------------


def test_attributes():
    e = exc.NotFoundError("gone", 301, "foo", None, 5, "get")
    assert (e.msg, e.error, e.key, e.status, e.cas, e.operation) == ("gone", 301, "foo", None, 5, "get")
    assert e.all_results is None
    assert e.error_name == "LCB_ERR_DOCUMENT_NOT_FOUND"
    assert e.args == ("gone",)
    bare = exc.CouchbaseError()
    assert (bare.msg, bare.error, bare.key, bare.status, bare.cas, bare.operation) == (
        None,
        0,
        None,
        None,
        0,
        None,
    )
    assert bare.error_name is None


def test_str_names_operation_key_and_status():
    e = exc.exception_for_status(status.LCB_ERR_DOCUMENT_NOT_FOUND, key="foo", operation="get")
    assert type(e) is exc.NotFoundError
    assert str(e) == (
        "get of key 'foo' failed: the document does not exist (LCB_ERR_DOCUMENT_NOT_FOUND, 301)"
    )


def test_str_omits_absent_parts():
    code = status.LCB_ERR_DOCUMENT_NOT_FOUND
    no_key = str(exc.exception_for_status(code, operation="get"))
    assert no_key.startswith("get failed: ") and "key" not in no_key
    no_op = str(exc.exception_for_status(code, key="foo"))
    assert no_op.startswith("operation on key 'foo' failed: ")
    neither = str(exc.exception_for_status(code))
    assert neither == "the document does not exist (LCB_ERR_DOCUMENT_NOT_FOUND, 301)"
    assert str(exc.ArgumentError("bucket is required")) == "bucket is required"
    assert str(exc.ArgumentError("bad key type", key=3, operation="set")) == (
        "set of key 3 failed: bad key type"
    )
    assert str(exc.NotFoundError(key="k")) == "operation on key 'k' failed: The key does not exist"


def test_str_details():
    e = exc.exception_for_status(status.LCB_ERR_HTTP, operation="stats", status=404)
    assert "HTTP status 404" in str(e) and "LCB_ERR_HTTP" in str(e)
    e = exc.exception_for_status(status.LCB_ERR_CAS_MISMATCH, key=b"k", operation="set", cas=77)
    assert str(e) == (
        "set of key b'k' failed: the document changed since its CAS was read; get it again and retry "
        "(LCB_ERR_CAS_MISMATCH, 209; CAS 77)"
    )
    long_key = "x" * 1000
    assert len(str(exc.exception_for_status(301, key=long_key, operation="get"))) < 300


def test_messages_depend_on_the_operation():
    def msg(name, **kw):
        return exc.exception_for_status(getattr(status, name), **kw).msg

    assert "does not exist" in msg("LCB_ERR_NOT_STORED", operation="append")
    assert "initial=" in msg("LCB_ERR_DOCUMENT_NOT_FOUND", operation="incr")
    assert "already exists" in msg("LCB_ERR_DOCUMENT_EXISTS", operation="add")
    assert "CAS" in msg("LCB_ERR_DOCUMENT_EXISTS", operation="replace", cas=12)
    assert "timeout" in msg("LCB_ERR_TIMEOUT", operation="get")
    assert msg("LCB_ERR_TIMEOUT", operation="get") != msg("LCB_ERR_TIMEOUT", operation="connect")
    # no phrase of our own: libcouchbase's description, as a phrase
    assert msg("LCB_ERR_SUBDOC_XATTR_UNKNOWN_MACRO") == "subdoc: XATTR unknown macro"
    assert msg("LCB_ERR_SSL_NO_CIPHERS").startswith("OpenSSL ")
    assert msg("LCB_ERR_TIMEOUT", msg="custom") == "custom"


@pytest.mark.parametrize("code", ERROR_CODES, ids=lambda c: status.STATUS[c][0])
def test_every_status_has_a_message(code):
    e = exc.exception_for_status(code, key="k", operation="get")
    text = str(e)
    assert e.msg and text.startswith("get of key 'k' failed: ")
    assert f"({status.STATUS[code][0]}, {code})" in text


def test_passwords_are_not_shown():
    e = exc.ConnectError(
        "cannot connect to couchbase://admin:s3cret@host/bucket?password=hunter2&timeout=2",
        operation="connect",
    )
    for text in (str(e), repr(e), e.msg, str(e.args)):
        assert "s3cret" not in text and "hunter2" not in text
    assert "timeout=2" in str(e) and "admin" in str(e)


def test_multi_key_results_are_counted():
    e = exc.exception_for_status(301, key="b", operation="get")
    e.all_results = {"a": 1, "b": e, "c": exc.exception_for_status(301, key="c", operation="get")}
    assert str(e).endswith("; 2 of 3 keys failed, see .all_results")


def test_repr():
    e = exc.exception_for_status(301, key="foo", operation="get")
    assert repr(e) == (
        "NotFoundError(msg='the document does not exist', error=301, key='foo', operation='get')"
    )
    assert repr(exc.CouchbaseError()) == "CouchbaseError()"


# -- pickling -------------------------------------------------------------------


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_pickle_round_trip(cls):
    e = cls("m", 301, b"key", 404, 12345, "get")
    e.all_results = {b"key": e, b"other": 7}
    e.extra = "kept"
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(e, protocol))
        assert type(copy) is cls
        assert (copy.msg, copy.error, copy.key, copy.status, copy.cas, copy.operation) == (
            "m",
            301,
            b"key",
            404,
            12345,
            "get",
        )
        assert copy.all_results[b"other"] == 7 and copy.all_results[b"key"] is copy
        assert copy.extra == "kept"
        assert str(copy) == str(e)


def test_pickle_keeps_the_default_message():
    e = exc.exception_for_status(status.LCB_ERR_NOT_STORED, key="k", operation="prepend")
    copy = pickle.loads(pickle.dumps(e))
    assert str(copy) == str(e) and copy.error_name == "LCB_ERR_NOT_STORED"


# -- the generator --------------------------------------------------------------

LONG_DESC = (
    "A very long description that certainly does not fit on one line of the generated module, "
    "not even on a line of the project's full length, so it is split"
)
MINI_ERROR_H = r"""
typedef enum {
    LCB_ERROR_TYPE_SUCCESS = 0,
    LCB_ERROR_TYPE_BASE = 1,
    LCB_ERROR_TYPE_SDK = 10
} lcb_ERROR_TYPE;

typedef enum {
    LCB_ERROR_FLAG_NETWORK = 1u << 0u,
    LCB_ERROR_FLAG_INPUT = 1u << 4u,
} lcb_ERROR_FLAGS;

#define LCB_XERROR(X) \
/* Common */ \
X(LCB_SUCCESS,     0,    LCB_ERROR_TYPE_SUCCESS, 0, "Success (Not an error)") \
X(LCB_ERR_GENERIC, 100,  LCB_ERROR_TYPE_BASE,    0, "Generic \"error\" code") \
\
X(LCB_ERR_ODD,     1001, LCB_ERROR_TYPE_SDK, LCB_ERROR_FLAG_NETWORK | LCB_ERROR_FLAG_INPUT, "@LONG@")

typedef enum {
#define X(n, v, cls, f, s) n = v,
    LCB_XERROR(X)
#undef X
    LCB_MAX_ERROR = 2000
} lcb_STATUS;

#define LCB_XRETRY_REASON(X) \
    X(LCB_RETRY_REASON_UNKNOWN, 0, 0, 0)
""".replace("@LONG@", LONG_DESC)


def _exec(source):
    namespace = {}
    exec(compile(source, "<_status>", "exec"), namespace)
    return namespace


def test_generator_on_a_small_header():
    out = gen.render(MINI_ERROR_H)
    assert out == gen.render(MINI_ERROR_H)
    assert out.startswith("# Generated by tools/generate_status_table.py")
    ns = _exec(out)
    assert ns["LCB_ERR_ODD"] == 1001 and ns["LCB_MAX_ERROR"] == 2000
    assert ns["STATUS"][100] == ("LCB_ERR_GENERIC", 1, 0, 'Generic "error" code')
    name, etype, flags, desc = ns["STATUS"][1001]
    assert (name, etype, flags) == ("LCB_ERR_ODD", 10, 1 | 16)
    assert desc == LONG_DESC
    assert f'"{LONG_DESC}"' not in out  # wrapped
    assert "LCB_RETRY_REASON_UNKNOWN" not in ns
    assert max(len(line) for line in out.splitlines()) <= gen.LINE_LENGTH


def test_generator_rejects_what_it_cannot_read():
    with pytest.raises(gen.ParseError):
        gen.render("nothing here")
    broken = MINI_ERROR_H.replace("LCB_ERROR_TYPE_SDK, LCB_ERROR_FLAG_NETWORK", "LCB_ERROR_TYPE_SDK, NO_SUCH")
    with pytest.raises(gen.ParseError):
        gen.render(broken)


def _real_error_h():
    path = pathlib.Path(gen.default_error_h())
    if not path.exists():
        pytest.skip("libcouchbase's error.h is not available")
    return path


def test_generated_module_is_up_to_date_and_deterministic(tmp_path):
    error_h = _real_error_h()
    text = error_h.read_text(encoding="utf-8")
    first = gen.render(text)
    assert first == gen.render(text)
    committed = (ROOT / "couchbase" / "_status.py").read_text(encoding="utf-8")
    assert first == committed, "regenerate with: python tools/generate_status_table.py"
    out = tmp_path / "_status.py"
    assert gen.main([str(error_h), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == committed
    assert gen.main([str(error_h), "-o", str(out), "--check"]) == 0
    out.write_text(committed + "# edited\n", encoding="utf-8")
    assert gen.main([str(error_h), "-o", str(out), "--check"]) == 1
