"""Helpers shared by the mock's tests (module names start with mock_ to stay unique in tests/)."""

import os
import shutil

import pytest


def find_tool(name):
    """Path of a libcouchbase tool; the tests fail (not skip) without it: CI installs them."""
    local = "/usr/local/bin/" + name
    path = shutil.which(name) or (local if os.path.exists(local) else None)
    if path is None:
        pytest.fail("%s not found: run scripts/install-libcouchbase" % name)
    return path
