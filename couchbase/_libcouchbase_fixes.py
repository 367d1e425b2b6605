"""The fixes couchbase-lcb needs in libcouchbase 3.3.4, and the check that the
library in use carries them.

``scripts/install-libcouchbase`` applies ``patches/libcouchbase/NNNN-*.patch``
to the pinned source and records the numbers it applied in the library's
changeset string (``LCB_CNTL_CHANGESET``), as ``couchbase-lcb-patches:0001,0002``.
A connection refuses a library lacking one of the fixes below, unless
``COUCHBASE_LCB_ALLOW_UNPATCHED=1`` accepts it (with a warning each time).
"""

import os
import warnings

from .exceptions import UnpatchedLibcouchbaseError, UnpatchedLibcouchbaseWarning

MARKER = "couchbase-lcb-patches:"
ALLOW_UNPATCHED = "COUCHBASE_LCB_ALLOW_UNPATCHED"

# patch number -> what a libcouchbase without it leaves exposed
EXPOSED = {
    "0001": "a broken or hostile server's reply (a status outside the error map, a body length that "
            "wraps, a reply to another command) can crash the process",
    "0002": "requests queued while a connection attempt failed are sent again on the next connection "
            "(a failed store can still land later) and a retried request is read after it was freed",
    "0004": "the timeout of a synchronous durability requirement goes out byte-swapped (2.5 s as 51.72 s)",
    "0005": "a request written before its connection failed cannot be told from one never sent, so the "
            "client cannot retry the requests that were never sent without risking others twice",
    "0006": "a sub-document reply whose entries overrun its body or name a spec that was not sent is read "
            "and written past its buffers (a broken or hostile server can corrupt the heap)",
    "0007": "a call's timeout shorter than the connection's fires only at the connection's timeout, and "
            "scheduling walks every request in flight (quadratic with many in flight)",
    "0008": "closing a connection after a persist_to/replicate_to store timed out can crash the process "
            "(a durability poll's reply reaches its freed state)",
    "0009": "persist_to/replicate_to cannot be asked of delete, incr/decr and mutate_in (3.3.4 polls the "
            "copies of stores only; the compiled module calls the patch's lcb_endure_mutation)",
    "0010": "a short OBSERVE_SEQNO reply is read past its end: a persist_to/replicate_to requirement can "
            "be reported met from bytes the server never sent",
}

# patch number -> what a TLS connection to a libcouchbase without it lacks: warned about at
# every connect that verifies certificates, not refused (plain connections need none of it)
TLS_FIXES = {
    "0003": "host names in the server's TLS certificate are not checked: a certificate any trusted CA "
            "issued for another host is accepted",
}


def carried(changeset: str) -> frozenset:
    """The patch numbers a libcouchbase changeset string says were applied."""
    if not changeset.startswith(MARKER):
        return frozenset()
    return frozenset(number for number in changeset[len(MARKER):].split(",") if number)


def missing(changeset: str) -> list:
    """The fixes (patch numbers) a library with this changeset string lacks."""
    return sorted(set(EXPOSED) - carried(changeset))


def require(changeset: str, version: str) -> None:
    """Refuse (or, if allowed, warn about) a libcouchbase lacking a fix."""
    lacking = missing(changeset)
    if not lacking:
        return
    exposed = "; ".join(f"without patch {number}, {EXPOSED[number]}" for number in lacking)
    text = (f"libcouchbase {version} (changeset {changeset!r}) lacks couchbase-lcb's fixes: {exposed}. "
            "Install the couchbase-lcb wheel (it bundles a fixed build), or build libcouchbase with "
            f"scripts/install-libcouchbase; {ALLOW_UNPATCHED}=1 accepts this library anyway")
    if os.environ.get(ALLOW_UNPATCHED) == "1":
        warnings.warn(text, UnpatchedLibcouchbaseWarning, stacklevel=3)
    else:
        raise UnpatchedLibcouchbaseError(text, operation="connect")


def warn_tls(changeset: str, version: str) -> None:
    """Warn, at a connect that verifies TLS certificates, about each TLS fix the library lacks."""
    lacking = sorted(set(TLS_FIXES) - carried(changeset))
    if lacking:
        exposed = "; ".join(f"without patch {number}, {TLS_FIXES[number]}" for number in lacking)
        warnings.warn(f"libcouchbase {version} (changeset {changeset!r}): {exposed}. Install the "
                      "couchbase-lcb wheel (it bundles a fixed build), or build libcouchbase with "
                      "scripts/install-libcouchbase", UnpatchedLibcouchbaseWarning, stacklevel=4)
