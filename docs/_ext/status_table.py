"""The ``status-table`` directive: every libcouchbase status and the exception
class it raises, read from couchbase.exceptions (so the docs cannot drift
from the code)."""

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from couchbase import _status, exceptions


def _row(*cells):
    row = nodes.row()
    for text in cells:
        entry = nodes.entry()
        entry += nodes.paragraph(text=text)
        row += entry
    return row


class StatusTable(SphinxDirective):
    has_content = False

    def run(self):
        headers = ("status", "code", "exception class", "libcouchbase's description")
        table = nodes.table()
        group = nodes.tgroup(cols=len(headers))
        table += group
        for width in (30, 8, 22, 40):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += _row(*headers)
        group += head
        body = nodes.tbody()
        for code, (name, _type, _flags, description) in sorted(_status.STATUS.items()):
            if code == 0:
                continue  # LCB_SUCCESS is not an error
            body += _row(name, str(code), exceptions.class_for_status(code).__name__, description)
        group += body
        return [table]


def setup(app):
    app.add_directive("status-table", StatusTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
