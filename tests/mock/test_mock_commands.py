"""The mock's control commands are defined once: the MockCluster method, the
HTTP route, /mock/help, --help, the docs' and the README's lists and the type
stub all come from (or are checked against) the one registry."""

import ast
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import typing
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import couchbase.mock
from couchbase.mock import BucketError, MockCluster, errors
from couchbase.mock.cluster import MANGLE_FIELDS, ClusterCore
from couchbase.mock.commands import COMMANDS, command, http_arguments, lookup
from couchbase.mock.protocol import Op

ROOT = Path(__file__).resolve().parent.parent.parent
MOCK_DIR = Path(couchbase.mock.__file__).parent

# One call of every command, in an order a three-node cluster accepts, with
# values other than the defaults so that each parameter's effect shows.
CALLS = [
    ("failover", {"node_index": 2}),
    ("restart", {"node_index": 2}),
    ("add_node", {"rebalance": False}),
    ("rebalance", {}),
    ("drop_connections", {"node_index": 1}),
    ("hiccup", {"msecs": 5, "offset": 3}),
    ("hiccup", {"msecs": 7, "offset": 0, "node_index": 1}),
    ("stall", {"on": False}),
    ("stall", {"on": True, "node_index": 2}),
    ("stall", {"on": False, "node_index": 2}),
    ("replication_delay", {"lag_ms": 20, "persist_ms": 30}),
    ("durability_frames", {"clear": True}),
    ("truncate", {"limit": 100, "close": False}),
    ("opfail", {"status": 0x86, "count": 2, "opcode": "GET", "bucket": "default"}),
    ("mangle", {"key": "k", "count": 1, "body": b"\x00\xff", "close": True, "status": 0x86, "cas": 7}),
    ("time_travel", {"seconds": 1.5}),
    ("create_bucket", {"name": "extra", "password": "pw", "bucket_type": "memcached", "replicas": 0,
                       "ram_quota_mb": 200, "flush_enabled": False}),
    ("flush_bucket", {"name": "extra"}),
    ("create_user", {"name": "alice", "password": "alicepw", "roles": ["bucket_full_access[default]",
                                                                      "ro_admin"]}),
    ("set_sasl_mechanisms", {"mechanisms": ["PLAIN", "SCRAM-SHA1"]}),
    ("keyinfo", {"key": "k", "bucket": "default"}),
    ("info", {}),
    ("help", {}),
    ("delete_user", {"name": "alice"}),
    ("delete_bucket", {"name": "extra"}),
]


def _http_text(value):
    """A Python argument as the HTTP parameter text the route converts back."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return ",".join(value)
    return "" if value is None else str(value)


def _http(mock, name, params=None, method="GET"):
    url = "http://%s:%d/mock/%s" % (mock.host, mock.port, name)
    data = None
    if params and method == "GET":
        url += "?" + urllib.parse.urlencode(params)
    elif params:
        data = urllib.parse.urlencode(params).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _portless(result, mock):
    """``result`` with this cluster's port numbers replaced by their node index."""
    ports = {p: '"node%d"' % i for i, p in enumerate(mock.mgmt_ports)}
    ports.update({p: '"kv%d"' % i for i, p in enumerate(mock.kv_ports)})
    text = json.dumps(result, sort_keys=True)
    return json.loads(re.sub(r"\b\d{4,5}\b", lambda m: ports.get(int(m.group()), m.group()), text))


def _state(mock):
    """What the commands above change, read from the loop-side state."""
    core = mock.core
    bucket = core.buckets.get("extra")
    return {
        "failed": [n.failed for n in core.nodes], "balanced": core.balanced, "rev": core.rev,
        "hiccup": [(n.hiccup_ms, n.hiccup_offset) for n in core.nodes],
        "stalled": [n.stalled for n in core.nodes],
        "replication": (core.replication_lag_ms, core.persist_ms), "durability_log": core.durability_log,
        "truncate": (core.truncate_limit, core.truncate_close),
        "opfails": [(r.status, r.count, r.opcode, r.bucket) for r in core.opfails],
        "mangles": {k: (r.fields, r.body, r.close, r.count) for k, r in core.mangles.items()},
        "clock": core.clock.offset, "mechanisms": core.sasl_mechanisms,
        "users": {u.name: (u.password, u.roles) for u in core.users.values()},
        "extra": bucket and (bucket.password, bucket.bucket_type, bucket.replicas, bucket.ram_quota_mb,
                             bucket.flush_enabled),
    }


# The commands of a TLS cluster (tls.py), run on one in the same lockstep.
TLS_CALLS = [
    ("tls_fault", {"fault": "expired", "node_index": 1}),
    ("tls_fault", {"fault": "wrong_host"}),
    ("client_certificate", {"user": "Administrator"}),
    ("tls_fault", {"fault": None, "node_index": 0}),
]


def test_the_calls_cover_every_command():
    assert sorted({name for name, _ in CALLS + TLS_CALLS}) == sorted(COMMANDS)


def test_the_tls_commands_in_process_and_over_http_alike():
    kw = {"nodes": 2, "tls": True}
    with MockCluster(**kw) as direct, MockCluster(**kw) as remote:
        for name, params in TLS_CALLS:
            result = getattr(direct, name)(**params)
            status, reply = _http(remote, name, {k: _http_text(v) for k, v in params.items()})
            assert status == 200 and reply.pop("status") == "ok", (name, reply)
            # each cluster writes its certificates to a directory of its own
            assert {k: os.path.basename(str(v)) if k in ("cert", "key") else v for k, v in reply.items()} == {
                k: os.path.basename(str(v)) if k in ("cert", "key") else v for k, v in result.items()}, name
            assert [n.tls_fault for n in remote.core.nodes] == [n.tls_fault for n in direct.core.nodes], name
        assert [n.tls_fault for n in direct.core.nodes] == [None, "wrong_host"]


def test_every_command_in_process_and_over_http_with_the_same_parameters():
    # two identical clusters, one driven by the methods, one over HTTP, in lockstep
    kw = {"nodes": 3, "buckets": {"default": ""}, "vbuckets": 64}
    with MockCluster(**kw) as direct, MockCluster(**kw) as remote:
        for name, params in CALLS:
            result = getattr(direct, name)(**params)
            status, reply = _http(remote, name, {k: _http_text(v) for k, v in params.items()})
            assert status == 200 and reply.pop("status") == "ok", (name, reply)
            assert _portless(reply, remote) == _portless(result, direct), name
            assert _state(remote) == _state(direct), name
    assert _state(direct)["opfails"] == [(0x86, 2, Op.GET, "default")]


def test_every_alias_names_the_same_command_and_parameter():
    for cmd in COMMANDS.values():
        for alias in cmd.aliases:
            assert lookup(alias) is cmd and lookup(alias.upper()) is cmd
        for p in cmd.params:
            text = "10"  # an int, a float, a bool, hex bytes and a str alike
            expected = http_arguments(cmd, {p.name: text, **_required_of(cmd, p)})
            for alias in p.aliases:
                assert http_arguments(cmd, {alias.upper(): text, **_required_of(cmd, p)}) == expected


def _required_of(cmd, but):
    return {p.name: "10" for p in cmd.params if p.required and p is not but}


def test_http_values_are_converted_by_annotation():
    hiccup, opfail, mangle = COMMANDS["hiccup"], COMMANDS["opfail"], COMMANDS["mangle"]
    assert http_arguments(hiccup, {"MS": "0x10", "offset": "08"}) == {"msecs": 16, "offset": 8}
    assert http_arguments(opfail, {"code": "0x86", "count": "-1", "op": "GET", "bucket": ""}) == {
        "status": 0x86, "count": -1, "opcode": "GET", "bucket": None}
    assert http_arguments(mangle, {"key": "k", "body": "00ff", "close": "yes", "cas": "0x7"}) == {
        "key": "k", "body": b"\x00\xff", "close": True, "cas": 7}
    assert http_arguments(COMMANDS["create_user"], {"name": "u", "password": "p", "roles": "a,b[c]"})[
        "roles"] == ["a", "b[c]"]
    assert http_arguments(COMMANDS["time_travel"], {"secs": "2.5"}) == {"seconds": 2.5}


def test_a_bad_http_value_names_the_parameter(mock1):
    status, reply = _http(mock1, "hiccup", {"msecs": "soon"})
    assert status == 400 and reply["error"] == "parameter 'msecs': 'soon' is not int"
    status, reply = _http(mock1, "hiccup")
    assert status == 400 and reply["error"] == "missing parameter 'msecs'"
    status, reply = _http(mock1, "mangle", {"key": "k", "body": "zz"})
    assert status == 400 and "'body'" in reply["error"]
    assert mock1.core.mangles == {}  # nothing half-applied
    status, reply = _http(mock1, "no_such_command")
    assert status == 404 and "/mock/help" in reply["error"]


def test_help_gives_every_command_with_its_parameters(mock1):
    status, reply = _http(mock1, "help")
    assert status == 200 and list(reply["commands"]) == list(COMMANDS)
    assert reply["commands"]["hiccup"] == {
        "summary": COMMANDS["hiccup"].summary, "aliases": [],
        "params": [{"name": "msecs", "type": "int", "required": True, "aliases": ["ms"]},
                   {"name": "offset", "type": "int", "required": False, "aliases": [], "default": 0},
                   {"name": "node_index", "type": "int | None", "required": False,
                    "aliases": ["idx", "index", "node"], "default": None}]}
    assert reply["commands"]["restart"]["aliases"] == ["respawn"]
    for name, entry in reply["commands"].items():
        func = getattr(ClusterCore, name)
        assert entry["summary"] == inspect.getdoc(func).splitlines()[0] != ""
        expected = list(inspect.signature(func).parameters)[1:]
        assert [p["name"] for p in entry["params"]] == expected
        assert all(p["type"] and ("default" in p) != p["required"] for p in entry["params"])
    assert mock1.help() == {"commands": reply["commands"]}


def test_the_methods_have_the_commands_signature_and_docstring():
    for name, cmd in COMMANDS.items():
        method = getattr(MockCluster, name)
        hints = typing.get_type_hints(cmd.func)
        sig = inspect.signature(method)
        assert list(sig.parameters) == list(inspect.signature(cmd.func).parameters)
        assert {p.name: p.annotation for p in sig.parameters.values() if p.name != "self"} == {
            k: v for k, v in hints.items() if k != "return"}
        assert sig.return_annotation == hints["return"] and method.__doc__ == cmd.func.__doc__
        assert typing.get_type_hints(method) == hints


def test_a_method_checks_its_arguments_in_the_callers_thread(mock1):
    with pytest.raises(TypeError, match="node_index"):
        mock1.failover()
    with pytest.raises(TypeError, match="stauts"):
        mock1.mangle("k", stauts=1)
    stopped = MockCluster()
    with pytest.raises(RuntimeError, match="not running"):
        stopped.rebalance()


def test_mangles_keywords_are_the_header_fields():
    params = inspect.signature(ClusterCore.mangle).parameters.values()
    assert [p.name for p in params if p.kind == p.KEYWORD_ONLY] == list(MANGLE_FIELDS)


def test_a_command_is_refused_unless_fully_defined():
    count = len(COMMANDS)

    async def unannotated(self, x):
        """Doc."""

    async def undocumented(self) -> None:
        pass

    def not_async(self) -> None:
        """Doc."""

    async def failover(self) -> None:
        """Doc."""

    async def fresh(self, x: int) -> None:
        """Doc."""

    for func, kwargs, aliases in [(unannotated, {}, ()), (undocumented, {}, ()), (not_async, {}, ()),
                                  (failover, {}, ()), (fresh, {"y": ("z",)}, ()),
                                  (fresh, {}, ("respawn",)), (fresh, {}, ("fresh",))]:
        with pytest.raises(TypeError):
            command(*aliases, **kwargs)(func)
    assert len(COMMANDS) == count and lookup("fresh") is None


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "couchbase.mock", "--help"], capture_output=True, text=True,
                         timeout=30, env=dict(os.environ, COLUMNS="100")).stdout
    for name, cmd in COMMANDS.items():
        assert re.search(r"^  %s\(" % name, out, re.M), name
        assert " ".join(cmd.summary.replace("``", "").split()[:6]) in " ".join(out.split()), name


def test_readme_lists_every_command():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("<!-- mock:start -->"):readme.index("<!-- mock:end -->")]
    paragraph = section[section.index("Its control methods"):].split("\n\n")[0]
    assert re.findall(r"`(\w+)`", paragraph) == list(COMMANDS)


def _generator():
    path = ROOT / "tools" / "generate_mock_stub.py"
    spec = importlib.util.spec_from_file_location("generate_mock_stub", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_type_stub_is_generated_from_the_runtime(tmp_path):
    gen = _generator()
    stub = MOCK_DIR / "mock_cluster.pyi"
    text = gen.render()
    assert text == gen.render()
    assert text == stub.read_text(encoding="utf-8"), "regenerate with: python tools/generate_mock_stub.py"
    assert gen.main(["-o", str(stub), "--check"]) == 0
    tree = ast.parse(text)
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    defined = {node.name for node in cls.body if isinstance(node, ast.FunctionDef)}
    assert set(COMMANDS) <= defined
    (tmp_path / "old.pyi").write_text(text.replace("def hiccup", "def hiccough"))
    assert gen.main(["-o", str(tmp_path / "old.pyi"), "--check"]) == 1


def test_bucket_error_has_its_own_module():
    assert BucketError is errors.BucketError and issubclass(BucketError, ValueError)
    imports = {}
    for name in ("cluster", "control", "rest"):
        tree = ast.parse((MOCK_DIR / (name + ".py")).read_text())
        imports[name] = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imports["rest"] & {"cluster"} and not imports["control"] & {"cluster", "rest"}
