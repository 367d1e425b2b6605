"""The official Couchbase Python SDK 4.x (its own venv: it shares our import name) against a
three-node mock, bootstrapping over CCCP as it always does."""

import os

from sdk_venv import run_sdk

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mock_sdk_script.py")


def test_official_sdk_crud_subdoc_and_failover(mock3):
    connstr = "couchbase://%s:%d" % (mock3.host, mock3.kv_ports[0])
    out = run_sdk(SCRIPT, connstr, mock3.username, mock3.password, mock3.port)
    assert "SDK OK" in out, out[-2000:]
