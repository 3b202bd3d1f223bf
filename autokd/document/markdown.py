"""Rendering a :class:`~autokd.document.model.Document` as (GitHub-flavoured) Markdown.

Text is escaped so that it shows as written (``*``, ``_``, ``|``, ``<`` ... are not markup);
inside table cells whitespace collapses to single spaces and ``|`` in code spans is escaped.
"""

from __future__ import annotations

import re

from autokd.document.model import (
    Block, BulletList, Code, CodeBlock, Document, Emphasis, Facts, Figure, Heading, Inline, Label, Paragraph,
    Strong, Swatch, Table, Text, segments,
)

_SPECIAL = re.compile(r"([\\`*_\[\]<|])")  # ">" only matters at a line start (below)
_LINE_START = re.compile(r"^(#|>|[-+=]\s|\d+[.)]\s)")  # would start a heading, quote, list or rule


def escape(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text)


def _code_span(text: str) -> str:
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or run else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _segment(seg, in_table: bool) -> str:
    text = getattr(seg, "text", "")
    if in_table:
        text = " ".join(text.split())
    if isinstance(seg, Text):
        return escape(text)
    if isinstance(seg, Code):
        span = _code_span(text)
        return span.replace("|", "\\|") if in_table else span
    if isinstance(seg, Strong) or (isinstance(seg, Label) and seg.strong):
        return f"**{escape(text)}**"
    if isinstance(seg, Emphasis):
        return f"*{escape(text)}*"
    if isinstance(seg, Label):
        return escape(text)
    if isinstance(seg, Swatch):
        return ""
    raise TypeError(f"not an inline segment: {seg!r}")


def inline(content: Inline, in_table: bool = False) -> str:
    return "".join(_segment(s, in_table) for s in segments(content))


def _table(table: Table) -> str:
    def line(cells) -> str:
        return "| " + " | ".join(inline(c, in_table=True) for c in cells) + " |"

    rule = "| " + " | ".join("---:" if c.right else "---" for c in table.columns) + " |"
    return "\n".join([line([c.header for c in table.columns]), rule] + [line(r.cells) for r in table.rows])


def _code_block(block: CodeBlock) -> str:
    run = max((len(m) for m in re.findall(r"`{3,}", block.text)), default=2)
    fence = "`" * (run + 1)
    return f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}"


def block(b: Block) -> str:
    """One block as Markdown (no trailing blank line)."""
    if isinstance(b, Heading):
        return f"{'#' * b.level} {inline(b.content)}"
    if isinstance(b, Paragraph):
        text = _LINE_START.sub(r"\\\1", inline(b.content))
        return ("> " if b.style in ("note", "verdict") else "") + text
    if isinstance(b, Facts):
        return "\n".join(f"- **{inline(f.label)}:** {inline(f.value)}" for f in b.items)
    if isinstance(b, BulletList):
        return "\n".join(f"- {inline(item)}" for item in b.items)
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, CodeBlock):
        return _code_block(b)
    if isinstance(b, Figure):
        image = f"![{escape(b.alt)}]({b.src})"
        return f"{image}\n\n*{escape(b.caption)}*" if b.caption else image
    raise TypeError(f"not a document block: {b!r}")


def to_markdown(document: Document) -> str:
    """The document's blocks as Markdown, separated by blank lines, ending with a newline."""
    return "\n\n".join(block(b) for b in document.blocks) + "\n"
