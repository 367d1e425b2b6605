"""``python -m couchbase.mock`` as a subprocess."""

import signal
import subprocess
import sys

from mock_helpers import checkout_env, mock_process
from mock_kvclient import KVClient

from couchbase.mock.protocol import Op


def test_cli_ready_line_serves_and_stops_on_sigterm():
    with mock_process("--nodes", "2", "--bucket", "default", "--bucket", "protected:secret",
                      "--username", "admin", "--password", "adminpw", "--vbuckets", "64") as (proc, info):
        assert set(info) == {"host", "port", "kv_ports", "mgmt_ports", "username", "password", "buckets"}
        assert info["buckets"] == {"default": "", "protected": "secret"} and len(info["kv_ports"]) == 2
        assert info["username"] == "admin" and info["port"] == info["mgmt_ports"][0]
        with KVClient(info["host"], info["kv_ports"][1]) as c:
            c.bootstrap("admin", "adminpw", "protected")
            assert len(c.config()["vBucketServerMap"]["vBucketMap"]) == 64
            assert c.call(Op.NOOP).status == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout.read() == ""  # exactly one line


def test_cli_help_documents_every_flag():
    out = subprocess.run([sys.executable, "-m", "couchbase.mock", "--help"], capture_output=True, text=True,
                         env=checkout_env(), timeout=30).stdout
    for flag in ("--nodes", "--host", "--port", "--bucket", "--username", "--password", "--vbuckets"):
        assert flag in out


def test_cli_bad_port_fails_cleanly():
    res = subprocess.run([sys.executable, "-m", "couchbase.mock", "--nodes", "0"], capture_output=True,
                         text=True, env=checkout_env(), timeout=30)
    assert res.returncode != 0 and "READY" not in res.stdout
