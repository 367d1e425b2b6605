"""The control API over HTTP: ``/mock/COMMAND?k=v`` -> JSON. The commands, their parameters
and aliases (CouchbaseMock's names among them) come from the registry in ``commands``."""

from typing import Any

from .commands import ParameterError, http_arguments, lookup
from .errors import BucketError


async def run_command(core: Any, name: str, params: "dict[str, str]") -> "tuple[int, dict[str, Any]]":
    """Run control command ``name`` with string ``params``; returns (http_status, json_obj)."""
    cmd = lookup(name)
    if cmd is None:
        return 404, {"status": "fail", "error": "unknown command %r (see /mock/help)" % name}
    try:
        result = await cmd.func(core, **http_arguments(cmd, params))
    except ParameterError as err:
        return 400, {"status": "fail", "error": str(err)}
    except BucketError as err:
        return 400, {"status": "fail", "error": str(err), "errors": err.errors}
    except (ValueError, TypeError, IndexError, KeyError) as err:
        return 400, {"status": "fail", "error": "%s: %s" % (type(err).__name__, err)}
    return 200, dict({"status": "ok"}, **result)
