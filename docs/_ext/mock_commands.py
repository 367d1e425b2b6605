"""The ``mock-commands`` directive: every control command of the mock cluster, its
parameters, HTTP aliases and description, read from the registry in
couchbase.mock.commands (so the docs cannot drift from the code)."""

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

import couchbase.mock  # noqa: F401  (defines the commands)
from couchbase.mock.commands import COMMANDS


class MockCommands(SphinxDirective):
    has_content = False

    def run(self):
        listing = nodes.definition_list()
        for cmd in COMMANDS.values():
            item = nodes.definition_list_item()
            term = nodes.term()
            term += nodes.literal(text=cmd.signature_text())
            item += term
            definition = nodes.definition()
            for paragraph in cmd.doc.split("\n\n"):
                definition += nodes.paragraph(text=" ".join(paragraph.split()).replace("``", ""))
            http = "HTTP: /mock/%s" % cmd.name
            if cmd.http_aliases_text():
                http += "; %s" % cmd.http_aliases_text()
            definition += nodes.paragraph(text=http + ".")
            item += definition
            listing += item
        return [listing]


def setup(app):
    app.add_directive("mock-commands", MockCommands)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
