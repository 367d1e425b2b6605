"""Every build, test and lint tool is pinned in one file, and what the suite
runs with is what that file pins (issue: a new release broke a fresh machine)."""

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
THIS_PYTHON = "%d.%d" % sys.version_info[:2]


def _applies(marker):
    """Whether a requirement line's environment marker holds here."""
    return not marker.strip() or Marker(marker.strip()).evaluate()


def _name(text):
    return re.sub(r"[-_.]+", "-", text).lower()


def _pins_for_this_python():
    """name -> version, from constraints.txt lines whose marker names this Python."""
    pins = {}
    for line in (REQUIREMENTS / "constraints.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        requirement, _, marker = line.partition(";")
        name, _, version = requirement.strip().partition("==")
        if _applies(marker):
            pins[_name(name)] = version
    return pins


def _requirement_names(path):
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement, _, marker = line.partition(";")
            if not _applies(marker):
                continue  # e.g. tools.in's entries for the workflows' Python only
            names.append(_name(re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0]))
    return names


@pytest.mark.parametrize("source", ["dev.in", "tools.in"])
def test_every_tool_is_pinned_for_this_python(source):
    pins = _pins_for_this_python()
    missing = [name for name in _requirement_names(REQUIREMENTS / source) if name not in pins]
    assert not missing, f"not in requirements/constraints.txt for Python {THIS_PYTHON}: {missing}"


def test_the_suite_runs_the_pinned_versions():
    pins = _pins_for_this_python()
    wrong = {}
    for name in _requirement_names(REQUIREMENTS / "dev.in"):
        installed = importlib.metadata.version(name)
        if installed != pins[name]:
            wrong[name] = (installed, pins[name])
    assert not wrong, f"installed != pinned (run scripts/dev-setup): {wrong}"


def test_every_install_in_the_workflows_and_scripts_is_pinned():
    """A pip install in CI or the scripts takes the constraints (by -c or PIP_CONSTRAINT)."""
    unpinned = []
    for path in [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), ROOT / "scripts" / "dev-setup",
                 ROOT / "scripts" / "build-and-verify-wheels"]:
        text = path.read_text()
        if "PIP_CONSTRAINT" in text:
            continue
        for line in text.splitlines():
            if "pip install" in line and "constraints.txt" not in line and "pins[@]" not in line:
                unpinned.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not unpinned, unpinned
