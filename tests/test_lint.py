"""Lint and type checks run as part of the suite (STYLE.md practice 9)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"


def test_ruff():
    _run("ruff", "check", "couchbase", "tests", "tools", "setup.py")


def test_cython_lint():
    package = ROOT / "couchbase"
    sources = [str(p.relative_to(ROOT)) for ext in ("pyx", "pxd", "pxi") for p in package.glob(f"*.{ext}")]
    _run("cython_lint.cython_lint", *sources)


def test_mypy_on_the_stubs_and_typed_modules():
    _run("mypy", "couchbase/_lcb.pyi", "couchbase/result.py", "couchbase/exceptions.py")
