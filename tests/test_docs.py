"""The documentation builds warning-free, and every Python code block in it
and in the README runs as written, against the mock.

Blocks run one of two ways. A block whose first line names a file
(``# conftest.py``, ``# test_users.py``) is written to that file, and the
files of one page together are run by pytest, as a user's test suite would
be. Any other block is executed as a script. The one liberty taken: a block
that connects to ``host="localhost", port=8091`` (a local Couchbase Server)
is pointed at the suite's mock cluster instead, same bucket and password."""

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from couchbase.mock.commands import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LOCAL_SERVER = 'host="localhost", port=8091'
FILE_LINE = re.compile(r"# ([\w/]+\.py)\n")


def _blocks(page):
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)


SCRIPTS = [(page, i, block) for page in PAGES for i, block in enumerate(_blocks(page))
           if not FILE_LINE.match(block)]
SUITES = [page for page in PAGES if any(FILE_LINE.match(b) for b in _blocks(page))]


def test_sphinx_builds_the_docs_without_a_warning(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(ROOT / "docs"), str(tmp_path / "html")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "html" / "api.html").exists()
    mock_page = html.unescape(re.sub(r"<[^>]+>", "", (tmp_path / "html" / "mock.html").read_text()))
    missing = [cmd.signature_text() for cmd in COMMANDS.values() if cmd.signature_text() not in mock_page]
    assert not missing, "docs/mock.md's command list lacks %s" % missing


@pytest.mark.parametrize("page, index, source", SCRIPTS,
                         ids=[f"{page.name}-{index + 1}" for page, index, _ in SCRIPTS])
def test_python_block_runs(cluster, page, index, source):
    source = source.replace(LOCAL_SERVER, f"host={cluster.host!r}, port={cluster.port}")
    cluster.flush_bucket("default")  # the keys an example creates do not exist yet
    exec(compile(source, f"{page.name} python block {index + 1}", "exec"), {"__name__": "__doc_example__"})


@pytest.mark.parametrize("page", SUITES, ids=[p.name for p in SUITES])
def test_example_test_suite_passes(tmp_path, page):
    for block in _blocks(page):
        name = FILE_LINE.match(block)
        if name:
            (tmp_path / name.group(1)).write_text(block)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout
