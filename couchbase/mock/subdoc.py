"""Sub-document commands: single-path (0xc5-0xcf, 0xd2) and multi-path (0xd0 lookup,
0xd1 mutation), on the JSON body and on extended attributes (xattrs), with the
``$document``/``$vbucket``/``$XTOC`` virtual attributes.

Documents are decoded with ``json`` and re-encoded compactly after a mutation: paths and
results match a real node; whitespace of untouched parts is not preserved.
"""

import json
import struct

from .kv import KEYED, _pack_header, _res, _status, handler
from .protocol import DATATYPE_JSON, RES_MAGIC, Status
from .store import MAX_ITEM_SIZE

# opcodes
GET, EXISTS, DICT_ADD, DICT_UPSERT, DELETE, REPLACE = 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA
PUSH_LAST, PUSH_FIRST, INSERT, ADD_UNIQUE, COUNTER, GET_COUNT = 0xCB, 0xCC, 0xCD, 0xCE, 0xCF, 0xD2
MULTI_LOOKUP, MULTI_MUTATION = 0xD0, 0xD1
GET_DOC, SET_DOC, DELETE_DOC = 0x00, 0x01, 0x04  # whole-document specs inside a multi command
LOOKUPS = frozenset((GET, EXISTS, GET_COUNT, GET_DOC))
MUTATIONS = frozenset((DICT_ADD, DICT_UPSERT, DELETE, REPLACE, PUSH_LAST, PUSH_FIRST, INSERT, ADD_UNIQUE,
                       COUNTER, SET_DOC, DELETE_DOC))

# path flags / document flags
MKDIR_P, XATTR, EXPAND_MACROS = 0x01, 0x04, 0x10
MKDOC, ADD, ACCESS_DELETED = 0x01, 0x02, 0x04

# statuses
PATH_ENOENT, PATH_MISMATCH, PATH_EINVAL, PATH_E2BIG = 0xC0, 0xC1, 0xC2, 0xC3
VALUE_CANTINSERT, DOC_NOTJSON, NUM_ERANGE, DELTA_EINVAL, PATH_EEXISTS = 0xC5, 0xC6, 0xC7, 0xC8, 0xC9
INVALID_COMBO, MULTI_PATH_FAILURE, SUCCESS_DELETED = 0xCB, 0xCC, 0xCD
XATTR_INVALID_FLAG_COMBO, UNKNOWN_MACRO, UNKNOWN_VATTR, CANT_MODIFY_VATTR = 0xCE, 0xD0, 0xD1, 0xD2
MULTI_PATH_FAILURE_DELETED, INVALID_XATTR_ORDER = 0xD3, 0xD4

MAX_PATHS = 16
MAX_PATH_LEN = 1024
MAX_DEPTH = 32
_INT64 = (-(1 << 63), (1 << 63) - 1)


class SubdocError(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


def parse_path(path):
    """Split a sub-document path into keys (str) and array indexes (int)."""
    if len(path) > MAX_PATH_LEN:
        raise SubdocError(PATH_E2BIG)
    comps = []
    i, n = 0, len(path)
    expect_name = True
    while i < n:
        c = path[i]
        if c == "[":
            end = path.find("]", i)
            if end < 0:
                raise SubdocError(PATH_EINVAL)
            text = path[i + 1:end]
            if not text or not (text.isdigit() or text == "-1"):
                raise SubdocError(PATH_EINVAL)
            comps.append(int(text))
            i = end + 1
            expect_name = False
        elif c == ".":
            if expect_name or i + 1 >= n:
                raise SubdocError(PATH_EINVAL)
            i += 1
            expect_name = True
        else:
            if not expect_name:
                raise SubdocError(PATH_EINVAL)
            if c == "`":
                name = []
                i += 1
                while True:
                    end = path.find("`", i)
                    if end < 0:
                        raise SubdocError(PATH_EINVAL)
                    name.append(path[i:end])
                    if path[end + 1:end + 2] == "`":  # `` is an escaped backtick
                        name.append("`")
                        i = end + 2
                        continue
                    i = end + 1
                    break
                comps.append("".join(name))
            else:
                j = i
                while j < n and path[j] not in ".[`":
                    j += 1
                comps.append(path[i:j])
                i = j
            expect_name = False
    if expect_name and comps:
        raise SubdocError(PATH_EINVAL)
    if len(comps) > MAX_DEPTH:
        raise SubdocError(PATH_E2BIG)
    return comps


def _step(node, comp):
    if isinstance(comp, int):
        if not isinstance(node, list):
            raise SubdocError(PATH_MISMATCH)
        if comp == -1:
            if not node:
                raise SubdocError(PATH_ENOENT)
            return node[-1]
        if comp >= len(node):
            raise SubdocError(PATH_ENOENT)
        return node[comp]
    if not isinstance(node, dict):
        raise SubdocError(PATH_MISMATCH)
    if comp not in node:
        raise SubdocError(PATH_ENOENT)
    return node[comp]


def resolve(root, comps):
    node = root
    for comp in comps:
        node = _step(node, comp)
    return node


def _parent(root, comps, mkdir):
    """The container holding the last component (created with ``mkdir``: MKDIR_P)."""
    node = root
    for idx, comp in enumerate(comps[:-1]):
        try:
            node = _step(node, comp)
        except SubdocError as err:
            creatable = mkdir and isinstance(comp, str) and isinstance(node, dict)
            if err.status != PATH_ENOENT or not creatable:
                raise
            # create the rest as nested objects (array indexes cannot be created)
            if any(isinstance(c, int) for c in comps[idx + 1:-1]):
                raise
            for c in comps[idx:-1]:
                node[c] = {}
                node = node[c]
            return node
    return node


def _depth(value, limit=MAX_DEPTH):
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return True
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return False


def _one_value(raw):
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SubdocError(VALUE_CANTINSERT) from None
    return value


def _many_values(raw):
    try:
        values = json.loads(b"[" + raw + b"]")
    except (ValueError, UnicodeDecodeError):
        raise SubdocError(VALUE_CANTINSERT) from None
    if not values:
        raise SubdocError(VALUE_CANTINSERT)
    return values


def _dumps(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _primitive(v):
    return v is None or isinstance(v, (str, int, float, bool))


def mutate(holder, op, comps, raw, flags):
    """Apply one mutation to ``holder[0]`` (the document); return the result bytes or None."""
    mkdir = bool(flags & MKDIR_P)
    root = holder[0]
    if op in (PUSH_LAST, PUSH_FIRST):
        values = _many_values(raw)
        if not comps:
            target = root
        else:
            parent = _parent(root, comps, mkdir)
            try:
                target = _step(parent, comps[-1])
            except SubdocError as err:
                if err.status != PATH_ENOENT or not mkdir or not isinstance(parent, dict):
                    raise
                target = parent[comps[-1]] = []
        if not isinstance(target, list):
            raise SubdocError(PATH_MISMATCH)
        if op == PUSH_LAST:
            target.extend(values)
        else:
            target[:0] = values
        return None
    if not comps:
        raise SubdocError(PATH_EINVAL)  # the rest need a path below the root
    parent = _parent(root, comps, mkdir)
    last = comps[-1]
    if op in (DICT_ADD, DICT_UPSERT):
        if isinstance(last, int):
            raise SubdocError(PATH_EINVAL)
        if not isinstance(parent, dict):
            raise SubdocError(PATH_MISMATCH)
        value = _one_value(raw)
        if op == DICT_ADD and last in parent:
            raise SubdocError(PATH_EEXISTS)
        parent[last] = value
        return None
    if op == REPLACE:
        value = _one_value(raw)
        _step(parent, last)  # must exist
        if isinstance(last, int):
            parent[last if last >= 0 else len(parent) - 1] = value
        else:
            parent[last] = value
        return None
    if op == DELETE:
        _step(parent, last)
        if isinstance(last, int):
            del parent[last]
        else:
            del parent[last]
        return None
    if op == INSERT:
        if not isinstance(last, int) or last < 0:
            raise SubdocError(PATH_EINVAL)
        if not isinstance(parent, list):
            raise SubdocError(PATH_MISMATCH)
        if last > len(parent):
            raise SubdocError(PATH_ENOENT)
        parent[last:last] = _many_values(raw)
        return None
    if op == ADD_UNIQUE:
        value = _one_value(raw)
        if not _primitive(value):
            raise SubdocError(VALUE_CANTINSERT)
        try:
            target = _step(parent, last)
        except SubdocError as err:
            if err.status != PATH_ENOENT or not mkdir or not isinstance(parent, dict):
                raise
            target = parent[last] = []
        if not isinstance(target, list) or not all(_primitive(v) for v in target):
            raise SubdocError(PATH_MISMATCH)
        if any(v == value and type(v) is type(value) for v in target):
            raise SubdocError(PATH_EEXISTS)
        target.append(value)
        return None
    if op == COUNTER:
        text = raw.decode("ascii", "replace")
        if not text or not text.lstrip("-").isdigit() or text.startswith("+"):
            raise SubdocError(DELTA_EINVAL)
        delta = int(text)
        if delta == 0 or not _INT64[0] <= delta <= _INT64[1]:
            raise SubdocError(DELTA_EINVAL)
        try:
            current = _step(parent, last)
        except SubdocError as err:
            if err.status != PATH_ENOENT or not isinstance(parent, dict) or isinstance(last, int):
                raise
            current = 0
        if isinstance(current, bool) or not isinstance(current, int):
            raise SubdocError(PATH_MISMATCH)
        new = current + delta
        if not _INT64[0] <= new <= _INT64[1]:
            raise SubdocError(NUM_ERANGE)
        if isinstance(last, int):
            parent[last if last >= 0 else len(parent) - 1] = new
        else:
            parent[last] = new
        return str(new).encode()
    raise SubdocError(Status.UNKNOWN_COMMAND)


def lookup(root, op, comps):
    target = resolve(root, comps)
    if op == GET:
        return _dumps(target)
    if op == EXISTS:
        return b""
    if isinstance(target, (dict, list)):
        return str(len(target)).encode()
    raise SubdocError(PATH_MISMATCH)


# ---- virtual attributes and macros ----------------------------------------------------------

def _byteswap_hex(value):
    return "0x%016x" % int.from_bytes(value.to_bytes(8, "big"), "little")


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _crc32c(data):
    """CRC-32C (Castagnoli), which ${Mutation.value_crc32c} and $document.value_crc32c use."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _vattr(conn, item, name):
    if name == "$document":
        store = conn.bucket.store
        datatype = ["json"] if item.datatype & DATATYPE_JSON else ["raw"]
        if item.xattrs:
            datatype.append("xattr")
        return {"CAS": _byteswap_hex(item.cas), "vbucket_uuid": _byteswap_hex(store.vbuuid(item.vb)),
                "seqno": _byteswap_hex(item.seqno), "revid": str(item.seqno), "exptime": int(item.exp),
                "value_bytes": len(item.value), "value_crc32c": "0x%08x" % _crc32c(item.value),
                "datatype": datatype, "deleted": item.deleted, "flags": item.flags,
                "last_modified": str(item.cas // 1000000000)}
    if name == "$vbucket":
        return {"HLC": {"now": str(int(conn.bucket.store.clock.now())), "mode": "real"}}
    if name == "$XTOC":
        return sorted(item.xattrs or ())
    raise SubdocError(UNKNOWN_VATTR)


_MACROS = ('"${Mutation.CAS}"', '"${Mutation.seqno}"', '"${Mutation.value_crc32c}"')


def _expand_macros(raw):
    text = raw.decode("utf-8", "replace")
    rest = text
    for macro in _MACROS:
        rest = rest.replace(macro, "")
    if "${" in rest:
        raise SubdocError(UNKNOWN_MACRO)
    return text


# ---- the commands ---------------------------------------------------------------------------

def _load_body(item):
    if item.deleted:
        raise SubdocError(PATH_ENOENT)  # a tombstone has no body
    try:
        return json.loads(item.value)
    except (ValueError, UnicodeDecodeError):
        raise SubdocError(DOC_NOTJSON) from None


def _find(conn, key, doc_flags):
    """(item, deleted) for a lookup; deleted documents only with ACCESS_DELETED."""
    store = conn.bucket.store
    item = store.get(key)
    if item is not None:
        if item.locked_until and store.is_locked(item):
            return item, False, 0xFFFFFFFFFFFFFFFF
        return item, False, item.cas
    if doc_flags & ACCESS_DELETED:
        item = store.tombstones.get(key)
        if item is not None:
            return item, True, item.cas
    return None, False, 0


def _lookup_spec(conn, item, body_cache, op, flags, path):
    """Result bytes of one lookup spec (raises SubdocError)."""
    if op == GET_DOC:
        if path or flags & XATTR:
            raise SubdocError(PATH_EINVAL)
        if item.deleted:
            raise SubdocError(PATH_ENOENT)
        return item.value
    comps = parse_path(path)
    if flags & XATTR:
        if not comps or not isinstance(comps[0], str):
            raise SubdocError(PATH_EINVAL)
        name = comps[0]
        if name.startswith("$"):
            return lookup(_vattr(conn, item, name), op, comps[1:])
        if not item.xattrs or name not in item.xattrs:
            raise SubdocError(PATH_ENOENT)
        return lookup(item.xattrs[name], op, comps[1:])
    if "body" not in body_cache:
        try:
            body_cache["body"] = _load_body(item)
        except SubdocError as err:
            body_cache["body"] = err
    body = body_cache["body"]
    if isinstance(body, SubdocError):
        raise body
    return lookup(body, op, comps)


def _single_extras(extras):
    """(pathlen, flags, expiry, doc_flags) from a single-path command's extras."""
    n = len(extras)
    if n not in (3, 4, 7, 8):
        raise SubdocError(Status.EINVAL)
    pathlen, flags = struct.unpack_from(">HB", extras)
    exp = struct.unpack_from(">I", extras, 3)[0] if n >= 7 else 0
    doc_flags = extras[-1] if n in (4, 8) else 0
    return pathlen, flags, exp, doc_flags


@handler(GET, EXISTS, GET_COUNT, kind=KEYED)
def _single_lookup(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    try:
        pathlen, flags, _, doc_flags = _single_extras(extras)
    except SubdocError as err:
        return _status(opcode, err.status, opaque)
    if pathlen != len(value):
        return _status(opcode, Status.EINVAL, opaque)
    item, deleted, rcas = _find(conn, key, doc_flags)
    if item is None:
        return _status(opcode, Status.KEY_ENOENT, opaque)
    try:
        result = _lookup_spec(conn, item, {}, opcode, flags, value.decode("utf-8", "replace"))
    except SubdocError as err:
        return _status(opcode, err.status, opaque)
    return _res(opcode, SUCCESS_DELETED if deleted else 0, opaque, rcas, value=result)


@handler(MULTI_LOOKUP, kind=KEYED)
def _multi_lookup(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    if len(extras) > 1:
        return _status(opcode, Status.EINVAL, opaque)
    doc_flags = extras[0] if extras else 0
    specs = []
    pos, n = 0, len(value)
    seen_body = False
    while pos < n:
        if pos + 4 > n:
            return _status(opcode, Status.EINVAL, opaque)
        op, flags, pathlen = struct.unpack_from(">BBH", value, pos)
        path = value[pos + 4:pos + 4 + pathlen]
        if len(path) != pathlen or op not in LOOKUPS:
            return _status(opcode, Status.EINVAL, opaque)
        if flags & XATTR:
            if seen_body:
                return _status(opcode, INVALID_XATTR_ORDER, opaque)
        else:
            seen_body = True
        specs.append((op, flags, path.decode("utf-8", "replace")))
        pos += 4 + pathlen
    if not specs or len(specs) > MAX_PATHS:
        return _status(opcode, INVALID_COMBO, opaque)
    item, deleted, rcas = _find(conn, key, doc_flags)
    if item is None:
        return _status(opcode, Status.KEY_ENOENT, opaque)
    out = []
    failed = False
    cache = {}
    for op, flags, path in specs:
        try:
            result = _lookup_spec(conn, item, cache, op, flags, path)
            out.append(struct.pack(">HI", 0, len(result)) + result)
        except SubdocError as err:
            failed = True
            out.append(struct.pack(">HI", err.status, 0))
    if failed:
        status = MULTI_PATH_FAILURE_DELETED if deleted else MULTI_PATH_FAILURE
    else:
        status = SUCCESS_DELETED if deleted else 0
    return _res(opcode, status, opaque, rcas, value=b"".join(out))


def _mutate_document(conn, opcode, key, vb, cas, exp, doc_flags, specs):
    """Apply mutation specs atomically. Returns (status, item, results, failed_index)."""
    store = conn.bucket.store
    item = store.get(key)
    create = False
    if item is None:
        if not doc_flags & (MKDOC | ADD) or cas:
            return Status.KEY_ENOENT, None, None, None
        create = True
    else:
        if doc_flags & ADD:
            return Status.KEY_EEXISTS, None, None, None
        status = store.check_mutation(item, cas)
        if status:
            return (conn.locked_status(True) if status == Status.LOCKED else status), None, None, None
    body = None if create else item.value
    xattrs = {} if create or not item.xattrs else json.loads(json.dumps(item.xattrs))
    holder = None
    results = []
    delete_doc = False
    macros = []
    for index, (op, flags, path, raw) in enumerate(specs):
        try:
            if op == SET_DOC:
                if path or flags & XATTR:
                    raise SubdocError(PATH_EINVAL)
                body, holder = raw, None
                continue
            if op == DELETE_DOC:
                if path or flags & XATTR:
                    raise SubdocError(PATH_EINVAL)
                delete_doc = True
                continue
            comps = parse_path(path)
            if flags & XATTR:
                if not comps or not isinstance(comps[0], str) or not comps[0]:
                    raise SubdocError(PATH_EINVAL)
                if comps[0].startswith("$"):
                    raise SubdocError(CANT_MODIFY_VATTR if comps[0] in ("$document", "$vbucket", "$XTOC")
                                      else UNKNOWN_VATTR)
                if flags & EXPAND_MACROS:
                    text = _expand_macros(raw)
                    for macro in _MACROS:
                        if macro in text:
                            macros.append(comps)
                    raw = text.encode()
                container = [xattrs]
                if len(comps) == 1 and op in (DELETE,):
                    if comps[0] not in xattrs:
                        raise SubdocError(PATH_ENOENT)
                    del xattrs[comps[0]]
                    continue
                result = mutate(container, op, comps, raw, flags | (MKDIR_P if len(comps) == 1 else 0))
            else:
                if flags & EXPAND_MACROS:
                    raise SubdocError(XATTR_INVALID_FLAG_COMBO)
                if holder is None:
                    if create and body is None:
                        # a new document's root follows the first path: object or array
                        holder = [[] if op in (PUSH_LAST, PUSH_FIRST) and not path else {}]
                    else:
                        try:
                            holder = [json.loads(body)] if body else None
                        except (ValueError, UnicodeDecodeError):
                            holder = None
                        if holder is None:
                            raise SubdocError(DOC_NOTJSON)
                result = mutate(holder, op, comps, raw, flags)
                body = None
            if result is not None:
                results.append((index, result))
        except SubdocError as err:
            return MULTI_PATH_FAILURE, None, None, (index, err.status)
    if holder is not None:
        root = holder[0]
        if _depth(root):
            return MULTI_PATH_FAILURE, None, None, (len(specs) - 1, 0xCA)
        body = _dumps(root)
    if body is None:
        body = b"{}" if create else item.value
    if len(body) > MAX_ITEM_SIZE:
        return Status.E2BIG, None, None, None
    if delete_doc:
        if create:
            return Status.KEY_ENOENT, None, None, None
        store.remove(key, item)
        return 0, item, results, None
    datatype = DATATYPE_JSON
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError):
        datatype = 0
    if create:
        item = store.insert(key, vb, body, 0, exp, datatype)
    else:
        item.value = body
        item.datatype = datatype
        store.updated(item, exp)
    item.xattrs = xattrs or None
    if macros:
        _apply_macros(item, macros, store)
    return 0, item, results, None


def _apply_macros(item, paths, store):
    expansions = {'"${Mutation.CAS}"': _byteswap_hex(item.cas),
                  '"${Mutation.seqno}"': _byteswap_hex(item.seqno),
                  '"${Mutation.value_crc32c}"': "0x%08x" % _crc32c(item.value)}
    for comps in paths:
        name = comps[0]
        text = json.dumps(item.xattrs[name])
        for macro, value in expansions.items():
            text = text.replace(macro, json.dumps(value))
        item.xattrs[name] = json.loads(text)


def _mutation_response(conn, opcode, opaque, item, body=b""):
    ext = conn.mutation_extras(item)
    header = _pack_header(RES_MAGIC, opcode, 0, len(ext), 0, 0, len(ext) + len(body), opaque, item.cas)
    return b"".join((header, ext, body))


@handler(DICT_ADD, DICT_UPSERT, DELETE, REPLACE, PUSH_LAST, PUSH_FIRST, INSERT, ADD_UNIQUE, COUNTER,
         kind=KEYED)
def _single_mutation(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    try:
        pathlen, flags, exp, doc_flags = _single_extras(extras)
    except SubdocError as err:
        return _status(opcode, err.status, opaque)
    if pathlen > len(value):
        return _status(opcode, Status.EINVAL, opaque)
    path = value[:pathlen].decode("utf-8", "replace")
    status, item, results, failure = _mutate_document(conn, opcode, key, vb, cas, exp, doc_flags,
                                                      [(opcode, flags, path, value[pathlen:])])
    if failure is not None:
        return _status(opcode, failure[1], opaque)
    if status:
        return _status(opcode, status, opaque)
    return _mutation_response(conn, opcode, opaque, item, results[0][1] if results else b"")


@handler(MULTI_MUTATION, kind=KEYED)
def _multi_mutation(conn, opcode, key, extras, value, datatype, vb, opaque, cas):
    n = len(extras)
    if n not in (0, 1, 4, 5):
        return _status(opcode, Status.EINVAL, opaque)
    exp = struct.unpack_from(">I", extras)[0] if n >= 4 else 0
    doc_flags = extras[-1] if n in (1, 5) else 0
    specs = []
    pos, total = 0, len(value)
    seen_body = False
    while pos < total:
        if pos + 8 > total:
            return _status(opcode, Status.EINVAL, opaque)
        op, flags, pathlen, vallen = struct.unpack_from(">BBHI", value, pos)
        start = pos + 8
        path = value[start:start + pathlen]
        raw = value[start + pathlen:start + pathlen + vallen]
        if len(path) != pathlen or len(raw) != vallen or op not in MUTATIONS:
            return _status(opcode, Status.EINVAL, opaque)
        if flags & XATTR:
            if seen_body:
                return _status(opcode, INVALID_XATTR_ORDER, opaque)
        else:
            seen_body = True
        specs.append((op, flags, path.decode("utf-8", "replace"), raw))
        pos = start + pathlen + vallen
    if not specs or len(specs) > MAX_PATHS:
        return _status(opcode, INVALID_COMBO, opaque)
    status, item, results, failure = _mutate_document(conn, opcode, key, vb, cas, exp, doc_flags, specs)
    if failure is not None:
        return _res(opcode, MULTI_PATH_FAILURE, opaque, value=struct.pack(">BH", *failure))
    if status:
        return _status(opcode, status, opaque)
    body = b"".join(struct.pack(">BHI", index, 0, len(res)) + res for index, res in results)
    return _mutation_response(conn, opcode, opaque, item, body)


__all__ = ["parse_path", "SubdocError"]
