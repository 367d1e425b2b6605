"""Sphinx configuration: the guides are Markdown (MyST), the API reference
comes from the docstrings, the error table from couchbase.exceptions and the
mock's command list from its registry (couchbase.mock.commands)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # an in-place build of the package

import couchbase  # noqa: E402

project = "couchbase-lcb"
author = "couchbase-lcb developers"
copyright = "couchbase-lcb developers; Apache-2.0"  # noqa: A001 (Sphinx's name)
release = version = couchbase.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "status_table", "mock_commands"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False}
html_theme = "alabaster"
html_title = f"couchbase-lcb {release}"
# the code is ours; links to libcouchbase's sources stay plain text
nitpicky = False
