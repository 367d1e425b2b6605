"""Build the compiled module against libcouchbase, found with pkg-config."""

import os
import shlex
import subprocess
import sys

from setuptools import Extension, setup

LCB_MIN_VERSION = "3.3"
HINT = ("libcouchbase >= {v} was not found by pkg-config; install it with "
        "scripts/install-libcouchbase (or set LCB_PREFIX / PKG_CONFIG_PATH to where it is installed)")


def pkg_config(*args):
    env = dict(os.environ)
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


def extensions():
    from Cython.Build import cythonize

    debug = os.environ.get("COUCHBASE_LCB_DEBUG") == "1"
    macros = [] if debug else [("CYTHON_WITHOUT_ASSERTIONS", "1")]
    if debug:
        macros.append(("CYTHON_TRACE_NOGIL", "1"))
    ext = Extension("couchbase._lcb", ["couchbase/_lcb.pyx"], define_macros=macros, **libcouchbase_flags())
    directives = {"language_level": "3", "boundscheck": debug, "wraparound": debug, "linetrace": debug}
    return cythonize([ext], compiler_directives=directives, quiet=True)


needs_ext = not any(arg in sys.argv for arg in ("egg_info", "sdist", "--version", "clean"))
setup(ext_modules=extensions() if needs_ext else [])
