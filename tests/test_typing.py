"""Types reach users: a user's script passes ``mypy --strict`` with the types
the API documents, and ``inspect.signature`` works on every public call."""

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import couchbase
from couchbase import Connection, Couchbase
from couchbase.aio import AsyncConnection
from couchbase.mock import MockCluster

ROOT = Path(__file__).resolve().parent.parent


SCRIPTS = ("user_script.py", "mock_script.py")  # in tests/typing


@pytest.fixture(scope="module")
def strict_report():
    """``mypy --strict`` run once over every script of tests/typing (one start of mypy
    and one read of the standard library's stubs for all): (exit status, report). The
    package's own modules are followed silently, as mypy treats an installed package:
    what is checked is the user's code against our types."""
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--follow-imports=silent", *(f"tests/typing/{s}" for s in SCRIPTS)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, MYPYPATH=str(ROOT)))
    return proc.returncode, proc.stdout + proc.stderr


def _mypy_strict(report, script):
    """The script has no error in the report (and a failed run names some script)."""
    status, out = report
    lines = out.splitlines()
    assert not [line for line in lines if line.startswith(f"tests/typing/{script}:")], out
    assert status == 0 or any(line.startswith("tests/typing/") for line in lines), out


def test_a_users_script_type_checks_strictly(strict_report):
    _mypy_strict(strict_report, "user_script.py")


def test_a_users_script_driving_the_mock_type_checks_strictly(strict_report):
    """MockCluster's control methods, made at run time from the control
    commands, have their commands' types (the generated mock_cluster.pyi)."""
    _mypy_strict(strict_report, "mock_script.py")


def _public_callables():
    yield "Couchbase.connect", Couchbase.connect
    yield "Connection", Connection
    # the operations live in the core both connection kinds share (_lcb._Core)
    owners = [(cls, "Connection.") for cls in Connection.__mro__[:-1]]
    owners += [(cls, "AsyncConnection.") for cls in AsyncConnection.__mro__[:-1]]
    owners += [(MockCluster, "MockCluster."), (couchbase._lcb, "_lcb.")]
    for owner, prefix in owners:
        for name, member in vars(owner).items():
            # classes re-exported by a module (Result, Connection) are covered on their own
            if not name.startswith("_") and callable(member) and not isinstance(member, type):
                yield prefix + name, getattr(owner, name)


CALLABLES = list(_public_callables())


@pytest.mark.parametrize("func", [f for _, f in CALLABLES], ids=[n for n, _ in CALLABLES])
def test_inspect_signature_works(func):
    inspect.signature(func)


def test_the_constructors_signature_is_the_stubs():
    """Connection's signature (written in its docstring for inspect) and the
    stub's __init__ name the same parameters the same way."""
    stub = ast.parse((ROOT / "couchbase" / "_lcb.pyi").read_text())
    init = next(node for cls in stub.body if isinstance(cls, ast.ClassDef) and cls.name == "Connection"
                for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    stub_params = [(a.arg, "positional") for a in init.args.args[1:]] + \
                  [(a.arg, "keyword") for a in init.args.kwonlyargs]
    kinds = {inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional", inspect.Parameter.KEYWORD_ONLY: "keyword"}
    actual = [(p.name, kinds[p.kind]) for p in inspect.signature(Connection).parameters.values()]
    assert actual == stub_params


def test_the_asyncio_stubs_are_the_sync_ones_with_futures():
    """AsyncConnection's operation stubs are generated from Connection's
    (tools/generate_aio_stub.py): the committed ones are current."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "generate_aio_stub.py"), "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_every_operation_has_a_docstring_on_both_connection_kinds():
    for name in ("get", "lock", "set", "add", "replace", "append", "prepend", "delete", "touch",
                 "unlock", "incr", "decr", "stats", "close"):
        for cls in (Connection, AsyncConnection):
            doc = getattr(cls, name).__doc__ or ""
            assert len(doc.strip()) > 40, (cls.__name__, name)
