"""Helpers shared by the mock's tests (module names start with mock_ to stay unique in tests/)."""

import contextlib
import json
import os
import shutil
import subprocess
import sys

import pytest


def find_tool(name):
    """Path of a libcouchbase tool; the tests fail (not skip) without it: CI installs them."""
    local = "/usr/local/bin/" + name
    path = shutil.which(name) or (local if os.path.exists(local) else None)
    if path is None:
        pytest.fail("%s not found: run scripts/install-libcouchbase" % name)
    return path


_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def checkout_env():
    """The environment with this checkout first on PYTHONPATH (for a child ``python -m``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@contextlib.contextmanager
def mock_process(*args):
    """``python -m couchbase.mock ARGS`` as a child process: yields (the process, its READY
    line's JSON) once it serves; killed, if it still runs, when the block ends."""
    proc = subprocess.Popen([sys.executable, "-m", "couchbase.mock", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=checkout_env())
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY "), (line, proc.stderr.read() if proc.poll() is not None else "")
        yield proc, json.loads(line[len("READY "):])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
