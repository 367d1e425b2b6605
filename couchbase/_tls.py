"""TLS for a connection: ``couchbases://`` connection strings and the keyword options that
go with them, and errors that say which check of the server's certificate failed.

Verification is on by default: the server's certificate must chain to the CA given
(``tls_ca_file``; without one, the system's trusted CAs) and name the host connected to
(libcouchbase patch 0003; a library without it is warned about at connect). libcouchbase
3.3 verifies against ``truststorepath`` only: ``certpath`` alone, the pre-3.3 way to name
the CA, is taken as the CA here. ``tls_verify=False`` turns verification off and logs a
warning on every connect that uses it.
"""

import logging
import os
import re
import threading
from urllib.parse import quote

from . import _libcouchbase_fixes, _status
from . import exceptions as _exc

_logger = logging.getLogger("couchbase")

#: libcouchbase's log line for a failed verification (patch 0003), and what each X509
#: error means for the user: (which check failed, what to do).
_VERIFY_LINE = re.compile(r"TLS certificate verification failed for (?P<where>\S+): (?P<reason>.*) "
                          r"\(X509 error (?P<code>\d+)\)")
_CHECKS = {
    62: ("host name", "the certificate was issued for another host name: connect with the name the "
                      "certificate gives (or have the node's certificate reissued for this name)"),
    64: ("host name", "the certificate was issued for another IP address: connect with the name or address "
                      "the certificate gives (or have the node's certificate reissued for this address)"),
    10: ("expiry", "the certificate has expired: the cluster's certificate must be renewed"),
    9: ("expiry", "the certificate is not valid yet: check this machine's clock or the certificate's dates"),
    20: ("CA", "the certificate was issued by a CA this client does not trust: give the cluster's CA "
               "certificate with tls_ca_file= (or truststorepath= in the connection string)"),
    19: ("CA", "the certificate chain ends at a CA this client does not trust: give the cluster's CA "
               "certificate with tls_ca_file="),
    18: ("CA", "the certificate is self-signed and not trusted: give it with tls_ca_file="),
}
_failures = {}  # thread id -> the last verification failure libcouchbase logged in that thread


def note_log(text):
    """Keep a failed-verification line libcouchbase logged (called for its error lines)."""
    if "TLS certificate verification failed" in text:
        _failures[threading.get_ident()] = text


def _check_file(option, path):
    if not isinstance(path, (str, os.PathLike)):
        raise _exc.ArgumentError(f"{option} must be a path (str), not {_exc.safe_repr(path)}",
                                 operation="connect")
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise _exc.ArgumentError(f"{option} {path!r} cannot be read: {e.strerror}",
                                 operation="connect") from None
    if b"-----BEGIN" not in head:
        raise _exc.ArgumentError(f"{option} {path!r} is not a PEM file (no '-----BEGIN' line)",
                                 operation="connect")
    return path


def configure(connection_string, tls_ca_file=None, tls_cert_file=None, tls_key_file=None, tls_verify=True):
    """The connection string libcouchbase gets, with the TLS options in it.

    Only a ``couchbases://`` string takes TLS options (ArgumentError naming the option
    otherwise). ``tls_ca_file``: the PEM of the CA(s) to trust (``truststorepath``);
    ``tls_cert_file`` and ``tls_key_file`` together: a client certificate, which is then
    the credentials (``certpath``, ``keypath``); ``tls_verify=False``: no verification
    (``ssl=no_verify``), with a warning logged each time.
    """
    if type(tls_verify) is not bool:
        raise _exc.ArgumentError(f"tls_verify must be True or False, not {_exc.safe_repr(tls_verify)}",
                                 operation="connect")
    given = [name for name, value in (("tls_ca_file", tls_ca_file), ("tls_cert_file", tls_cert_file),
                                      ("tls_key_file", tls_key_file)) if value is not None]
    if not tls_verify:
        given.append("tls_verify")
    scheme = connection_string.partition("://")[0].lower()
    if scheme != "couchbases":
        if given:
            raise _exc.ArgumentError(
                f"{given[0]} needs TLS: give connection_string='couchbases://HOST' (not {scheme}://)",
                operation="connect")
        return connection_string
    query = _query(connection_string)
    extra = []
    if tls_ca_file is not None:
        if "truststorepath" in query:
            raise _exc.ArgumentError("tls_ca_file and the connection string's truststorepath both name "
                                     "the CA: give one", operation="connect")
        extra.append(("truststorepath", _check_file("tls_ca_file", tls_ca_file)))
    if (tls_cert_file is None) != (tls_key_file is None):
        raise _exc.ArgumentError("a client certificate needs both tls_cert_file and tls_key_file",
                                 operation="connect")
    if tls_cert_file is not None:
        if "certpath" in query or "keypath" in query:
            raise _exc.ArgumentError("tls_cert_file and the connection string's certpath/keypath both "
                                     "name the client certificate: give one", operation="connect")
        extra.append(("certpath", _check_file("tls_cert_file", tls_cert_file)))
        extra.append(("keypath", _check_file("tls_key_file", tls_key_file)))
    elif "certpath" in query and "keypath" not in query and "truststorepath" not in query and not extra:
        # before libcouchbase 3.3 certpath named the CA; 3.3 ignores it without keypath and
        # would verify against the system's CAs only
        extra.append(("truststorepath", query["certpath"]))
    if not tls_verify:
        extra.append(("ssl", "no_verify"))
    if not tls_verify or query.get("ssl") == "no_verify":
        _logger.warning("TLS verification is OFF for %s: the server's certificate is not checked, so "
                        "anyone between this client and the cluster can read and change the traffic and "
                        "the credentials", _exc.redact(connection_string.split("?", 1)[0], ()))
    else:
        _warn_unchecked_host_names()
    _failures.pop(threading.get_ident(), None)
    if not extra:
        return connection_string
    sep = "&" if "?" in connection_string else "?"
    return connection_string + sep + "&".join(f"{k}={quote(v, safe='/')}" for k, v in extra)


def _query(connection_string):
    text = connection_string.partition("?")[2]
    out = {}
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if name:
            out[name] = value
    return out


def _warn_unchecked_host_names():
    from ._lcb import libcouchbase_changeset, libcouchbase_version  # loaded by now
    _libcouchbase_fixes.warn_tls(libcouchbase_changeset(), libcouchbase_version()[0])


def explain(err):
    """A bootstrap error; for LCB_ERR_SSL_CANTVERIFY with the failed check and what to do in
    its message (and ``tls_check``: "host name", "CA", "expiry" or "certificate"), from what
    libcouchbase logged in this thread."""
    line = _failures.pop(threading.get_ident(), None)
    if err.error != _status.LCB_ERR_SSL_CANTVERIFY:
        return err
    match = _VERIFY_LINE.search(line or "")
    if match is None:
        err.tls_check = None  # a libcouchbase without patch 0003 does not say
        err.msg = (f"{err.msg} (the server's TLS certificate could not be verified: give the cluster's CA "
                   "with tls_ca_file=, and connect with a host name the certificate names)")
        return err
    code = int(match.group("code"))
    check, advice = _CHECKS.get(code, ("certificate", "see the reason"))
    err.msg = (f"{err.msg}: TLS certificate of {match.group('where')} refused, {check} check failed "
               f"({match.group('reason')}): {advice}")
    err.tls_check = check
    return err
