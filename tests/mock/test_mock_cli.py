"""``python -m couchbase.mock`` as a subprocess."""

import json
import os
import signal
import subprocess
import sys

from mock_kvclient import KVClient

from couchbase.mock.protocol import Op

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def test_cli_ready_line_serves_and_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "couchbase.mock", "--nodes", "2", "--bucket", "default",
                             "--bucket", "protected:secret", "--username", "admin", "--password", "adminpw",
                             "--vbuckets", "64"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY "), (line, proc.stderr.read() if proc.poll() is not None else "")
        info = json.loads(line[6:])
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_cli_help_documents_every_flag():
    out = subprocess.run([sys.executable, "-m", "couchbase.mock", "--help"], capture_output=True, text=True,
                         env=_env(), timeout=30).stdout
    for flag in ("--nodes", "--host", "--port", "--bucket", "--username", "--password", "--vbuckets"):
        assert flag in out


def test_cli_bad_port_fails_cleanly():
    res = subprocess.run([sys.executable, "-m", "couchbase.mock", "--nodes", "0"], capture_output=True,
                         text=True, env=_env(), timeout=30)
    assert res.returncode != 0 and "READY" not in res.stdout
