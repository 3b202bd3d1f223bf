"""Rendering a :class:`~autokd.document.model.Document` as one self-contained HTML page.

All text is HTML-escaped; figures whose bytes are given are embedded as ``data:`` URIs, and the
style sheet is inlined, so the page fetches nothing.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Mapping, Optional

from autokd.document.model import (
    Block, BulletList, Code, CodeBlock, Document, Emphasis, Facts, Figure, Heading, Inline, Label, Paragraph,
    Strong, Swatch, Table, Text, segments,
)

_TAGS = {Code: "code", Strong: "strong", Emphasis: "em"}


def _segment(seg) -> str:
    if isinstance(seg, Text):
        return escape(seg.text)
    if isinstance(seg, Label):
        return f'<span class="{escape(seg.css_class)}">{escape(seg.text)}</span>'
    if isinstance(seg, Swatch):
        return f'<span class="key {escape(seg.css_class)}"></span>'
    tag = _TAGS.get(type(seg))
    if tag is None:
        raise TypeError(f"not an inline segment: {seg!r}")
    return f"<{tag}>{escape(seg.text)}</{tag}>"


def inline(content: Inline) -> str:
    return "".join(_segment(s) for s in segments(content))


def _class(*names: str) -> str:
    names = [n for n in names if n]
    return f' class="{escape(" ".join(names))}"' if names else ""


def _table(table: Table) -> str:
    folded = {i: c.fold_into for i, c in enumerate(table.columns) if c.fold_into is not None}
    shown = [i for i in range(len(table.columns)) if i not in folded]

    def cell(tag: str, i: int, html: str) -> str:
        return f"<{tag}{_class('num' if table.columns[i].right else '')}>{html}</{tag}>"

    def cells(row: list, tag: str) -> str:
        items = [inline(c) for c in row]
        if tag == "td":
            for src, dst in folded.items():
                if items[src]:
                    items[dst] += f'<div class="sub">{items[src]}</div>'
        return "".join(cell(tag, i, items[i]) for i in shown)

    head = cells([c.header for c in table.columns], "th")
    body = "".join(f"<tr{_class(r.style)}>{cells(r.cells, 'td')}</tr>" for r in table.rows)
    return (f'<div class="scroll"><table{_class("data", table.style)}><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _figure(figure: Figure, images: Mapping[str, bytes]) -> str:
    data = images.get(figure.src)
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii") if data is not None else escape(figure.src)
    width = f' style="width:{int(figure.width)}px"' if figure.width else ""
    caption = f"<figcaption>{escape(figure.caption)}</figcaption>" if figure.caption else ""
    return f'<figure><img src="{src}" alt="{escape(figure.alt)}"{width}>{caption}</figure>'


def block(b: Block, images: Mapping[str, bytes]) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{inline(b.content)}</h{b.level}>"
    if isinstance(b, Paragraph):
        return f"<p{_class(b.style)}>{inline(b.content)}</p>"
    if isinstance(b, Facts):
        rows = "".join(f"<tr><th>{inline(f.label)}</th><td>{inline(f.value)}</td></tr>" for f in b.items)
        return f'<table class="facts"><tbody>{rows}</tbody></table>'
    if isinstance(b, BulletList):
        return "<ul>" + "".join(f"<li>{inline(item)}</li>" for item in b.items) + "</ul>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, CodeBlock):
        return f"<pre><code>{escape(b.text.rstrip())}</code></pre>"
    if isinstance(b, Figure):
        return _figure(b, images)
    raise TypeError(f"not a document block: {b!r}")


def to_html(document: Document, css: str = "", images: Optional[Mapping[str, bytes]] = None) -> str:
    """The document as one HTML page with ``css`` inlined; ``images`` maps a figure's ``src`` to
    its PNG bytes, embedded in the page (a figure without bytes links to its file)."""
    body = "\n".join(block(b, images or {}) for b in document.blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(document.title)}</title>\n<style>{css}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n</body>\n</html>\n"
    )
