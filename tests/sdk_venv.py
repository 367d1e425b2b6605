"""The official Couchbase Python SDK, in a venv of its own (it shares our
import name), for tests that check what independent clients accept. Its
version is pinned in requirements/peers.txt (tools/peers.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import peers  # noqa: E402

SDK_VERSION = peers.version("couchbase")


_checked = []  # the interpreter, once peers.ensure has checked it in this session


def sdk_python():
    """The venv's interpreter with the pinned SDK (made once, then cached;
    its version checked once per test session: each check imports the SDK).
    Skips the test, saying why, only when the venv cannot be made (no
    package index)."""
    if not _checked:
        try:
            _checked.append(peers.ensure("couchbase"))
        except peers.PeerUnavailable as e:
            pytest.skip(str(e))
    return _checked[0]


def run_sdk(script, *args, timeout=120):
    """Run script with the SDK's interpreter, outside our checkout; returns stdout."""
    res = subprocess.run([sdk_python(), script, *map(str, args)], capture_output=True, text=True,
                         cwd="/", env=peers.clean_env(), timeout=timeout)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-4000:])
    return res.stdout
