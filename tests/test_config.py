"""The build configuration names what exists: the cibuildwheel test commands'
files, and every test module that needs the official SDK is left out where
the SDK cannot be installed."""

import re
import shlex
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CIBW = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]


def _test_commands():
    """(where, command) for every cibuildwheel test-command, overrides included."""
    found = [("tool.cibuildwheel", CIBW["test-command"])]
    for platform in ("linux", "macos", "windows"):
        if "test-command" in CIBW.get(platform, {}):
            found.append((f"tool.cibuildwheel.{platform}", CIBW[platform]["test-command"]))
    for override in CIBW.get("overrides", []):
        if "test-command" in override:
            found.append((f"override {override['select']}", override["test-command"]))
    return found


def _named_paths(command):
    for word in shlex.split(command):
        word = word.split("=", 1)[1] if word.startswith("--ignore=") else word
        if word.startswith("{project}/"):
            yield word[len("{project}/"):]
        elif word.startswith("tests/"):
            yield word


def test_cibuildwheel_test_commands_name_files_that_exist():
    missing = [(where, path) for where, command in _test_commands() for path in _named_paths(command)
               if not (ROOT / path).exists()]
    assert not missing, missing


def test_commands_that_leave_out_the_sdk_leave_out_every_sdk_test():
    sdk_tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                       if re.search(r"^from sdk_venv import|^import sdk_venv", p.read_text(), re.M))
    assert sdk_tests, "no test module uses the official SDK any more: update this test"
    for where, command in _test_commands():
        ignored = {w.split("=", 1)[1] for w in shlex.split(command) if w.startswith("--ignore=")}
        if ignored & set(sdk_tests):
            assert set(sdk_tests) <= ignored, (where, sorted(set(sdk_tests) - ignored))
