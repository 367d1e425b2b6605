"""Exceptions raised by the Couchbase client.

Every error is a :class:`CouchbaseError` carrying ``msg``, ``error`` (the
libcouchbase ``lcb_STATUS`` code, 0 when the error did not come from
libcouchbase), ``key``, ``status`` (HTTP status, if any), ``cas`` and
``operation`` (``"get"``, ``"set"``, ``"delete"``, ``"incr"``, ...). A failed
multi-key call raises the first key's error with ``all_results`` set to a
dict of every key's result or exception.

The classes are those of the couchbase 0.9 client, plus a few that later
clients have and 0.9 has no fitting class for (:class:`KeyLockedError`,
:class:`DurabilityError`, :class:`CollectionNotFoundError`,
:class:`RequestCanceledError`, :class:`OutcomeUnknownError`). Which class each libcouchbase status raises is
the one table ``_BY_STATUS`` below, checked against libcouchbase's own list of
statuses (``couchbase/_status.py``, generated from ``error.h`` by
``tools/generate_status_table.py``). Use :func:`exception_for_status` to build
an exception from a status, :func:`class_for_status` for just its class.

Note: :class:`TimeoutError` is the 0.9 client's name and shadows the builtin
of the same name inside this module; the builtin is ``builtins.TimeoutError``.
"""

import builtins
import re
import urllib.parse
from typing import Optional

from . import _status as _s

__all__ = [
    "ArgumentError",
    "AuthError",
    "BadHandleError",
    "BucketNotFoundError",
    "BusyError",
    "ClientNoMemoryError",
    "ClientTemporaryFailError",
    "CollectionNotFoundError",
    "ConnectError",
    "CouchbaseError",
    "DeltaBadvalError",
    "DeltaInvalidError",
    "DlopenFailedError",
    "DlsymFailedError",
    "DocumentNotJsonError",
    "DurabilityAmbiguousError",
    "DurabilityError",
    "DurabilityImpossibleError",
    "DurableWriteInProgressError",
    "InternalError",
    "InvalidError",
    "KeyExistsError",
    "KeyLockedError",
    "LibcouchbaseError",
    "NetworkError",
    "NoMemoryError",
    "NotFoundError",
    "NotMyVbucketError",
    "NotStoredError",
    "NotSupportedError",
    "NumberTooBigError",
    "OutcomeUnknownError",
    "PathExistsError",
    "PathInvalidError",
    "PathMismatchError",
    "PathNotFoundError",
    "PathTooBigError",
    "PathTooDeepError",
    "ProtocolError",
    "RangeError",
    "RequestCanceledError",
    "SubdocError",
    "TemporaryFailError",
    "TimeoutError",
    "TooBigError",
    "UnknownCommandError",
    "UnknownHostError",
    "UnpatchedLibcouchbaseError",
    "UnpatchedLibcouchbaseWarning",
    "ValueFormatError",
    "ValueInvalidError",
    "ValueTooDeepError",
    "XattrCannotModifyVirtualAttributeError",
    "XattrError",
    "XattrInvalidFlagComboError",
    "XattrInvalidKeyComboError",
    "XattrInvalidOrderError",
    "XattrUnknownMacroError",
    "XattrUnknownVirtualAttributeError",
    "class_for_status",
    "exception_for_status",
]


class CouchbaseError(Exception):
    """Base class for errors within the Couchbase Python SDK

    :param string msg: the error message
    :param int error: the error code (libcouchbase's ``lcb_STATUS``)
    :param string key: the key if it one was involved in the operation that
        lead to the error
    :param int status: the HTTP status code if the operation was through HTTP
    :param cas: the CAS value
    :param operation: The operation that was performed on Couchbase, as a
        lower-case name: ``"get"``, ``"set"``, ``"add"``, ``"replace"``,
        ``"append"``, ``"prepend"``, ``"delete"``, ``"incr"``, ``"decr"``,
        ``"stats"`` or ``"connect"``

    Also has ``error_name`` (the status's symbolic name, such as
    ``"LCB_ERR_DOCUMENT_NOT_FOUND"``, or None) and ``all_results`` (None, or
    on a failed multi-key call a dict of every key's result or exception).
    ``str()`` of an error says which operation on which key failed and why.
    """

    def __init__(self, msg=None, error=0, key=None, status=None, cas=0, operation=None):
        super().__init__()
        self.msg = msg
        self.error = error
        self.key = key
        self.status = status
        self.cas = cas
        self.operation = operation
        self.all_results = None

    @property
    def msg(self):
        """The message; secrets in it (connection string passwords) are
        redacted whenever it is set, so str, repr, args and pickles never
        carry them."""
        return self.__dict__.get("_msg")

    @msg.setter
    def msg(self, value):
        if isinstance(value, str):
            value = redact(value)
        self.__dict__["_msg"] = value
        self.args = () if value is None else (value,)

    @property
    def error_name(self):
        """libcouchbase's name for ``error``, or None if ``error`` is 0 or
        not a status this module knows."""
        entry = _s.STATUS.get(self.error) if self.error else None
        return entry[0] if entry else None

    def __str__(self):
        try:
            return self._text()
        except Exception:  # a key or message whose own methods raise
            return f"{type(self).__name__} (error {self.error!r}; the message could not be formatted)"

    def _text(self):
        if self.msg is not None:
            text = safe_str(self.msg)
        else:
            text = _describe(self.error, self.operation, self.cas) or _doc_title(type(self))
        details = []
        name = self.error_name
        if name:
            details.append(f"{name}, {self.error}")
        elif self.error:
            details.append(f"error {self.error}")
        if self.status is not None:
            details.append(f"HTTP status {self.status}")
        if self.cas:
            details.append(f"CAS {self.cas}")
        out = _what_failed(self.operation, self.key) + self._where() + text
        if details:
            out += f" ({'; '.join(details)})"
        if isinstance(self.all_results, dict):
            failed = sum(isinstance(r, BaseException) for r in self.all_results.values())
            if failed:
                out += f"; {failed} of {len(self.all_results)} keys failed, see .all_results"
        return out

    def _where(self):
        """Where in the operation it failed, after the key ('' here)."""
        return ""

    def __repr__(self):
        fields = [
            f"{name}={safe_repr(getattr(self, name))}" for name, default in _FIELDS
            if not _is_default(getattr(self, name), default)
        ]
        return f"{type(self).__name__}({', '.join(fields)})"

    def __reduce__(self):
        # Exceptions cross processes (multiprocessing, concurrent.futures):
        # rebuild from the constructor's arguments, then restore the rest
        # (all_results and anything a caller attached).
        args = tuple(getattr(self, name) for name, _ in _FIELDS)
        state = self.__dict__.copy()
        del state["_msg"]  # restored from args, through the redacting setter
        return (type(self), args, state)


def _is_default(value, default):
    try:
        return value is default or (type(value) is type(default) and value == default)
    except Exception:
        return False


_FIELDS = (
    ("msg", None),
    ("error", 0),
    ("key", None),
    ("status", None),
    ("cas", 0),
    ("operation", None),
)


# Where Python has a built-in exception for the same failure, the class is
# that too, so generic handlers (`except ValueError`, `except TimeoutError`,
# `except ConnectionError`) catch it; attributes and messages are unchanged.


class ArgumentError(CouchbaseError, ValueError, TypeError):
    """Invalid argument

    A given argument is invalid or must be set

    Also a ``ValueError`` and a ``TypeError``: one check often refuses an
    argument for its type and its range at once ("ttl must be a
    non-negative int").
    """


class ValueFormatError(CouchbaseError, ValueError):
    """Failed to decode or encode value

    Also a ``ValueError``, as the standard library's codecs raise.
    """


# The following exceptions are caused by the underlying libcouchbase.


class AuthError(CouchbaseError):
    """Authentication failed

    You provided an invalid username/password combination.
    """


class DeltaBadvalError(CouchbaseError):
    """The given value is not a number

    The server detected that operation cannot be executed with requested
    arguments. For example, when incrementing not a number.
    """


class TooBigError(CouchbaseError):
    """Object too big

    The server reported that this object is too big
    """


class BusyError(CouchbaseError):
    """The cluster is too busy

    The server is too busy to handle your request right now.
    please back off and try again at a later time.
    """


class InternalError(CouchbaseError):
    """Internal Error

    Internal error inside the library. You would have to
    destroy the instance and create a new one to recover.

    Also raised when the server reports an internal failure.
    """


class InvalidError(CouchbaseError):
    """Invalid arguments specified

    Raised for input libcouchbase or the server rejected: a malformed request
    packet, an invalid environment or configuration. Arguments of a call that
    are invalid raise :class:`ArgumentError`.
    """


class NoMemoryError(CouchbaseError):
    """The server ran out of memory

    libcouchbase 3 reports a server out of memory as a temporary failure
    (:class:`TemporaryFailError`); this class is kept for the 0.9 API.
    """


class RangeError(CouchbaseError):
    """An invalid range specified"""


class LibcouchbaseError(CouchbaseError):
    """A generic error

    Also the class of libcouchbase statuses of services this client does
    not use (query, analytics, search, views, management).
    """


class UnpatchedLibcouchbaseError(LibcouchbaseError):
    """The libcouchbase in use lacks fixes this client needs to be safe

    Raised when a connection opens on a libcouchbase that was not built by
    ``scripts/install-libcouchbase`` with couchbase-lcb's patches (the wheels
    bundle such a build). The message names each missing fix and what it
    leaves exposed. ``COUCHBASE_LCB_ALLOW_UNPATCHED=1`` in the environment
    accepts that library anyway, with an :class:`UnpatchedLibcouchbaseWarning`
    at each connection instead.
    """


class UnpatchedLibcouchbaseWarning(RuntimeWarning):
    """A connection opened on a libcouchbase lacking couchbase-lcb's fixes,
    accepted because ``COUCHBASE_LCB_ALLOW_UNPATCHED=1`` asked for it"""


class TemporaryFailError(CouchbaseError):
    """Temporary failure (on server)

    The server tried to perform the requested operation, but failed
    due to a temporary constraint. Retrying the operation may work.
    """


class KeyExistsError(CouchbaseError):
    """The key already exists (with another CAS value)

    Raised by ``add`` of a key that exists, and by any change made with a
    CAS that no longer matches the document's (it changed since it was
    read: get it again and retry).
    """


class NotFoundError(CouchbaseError):
    """The key does not exist

    ``quiet`` turns this error into None (or False for ``delete``).
    """


class DlopenFailedError(CouchbaseError):
    """Failed to open shared object"""


class DlsymFailedError(CouchbaseError):
    """Failed to locate the requested symbol in the shared object"""


class NetworkError(CouchbaseError, builtins.ConnectionError):
    """Network error

    A network related problem occured (name lookup, read/write/connect
    etc)

    Failures to reach the cluster, and a connection that was closed, raise
    :class:`ConnectError` instead. Also a built-in ``ConnectionError``.
    """


class NotMyVbucketError(CouchbaseError):
    """The vbucket is not located on this server

    The server who received the request is not responsible for the
    object anymore. (This happens during changes in the cluster
    topology)
    """


class NotStoredError(CouchbaseError):
    """The object was not stored on the server

    ``append`` and ``prepend`` raise it when the key does not exist.
    """


class NotSupportedError(CouchbaseError):
    """Not supported

    The server doesn't support the requested command. This error differs
    from :class:`couchbase.exceptions.UnknownCommandError` by that the server
    knows about the command, but for some reason decided to not support it.

    libcouchbase 3 also reports a command the server does not know this way.
    """


class UnknownCommandError(CouchbaseError):
    """The server doesn't know what that command is"""


class ProtocolError(CouchbaseError):
    """Protocol error

    There is something wrong with the datastream received from
    the server
    """


class TimeoutError(CouchbaseError, builtins.TimeoutError):  # noqa: A001 (the 0.9 client's name)
    """The operation timed out

    Also the built-in ``TimeoutError``. A timeout while connecting raises
    :class:`ConnectError`. A mutation that timed out may or may not have been
    applied: read the key back before repeating it.
    """


class ConnectError(CouchbaseError, builtins.ConnectionError):
    """Failed to connect to the requested server

    Raised for every failure to reach the cluster while connecting (refused,
    unreachable, unknown host, no answer in time), and when a connection that
    was established is closed or reset, or no longer has a cluster
    configuration. Also a built-in ``ConnectionError``.
    """


class UnknownHostError(ConnectError):
    """The server failed to resolve the requested hostname

    A :class:`ConnectError`: like every failure to reach the cluster.
    """


class BucketNotFoundError(CouchbaseError):
    """The requested bucket does not exist"""


class ClientNoMemoryError(CouchbaseError):
    """The client ran out of memory"""


class ClientTemporaryFailError(CouchbaseError):
    """Temporary failure (on client)

    The client encountered a temporary error (retry might resolve
    the problem)
    """


class BadHandleError(CouchbaseError):
    """Invalid handle type

    The requested operation isn't allowed for given type.
    """


# Classes the 0.9 client does not have, for statuses where each of its classes
# would mislead (a missing collection is not a missing key: ``quiet`` would
# silence a NotFoundError).


class KeyLockedError(TemporaryFailError):
    """The document is locked

    Another client holds a lock on the document; it ends when that client
    unlocks or changes the document, or when the lock time runs out. Retry
    later. A :class:`TemporaryFailError`, as servers of the 0.9 era reported a
    locked document as a temporary failure, so retry code written for them
    keeps working.
    """


class DurabilityError(CouchbaseError):
    """The durability requirement could not be met

    The cluster could not (or could not confirm that it did) replicate or
    persist the change as requested: too few replicas or nodes, or the outcome
    is ambiguous.
    """


class DurabilityImpossibleError(DurabilityError):
    """The durability requirement cannot be met by this cluster

    Too few nodes hold the key's vbucket for the level asked (a durable write
    with one replica configured but its node failed over), or the bucket or
    server does not support synchronous durability, or ``replicate_to`` /
    ``persist_to`` ask for more copies than the bucket has. The change was not
    applied. Lower the requirement or restore the missing nodes.
    """


class DurabilityAmbiguousError(DurabilityError):
    """The change was applied on the active node, but whether it reached the
    durability level asked is unknown

    The server could not confirm the synchronous write in time (replicas slow
    or failing over); it may yet be committed, or rolled back. As with
    :class:`OutcomeUnknownError`: read the key back before repeating a change
    that is not safe to apply twice.
    """


class DurableWriteInProgressError(TemporaryFailError):
    """Another durable write of this key is still waiting for its durability
    level

    The server refuses changes to a key while a synchronous write of it is
    pending. Retry shortly. A :class:`TemporaryFailError`, which is what it was
    before this client had durability.
    """


class SubdocError(CouchbaseError):
    """A sub-document path could not be read or changed

    The base of the sub-document errors. ``path`` and ``index`` (the spec's
    position in the call) say which path; in ``lookup_in`` each failed path's
    result is its exception, in ``mutate_in`` the first failing path raises and
    nothing of the call is applied.
    """

    #: The sub-document path that failed, or None.
    path = None
    #: The position of the failed spec in the call (0-based), or None.
    index = None

    def _where(self):
        if self.path is None:
            return ""
        spec = f" (spec {self.index})" if self.index is not None else ""
        return f"path {safe_repr(self.path)}{spec}: "


class PathNotFoundError(SubdocError):
    """The path does not exist in the document

    Not a :class:`NotFoundError`, which means a missing document (and which
    ``quiet`` silences).
    """


class PathExistsError(SubdocError):
    """The path already exists in the document (an insert or a unique array
    add)"""


class PathMismatchError(SubdocError):
    """The path's element has another type than the operation needs (an
    array operation on an object, a counter on a string, a path through a
    scalar)"""


class DocumentNotJsonError(SubdocError):
    """The document is not JSON, so it has no paths"""


class PathInvalidError(SubdocError, InvalidError):
    """The path's syntax is invalid"""


class PathTooBigError(SubdocError, InvalidError):
    """The path is too long"""


class PathTooDeepError(SubdocError, InvalidError):
    """The path nests deeper than the server allows (32 levels)"""


class ValueTooDeepError(SubdocError, InvalidError):
    """The value would make the document nest deeper than the server allows"""


class ValueInvalidError(SubdocError, InvalidError):
    """The value cannot be put at this path (not valid JSON, or several
    values where one is required)"""


class NumberTooBigError(SubdocError):
    """The number at the path, or the counter's result, does not fit in a
    signed 64-bit integer"""


class DeltaInvalidError(SubdocError, InvalidError):
    """The counter's delta is zero or out of range"""


class XattrError(SubdocError, InvalidError):
    """An extended attribute (xattr) spec is invalid

    The base of the xattr errors: an unknown macro, a flag combination the
    server refuses, xattr specs that name several attributes or come after
    document specs, or a virtual attribute that does not exist or cannot be
    changed.
    """


class XattrUnknownMacroError(XattrError):
    """The value names a macro the server does not know"""


class XattrInvalidFlagComboError(XattrError):
    """The spec's flags cannot be combined (a macro outside an xattr)"""


class XattrInvalidKeyComboError(XattrError):
    """The specs touch more than one extended attribute"""


class XattrUnknownVirtualAttributeError(XattrError):
    """The virtual attribute does not exist"""


class XattrCannotModifyVirtualAttributeError(XattrError):
    """Virtual attributes are read-only"""


class XattrInvalidOrderError(XattrError):
    """Extended-attribute specs must come before the document's specs"""


class CollectionNotFoundError(CouchbaseError):
    """The collection or its scope does not exist

    Not a :class:`NotFoundError`, which means a missing key (and which
    ``quiet`` silences).
    """


class RequestCanceledError(ConnectError):
    """The request was cancelled before it completed

    Most often its connection closed while the request was in flight, so
    whether a change was applied is unknown. A :class:`ConnectError`, which
    the 0.9 client raises when the connection is closed.
    """


class OutcomeUnknownError(ConnectError):
    """The connection failed after the request may have been sent: whether it
    was applied is unknown

    Raised for a request whose replay could change data or its result
    (incr/decr, append/prepend, set/add/replace, delete, anything with a CAS,
    lock, unlock) when its connection closed after the request may have been
    written and before its reply arrived. Such a request is never sent again
    by the client (libcouchbase would have, applying it twice while reporting
    success once); the server applies it once or not at all.
    ``key`` and
    ``operation`` say which; ``error`` is the connection's failure (such as
    ``LCB_ERR_SOCKET_SHUTDOWN``). Reads, and requests that were never written,
    are retried as before and never raise it.

    What to do: reconcile before repeating the change. Read the key back
    (``get(key, extended=True)``) and decide from its value or CAS whether the
    change is there; a change that is safe to apply twice (a plain ``set`` of
    the same value, when no one else writes the key) may simply be repeated.
    In a multi-key call every such key's entry in ``all_results`` is this
    exception. A :class:`ConnectError`, which the 0.9 client raises when the
    connection is lost. (The official SDKs call this "ambiguous".)
    """


# One class for every libcouchbase status, by name. Grouped by class; each
# status appears once (tests/test_exceptions.py checks it covers _status.STATUS
# and has no duplicate). LCB_SUCCESS is not an error and is absent.
_BY_STATUS = {
    _s.LCB_ERR_GENERIC: LibcouchbaseError,
    # -- the document --
    _s.LCB_ERR_DOCUMENT_NOT_FOUND: NotFoundError,
    _s.LCB_ERR_DOCUMENT_UNRETRIEVABLE: NotFoundError,  # no replica had it
    _s.LCB_ERR_DOCUMENT_EXISTS: KeyExistsError,
    _s.LCB_ERR_CAS_MISMATCH: KeyExistsError,
    _s.LCB_ERR_NOT_STORED: NotStoredError,
    _s.LCB_ERR_VALUE_TOO_LARGE: TooBigError,
    _s.LCB_ERR_INVALID_DELTA: DeltaBadvalError,
    _s.LCB_ERR_INVALID_RANGE: RangeError,
    _s.LCB_ERR_DOCUMENT_LOCKED: KeyLockedError,
    _s.LCB_ERR_ENCODING_FAILURE: ValueFormatError,
    _s.LCB_ERR_DECODING_FAILURE: ValueFormatError,
    _s.LCB_ERR_VALUE_NOT_JSON: ValueFormatError,
    # -- time --
    _s.LCB_ERR_TIMEOUT: TimeoutError,
    _s.LCB_ERR_AMBIGUOUS_TIMEOUT: TimeoutError,
    _s.LCB_ERR_UNAMBIGUOUS_TIMEOUT: TimeoutError,
    # -- reaching the cluster; a closed connection is a ConnectError in 0.9 --
    _s.LCB_ERR_CONNECT_ERROR: ConnectError,
    _s.LCB_ERR_CONNECTION_REFUSED: ConnectError,
    _s.LCB_ERR_NODE_UNREACHABLE: ConnectError,
    _s.LCB_ERR_SOCKET_SHUTDOWN: ConnectError,
    _s.LCB_ERR_CONNECTION_RESET: ConnectError,
    _s.LCB_ERR_NO_CONFIGURATION: ConnectError,  # never bootstrapped
    _s.LCB_ERR_SSL_ERROR: ConnectError,
    _s.LCB_ERR_SSL_CANTVERIFY: ConnectError,
    _s.LCB_ERR_UNKNOWN_HOST: UnknownHostError,
    _s.LCB_ERR_REQUEST_CANCELED: RequestCanceledError,
    _s.LCB_ERR_NETWORK: NetworkError,
    _s.LCB_ERR_NAMESERVER: NetworkError,
    _s.LCB_ERR_TOO_MANY_REDIRECTS: NetworkError,
    _s.LCB_ERR_FD_LIMIT_REACHED: NetworkError,
    _s.LCB_ERR_CANNOT_GET_PORT: NetworkError,
    _s.LCB_ERR_PROTOCOL_ERROR: ProtocolError,
    # -- credentials and bucket --
    _s.LCB_ERR_AUTHENTICATION_FAILURE: AuthError,
    _s.LCB_ERR_SASLMECH_UNAVAILABLE: AuthError,
    _s.LCB_ERR_BUCKET_NOT_FOUND: BucketNotFoundError,
    _s.LCB_ERR_COLLECTION_NOT_FOUND: CollectionNotFoundError,
    _s.LCB_ERR_SCOPE_NOT_FOUND: CollectionNotFoundError,
    # -- topology changes: retrying works once the new map is in --
    _s.LCB_ERR_NOT_MY_VBUCKET: NotMyVbucketError,
    _s.LCB_ERR_NO_MATCHING_SERVER: ClientTemporaryFailError,
    _s.LCB_ERR_MAP_CHANGED: ClientTemporaryFailError,
    _s.LCB_ERR_TOPOLOGY_CHANGE: ClientTemporaryFailError,
    _s.LCB_ERR_COLLECTION_MANIFEST_IS_AHEAD: ClientTemporaryFailError,
    # -- load --
    _s.LCB_ERR_TEMPORARY_FAILURE: TemporaryFailError,
    _s.LCB_ERR_DURABLE_WRITE_IN_PROGRESS: DurableWriteInProgressError,
    _s.LCB_ERR_DURABLE_WRITE_RE_COMMIT_IN_PROGRESS: DurableWriteInProgressError,
    _s.LCB_ERR_BUSY: BusyError,
    _s.LCB_ERR_RATE_LIMITED: BusyError,
    _s.LCB_ERR_QUOTA_LIMITED: BusyError,
    _s.LCB_ERR_NO_MEMORY: ClientNoMemoryError,
    # -- durability --
    _s.LCB_ERR_DURABILITY_LEVEL_NOT_AVAILABLE: DurabilityImpossibleError,
    _s.LCB_ERR_DURABILITY_IMPOSSIBLE: DurabilityImpossibleError,
    _s.LCB_ERR_DURABILITY_AMBIGUOUS: DurabilityAmbiguousError,
    _s.LCB_ERR_MUTATION_LOST: DurabilityError,
    _s.LCB_ERR_DURABILITY_TOO_MANY: DurabilityImpossibleError,
    _s.LCB_ERR_DURABILITY_NO_MUTATION_TOKENS: DurabilityError,
    # -- what the server or client can do --
    _s.LCB_ERR_UNSUPPORTED_OPERATION: NotSupportedError,  # incl. unknown command
    _s.LCB_ERR_SERVICE_NOT_AVAILABLE: NotSupportedError,
    _s.LCB_ERR_SDK_FEATURE_UNAVAILABLE: NotSupportedError,
    _s.LCB_ERR_COLLECTION_NO_MANIFEST: NotSupportedError,
    _s.LCB_ERR_UNKNOWN_SUBDOC_COMMAND: UnknownCommandError,
    # -- arguments of a call --
    _s.LCB_ERR_INVALID_ARGUMENT: ArgumentError,
    _s.LCB_ERR_EMPTY_KEY: ArgumentError,
    _s.LCB_ERR_DUPLICATE_COMMANDS: ArgumentError,
    _s.LCB_ERR_NO_COMMANDS: ArgumentError,
    _s.LCB_ERR_OPTIONS_CONFLICT: ArgumentError,
    _s.LCB_ERR_INVALID_HOST_FORMAT: ArgumentError,
    _s.LCB_ERR_INVALID_CHAR: ArgumentError,
    _s.LCB_ERR_CONTROL_UNKNOWN_CODE: ArgumentError,
    _s.LCB_ERR_CONTROL_UNSUPPORTED_MODE: ArgumentError,
    _s.LCB_ERR_CONTROL_INVALID_ARGUMENT: ArgumentError,
    # -- input rejected by libcouchbase or the server; configuration --
    _s.LCB_ERR_KVENGINE_INVALID_PACKET: InvalidError,  # the server's EINVAL
    _s.LCB_ERR_INCOMPLETE_PACKET: InvalidError,
    _s.LCB_ERR_BAD_ENVIRONMENT: InvalidError,
    _s.LCB_ERR_CONFIG_CACHE_INVALID: InvalidError,
    _s.LCB_ERR_SSL_INVALID_CIPHERSUITES: InvalidError,
    _s.LCB_ERR_SSL_NO_CIPHERS: InvalidError,
    _s.LCB_ERR_PLUGIN_VERSION_MISMATCH: InvalidError,
    # -- libcouchbase itself --
    _s.LCB_ERR_DLOPEN_FAILED: DlopenFailedError,
    _s.LCB_ERR_DLSYM_FAILED: DlsymFailedError,
    _s.LCB_ERR_INTERNAL_SERVER_FAILURE: InternalError,
    _s.LCB_ERR_SDK_INTERNAL: InternalError,
    _s.LCB_ERR_SHEDULE_FAILURE: InternalError,
    _s.LCB_ERR_AUTH_CONTINUE: InternalError,  # never meant to be seen
    _s.LCB_ERR_KVENGINE_UNKNOWN_ERROR: LibcouchbaseError,
    _s.LCB_ERR_COLLECTION_CANNOT_APPLY_MANIFEST: LibcouchbaseError,
    _s.LCB_ERR_HTTP: LibcouchbaseError,  # see .status
    # -- sub-document: one class per status --
    _s.LCB_ERR_SUBDOC_PATH_NOT_FOUND: PathNotFoundError,
    _s.LCB_ERR_SUBDOC_PATH_MISMATCH: PathMismatchError,
    _s.LCB_ERR_SUBDOC_PATH_EXISTS: PathExistsError,
    _s.LCB_ERR_SUBDOC_DOCUMENT_NOT_JSON: DocumentNotJsonError,
    _s.LCB_ERR_SUBDOC_PATH_INVALID: PathInvalidError,
    _s.LCB_ERR_SUBDOC_PATH_TOO_BIG: PathTooBigError,
    _s.LCB_ERR_SUBDOC_PATH_TOO_DEEP: PathTooDeepError,
    _s.LCB_ERR_SUBDOC_VALUE_TOO_DEEP: ValueTooDeepError,
    _s.LCB_ERR_SUBDOC_VALUE_INVALID: ValueInvalidError,
    _s.LCB_ERR_SUBDOC_NUMBER_TOO_BIG: NumberTooBigError,
    _s.LCB_ERR_SUBDOC_DELTA_INVALID: DeltaInvalidError,
    _s.LCB_ERR_SUBDOC_XATTR_UNKNOWN_MACRO: XattrUnknownMacroError,
    _s.LCB_ERR_SUBDOC_XATTR_INVALID_FLAG_COMBO: XattrInvalidFlagComboError,
    _s.LCB_ERR_SUBDOC_XATTR_INVALID_KEY_COMBO: XattrInvalidKeyComboError,
    _s.LCB_ERR_SUBDOC_XATTR_UNKNOWN_VIRTUAL_ATTRIBUTE: XattrUnknownVirtualAttributeError,
    _s.LCB_ERR_SUBDOC_XATTR_CANNOT_MODIFY_VIRTUAL_ATTRIBUTE: XattrCannotModifyVirtualAttributeError,
    _s.LCB_ERR_SUBDOC_XATTR_INVALID_ORDER: XattrInvalidOrderError,
    # -- services this client does not use: query, analytics, views,
    # management (a missing index is not a missing key) --
    _s.LCB_ERR_PARSING_FAILURE: LibcouchbaseError,
    _s.LCB_ERR_INDEX_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_INDEX_EXISTS: LibcouchbaseError,
    _s.LCB_ERR_QUERY: LibcouchbaseError,
    _s.LCB_ERR_PLANNING_FAILURE: LibcouchbaseError,
    _s.LCB_ERR_INDEX_FAILURE: LibcouchbaseError,
    _s.LCB_ERR_PREPARED_STATEMENT_FAILURE: LibcouchbaseError,
    _s.LCB_ERR_KEYSPACE_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_DML_FAILURE: LibcouchbaseError,
    _s.LCB_ERR_COMPILATION_FAILED: LibcouchbaseError,
    _s.LCB_ERR_JOB_QUEUE_FULL: LibcouchbaseError,
    _s.LCB_ERR_DATASET_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_DATAVERSE_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_DATASET_EXISTS: LibcouchbaseError,
    _s.LCB_ERR_DATAVERSE_EXISTS: LibcouchbaseError,
    _s.LCB_ERR_ANALYTICS_LINK_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_VIEW_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_DESIGN_DOCUMENT_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_COLLECTION_ALREADY_EXISTS: LibcouchbaseError,
    _s.LCB_ERR_SCOPE_EXISTS: LibcouchbaseError,
    _s.LCB_ERR_USER_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_GROUP_NOT_FOUND: LibcouchbaseError,
    _s.LCB_ERR_BUCKET_ALREADY_EXISTS: LibcouchbaseError,
}


def class_for_status(code: int, flags: Optional[int] = None) -> type[CouchbaseError]:
    """The :class:`CouchbaseError` subclass raised for libcouchbase status
    ``code``.

    A status missing from the table (one a newer libcouchbase added) gets a
    class from its error flags: ``flags`` if given (``lcb_error_flags(code)``
    from C), else those in ``_status.STATUS``: network -> NetworkError,
    input -> InvalidError, transient -> ClientTemporaryFailError or
    TemporaryFailError, else LibcouchbaseError.

    :raises ValueError: for ``LCB_SUCCESS`` (0), which is not an error.
    """
    if code == _s.LCB_SUCCESS:
        raise ValueError("status 0 (LCB_SUCCESS) is not an error")
    cls = _BY_STATUS.get(code)
    if cls is not None:
        return cls
    entry = _s.STATUS.get(code)
    if flags is None:
        flags = entry[2] if entry else 0
    if flags & _s.LCB_ERROR_FLAG_NETWORK:
        return NetworkError
    if flags & _s.LCB_ERROR_FLAG_INPUT:
        return InvalidError
    if flags & _s.LCB_ERROR_FLAG_TRANSIENT:
        sdk = entry[1] == _s.LCB_ERROR_TYPE_SDK if entry else code >= 1000
        return ClientTemporaryFailError if sdk else TemporaryFailError
    return LibcouchbaseError


# Classes that, raised while connecting, mean the cluster could not be reached.
_UNREACHABLE = (TimeoutError, NetworkError, ProtocolError, ClientTemporaryFailError)


def exception_for_status(
    code: int,
    *,
    key=None,
    operation: Optional[str] = None,
    cas: int = 0,
    status: Optional[int] = None,
    msg: Optional[str] = None,
    flags: Optional[int] = None,
) -> CouchbaseError:
    """An exception for libcouchbase status ``code`` (not raised).

    Its class is :func:`class_for_status`'s, except that with ``operation``
    ``"connect"`` a timeout or network failure is a :class:`ConnectError`
    (every failure to reach the cluster is). Its ``msg`` is ``msg`` if given,
    else a short explanation of the status for that operation, falling back
    to libcouchbase's own description.

    :raises ValueError: for ``LCB_SUCCESS`` (0), which is not an error.
    """
    cls = class_for_status(code, flags)
    op = operation.lower() if isinstance(operation, str) else None
    if (
        op == "connect"
        and not issubclass(cls, ConnectError)
        and (issubclass(cls, _UNREACHABLE) or (flags or _flags_of(code)) & _s.LCB_ERROR_FLAG_NETWORK)
    ):
        cls = ConnectError
    if msg is None:
        msg = _describe(code, operation, cas)
    return cls(msg=msg, error=code, key=key, status=status, cas=cas, operation=operation)


def _flags_of(code):
    entry = _s.STATUS.get(code)
    return entry[2] if entry else 0


# What a status means, in words a user can act on. By (status, operation) when
# the operation changes the meaning, else by status; statuses absent from
# both get libcouchbase's description.
_CAS_CHANGED = "the document changed since its CAS was read; get it again and retry"
_TIMEOUT = "no reply within the operation timeout; the cluster may be slow or unreachable"
_PHRASES = {
    _s.LCB_ERR_DOCUMENT_NOT_FOUND: "the document does not exist",
    _s.LCB_ERR_DOCUMENT_UNRETRIEVABLE: "no copy of the document could be read",
    _s.LCB_ERR_DOCUMENT_EXISTS: "a document with this key already exists",
    _s.LCB_ERR_CAS_MISMATCH: _CAS_CHANGED,
    _s.LCB_ERR_NOT_STORED: "the server did not store the value",
    _s.LCB_ERR_VALUE_TOO_LARGE: "the value is larger than the server's item size limit (20 MiB by default)",
    _s.LCB_ERR_INVALID_DELTA: "the stored value is not a number, so it cannot be incremented or decremented",
    _s.LCB_ERR_DOCUMENT_LOCKED: (
        "the document is locked by another client; retry once the lock is released or expires"
    ),
    _s.LCB_ERR_TIMEOUT: _TIMEOUT,
    _s.LCB_ERR_UNAMBIGUOUS_TIMEOUT: _TIMEOUT + "; the request was not applied",
    _s.LCB_ERR_AMBIGUOUS_TIMEOUT: _TIMEOUT + "; the change may have been applied, check before retrying",
    _s.LCB_ERR_AUTHENTICATION_FAILURE: (
        "the cluster rejected the credentials; check the username and password for "
        "this bucket (and that the bucket exists)"
    ),
    _s.LCB_ERR_BUCKET_NOT_FOUND: "the bucket does not exist on this cluster",
    _s.LCB_ERR_COLLECTION_NOT_FOUND: "the collection does not exist",
    _s.LCB_ERR_SCOPE_NOT_FOUND: "the scope does not exist",
    _s.LCB_ERR_TEMPORARY_FAILURE: (
        "the server cannot handle the request right now (out of memory, warming "
        "up or rebalancing); back off and retry"
    ),
    _s.LCB_ERR_RATE_LIMITED: "the server is rate-limiting this user; back off and retry",
    _s.LCB_ERR_QUOTA_LIMITED: (
        "a quota of this user or scope is exhausted; back off and retry, or raise the quota"
    ),
    _s.LCB_ERR_CONNECTION_REFUSED: (
        "the server refused the connection; check the host and port, and that Couchbase is running there"
    ),
    _s.LCB_ERR_NODE_UNREACHABLE: "the server is not reachable from here; check the host name and the network",
    _s.LCB_ERR_CONNECT_ERROR: "could not open a TCP connection to the server",
    _s.LCB_ERR_SOCKET_SHUTDOWN: "the server closed the connection",
    _s.LCB_ERR_CONNECTION_RESET: "the connection was reset",
    _s.LCB_ERR_UNKNOWN_HOST: "the host name could not be resolved; check its spelling",
    _s.LCB_ERR_NO_CONFIGURATION: "not connected: no cluster configuration was ever received; connect first",
    _s.LCB_ERR_REQUEST_CANCELED: (
        "the request was cancelled, most likely because its connection closed while "
        "it was in flight; it may or may not have been applied"
    ),
    _s.LCB_ERR_NETWORK: "a network error occurred",
    _s.LCB_ERR_PROTOCOL_ERROR: (
        "the server sent data this client does not understand; is this a Couchbase port?"
    ),
    _s.LCB_ERR_NOT_MY_VBUCKET: "the server no longer owns this key (the cluster topology changed); retry",
    _s.LCB_ERR_NO_MATCHING_SERVER: (
        "no server in the current cluster map owns this key (a node may have failed over); retry"
    ),
    _s.LCB_ERR_MAP_CHANGED: "the cluster map changed during the request; retry",
    _s.LCB_ERR_INVALID_ARGUMENT: "an argument is invalid",
    _s.LCB_ERR_EMPTY_KEY: "the key is empty; keys are 1 to 250 bytes",
    _s.LCB_ERR_DUPLICATE_COMMANDS: "the same key was given more than once",
    _s.LCB_ERR_NO_MEMORY: "the client could not allocate memory",
    _s.LCB_ERR_UNSUPPORTED_OPERATION: "the server or this bucket does not support this operation",
    _s.LCB_ERR_INTERNAL_SERVER_FAILURE: "the server reported an internal error",
    _s.LCB_ERR_SDK_INTERNAL: "internal libcouchbase error; close the connection and open a new one",
    _s.LCB_ERR_BUSY: "libcouchbase is busy; retry later",
    _s.LCB_ERR_HTTP: "the HTTP request failed",
    _s.LCB_ERR_DLOPEN_FAILED: "the libcouchbase IO plugin library could not be loaded",
    _s.LCB_ERR_DLSYM_FAILED: "the libcouchbase IO plugin library has no initialisation function",
    _s.LCB_ERR_DURABILITY_IMPOSSIBLE: (
        "too few nodes hold this key's vbucket for the durability level asked; the change was not applied"
    ),
    _s.LCB_ERR_DURABILITY_LEVEL_NOT_AVAILABLE: (
        "the server or bucket does not support this durability level; the change was not applied"
    ),
    _s.LCB_ERR_DURABILITY_AMBIGUOUS: (
        "the change was not confirmed at the durability level asked in time; it may yet be committed "
        "or rolled back, read the key back before retrying"
    ),
    _s.LCB_ERR_DURABLE_WRITE_IN_PROGRESS: "another durable write of this key is still pending; retry shortly",
    _s.LCB_ERR_DURABILITY_TOO_MANY: "more replicas or persisted copies were asked than the bucket has",
    _s.LCB_ERR_SUBDOC_PATH_NOT_FOUND: "the path does not exist in the document",
    _s.LCB_ERR_SUBDOC_PATH_EXISTS: "the path already exists in the document",
    _s.LCB_ERR_SUBDOC_PATH_MISMATCH: "the element at the path has another type than this operation needs",
    _s.LCB_ERR_SUBDOC_DOCUMENT_NOT_JSON: "the document is not JSON, so it has no paths",
    _s.LCB_ERR_SUBDOC_PATH_INVALID: "the path's syntax is invalid",
    _s.LCB_ERR_SUBDOC_VALUE_INVALID: "the value cannot be put at this path (it must be valid JSON)",
    _s.LCB_ERR_SUBDOC_NUMBER_TOO_BIG: "the number does not fit in a signed 64-bit integer",
    _s.LCB_ERR_SUBDOC_DELTA_INVALID: "the counter's delta must be a non-zero signed 64-bit integer",
}
_OP_PHRASES = {
    (
        _s.LCB_ERR_DOCUMENT_NOT_FOUND,
        "replace",
    ): "the document does not exist; replace changes only an existing document (set creates it)",
    (_s.LCB_ERR_DOCUMENT_NOT_FOUND, "incr"): "the counter does not exist; pass initial= to create it",
    (_s.LCB_ERR_DOCUMENT_NOT_FOUND, "decr"): "the counter does not exist; pass initial= to create it",
    (
        _s.LCB_ERR_DOCUMENT_EXISTS,
        "add",
    ): "a document with this key already exists; add only creates new documents (set or replace changes one)",
    (
        _s.LCB_ERR_NOT_STORED,
        "append",
    ): "the document does not exist; append only extends an existing document",
    (
        _s.LCB_ERR_NOT_STORED,
        "prepend",
    ): "the document does not exist; prepend only extends an existing document",
    (_s.LCB_ERR_TIMEOUT, "connect"): (
        "the cluster did not answer within the connection timeout; check the host "
        "and port, and that the cluster is up"
    ),
    (_s.LCB_ERR_UNAMBIGUOUS_TIMEOUT, "connect"): (
        "the cluster did not answer within the connection timeout; check the host "
        "and port, and that the cluster is up"
    ),
}


def _describe(code, operation=None, cas=0):
    """A phrase saying what status ``code`` means, or None if it is unknown."""
    if not code:
        return None
    op = operation.lower() if isinstance(operation, str) else None
    phrase = _OP_PHRASES.get((code, op))
    if phrase is None and code == _s.LCB_ERR_DOCUMENT_EXISTS and cas and op != "add":
        phrase = _CAS_CHANGED  # a change made with a CAS that no longer matches
    if phrase is None:
        phrase = _PHRASES.get(code)
    if phrase is None and code in _s.STATUS:
        phrase = _as_phrase(_s.STATUS[code][3])
    return phrase


def _as_phrase(description):
    """libcouchbase's description as the second half of a sentence: no final
    period, first word in lower case unless it is an acronym ("DNS", "CAS")."""
    text = description.strip().rstrip(".")
    first = text.split(" ", 1)[0]
    if first[:1].isupper() and first[1:].islower():
        text = text[0].lower() + text[1:]
    return text


def _doc_title(cls):
    if cls is CouchbaseError or not cls.__doc__:
        return "unspecified error"
    return cls.__doc__.strip().splitlines()[0]


_KEY_SHOWN = 100


def _what_failed(operation, key):
    """'get of key 'foo' failed: ', or the parts of it that are known."""
    if key is not None:
        shown = key
        if type(key) in (str, bytes) and len(key) > _KEY_SHOWN:
            shown = key[:_KEY_SHOWN]
        where = f"key {safe_repr(shown)}{'...' if shown is not key else ''}"
        if operation:
            return f"{operation} of {where} failed: "
        return f"operation on {where} failed: "
    if operation:
        return f"{operation} failed: "
    return ""


def safe_repr(value, limit=200):
    """repr(value) for a message, at most ``limit`` characters; never raises
    (an object whose ``__repr__`` raises is shown by its type). The one way
    messages show a caller's objects."""
    try:
        text = repr(value)
        if type(text) is not str:
            raise TypeError
    except Exception:
        try:
            name = type(value).__name__
        except Exception:
            name = "object"
        return f"<{name} object (its repr raised)>"
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


def safe_str(value):
    """str(value), or :func:`safe_repr` if its ``__str__`` raises."""
    if type(value) is str:
        return value
    try:
        text = str(value)
        if type(text) is str:
            return text
    except Exception:
        pass
    return safe_repr(value)


# Secrets that could reach a message through a connection string: an option
# whose name (URL-decoded, any case) is one of these, and the password of a
# URL's user information (``//user:password@host``).
_SECRET_OPTIONS = frozenset(
    ("password", "pass", "passwd", "pwd", "secret", "sasl_password", "saslpassword", "bucket_password")
)
_OPTION_NAME_RE = re.compile(r"(?<![A-Za-z0-9_%])((?:[A-Za-z_]|%[0-9A-Fa-f]{2})+)\s*(=|%3[Dd]|:(?!//))\s*")
_OPTION_VALUE_RE = re.compile(r"[^\s&'\"]*")
_USERINFO_RE = re.compile(r"((?://|^|(?<=[\s'\"=(,]))[^\s/?:@'\"]*:(?!//))[^\s?'\"]*@")
REDACTED = "***"


def _is_secret_name(name):
    return urllib.parse.unquote(name).lower() in _SECRET_OPTIONS


def _redact_options(text):
    out = []
    pos = 0
    while True:
        m = _OPTION_NAME_RE.search(text, pos)
        if m is None:
            break
        if _is_secret_name(m.group(1)):
            end = _OPTION_VALUE_RE.match(text, m.end()).end()
            out.append(text[pos:m.end()] + REDACTED)
            pos = end
        else:
            out.append(text[pos:m.end()])
            pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def secret_forms(secret):
    """The ways ``secret`` may be written in a message: as is, and
    URL-encoded (as in a connection string)."""
    if not isinstance(secret, str) or not secret:
        return ()
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret),
             urllib.parse.quote_plus(secret)}
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text, secrets=()):
    """``text`` with secrets replaced by ``***``: the values of password
    options (``password=``, ``pass=``, ... in any case, URL-encoded or not,
    anywhere in the text), the password of ``//user:password@`` user
    information, and every occurrence of each string of ``secrets`` (give
    :func:`secret_forms` of a known password). The one redaction used for
    exception messages, reprs and libcouchbase's log lines."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _redact_options(text)
    return _USERINFO_RE.sub(r"\1" + REDACTED + "@", text)

