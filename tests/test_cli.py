"""The client's command line (``python -m couchbase``) as a user runs it, in
a subprocess: errors are one line and an exit status, never a traceback."""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from couchbase import Couchbase
from couchbase.__main__ import EXIT_BROKEN_PIPE, EXIT_NOT_FOUND, EXIT_USAGE, _parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _cli(*args, timeout=60, **kwargs):
    return subprocess.run([sys.executable, "-m", "couchbase", *args], capture_output=True, text=True,
                          env=_env(), timeout=timeout, **kwargs)


def _at(cluster):
    return ["--host", cluster.host, "--port", str(cluster.port)]


@pytest.mark.parametrize("args", [
    ["pillowfight", "--batch", "0"],
    ["pillowfight", "--ops", "0"],
    ["pillowfight", "--size", "-1"],
    ["pillowfight", "--threads", "0"],
    ["pillowfight", "--duration", "-1"],
    ["pillowfight", "--ops", "x"],
    ["pillowfight", "--ops", "5", "--duration", "1"],
    ["--port", "70000", "stats"],
    ["--timeout", "nan", "stats"],
    ["set", "k", "v", "--ttl", "-5"],
    [],
    ["no-such-command"],
])
def test_a_bad_argument_is_one_line_and_exit_status_2(args):
    res = _cli(*args)
    assert res.returncode == EXIT_USAGE == 2, res
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "error:" in lines[0], res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


def _subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_help_gives_every_option_help_text_and_plain_descriptions():
    top = _parser()
    for name, parser in [("", top), *_subcommands(top).items()]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help.strip(), (name, action.dest)
        out = _cli(*([name] if name else []), "--help").stdout
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in out, (name, flag)
        description = out.split("\n\n")[1]  # the paragraph after the usage
        assert not re.search(r"``|`|::|\.\. ", description), (name, description)
        for choice in _subcommands(parser):
            assert choice in out


def test_a_closed_pipe_exits_quietly(cluster):
    shell = subprocess.run(f"{sys.executable} -m couchbase {' '.join(_at(cluster))} stats | head -1",
                           shell=True, capture_output=True, text=True, env=_env(), timeout=60)
    assert shell.returncode == 0 and shell.stdout.count("\n") == 1 and shell.stderr == "", shell
    # a reader gone before the first line is written: every write fails
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run([sys.executable, "-m", "couchbase", *_at(cluster), "stats"], stdout=write_end,
                             stderr=subprocess.PIPE, text=True, env=_env(), timeout=60)
    finally:
        os.close(write_end)
    assert res.returncode == EXIT_BROKEN_PIPE and res.stderr == "", res


def test_get_tells_a_missing_key_from_a_stored_json_null(cluster, key):
    with Couchbase.connect(cluster.host, cluster.port, password="", bucket="default") as cb:
        cb.set(f"{key}:null", None)
        cb.set(f"{key}:zero", 0)
        cb.delete(f"{key}:missing", quiet=True)
    found = _cli(*_at(cluster), "get", f"{key}:null", f"{key}:zero")
    assert found.returncode == 0 and found.stdout.splitlines() == [f"{key}:null: None", f"{key}:zero: 0"]
    mixed = _cli(*_at(cluster), "get", f"{key}:null", f"{key}:missing")
    assert mixed.returncode == EXIT_NOT_FOUND == 3, mixed
    assert mixed.stdout.splitlines() == [f"{key}:null: None", f"{key}:missing: not found"]
    assert mixed.stderr == ""


_PERCENTILES = re.compile(r"latency per operation, us: p50 [\d,.]+  p90 [\d,.]+  p99 [\d,.]+  "
                          r"p99\.9 [\d,.]+  max [\d,.]+$", re.M)
_CPU = re.compile(r"client CPU [\d.]+ us/op", re.M)


def _phase_ops(out):
    return {m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^(set|get): ([\d,]+) ops in", out, re.M)}


def test_pillowfight_for_a_duration_with_threads_prints_percentiles_and_cpu(cluster):
    res = _cli(*_at(cluster), "pillowfight", "--duration", "1", "--threads", "2", "--size", "16")
    assert res.returncode == 0, res
    ops = _phase_ops(res.stdout)
    assert set(ops) == {"set", "get"} and min(ops.values()) > 0, res.stdout
    assert len(_PERCENTILES.findall(res.stdout)) == 2 and len(_CPU.findall(res.stdout)) == 2, res.stdout
    assert "2 thread(s)" in res.stdout and "embedded" not in res.stdout
    assert "\r" not in res.stderr  # no live progress line when stderr is not a terminal


def test_pillowfight_embedded_says_the_mock_shares_the_process():
    res = _cli("--embedded", "pillowfight", "--ops", "300", "--threads", "2", "--batch", "3")
    assert res.returncode == 0, res
    assert _phase_ops(res.stdout) == {"set": 300, "get": 300}
    assert "embedded mock shares this process: its CPU is in the client CPU figure" in res.stdout
    assert res.stdout.count("with the embedded mock)") == 2
    assert res.stdout.count("latency per call (batch of 3 keys), us: p50 ") == 2


def test_pillowfight_shows_a_live_progress_line_on_a_terminal(cluster):
    pty = pytest.importorskip("pty")  # POSIX (the project's platforms but Windows)
    parent, child = pty.openpty()
    try:
        res = subprocess.run([sys.executable, "-m", "couchbase", *_at(cluster), "pillowfight", "--duration",
                              "0.6"], stdout=subprocess.PIPE, stderr=child, env=_env(), timeout=60)
        os.close(child)
        child = None
        progress = b""
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            progress += chunk
    finally:
        if child is not None:
            os.close(child)
        os.close(parent)
    assert res.returncode == 0
    assert re.search(rb"\r(set|get): [\d,]+ ops, [\d,]+ ops/s", progress), progress


def test_pillowfight_without_hdrhistogram_says_what_to_install(cluster):
    code = ("import sys; sys.modules['hdrh'] = None; from couchbase.__main__ import main; "
            f"sys.exit(main({[*_at(cluster), 'pillowfight']!r}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.splitlines() == [
        "error: pillowfight needs the hdrhistogram package: pip install 'couchbase-lcb[cli]'"]


def test_ctrl_c_in_pillowfight_stops_the_threads_and_exits_130(cluster):
    proc = subprocess.Popen([sys.executable, "-m", "couchbase", *_at(cluster), "pillowfight", "--duration",
                             "30", "--threads", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(),
                            # as from a terminal: a suite started in the background
                            # (`cmd &`) has SIGINT ignored, and Python keeps it so
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().startswith("pillowfight: 2 thread(s)")
        time.sleep(0.5)  # the workers are running
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and err == "interrupted\n", (out, err)
