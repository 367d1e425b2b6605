"""Building from source without libcouchbase stops with one clear sentence."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="an installed wheel's tests: no source tree")
def test_missing_libcouchbase_names_the_install_script(tmp_path):
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(tmp_path), PKG_CONFIG_PATH="", LCB_PREFIX=str(tmp_path))
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-temp", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "libcouchbase >= 3.3 was not found" in proc.stderr
    assert "scripts/install-libcouchbase" in proc.stderr
