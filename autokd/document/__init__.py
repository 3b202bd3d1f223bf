"""A small document model (headings, paragraphs, facts, lists, tables, code, figures) and its
Markdown and HTML renderers.

Build a :class:`Document` from blocks whose text is plain strings or inline segments
(:class:`Code`, :class:`Strong`, ...); ``to_markdown`` and ``to_html`` escape every piece of text
for their format, so callers never write markup by hand. A leaf package: it imports nothing
from the rest of autokd.
"""

from autokd.document.html import to_html
from autokd.document.markdown import to_markdown
from autokd.document.model import (
    Block, BulletList, Code, CodeBlock, Column, Document, Emphasis, Fact, Facts, Figure, Heading, Inline,
    Label, Paragraph, Row, Segment, Strong, Swatch, Table, Text, inline_markup, segments, simple_table,
)

__all__ = [
    "Block", "BulletList", "Code", "CodeBlock", "Column", "Document", "Emphasis", "Fact", "Facts", "Figure",
    "Heading", "Inline", "Label", "Paragraph", "Row", "Segment", "Strong", "Swatch", "Table", "Text",
    "inline_markup", "segments", "simple_table", "to_html", "to_markdown",
]
