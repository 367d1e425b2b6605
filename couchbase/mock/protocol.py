"""Memcached binary protocol: constants and the packet codec.

Everything here is shared by the KV server and by the tests; no I/O happens here.
"""

import struct
import zlib

__all__ = [
    "HEADER", "REQ_MAGIC", "RES_MAGIC", "ALT_REQ_MAGIC", "ALT_RES_MAGIC", "SERVER_REQ_MAGIC",
    "Op", "Status", "Feature", "DATATYPE_JSON", "DATATYPE_SNAPPY", "DATATYPE_XATTR",
    "response", "request", "vbucket_of", "leb128_decode", "leb128_encode",
    "OPCODE_NAMES", "opcode_from_name",
]

#: magic u8, opcode u8, keylen u16, extlen u8, datatype u8, vbucket/status u16,
#: bodylen u32, opaque u32, cas u64 (all big-endian)
HEADER = struct.Struct(">BBHBBHIIQ")
HEADER_SIZE = 24

REQ_MAGIC = 0x80
RES_MAGIC = 0x81
ALT_REQ_MAGIC = 0x08  # flex framing: byte 2 = framing extras length, byte 3 = keylen
ALT_RES_MAGIC = 0x18
SERVER_REQ_MAGIC = 0x82  # server-initiated request (push) on a duplex connection

DATATYPE_JSON = 0x01
DATATYPE_SNAPPY = 0x02
DATATYPE_XATTR = 0x04


class Op:
    """Request opcodes (the ones the mock knows by name)."""

    GET = 0x00
    SET = 0x01
    ADD = 0x02
    REPLACE = 0x03
    DELETE = 0x04
    INCREMENT = 0x05
    DECREMENT = 0x06
    QUIT = 0x07
    FLUSH = 0x08
    GETQ = 0x09
    NOOP = 0x0A
    VERSION = 0x0B
    GETK = 0x0C
    GETKQ = 0x0D
    APPEND = 0x0E
    PREPEND = 0x0F
    STAT = 0x10
    SETQ = 0x11
    ADDQ = 0x12
    REPLACEQ = 0x13
    DELETEQ = 0x14
    INCREMENTQ = 0x15
    DECREMENTQ = 0x16
    QUITQ = 0x17
    FLUSHQ = 0x18
    APPENDQ = 0x19
    PREPENDQ = 0x1A
    VERBOSITY = 0x1B
    TOUCH = 0x1C
    GAT = 0x1D
    GATQ = 0x1E
    HELLO = 0x1F
    SASL_LIST_MECHS = 0x20
    SASL_AUTH = 0x21
    SASL_STEP = 0x22
    GET_REPLICA = 0x83
    SELECT_BUCKET = 0x89
    OBSERVE_SEQNO = 0x91
    OBSERVE = 0x92
    EVICT = 0x93
    GET_LOCKED = 0x94
    UNLOCK = 0x95
    GET_META = 0xA0
    GET_CLUSTER_CONFIG = 0xB5
    GET_RANDOM_KEY = 0xB6
    GET_COLLECTIONS_MANIFEST = 0xBA
    GET_COLLECTION_ID = 0xBB
    SUBDOC_GET = 0xC5
    SUBDOC_EXISTS = 0xC6
    SUBDOC_DICT_ADD = 0xC7
    SUBDOC_DICT_UPSERT = 0xC8
    SUBDOC_DELETE = 0xC9
    SUBDOC_REPLACE = 0xCA
    SUBDOC_ARRAY_PUSH_LAST = 0xCB
    SUBDOC_ARRAY_PUSH_FIRST = 0xCC
    SUBDOC_ARRAY_INSERT = 0xCD
    SUBDOC_ARRAY_ADD_UNIQUE = 0xCE
    SUBDOC_COUNTER = 0xCF
    SUBDOC_MULTI_LOOKUP = 0xD0
    SUBDOC_MULTI_MUTATION = 0xD1
    SUBDOC_GET_COUNT = 0xD2
    GET_ERROR_MAP = 0xFE


class Status:
    """Response status codes."""

    SUCCESS = 0x00
    KEY_ENOENT = 0x01
    KEY_EEXISTS = 0x02
    E2BIG = 0x03
    EINVAL = 0x04
    NOT_STORED = 0x05
    DELTA_BADVAL = 0x06
    NOT_MY_VBUCKET = 0x07
    NO_BUCKET = 0x08
    LOCKED = 0x09
    NOT_LOCKED = 0x0E
    AUTH_STALE = 0x1F
    AUTH_ERROR = 0x20
    AUTH_CONTINUE = 0x21
    ERANGE = 0x22
    EACCESS = 0x24
    NOT_INITIALIZED = 0x25
    UNKNOWN_COMMAND = 0x81
    ENOMEM = 0x82
    NOT_SUPPORTED = 0x83
    EINTERNAL = 0x84
    EBUSY = 0x85
    ETMPFAIL = 0x86
    UNKNOWN_COLLECTION = 0x88
    UNKNOWN_SCOPE = 0x8C
    DURABILITY_INVALID_LEVEL = 0xA0
    DURABILITY_IMPOSSIBLE = 0xA1
    SYNC_WRITE_IN_PROGRESS = 0xA2
    SYNC_WRITE_AMBIGUOUS = 0xA3


class Feature:
    """HELLO feature codes."""

    TLS = 0x02
    TCP_NODELAY = 0x03
    MUTATION_SEQNO = 0x04
    TCP_DELAY = 0x05
    XATTR = 0x06
    XERROR = 0x07
    SELECT_BUCKET = 0x08
    SNAPPY = 0x0A
    JSON = 0x0B
    DUPLEX = 0x0C
    CLUSTERMAP_CHANGE_NOTIFICATION = 0x0D
    UNORDERED_EXECUTION = 0x0E
    TRACING = 0x0F
    ALT_REQUEST = 0x10
    SYNC_REPLICATION = 0x11
    COLLECTIONS = 0x12
    PRESERVE_TTL = 0x14


def _names(cls):
    return {v: k for k, v in vars(cls).items() if k.isupper()}


OPCODE_NAMES = _names(Op)
STATUS_NAMES = _names(Status)
FEATURE_NAMES = _names(Feature)
_OPCODE_BY_NAME = {k: v for v, k in OPCODE_NAMES.items()}
_OPCODE_BY_NAME.update({"INCR": Op.INCREMENT, "DECR": Op.DECREMENT, "GETL": Op.GET_LOCKED})


def opcode_from_name(name):
    """Return the opcode for ``name`` ("GET", "get", "0x00", "5" or an int)."""
    if isinstance(name, int):
        return name
    text = str(name).strip()
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return _OPCODE_BY_NAME[text.upper()]
    except KeyError:
        raise ValueError("unknown opcode %r" % (name,)) from None


_pack_header = HEADER.pack


def response(opcode, status, opaque, cas=0, extras=b"", key=b"", value=b"", datatype=0):
    """Encode one response packet."""
    return b"".join((
        _pack_header(RES_MAGIC, opcode, len(key), len(extras), datatype, status,
                     len(extras) + len(key) + len(value), opaque, cas),
        extras, key, value))


def request(opcode, key=b"", extras=b"", value=b"", vbucket=0, opaque=0, cas=0, datatype=0):
    """Encode one request packet (for tests and tools)."""
    if isinstance(key, str):
        key = key.encode()
    if isinstance(value, str):
        value = value.encode()
    return b"".join((
        _pack_header(REQ_MAGIC, opcode, len(key), len(extras), datatype, vbucket,
                     len(extras) + len(key) + len(value), opaque, cas),
        extras, key, value))


def vbucket_of(key, nvb):
    """libcouchbase's key -> vbucket hash (over the key without collection prefix)."""
    return (((zlib.crc32(key) >> 16) & 0x7FFF) % nvb)


def leb128_decode(buf):
    """Decode an unsigned LEB128 prefix: return (value, nbytes); nbytes 0 if incomplete."""
    value = 0
    shift = 0
    for i in range(min(len(buf), 5)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    return 0, 0


def leb128_encode(value):
    """Encode ``value`` as unsigned LEB128."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
