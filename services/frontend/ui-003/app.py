"""Renders a JSON list of objects (on stdin) as an HTML table, escaped with MarkupSafe.

Usage: echo '[{"module": "a-001", "status": "<ok>"}]' | python app.py [CAPTION]
Prints the <table> fragment; columns are the union of the objects' keys in first-seen order.
Exits 2 if stdin is not a JSON list of objects. Everything from the input is HTML-escaped.
"""

import json
import sys
from typing import Any

from barestack_common.module import EXIT_BAD_INPUT, fail
from markupsafe import Markup


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def render_table(rows: list[dict[str, Any]], caption: str | None) -> Markup:
    columns = columns_of(rows)
    # Markup.format escapes every argument that is not Markup itself: input can never inject tags.
    html = Markup("<table>\n")
    if caption:
        html += Markup("<caption>{}</caption>\n").format(caption)
    html += Markup("<tr>{}</tr>\n").format(Markup("").join(Markup("<th>{}</th>").format(c) for c in columns))
    for row in rows:
        cells = Markup("").join(Markup("<td>{}</td>").format(row.get(column, "")) for column in columns)
        html += Markup("<tr>{}</tr>\n").format(cells)
    return html + Markup("</table>")


def main(argv: list[str]) -> int:
    try:
        rows = json.load(sys.stdin)
    except ValueError as error:
        fail(f"stdin is not JSON: {error}", EXIT_BAD_INPUT)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        fail("stdin must be a JSON list of objects", EXIT_BAD_INPUT)
    print(render_table(rows, argv[0] if argv else None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
