"""The sanitizer build (COUCHBASE_LCB_SANITIZE=1, run by scripts/run-sanitized) is
really instrumented and really stops on a memory error; the normal build carries
none of it."""

import mmap
import os
import subprocess
import sys

import pytest

import couchbase._lcb

pytestmark = pytest.mark.sanitize
SANITIZED = os.environ.get("COUCHBASE_LCB_SANITIZE") == "1"


def _instrumented(path):
    """Whether a shared object calls AddressSanitizer's checks."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"__asan_report_") >= 0


def _loaded_libcouchbase():
    """The path of the libcouchbase this process has loaded."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/libcouchbase.so" in line}
    assert len(paths) == 1, paths
    return paths.pop()


# each deliberate error of couchbase._sanitize_probe, and what the sanitizers say about it
PROBES = [("read_past_heap_block(8)", "AddressSanitizer: heap-buffer-overflow"),
          ("shift_one_left(40)", "shift exponent 40 is too large")]


def _run_probe(tmp_path, call):
    """Call couchbase._sanitize_probe in a child process (a finding ends it)."""
    code = f"import couchbase._sanitize_probe as probe\nprobe.{call}\nprint('survived')"
    # from tmp_path, so the checkout's own couchbase package is not the one imported
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


def test_the_extension_is_instrumented_exactly_in_the_sanitizer_build():
    assert _instrumented(couchbase._lcb.__file__) == SANITIZED


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="finds the loaded library in /proc")
def test_libcouchbase_is_instrumented_exactly_in_the_sanitizer_build():
    assert _instrumented(_loaded_libcouchbase()) == SANITIZED


@pytest.mark.parametrize(("call", "report"), PROBES)
def test_a_deliberate_error_is_stopped_and_exists_only_in_the_sanitizer_build(tmp_path, call, report):
    proc = _run_probe(tmp_path, call)
    assert proc.returncode != 0 and "survived" not in proc.stdout
    if SANITIZED:
        assert report in proc.stderr, proc.stderr
        assert call.split("(")[0] in proc.stderr, proc.stderr  # the report names the culprit
    else:
        assert "No module named 'couchbase._sanitize_probe'" in proc.stderr, proc.stderr
