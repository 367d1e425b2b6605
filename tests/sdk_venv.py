"""The official Couchbase Python SDK, in a venv of its own (it shares our
import name), for tests that check what independent clients accept."""

import os
import subprocess
import sys

import pytest

SDK_VERSION = "4.6.3"
VENV = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                    "couchbase-lcb", "sdk-venv")


def clean_env():
    """An environment in which the venv's interpreter cannot see our package."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def sdk_python():
    """The venv's interpreter with couchbase==SDK_VERSION (made once, then cached).
    Skips the test, saying why, only when the package index cannot be reached."""
    python = os.path.join(VENV, "bin", "python")
    check = [python, "-c", "import importlib.metadata as m; print(m.version('couchbase'))"]
    if os.path.exists(python):
        res = subprocess.run(check, capture_output=True, text=True, cwd="/", env=clean_env())
        if res.stdout.strip() == SDK_VERSION:
            return python
    res = subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("cannot create a venv for the official SDK: %s" % res.stderr.strip()[-300:])
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
           "--timeout", "20", "--retries", "1"]  # fail fast when offline
    res = subprocess.run(pip + ["couchbase==%s" % SDK_VERSION], capture_output=True, text=True, cwd="/",
                         env=clean_env(), timeout=600)
    if res.returncode != 0:
        pytest.skip("cannot install couchbase==%s from the package index (offline?): %s"
                    % (SDK_VERSION, res.stderr.strip()[-300:]))
    return python


def run_sdk(script, *args, timeout=120):
    """Run script with the SDK's interpreter, outside our checkout; returns stdout."""
    res = subprocess.run([sdk_python(), script, *map(str, args)], capture_output=True, text=True,
                         cwd="/", env=clean_env(), timeout=timeout)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-4000:])
    return res.stdout
