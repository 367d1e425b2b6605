"""The KV error map served by GET_ERROR_MAP (0xfe).

Written for the mock from the attribute vocabulary clients understand; libcouchbase asks
for version 1 (and rejects anything newer), the C++ core asks for version 2.
"""

import json

# code: (name, description, attributes[, retry spec])
_ENTRIES = {
    0x00: ("SUCCESS", "Success", ["success"]),
    0x01: ("KEY_ENOENT", "Not Found", ["item-only"]),
    0x02: ("KEY_EEXISTS", "key already exists, or CAS mismatch", ["item-only"]),
    0x03: ("E2BIG", "Value is too big", ["item-only", "invalid-input"]),
    0x04: ("EINVAL", "Invalid packet", ["internal", "invalid-input"]),
    0x05: ("NOT_STORED", "Not stored", ["item-only"]),
    0x06: ("DELTA_BADVAL", "Existing document not a number", ["item-only", "invalid-input"]),
    0x07: ("NOT_MY_VBUCKET", "Server does not own this vbucket", ["fetch-config", "invalid-input"]),
    0x08: ("NO_BUCKET", "Not connected to a bucket", ["conn-state-invalidated"]),
    0x09: ("LOCKED", "Requested resource is locked", ["item-locked", "item-only", "retry-later"]),
    0x0E: ("NOT_LOCKED", "Requested resource is not locked", ["item-only"]),
    0x1F: ("AUTH_STALE", "Authentication context is stale", ["conn-state-invalidated", "auth"]),
    0x20: ("AUTH_ERROR", "Authentication failed", ["conn-state-invalidated", "auth"]),
    0x21: ("AUTH_CONTINUE", "Authentication continues", ["special-handling", "auth"]),
    0x22: ("ERANGE", "Range error", ["invalid-input"]),
    0x23: ("ROLLBACK", "Rollback required", ["dcp"]),
    0x24: ("EACCESS", "No access", ["support", "auth"]),
    0x25: ("NOT_INITIALIZED", "Node is being initialized", ["temp", "retry-later"]),
    0x30: ("RATE_LIMITED_NETWORK_INGRESS", "Network ingress rate limit exceeded", ["rate-limit"]),
    0x31: ("RATE_LIMITED_NETWORK_EGRESS", "Network egress rate limit exceeded", ["rate-limit"]),
    0x32: ("RATE_LIMITED_MAX_CONNECTIONS", "Too many connections", ["rate-limit"]),
    0x33: ("RATE_LIMITED_MAX_COMMANDS", "Too many commands", ["rate-limit"]),
    0x34: ("SCOPE_SIZE_LIMIT_EXCEEDED", "Scope size limit exceeded", ["rate-limit"]),
    0x81: ("UNKNOWN_COMMAND", "Unknown command", ["support"]),
    0x82: ("ENOMEM", "Out of memory", ["temp", "retry-later"]),
    0x83: ("NOT_SUPPORTED", "Not supported", ["support"]),
    0x84: ("EINTERNAL", "Internal error", ["internal"]),
    0x85: ("EBUSY", "System is busy", ["temp", "retry-later"]),
    0x86: ("ETMPFAIL", "Temporary failure", ["temp", "retry-later"]),
    0x87: ("XATTR_EINVAL", "Invalid XATTR", ["invalid-input", "subdoc"]),
    0x88: ("UNKNOWN_COLLECTION", "Unknown collection", ["fetch-config"]),
    0x8A: ("CANNOT_APPLY_COLLECTIONS_MANIFEST", "Cannot apply manifest", ["internal"]),
    0x8C: ("UNKNOWN_SCOPE", "Unknown scope", ["fetch-config"]),
    0xA0: ("DURABILITY_INVALID_LEVEL", "Invalid durability level", ["invalid-input"]),
    0xA1: ("DURABILITY_IMPOSSIBLE", "Durability impossible", ["item-only"]),
    0xA2: ("SYNC_WRITE_IN_PROGRESS", "Synchronous write in progress", ["item-only", "temp", "retry-later"]),
    0xA3: ("SYNC_WRITE_AMBIGUOUS", "Synchronous write ambiguous", ["item-only"]),
    0xA4: ("SYNC_WRITE_RE_COMMIT_IN_PROGRESS", "Re-commit in progress", ["item-only", "temp", "retry-later"]),
    0xC0: ("SUBDOC_PATH_ENOENT", "Subdoc: path not found", ["item-only", "subdoc"]),
    0xC1: ("SUBDOC_PATH_MISMATCH", "Subdoc: path mismatch", ["item-only", "subdoc"]),
    0xC2: ("SUBDOC_PATH_EINVAL", "Subdoc: invalid path", ["invalid-input", "subdoc"]),
    0xC3: ("SUBDOC_PATH_E2BIG", "Subdoc: path too large", ["invalid-input", "subdoc"]),
    0xC4: ("SUBDOC_DOC_E2DEEP", "Subdoc: document too deep", ["item-only", "subdoc"]),
    0xC5: ("SUBDOC_VALUE_CANTINSERT", "Subdoc: cannot insert", ["item-only", "subdoc"]),
    0xC6: ("SUBDOC_DOC_NOTJSON", "Subdoc: document is not JSON", ["item-only", "subdoc"]),
    0xC7: ("SUBDOC_NUM_ERANGE", "Subdoc: number out of range", ["item-only", "subdoc"]),
    0xC8: ("SUBDOC_DELTA_EINVAL", "Subdoc: invalid delta", ["invalid-input", "subdoc"]),
    0xC9: ("SUBDOC_PATH_EEXISTS", "Subdoc: path exists", ["item-only", "subdoc"]),
    0xCA: ("SUBDOC_VALUE_ETOODEEP", "Subdoc: value too deep", ["invalid-input", "subdoc"]),
    0xCB: ("SUBDOC_INVALID_COMBO", "Subdoc: invalid combination", ["invalid-input", "subdoc"]),
    0xCC: ("SUBDOC_MULTI_PATH_FAILURE", "Subdoc: some paths failed", ["item-only", "subdoc"]),
    0xCD: ("SUBDOC_SUCCESS_DELETED", "Subdoc: success on deleted document", ["success", "subdoc"]),
    0xD3: ("SUBDOC_MULTI_PATH_FAILURE_DELETED", "Subdoc: some paths failed on deleted document",
           ["item-only", "subdoc"]),
    # Codes a test can inject with opfail to exercise client retry strategies.
    0x7FF0: ("DUMMY_ERROR_RETRY_CONSTANT", "Mock: retry with a constant interval", ["temp", "auto-retry"],
             {"strategy": "constant", "interval": 10, "after": 50, "max-duration": 500}),
    0x7FF1: ("DUMMY_ERROR_RETRY_LINEAR", "Mock: retry with a linear back-off", ["temp", "auto-retry"],
             {"strategy": "linear", "interval": 5, "after": 50, "ceil": 100, "max-duration": 500}),
    0x7FF2: ("DUMMY_ERROR_RETRY_EXPONENTIAL", "Mock: retry with an exponential back-off",
             ["temp", "auto-retry"],
             {"strategy": "exponential", "interval": 5, "after": 50, "ceil": 250, "max-duration": 500}),
}

REVISION = 1
_cache = {}


def error_map(version):
    """Return the JSON error map (bytes) answering a request for ``version`` (capped at 2)."""
    version = max(1, min(int(version), 2))
    data = _cache.get(version)
    if data is None:
        errors = {}
        for code, entry in _ENTRIES.items():
            obj = {"name": entry[0], "desc": entry[1], "attrs": list(entry[2])}
            if version < 2 and "rate-limit" in obj["attrs"]:
                obj["attrs"] = ["support"]  # "rate-limit" appeared in version 2
            if len(entry) > 3:
                obj["retry"] = dict(entry[3])
            errors["%x" % code] = obj
        data = json.dumps({"version": version, "revision": REVISION, "errors": errors},
                          separators=(",", ":")).encode()
        _cache[version] = data
    return data
