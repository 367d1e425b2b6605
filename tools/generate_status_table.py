#!/usr/bin/env python3
"""Generate ``couchbase/_status.py`` from libcouchbase's own error table.

libcouchbase lists every ``lcb_STATUS`` once, in the ``LCB_XERROR`` X-macro of
``libcouchbase/error.h``: name, code, error type, error flags, description.
This script turns that list into a plain-data Python module, so the exception
table in ``couchbase/exceptions.py`` is checked against the library's list
rather than typed in by hand.

Usage::

    python tools/generate_status_table.py [ERROR_H] [-o OUTPUT] [--check]

``ERROR_H`` defaults to the ``error.h`` of the libcouchbase that ``pkg-config``
knows, then to the source tree ``scripts/install-libcouchbase`` unpacks in
/tmp. ``--check`` writes nothing and exits with status 1 if ``OUTPUT`` differs
from what would be generated (for CI). The output depends only on the
contents of ``error.h``: same input, same bytes.
"""

import argparse
import os
import re
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(ROOT, "couchbase", "_status.py")
FALLBACK_ERROR_H = "/tmp/lcbsrc/package/deps/lcb/include/libcouchbase/error.h"
LINE_LENGTH = 110  # the project's ruff line-length

_ENUM_RE = r"typedef\s+enum\s*\{(?P<body>[^}]*)\}\s*{typename}\s*;"
_ENUM_MEMBER_RE = re.compile(r"(?P<name>[A-Z][A-Z0-9_]*)\s*=\s*(?P<value>[^,]+)")
_ENTRY_RE = re.compile(
    r"""X\(\s*(?P<name>LCB_[A-Z0-9_]+)\s*,
        \s*(?P<code>\d+)\s*,
        \s*(?P<type>LCB_ERROR_TYPE_[A-Z0-9_]+)\s*,
        \s*(?P<flags>[A-Z0-9_|\s]+?)\s*,
        \s*"(?P<desc>(?:[^"\\]|\\.)*)"\s*\)""",
    re.VERBOSE,
)
_C_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "'": "'", "\\": "\\", "?": "?"}


class ParseError(Exception):
    """error.h does not look the way this script expects."""


def default_error_h():
    """Path of error.h: pkg-config's libcouchbase first, else the /tmp tree."""
    try:
        incdir = subprocess.run(
            ["pkg-config", "--variable=includedir", "libcouchbase"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        incdir = ""
    if incdir:
        path = os.path.join(incdir, "libcouchbase", "error.h")
        if os.path.exists(path):
            return path
    return FALLBACK_ERROR_H


def _strip_comments(text):
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)


def _parse_enum(text, typename):
    match = re.search(_ENUM_RE.replace("{typename}", re.escape(typename)), text)
    if not match:
        raise ParseError(f"enum {typename} not found")
    members = []
    for m in _ENUM_MEMBER_RE.finditer(match.group("body")):
        value = m.group("value").strip().replace("u", "")
        shift = re.fullmatch(r"(\d+)\s*<<\s*(\d+)", value)
        number = int(shift[1]) << int(shift[2]) if shift else int(value)
        members.append((m.group("name"), number))
    if not members:
        raise ParseError(f"enum {typename} is empty")
    return members


def _xerror_body(text):
    """The lines of the LCB_XERROR macro: from its #define to the first line
    that does not end in a backslash."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*#\s*define\s+LCB_XERROR\s*\(\s*X\s*\)", line):
            body = []
            for cont in lines[i:]:
                body.append(cont.rstrip().rstrip("\\"))
                if not cont.rstrip().endswith("\\"):
                    break
            return "\n".join(body)
    raise ParseError("#define LCB_XERROR(X) not found")


def _unescape_c(s):
    return re.sub(r"\\(.)", lambda m: _C_ESCAPES.get(m[1], m[1]), s)


def parse(text):
    """Parse error.h's text.

    Returns ``(types, flags, entries, max_error)``: lists of (name, value) for
    lcb_ERROR_TYPE and lcb_ERROR_FLAGS, a list of (name, code, type name,
    flag names, description) in header order, and LCB_MAX_ERROR (or None).
    """
    text = _strip_comments(text)
    types = _parse_enum(text, "lcb_ERROR_TYPE")
    flags = _parse_enum(text, "lcb_ERROR_FLAGS")
    type_names = {name for name, _ in types}
    flag_names = {name for name, _ in flags}
    body = _xerror_body(text)
    entries = []
    for m in _ENTRY_RE.finditer(body):
        flag_expr = [f.strip() for f in m.group("flags").split("|")]
        if flag_expr == ["0"]:
            flag_expr = []
        for f in flag_expr:
            if f not in flag_names:
                raise ParseError(f"{m['name']}: unknown flag {f!r}")
        if m.group("type") not in type_names:
            raise ParseError(f"{m['name']}: unknown type {m['type']!r}")
        entries.append(
            (
                m.group("name"),
                int(m.group("code")),
                m.group("type"),
                tuple(flag_expr),
                _unescape_c(m.group("desc")),
            )
        )
    if body.count("X(") != len(entries):
        raise ParseError(f"parsed {len(entries)} of {body.count('X(')} LCB_XERROR entries")
    for index in (0, 1):
        seen = [e[index] for e in entries]
        dups = sorted({str(v) for v in seen if seen.count(v) > 1})
        if dups:
            raise ParseError(f"duplicate entries: {', '.join(dups)}")
    max_match = re.search(r"\bLCB_MAX_ERROR\s*=\s*(\d+)", text)
    max_error = int(max_match.group(1)) if max_match else None
    return types, flags, entries, max_error


def _pystr(s):
    """A double-quoted Python literal for s."""
    body = s.replace("\\", "\\\\").replace('"', '\\"')
    body = body.replace("\n", "\\n").replace("\t", "\\t")
    return f'"{body}"'


def _string_lines(s, indent, suffix):
    """s as one literal, or as implicitly concatenated pieces, each line fitting
    LINE_LENGTH with the given indent; suffix goes after the last piece."""
    one = " " * indent + _pystr(s) + suffix
    if len(one) <= LINE_LENGTH:
        return [one]
    width = LINE_LENGTH - indent - 4 - 2
    pieces = textwrap.wrap(
        s,
        width=width,
        drop_whitespace=False,
        break_long_words=False,
        break_on_hyphens=False,
    )
    # parenthesized, so the pieces cannot be mistaken for separate elements
    pad = " " * indent
    out = [pad + "("]
    out += [pad + "    " + _pystr(p) for p in pieces]
    out.append(pad + ")" + suffix)
    return out


def render(text):
    """The contents of couchbase/_status.py for error.h's text."""
    types, flags, entries, max_error = parse(text)
    out = [
        "# Generated by tools/generate_status_table.py from libcouchbase's",
        "# include/libcouchbase/error.h (the LCB_XERROR table). Do not edit by hand;",
        "# to regenerate, run from the top of the checkout:",
        "#",
        "#     python tools/generate_status_table.py [path/to/libcouchbase/error.h]",
        '"""libcouchbase status codes (``lcb_STATUS``), as plain data.',
        "",
        "``STATUS`` maps every code to ``(name, type, flags, description)``: the",
        "symbolic name, an ``LCB_ERROR_TYPE_*`` value, a bit set of",
        "``LCB_ERROR_FLAG_*`` values and libcouchbase's own description. Every",
        "status is also a module constant (``LCB_ERR_DOCUMENT_NOT_FOUND = 301``).",
        '"""',
        "",
        "# lcb_ERROR_TYPE",
    ]
    out += [f"{name} = {value}" for name, value in types]
    out += ["", "# lcb_ERROR_FLAGS"]
    out += [f"{name} = {value}" for name, value in flags]
    out += ["", "# lcb_STATUS"]
    out += [f"{name} = {code}" for name, code, _, _, _ in entries]
    if max_error is not None:
        out += ["", "# codes below this value are reserved for libcouchbase"]
        out += [f"LCB_MAX_ERROR = {max_error}"]
    out += ["", "STATUS = {"]
    for name, code, type_name, flag_names, desc in entries:
        flag_expr = " | ".join(flag_names) or "0"
        line = f"    {code}: ({_pystr(name)}, {type_name}, {flag_expr}, {_pystr(desc)}),"
        if len(line) <= LINE_LENGTH:
            out.append(line)
            continue
        out.append(f"    {code}: (")
        out.append(f"        {_pystr(name)},")
        out.append(f"        {type_name},")
        if len(flag_expr) + 9 <= LINE_LENGTH:
            out.append(f"        {flag_expr},")
        else:
            out.append("        " + " | ".join(flag_names[:-1]) + " |")
            out.append(f"        {flag_names[-1]},")
        out += _string_lines(desc, 8, ",")
        out.append("    ),")
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate couchbase/_status.py from libcouchbase's error.h.")
    parser.add_argument(
        "error_h",
        nargs="?",
        help=f"path to libcouchbase/error.h (default: pkg-config's libcouchbase, else {FALLBACK_ERROR_H})",
    )
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help="default: %(default)s")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if OUTPUT is not what would be generated",
    )
    args = parser.parse_args(argv)
    error_h = args.error_h or default_error_h()
    try:
        with open(error_h, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        parser.error(f"cannot read {error_h}: {exc} (pass the path to error.h)")
    try:
        content = render(text)
    except ParseError as exc:
        parser.error(f"{error_h}: {exc}")
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                current = f.read()
        except OSError:
            current = None
        if current != content:
            print(f"{args.output} is not up to date with {error_h}")
            return 1
        return 0
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write(content)
    return 0


if __name__ == "__main__":
    sys.exit(main())
