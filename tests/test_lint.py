"""Lint and type checks run as part of the suite (STYLE.md practice 9)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The linters run helper programs by name (cython-lint runs pycodestyle):
# those of this interpreter's environment, whether or not it is on PATH.
BIN = os.path.dirname(sys.executable)
ENV = dict(os.environ, PATH=os.pathsep.join([BIN, os.environ.get("PATH", "")]))


def _run(*command):
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}"


def test_ruff():
    _run(sys.executable, "-m", "ruff", "check", "couchbase", "tests", "tools", "examples", "docs", "setup.py")


def test_cython_lint():
    package = ROOT / "couchbase"
    sources = [str(p.relative_to(ROOT)) for ext in ("pyx", "pxd", "pxi") for p in package.glob(f"*.{ext}")]
    sources += [str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("*.pyx")]  # the sanitizer probe
    _run(sys.executable, "-m", "cython_lint.cython_lint", *sources)


def test_mypy_on_the_stubs_and_typed_modules():
    _run(sys.executable, "-m", "mypy", "couchbase/_lcb.pyi", "couchbase/result.py", "couchbase/exceptions.py",
         "couchbase/aio.py", "couchbase/subdocument.py")
    # the mock's typed parts, strictly; the untyped mock internals they reach are followed silently
    _run(sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "couchbase/mock/mock_cluster.pyi", "couchbase/mock/commands.py", "couchbase/mock/errors.py")


def test_shellcheck():
    scripts = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "scripts").iterdir())] + [".ci/run"]
    _run(os.path.join(BIN, "shellcheck"), "-S", "warning", *scripts)
