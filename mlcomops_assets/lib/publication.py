"""What goes into the publication folder, and in which form a browser can read it.

Reports written as Markdown are published as self-contained HTML pages (rendered with markdown-it-py,
no script, no external resource), so the report server never has to guess how to show a text format.
"""

from __future__ import annotations

import html
from pathlib import Path

from mlcomops_assets.lib.files import write_atomic

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #bbb; padding: .25rem .5rem; }}
th {{ background: #eee; }} code {{ background: #f4f4f4; padding: 0 .2rem; }}
</style></head>
<body>
{body}
</body></html>
"""


def markdown_to_html(markdown: str, title: str) -> str:
    """A standalone HTML page for a Markdown report; raw HTML in the source is escaped, not rendered."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    return _PAGE.format(title=html.escape(title), body=renderer.render(markdown))


def publish_markdown(markdown: str, target: Path, title: str) -> Path:
    """Write ``target`` (.md) and its rendered HTML beside it; returns the HTML page, the one to link."""
    write_atomic(target, lambda p: p.write_text(markdown, encoding="utf-8"))
    page = target.with_suffix(".html")
    rendered = markdown_to_html(markdown, title)
    return write_atomic(page, lambda p: p.write_text(rendered, encoding="utf-8"))
