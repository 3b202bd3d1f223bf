"""The blocks and inline segments of a document: plain data, rendered by ``markdown`` and ``html``.

Inline content (:data:`Inline`) is a plain string, one segment, or a list of strings and
segments. Text is never pre-escaped: each renderer escapes it for its own format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Code:
    """Inline code: a code span in Markdown, ``<code>`` in HTML."""

    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Emphasis:
    text: str


@dataclass(frozen=True)
class Label:
    """A name styled by the page: ``<span class="CSS_CLASS">`` in HTML; in Markdown the bare text,
    bold when ``strong``."""

    text: str
    css_class: str = "name"
    strong: bool = False


@dataclass(frozen=True)
class Swatch:
    """A small colour key (``<span class="key CSS_CLASS">``); HTML only, nothing in Markdown."""

    css_class: str


Segment = Union[Text, Code, Strong, Emphasis, Label, Swatch]
Inline = Union[str, Segment, Sequence[Union[str, Segment]]]
_SEGMENT_TYPES = (Text, Code, Strong, Emphasis, Label, Swatch)


def segments(inline: Inline) -> list[Segment]:
    """``inline`` as a list of segments (plain strings become :class:`Text`)."""
    items = [inline] if isinstance(inline, (str, *_SEGMENT_TYPES)) else list(inline)
    return [Text(x) if isinstance(x, str) else x for x in items]


_MARKUP = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*")


def inline_markup(text: str) -> list[Segment]:
    """Segments from authored prose with ```code```, ``**strong**`` and ``*emphasis*`` marks
    (nothing else is markup: every other character stays text)."""
    out: list[Segment] = []
    pos = 0
    for m in _MARKUP.finditer(text):
        if m.start() > pos:
            out.append(Text(text[pos:m.start()]))
        code, strong, em = m.groups()
        out.append(Code(code) if code is not None else Strong(strong) if strong is not None else Emphasis(em))
        pos = m.end()
    if pos < len(text):
        out.append(Text(text[pos:]))
    return out


@dataclass
class Heading:
    content: Inline
    level: int = 2  # 1 = the page title


@dataclass
class Paragraph:
    """``style``: "" (plain), "lead", "note" or "verdict"; notes and verdicts are block quotes in
    Markdown, and the style is the paragraph's class in HTML."""

    content: Inline
    style: str = ""


@dataclass
class Fact:
    label: Inline
    value: Inline


@dataclass
class Facts:
    """Labelled values: ``- **label:** value`` in Markdown, a two-column table in HTML."""

    items: list[Fact]


@dataclass
class BulletList:
    items: list[Inline]


@dataclass
class Column:
    """``fold_into``: in HTML this column is shown as a second line inside column ``fold_into``
    (its empty cells are left out); Markdown keeps it as a column of its own."""

    header: Inline
    right: bool = False  # right-aligned (numbers)
    fold_into: Optional[int] = None


@dataclass
class Row:
    cells: list[Inline]
    style: str = ""  # the row's class in HTML


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]
    style: str = ""  # the table's extra class in HTML

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row.cells) != len(self.columns):
                raise ValueError(f"a table row has {len(row.cells)} cells for {len(self.columns)} columns")


@dataclass
class CodeBlock:
    text: str
    language: str = ""


@dataclass
class Figure:
    """An image file ``src`` beside the document (HTML embeds it when given its bytes)."""

    src: str
    alt: str
    caption: str = ""
    width: Optional[int] = None  # pixels, HTML only


Block = Union[Heading, Paragraph, Facts, BulletList, Table, CodeBlock, Figure]


@dataclass
class Document:
    title: str  # HTML's <title>; a page heading is a Heading(level=1) block
    blocks: list[Block] = field(default_factory=list)


def simple_table(headers: Sequence[Inline], rows: Sequence[Sequence[Inline]], align: str = "", style: str = "") -> Table:
    """A table from header texts, rows of cells and an alignment string (``l``/``r`` per column;
    columns beyond it are left-aligned)."""
    columns = [Column(h, right=align[i:i + 1] == "r") for i, h in enumerate(headers)]
    return Table(columns, [Row(list(r)) for r in rows], style)
