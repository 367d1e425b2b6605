"""The control API over HTTP: ``/mock/COMMAND?k=v`` -> JSON, the same operations as the
in-process ``MockCluster`` methods. CouchbaseMock's command names are accepted as aliases."""

from .cluster import MANGLE_FIELDS, BucketError


def _bool(value, default=True):
    if value is None:
        return default
    return str(value).strip().lower() not in ("0", "false", "no", "off", "")


def _opt_int(value):
    return None if value in (None, "") else int(value)


def _int(value):
    return int(value, 0)


# command -> (coroutine method name, [(param, aliases, converter, default)])
_REQUIRED = object()
_COMMANDS = {
    "failover": ("failover", [("node_index", ("idx", "index", "node"), int, _REQUIRED)]),
    "restart": ("restart", [("node_index", ("idx", "index", "node"), int, _REQUIRED)]),
    "add_node": ("add_node", [("rebalance", (), _bool, True)]),
    "rebalance": ("rebalance", []),
    "hiccup": ("hiccup", [("msecs", ("ms",), int, _REQUIRED), ("offset", (), int, 0)]),
    "stall": ("stall", [("on", (), _bool, True)]),
    "truncate": ("truncate", [("limit", (), int, _REQUIRED), ("close", (), _bool, True)]),
    "opfail": ("opfail", [("status", ("code",), lambda v: int(v, 0), _REQUIRED),
                          ("count", (), int, _REQUIRED),
                          ("opcode", ("operation", "op"), str, None),
                          ("bucket", (), str, None)]),
    "mangle": ("mangle", [("key", (), str, _REQUIRED), ("count", (), int, -1),
                          ("body", (), bytes.fromhex, None), ("close", (), _bool, False)]
               + [(name, (), _int, None) for name in MANGLE_FIELDS]),
    "time_travel": ("time_travel", [("seconds", ("offset", "secs"), float, _REQUIRED)]),
    "drop_connections": ("drop_connections", [("node_index", ("idx", "index", "node"), _opt_int, None)]),
    "create_bucket": ("create_bucket", [("name", (), str, _REQUIRED),
                                        ("password", ("saslPassword",), str, ""),
                                        ("bucket_type", ("bucketType", "type"), str, "couchbase"),
                                        ("replicas", ("replicaNumber",), str, None),
                                        ("ram_quota_mb", ("ramQuotaMB",), str, 100),
                                        ("flush_enabled", ("flushEnabled",), _bool, True)]),
    "delete_bucket": ("delete_bucket", [("name", (), str, _REQUIRED)]),
    "flush_bucket": ("flush_bucket", [("name", ("bucket",), str, _REQUIRED)]),
    "create_user": ("create_user", [("name", (), str, _REQUIRED), ("password", (), str, _REQUIRED),
                                    ("roles", (), lambda v: [r for r in v.split(",") if r], ["admin"])]),
    "delete_user": ("delete_user", [("name", (), str, _REQUIRED)]),
    "set_sasl_mechanisms": ("set_sasl_mechanisms", [("mechanisms", ("mechs",), str, _REQUIRED)]),
    "keyinfo": ("keyinfo", [("key", (), str, _REQUIRED), ("bucket", (), str, "default")]),
}
_ALIASES = {"respawn": "restart", "mockinfo": "info", "get_mcports": "info", "addnode": "add_node",
            "timetravel": "time_travel", "dropconnections": "drop_connections"}


async def run_command(core, name, params):
    """Run control command ``name`` with string ``params``; returns (http_status, json_obj)."""
    cmd = name.strip().lower().replace("-", "_")
    cmd = _ALIASES.get(cmd, cmd)
    if cmd in ("info", "help"):
        if cmd == "help":
            return 200, {"status": "ok", "commands": sorted(_COMMANDS) + ["info", "help"]}
        return 200, dict(core.info(), status="ok")
    spec = _COMMANDS.get(cmd)
    if spec is None:
        return 404, {"status": "fail", "error": "unknown command %r" % name}
    method, args = spec
    lowered = {k.lower(): v for k, v in params.items()}
    kwargs = {}
    try:
        for pname, aliases, convert, default in args:
            value = None
            for candidate in (pname,) + aliases:
                if candidate.lower() in lowered:
                    value = lowered[candidate.lower()]
                    break
            if value is None:
                if default is _REQUIRED:
                    return 400, {"status": "fail", "error": "missing parameter %r" % pname}
                kwargs[pname] = default
            else:
                kwargs[pname] = convert(value)
        result = await getattr(core, method)(**kwargs)
    except BucketError as err:
        return 400, {"status": "fail", "error": str(err), "errors": err.errors}
    except (ValueError, TypeError, IndexError, KeyError) as err:
        return 400, {"status": "fail", "error": "%s: %s" % (type(err).__name__, err)}
    out = {"status": "ok"}
    if isinstance(result, dict):
        out.update(result)
    return 200, out
