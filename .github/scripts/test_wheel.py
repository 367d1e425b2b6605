"""Run the test suite against an installed couchbase-lcb wheel.

    python .github/scripts/test_wheel.py PROJECT_DIR [pytest arguments...]

Test paths among the pytest arguments are relative to the copy (tests/...);
without any, the whole tests/ directory runs.

Used by cibuildwheel's test-command (pyproject.toml) on every platform and by
scripts/build-and-verify-wheels. It

1. copies the checkout's tests/ (with the few files the tests read as data)
   into a temporary directory, so that `couchbase` can only come from the
   installed wheel: no couchbase/__init__.py is copied, so a copied couchbase/
   directory is at most a namespace portion, which a regular package (the
   installed one) always wins over;
2. checks, inside the pytest process itself, that `couchbase` and its compiled
   module were imported from site-packages and that the libcouchbase the
   process has loaded is the copy bundled in the wheel (auditwheel's
   couchbase_lcb.libs/, delocate's couchbase/.dylibs/, delvewheel's
   couchbase_lcb.libs/), before the tests and again after them;
3. runs pytest there; the exit status is pytest's.

tests/test_lint.py is left out: it lints the source tree, which CI's lint job does.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile

# Test modules that check the source tree rather than the installed package.
SOURCE_TREE_ONLY = ["test_lint.py"]


def copy_tests(project: str, dest: str) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("tests", "tools"):
        if os.path.isdir(os.path.join(project, name)):
            shutil.copytree(os.path.join(project, name), os.path.join(dest, name), ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        if os.path.exists(os.path.join(project, name)):
            shutil.copy2(os.path.join(project, name), os.path.join(dest, name))
    # Python sources that tests read as text (e.g. couchbase/exceptions.py),
    # without any __init__.py: never importable as the package itself.
    pkg = os.path.join(project, "couchbase")
    for root, dirs, files in os.walk(pkg):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            if f.endswith(".py") and f != "__init__.py":
                rel = os.path.relpath(os.path.join(root, f), project)
                os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
                shutil.copy2(os.path.join(root, f), os.path.join(dest, rel))


def loaded_libraries() -> list[str]:
    """Paths of the shared libraries this process has mapped."""
    if sys.platform.startswith("linux"):
        with open("/proc/self/maps") as maps:
            return sorted({line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6})
    import ctypes

    if sys.platform == "darwin":
        dyld = ctypes.CDLL(None)
        dyld._dyld_get_image_name.restype = ctypes.c_char_p
        return [dyld._dyld_get_image_name(i).decode() for i in range(dyld._dyld_image_count())]
    if sys.platform == "win32":
        from ctypes import wintypes

        psapi = ctypes.WinDLL("psapi")
        kernel32 = ctypes.WinDLL("kernel32")
        process = kernel32.GetCurrentProcess()
        modules = (wintypes.HMODULE * 1024)()
        needed = wintypes.DWORD()
        psapi.EnumProcessModules(process, modules, ctypes.sizeof(modules), ctypes.byref(needed))
        names = []
        for handle in modules[: needed.value // ctypes.sizeof(wintypes.HMODULE)]:
            buf = ctypes.create_unicode_buffer(1024)
            kernel32.GetModuleFileNameW(wintypes.HMODULE(handle), buf, 1024)
            names.append(buf.value)
        return names
    return []


def check_installed_copy() -> list[str]:
    """Fail unless couchbase and libcouchbase come from the installed wheel."""
    import couchbase
    import couchbase._lcb

    site_dirs = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    pkg_dir = os.path.realpath(os.path.dirname(couchbase.__file__))
    site = os.path.dirname(pkg_dir)
    problems = []
    if site not in site_dirs:
        problems.append(f"couchbase was imported from {pkg_dir}, not from site-packages {sorted(site_dirs)}")
    if os.path.dirname(os.path.realpath(couchbase._lcb.__file__)) != pkg_dir:
        problems.append(f"couchbase._lcb comes from {couchbase._lcb.__file__}, not from {pkg_dir}")
    lcb = [p for p in loaded_libraries() if "libcouchbase" in os.path.basename(p).lower()]
    if not lcb:
        problems.append("no libcouchbase is loaded after importing couchbase._lcb")
    for path in lcb:
        if not os.path.realpath(path).startswith(site + os.sep):
            problems.append(f"libcouchbase was loaded from {path}, outside the wheel's install ({site})")
    if problems:
        raise SystemExit("test_wheel: " + "; ".join(problems))
    return lcb


class BundledLibraryCheck:
    """pytest plugin: the check above, in the process that runs the tests."""

    def pytest_sessionstart(self, session):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for path in check_installed_copy():
            if reporter is not None:
                reporter.write_line(f"test_wheel: libcouchbase loaded from the wheel: {path}")

    def pytest_sessionfinish(self, session, exitstatus):  # noqa: ARG002
        check_installed_copy()


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    project, pytest_args = os.path.abspath(argv[0]), argv[1:]
    import pytest

    with tempfile.TemporaryDirectory(prefix="couchbase-lcb-wheel-test-") as tmp:
        copy_tests(project, tmp)
        os.chdir(tmp)
        # the script's own directory is first on sys.path; nothing to import there
        sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != os.path.realpath(project)]
        ignores = [f"--ignore=tests/{name}" for name in SOURCE_TREE_ONLY]
        # test paths among the arguments (tests/...) replace the default "tests"
        given = [a for a in pytest_args if a == "tests" or a.startswith("tests/")]
        args = ["-p", "no:cacheprovider", *ignores, *([] if given else ["tests"]), *pytest_args]
        print(f"test_wheel: pytest {' '.join(args)} (in {tmp})", flush=True)
        return int(pytest.main(args, plugins=[BundledLibraryCheck()]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
