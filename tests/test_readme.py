"""Every Python code block of the README runs as written, against the mock.

The one liberty taken: a block that connects to ``host="localhost",
port=8091`` (a local Couchbase Server) is pointed at the suite's mock
cluster instead, with the same bucket and password."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
LOCAL_SERVER = 'host="localhost", port=8091'


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(cluster, index):
    source = BLOCKS[index].replace(LOCAL_SERVER, f"host={cluster.host!r}, port={cluster.port}")
    # a fresh bucket state per block: keys the examples create do not exist yet
    cluster.flush_bucket("default")
    exec(compile(source, f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})
