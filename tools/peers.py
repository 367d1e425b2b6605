"""The other clients tests and benchmarks run beside this one, each in a
virtualenv of its own under ~/.cache/couchbase-lcb (the official SDK has our
import name, so it can never share our environment). Their versions are
pinned in requirements/peers.txt, and only there.

    python3 tools/peers.py [NAME...]     # make the venvs (all, or those named)

Standard library only: bench/ and tests/ both import it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "requirements" / "peers.txt"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "couchbase-lcb"
# distribution -> (venv directory name, a module its import proves installed)
PEERS = {"couchbase": ("sdk-venv", "couchbase.cluster"), "pylibmc": ("pylibmc-venv", "pylibmc")}


class PeerUnavailable(RuntimeError):
    """The peer's venv could not be made (no index, no build tools); says why."""


def spec(name: str) -> str:
    """The pinned requirement, e.g. 'couchbase==4.6.3'."""
    for line in PINS.read_text().splitlines():
        if line.split("==")[0].strip().lower() == name:
            return line.strip()
    raise KeyError(f"{name} is not pinned in {PINS}")


def version(name: str) -> str:
    return spec(name).split("==", 1)[1]


def venv_dir(name: str) -> Path:
    return CACHE / PEERS[name][0]


def venv_python(venv: Path) -> Path:
    return venv / "Scripts" / "python.exe" if os.name == "nt" else venv / "bin" / "python"


def clean_env() -> dict[str, str]:
    """An environment in which a peer's interpreter cannot see our package."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _installed_version(python: Path, name: str) -> str:
    probe = (f"import {PEERS[name][1]}, importlib.metadata as m; print(m.version({name!r}))")
    res = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                         cwd=tempfile.gettempdir(), env=clean_env())
    return res.stdout.strip() if res.returncode == 0 else ""


def ensure(name: str, allow_install: bool = True) -> str:
    """The interpreter of the peer's venv with the pinned version, made once
    and then reused; PeerUnavailable (with pip's reason) if it cannot be made."""
    venv = venv_dir(name)
    python = venv_python(venv)
    if python.exists() and _installed_version(python, name) == version(name):
        return str(python)
    if not allow_install:
        raise PeerUnavailable(f"{venv} lacks {spec(name)} (run python3 tools/peers.py {name})")
    base = getattr(sys, "_base_executable", None) or sys.executable
    res = subprocess.run([base, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True)
    if res.returncode != 0:
        raise PeerUnavailable(f"cannot create {venv}: {res.stderr.strip()[-300:]}")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
           "--timeout", "20", "--retries", "1"]  # fail fast when offline
    res = subprocess.run(pip + [spec(name)], capture_output=True, text=True, cwd=tempfile.gettempdir(),
                         env=clean_env(), timeout=1200)
    if res.returncode != 0:
        raise PeerUnavailable(f"cannot install {spec(name)}: {res.stderr.strip()[-300:]}")
    if _installed_version(python, name) != version(name):
        raise PeerUnavailable(f"{spec(name)} installed in {venv}, but importing it fails")
    return str(python)


def main(names: list[str]) -> int:
    for name in names or list(PEERS):
        print(f"peers: {name}: {ensure(name)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
