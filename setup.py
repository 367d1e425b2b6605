"""Build the compiled module against libcouchbase, found with pkg-config."""

import os
import shlex
import subprocess
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
LCB_MIN_VERSION = "3.3"
HINT = ("libcouchbase >= {v} was not found by pkg-config; install it with "
        "scripts/install-libcouchbase (or set LCB_PREFIX / PKG_CONFIG_PATH to where it is installed)")
SANITIZE_HINT = ("the sanitizer build of libcouchbase was not found in {prefix}; build it with "
                 "COUCHBASE_LCB_SANITIZE=1 scripts/install-libcouchbase")
# COUCHBASE_LCB_SANITIZE=1: AddressSanitizer + UBSan (tools/sanitize.env), which
# implies the debug build; scripts/run-sanitized sets it up and runs the tests.
SANITIZE = os.environ.get("COUCHBASE_LCB_SANITIZE") == "1"
DEBUG = SANITIZE or os.environ.get("COUCHBASE_LCB_DEBUG") == "1"


def sanitize_settings():
    """The NAME=value lines of tools/sanitize.env, the one definition of the sanitizer build."""
    with open(os.path.join(HERE, "tools", "sanitize.env")) as f:
        return dict(word.split("=", 1) for word in shlex.split(f.read(), comments=True))


def pkg_config(*args):
    env = dict(os.environ)
    if SANITIZE:
        # only the sanitized libcouchbase, never the normal one
        prefix = os.path.join(HERE, sanitize_settings()["SANITIZE_PREFIX"])
        env["PKG_CONFIG_LIBDIR"] = os.path.join(prefix, "lib", "pkgconfig")
        env["PKG_CONFIG_PATH"] = ""
    else:
        prefix = os.environ.get("LCB_PREFIX", "/usr/local")
        extra = os.pathsep.join(os.path.join(prefix, lib, "pkgconfig") for lib in ("lib", "lib64"))
        env["PKG_CONFIG_PATH"] = os.pathsep.join(filter(None, [extra, env.get("PKG_CONFIG_PATH")]))
    return subprocess.run(["pkg-config", *args], env=env, capture_output=True, text=True)


def libcouchbase_flags():
    """Compile and link flags for libcouchbase, or stop with one clear sentence."""
    if os.environ.get("LCB_INCLUDE_DIR") or os.environ.get("LCB_LIB_DIR"):
        # for platforms without pkg-config (Windows wheels)
        return {
            "include_dirs": [os.environ["LCB_INCLUDE_DIR"]] if os.environ.get("LCB_INCLUDE_DIR") else [],
            "library_dirs": [os.environ["LCB_LIB_DIR"]] if os.environ.get("LCB_LIB_DIR") else [],
            "libraries": [os.environ.get("LCB_LIBRARY", "libcouchbase" if sys.platform == "win32"
                                         else "couchbase")],
        }
    try:
        found = pkg_config(f"--atleast-version={LCB_MIN_VERSION}", "libcouchbase").returncode == 0
    except FileNotFoundError:
        found = False
    if not found and SANITIZE:
        sys.exit("error: " + SANITIZE_HINT.format(prefix=sanitize_settings()["SANITIZE_PREFIX"]))
    if not found:
        sys.exit("error: " + HINT.format(v=LCB_MIN_VERSION))
    cflags = shlex.split(pkg_config("--cflags", "libcouchbase").stdout)
    libs = shlex.split(pkg_config("--libs", "libcouchbase").stdout)
    flags = {"include_dirs": [], "library_dirs": [], "libraries": [], "runtime_library_dirs": []}
    for f in cflags:
        if f.startswith("-I"):
            flags["include_dirs"].append(f[2:])
    for f in libs:
        if f.startswith("-L"):
            flags["library_dirs"].append(f[2:])
            if sys.platform.startswith("linux") and f[2:] not in ("/usr/lib", "/usr/lib64"):
                flags["runtime_library_dirs"].append(f[2:])
        elif f.startswith("-l"):
            flags["libraries"].append(f[2:])
    return flags


def sanitizer_probe(flags):
    """The module whose deliberate memory errors show the sanitizers are on: sanitizer builds only."""
    return Extension("couchbase._sanitize_probe", ["tests/sanitize_probe.pyx"], **flags)


def extensions():
    from Cython.Build import cythonize

    macros = [] if DEBUG else [("CYTHON_WITHOUT_ASSERTIONS", "1")]
    if DEBUG:
        macros.append(("CYTHON_TRACE_NOGIL", "1"))
    flags = {}
    if SANITIZE:
        words = shlex.split(sanitize_settings()["SANITIZE_FLAGS"])
        flags = {"extra_compile_args": words, "extra_link_args": words}
    exts = [Extension("couchbase._lcb", ["couchbase/_lcb.pyx"], define_macros=macros, **flags,
                      **libcouchbase_flags())]
    if SANITIZE:
        exts.append(sanitizer_probe(flags))
    directives = {"language_level": "3", "boundscheck": DEBUG, "wraparound": DEBUG, "linetrace": DEBUG}
    # the sanitizer build's C files and objects stay apart from the normal build's
    build_dir = os.path.join("build", "sanitize", "cython") if SANITIZE else None
    return cythonize(exts, compiler_directives=directives, quiet=True, build_dir=build_dir)


needs_ext = not any(arg in sys.argv for arg in ("egg_info", "sdist", "--version", "clean"))
options = {"build": {"build_base": os.path.join("build", "sanitize", "setuptools")}} if SANITIZE else {}
setup(ext_modules=extensions() if needs_ext else [], options=options)
