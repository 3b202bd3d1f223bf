"""The report of ``autokd compare``: CSV tables, PNG plots, ``report.md`` and a self-contained ``report.html``.

``write_report(comparison, out_dir)`` writes

* ``results.csv``  one row per full-length run: strategy, kind, seed, val_acc, test_acc, seconds;
* ``summary.csv``  one row per strategy in rank order: rank, then the :class:`StrategySummary` fields;
* ``optimization_history.png``, ``importances.png`` (only when there are importances),
  ``comparison.png``, ``proxy_vs_full.png`` (only when a found strategy has a proxy value);
* ``report.md`` with the plots linked relatively, and ``report.html``, the same content in one file
  (plots as base64 data URIs, CSS inline, nothing fetched from anywhere);

and returns ``{file name: path}`` of everything written. ``format_table(comparison)`` is the
plain-text comparison table ``autokd compare`` prints.

Ranking: strategies are ranked by full-length test mean, best first (ties: by name). The rows
highlighted as "best found" and "best baseline" are the two strategies of the paired comparison
(falling back to the top-ranked found strategy and baseline when there is none).

Number formats in the tables (accuracies are percentages, as everywhere in autokd):
test mean ± sd ``91.20 ± 0.30``; se ``0.17``; val mean ``90.10``; gap closed ``63.2%``
(the fraction times 100, one decimal); proxy val ``88.40``; missing values ``—`` (``-`` in plain text).
"""

from __future__ import annotations

import base64
import html
import math
import re
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Optional, Union

from autokd.compare.results import BASELINE, FOUND, Comparison, StrategySummary
from autokd.formatting import format_seconds

DASH = "—"
PLOTS = {
    "optimization_history.png": "Search history: proxy validation accuracy of every trial and the best so far.",
    "importances.png": "Parameter importances of the search space (Optuna's default evaluator).",
    "comparison.png": "Full-length test accuracy of every strategy (mean ± 1 sd over the seeds); "
                      "found strategies in orange, baselines in blue.",
    "proxy_vs_full.png": "Does the short proxy run rank strategies like full-length training? "
                         "Proxy validation accuracy against full-length test accuracy of the found strategies.",
}


# ----------------------------------------------------------------------------------------------
# number formatting


def _finite(x) -> bool:
    return x is not None and not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def fmt_acc(x, missing: str = DASH) -> str:
    return f"{x:.2f}" if _finite(x) else missing


def fmt_mean_sd(mean, sd, missing: str = DASH) -> str:
    if not _finite(mean):
        return missing
    return f"{mean:.2f} ± {sd:.2f}" if _finite(sd) else f"{mean:.2f}"


def fmt_gap(fraction, missing: str = DASH) -> str:
    return f"{100.0 * fraction:.1f}%" if _finite(fraction) else missing


def fmt_p(p, missing: str = DASH) -> str:
    if not _finite(p):
        return missing
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def fmt_params(n) -> str:
    if not _finite(n):
        return "? parameters"
    n = float(n)
    if n >= 1e6:
        text = f"{n / 1e6:.2f}M"
    elif n >= 1e3:
        text = f"{n / 1e3:.1f}k"
    else:
        text = f"{int(n)}"
    return f"{text} parameters"


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt_value(x)}" for k, x in v.items()) or "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return str(v)


def _fmt_seconds(s) -> str:
    return format_seconds(s) if _finite(s) else DASH


# ----------------------------------------------------------------------------------------------
# what is ranked and highlighted


def ranked(comparison: Comparison) -> list[StrategySummary]:
    """Found strategies and baselines, best full-length test mean first (ties: by name); other
    kinds (a reference entry) follow unranked."""
    main = [s for s in comparison.summaries if s.kind in (FOUND, BASELINE)]
    main.sort(key=lambda s: (-(s.test_mean if _finite(s.test_mean) else -math.inf), s.name))
    return main + [s for s in comparison.summaries if s.kind not in (FOUND, BASELINE)]


def _rank_numbers(rows: list[StrategySummary]) -> list[Optional[int]]:
    out, k = [], 0
    for s in rows:
        if s.kind in (FOUND, BASELINE):
            k += 1
            out.append(k)
        else:
            out.append(None)
    return out


def _highlighted(comparison: Comparison, rows: list[StrategySummary]) -> tuple[Optional[str], Optional[str]]:
    if comparison.paired is not None:
        return comparison.paired.found, comparison.paired.baseline
    found = next((s.name for s in rows if s.kind == FOUND), None)
    base = next((s.name for s in rows if s.kind == BASELINE), None)
    return found, base


def _student_summary(comparison: Comparison) -> Optional[StrategySummary]:
    return next((s for s in comparison.summaries if s.name == "student"), None)


def _counts(comparison: Comparison) -> dict[str, int]:
    """Trials by state from the search settings (``counts``/``trials`` or top-level keys), else the history."""
    search = comparison.search or {}
    for key in ("counts", "trials", "states"):
        if isinstance(search.get(key), dict):
            return {str(k): int(v) for k, v in search[key].items() if _finite(v)}
    top = {k: int(search[k]) for k in ("complete", "pruned", "failed", "interrupted", "finished") if _finite(search.get(k))}
    if top:
        return top
    out: dict[str, int] = {}
    for _, state, _ in comparison.history:
        s = str(state).lower().replace("trialstate.", "")
        s = {"fail": "failed"}.get(s, s)
        out[s] = out.get(s, 0) + 1
    return out


def paired_sentence(comparison: Comparison) -> Optional[str]:
    """A plain verdict on the best found strategy against the best baseline, in standard errors."""
    p = comparison.paired
    if p is None:
        return None
    d, se = p.diff_mean, p.diff_se
    if not _finite(d):
        return f"{p.found} vs {p.baseline}: no paired difference could be computed."
    if p.n < 2 or not _finite(se):
        return (f"{p.found} vs {p.baseline}: {d:+.1f} points, but with a single paired seed there is no "
                f"standard error, so this does not show that either is better.")
    if se <= 0:  # the same difference on every seed
        if d == 0:
            return f"{p.found} and {p.baseline} tie on every one of the {p.n} seeds."
        verb = "beats" if d > 0 else "does not beat"
        return (f"{p.found} {verb} {p.baseline}: {abs(d):.1f} points {'better' if d > 0 else 'worse'} on every one "
                f"of the {p.n} seeds alike (no seed-to-seed spread).")
    k = d / se
    if d > 0 and k >= 2:
        return f"{p.found} beats {p.baseline} by {d:.1f} points ({k:.1f} standard errors)."
    if d < 0 and k <= -2:
        return (f"{p.found} does not beat {p.baseline}: it is {-d:.1f} points worse "
                f"({-k:.1f} standard errors).")
    return (f"{p.found} does not beat {p.baseline} (difference {d:+.1f} points, within 2 standard errors: "
            f"{k:+.1f}).")


def _fidelity_sentence(comparison: Comparison) -> str:
    f = comparison.fidelity
    if not _finite(f.rho):
        return (f"Not enough points to judge the proxy (n = {f.n}; Spearman's rho needs at least 3 found "
                f"strategies with distinct values).")
    r = f.rho
    if r >= 0.7:
        verdict = "the short proxy runs rank strategies much as full-length training does"
    elif r >= 0.3:
        verdict = "the proxy ranking agrees only moderately with full-length training"
    elif r > -0.3:
        verdict = "the proxy ranking says little about the full-length ranking"
    else:
        verdict = "the proxy ranking tends to reverse the full-length ranking"
    small = f" With only {f.n} strategies this estimate is rough." if f.n < 8 else ""
    return f"Spearman ρ = {r:.2f}: {verdict}.{small}"


# ----------------------------------------------------------------------------------------------
# plain-text table


def format_table(comparison: Comparison) -> str:
    """The comparison table ``autokd compare`` prints: rank order, aligned columns."""
    rows = ranked(comparison)
    if not rows:
        return "no strategies were compared"
    ranks = _rank_numbers(rows)
    header = ["rank", "strategy", "kind", "test mean ± sd", "se", "gap closed", "proxy val"]
    body = [[str(r) if r is not None else "-", s.name, s.kind, fmt_mean_sd(s.test_mean, s.test_sd, "-"),
             fmt_acc(s.test_se, "-"), fmt_gap(s.gap_closed, "-"), fmt_acc(s.proxy_val, "-")]
            for r, s in zip(ranks, rows)]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    left = {1, 2}  # strategy, kind

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    n = len(comparison.seeds)
    lines = [line(header)] + [line(b) for b in body]
    lines.append(f"test accuracy (%) over {n} seed{'s' if n != 1 else ''}; gap closed = (acc - student) / (teacher - student)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# a tiny document model rendered to both Markdown and HTML
#
# inline content: a str (plain text, escaped) or a list of str / ("code", s) / ("b", s) / ("em", s)

Inline = Union[str, list]


def _segments(inline: Inline) -> list:
    return [inline] if isinstance(inline, (str, tuple)) else list(inline)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_code(s: str) -> str:
    run = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or run else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _md_inline(inline: Inline, in_table: bool = False) -> str:
    out = []
    for seg in _segments(inline):
        if isinstance(seg, tuple):
            tag, text = seg
            text = " ".join(str(text).split()) if in_table else str(text)
            if tag == "key":
                continue
            if tag == "name":
                out.append(_md_escape(text))
            elif tag == "name-hl":  # a highlighted row's name: bold in Markdown
                out.append(f"**{_md_escape(text)}**")
            elif tag == "code":
                s = _md_code(text)
                out.append(s.replace("|", "\\|") if in_table else s)
            elif tag == "b":
                out.append(f"**{_md_escape(text)}**")
            else:
                out.append(f"*{_md_escape(text)}*")
        else:
            text = " ".join(str(seg).split()) if in_table else str(seg)
            out.append(_md_escape(text))
    return "".join(out)


def _html_inline(inline: Inline) -> str:
    out = []
    for seg in _segments(inline):
        if isinstance(seg, tuple):
            tag, text = seg
            if tag == "key":  # a colour swatch, HTML only
                out.append(f'<span class="key {html.escape(str(text))}"></span>')
                continue
            if tag in ("name", "name-hl"):
                out.append(f'<span class="name">{html.escape(str(text))}</span>')
                continue
            tag = {"b": "strong"}.get(tag, tag)
            out.append(f"<{tag}>{html.escape(str(text))}</{tag}>")
        else:
            out.append(html.escape(str(seg)))
    return "".join(out)


class _Doc:
    def __init__(self) -> None:
        self.blocks: list[tuple] = []

    def h1(self, text: Inline):
        self.blocks.append(("h1", text))

    def h2(self, text: Inline):
        self.blocks.append(("h2", text))

    def p(self, text: Inline, cls: str = ""):
        self.blocks.append(("p", text, cls))

    def facts(self, items: list[tuple[str, Inline]]):
        self.blocks.append(("facts", items))

    def table(self, headers: list[str], aligns: str, rows: list[list[Inline]], classes: Optional[list[str]] = None,
              cls: str = "", fold: Optional[tuple[int, int]] = None):
        """``fold=(src, dst)``: in HTML, column ``src`` becomes a second line of column ``dst`` (Markdown keeps it)."""
        self.blocks.append(("table", headers, aligns, rows, classes or [""] * len(rows), cls, fold))

    def code(self, text: str, lang: str = ""):
        self.blocks.append(("code", text, lang))

    def figure(self, name: str, alt: str, caption: str, width: int):
        self.blocks.append(("figure", name, alt, caption, width))

    # -- Markdown

    def markdown(self) -> str:
        out: list[str] = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h1":
                out.append(f"# {_md_inline(b[1])}")
            elif kind == "h2":
                out.append(f"## {_md_inline(b[1])}")
            elif kind == "p":
                text = _md_inline(b[1])
                out.append("> " + text if b[2] in ("note", "verdict") else text)
            elif kind == "facts":
                out.append("\n".join(f"- **{_md_inline(k)}:** {_md_inline(v)}" for k, v in b[1]))
            elif kind == "table":
                _, headers, aligns, rows, _, _, _ = b
                sep = ["---:" if a == "r" else "---" for a in aligns]
                lines = ["| " + " | ".join(_md_inline(h, True) for h in headers) + " |", "| " + " | ".join(sep) + " |"]
                lines += ["| " + " | ".join(_md_inline(c, True) for c in row) + " |" for row in rows]
                out.append("\n".join(lines))
            elif kind == "code":
                _, text, lang = b
                run = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
                fence = "`" * (run + 1)
                out.append(f"{fence}{lang}\n{text.rstrip()}\n{fence}")
            elif kind == "figure":
                _, name, alt, caption, _ = b
                out.append(f"![{_md_escape(alt)}]({name})\n\n*{_md_escape(caption)}*")
        return "\n\n".join(out) + "\n"

    # -- HTML

    def html(self, title: str, images: dict[str, bytes]) -> str:
        body: list[str] = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h1":
                body.append(f"<h1>{_html_inline(b[1])}</h1>")
            elif kind == "h2":
                body.append(f"<h2>{_html_inline(b[1])}</h2>")
            elif kind == "p":
                cls = f' class="{b[2]}"' if b[2] else ""
                body.append(f"<p{cls}>{_html_inline(b[1])}</p>")
            elif kind == "facts":
                rows = "".join(f"<tr><th>{_html_inline(k)}</th><td>{_html_inline(v)}</td></tr>" for k, v in b[1])
                body.append(f'<table class="facts"><tbody>{rows}</tbody></table>')
            elif kind == "table":
                _, headers, aligns, rows, classes, cls, fold = b

                def cell(tag, content, a):
                    return f'<{tag} class="num">{content}</{tag}>' if a == "r" else f"<{tag}>{content}</{tag}>"

                def cells(row: list, tag: str) -> str:
                    items = [_html_inline(c) for c in row]
                    if fold is not None:
                        src, dst = fold
                        if tag == "td" and row[src] != DASH:
                            items[dst] += f'<div class="sub">{items[src]}</div>'
                        items = [x for i, x in enumerate(items) if i != src]
                    al = [a for i, a in enumerate(aligns) if fold is None or i != fold[0]]
                    return "".join(cell(tag, x, a) for x, a in zip(items, al))

                head = cells(headers, "th")
                trs = []
                for row, rc in zip(rows, classes):
                    tds = cells(row, "td")
                    trs.append(f'<tr class="{rc}">{tds}</tr>' if rc else f"<tr>{tds}</tr>")
                klass = f' class="data {cls}"' if cls else ' class="data"'
                body.append(f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead>'
                            f'<tbody>{"".join(trs)}</tbody></table></div>')
            elif kind == "code":
                body.append(f"<pre><code>{html.escape(b[1].rstrip())}</code></pre>")
            elif kind == "figure":
                _, name, alt, caption, width = b
                data = images.get(name)
                if data is None:
                    continue
                uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
                body.append(f'<figure><img src="{uri}" alt="{html.escape(alt)}" style="width:{width}px">'
                            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
        )


_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d8dee4; --zebra: #f6f8fa;
        --found: #fde6cc; --found-edge: #e07b22; --base: #dbe6f7; --base-edge: #4c72b0; }
* { box-sizing: border-box; }
body { margin: 0; background: #edf0f3; color: var(--fg);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
             "Liberation Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1000px; margin: 24px auto; padding: 28px 40px 40px; background: #fff;
       border: 1px solid var(--line); border-radius: 8px; }
h1 { font-size: 26px; margin: 0 0 12px; line-height: 1.25; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 5px; border-bottom: 1px solid var(--line); }
p { margin: 8px 0; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace; }
code { font-size: 0.88em; background: #f2f4f6; padding: 1px 4px; border-radius: 4px; }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px;
      font-size: 13px; line-height: 1.45; white-space: pre-wrap; overflow-wrap: anywhere; }
pre code { background: none; padding: 0; font-size: inherit; }
.scroll { overflow-x: auto; margin: 10px 0; }
table { border-collapse: collapse; }
table.data { width: 100%; font-size: 14px; }
table.data th, table.data td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left;
                               vertical-align: top; }
table.data thead th { border-bottom: 2px solid #b8c0c8; font-weight: 600; background: #fff; vertical-align: bottom;
                       line-height: 1.3; }
table.data tbody tr:nth-child(even) td { background: #f7f7f8; }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.data tr.best-found td { background: var(--found); }
table.data tr.best-found td:first-child { box-shadow: inset 4px 0 0 var(--found-edge); }
table.data tr.best-baseline td { background: var(--base); }
table.data tr.best-baseline td:first-child { box-shadow: inset 4px 0 0 var(--base-edge); }
table.data td code { font-size: 12px; background: none; padding: 0; color: #3d444d; }
table.ranking th, table.ranking td { padding: 7px 8px; }
table.ranking .name { font-weight: 600; white-space: nowrap; }
table.ranking .num, table.ranking td:nth-child(3), table.ranking th:nth-child(3) { width: 1%; }
table.ranking th.num { white-space: normal; min-width: 4.2em; }
table.ranking .sub { margin-top: 2px; font-size: 12px; line-height: 1.4; color: #57606a; overflow-wrap: break-word; }
table.ranking .sub code { font-size: 12px; }
table.compact { width: auto; min-width: 50%; }
table.facts { font-size: 14.5px; margin: 6px 0 10px; }
table.facts th { text-align: left; font-weight: 600; color: var(--muted); padding: 3px 18px 3px 0;
                 vertical-align: top; white-space: nowrap; }
table.facts td { padding: 3px 0; }
p.verdict { margin: 14px 0; padding: 10px 14px; background: #f3f7f3; border-left: 4px solid #2a9d4b;
            border-radius: 4px; font-size: 15.5px; }
p.note { color: var(--muted); font-size: 13.5px; }
p.lead { font-size: 16px; }
.key { display: inline-block; width: 11px; height: 11px; border-radius: 2px; vertical-align: -1px; margin: 0 4px 0 2px; }
.key.found { background: var(--found); box-shadow: inset 3px 0 0 var(--found-edge); border: 1px solid #e8c9a5; }
.key.baseline { background: var(--base); box-shadow: inset 3px 0 0 var(--base-edge); border: 1px solid #b9c9e2; }
figure { margin: 18px 0 8px; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceff2; border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13.5px; margin: 6px auto 0; max-width: 760px; }
"""

FIG_WIDTH = {"optimization_history.png": 820, "importances.png": 680, "comparison.png": 820, "proxy_vs_full.png": 660}


# ----------------------------------------------------------------------------------------------
# building the report


def _model_line(info: dict) -> list:
    info = info or {}
    if not info.get("model"):
        return ["unknown"]
    kwargs = info.get("kwargs") or {}
    model = str(info.get("model", "?")) + (f"({_fmt_value(kwargs)})" if kwargs else "")
    return [("code", model), f", {fmt_params(info.get('parameters'))}"]


def _build(comparison: Comparison, plots: dict[str, Path], notes: dict[str, str]) -> _Doc:
    c = comparison
    doc = _Doc()
    rows = ranked(c)
    ranks = _rank_numbers(rows)
    best_found, best_base = _highlighted(c, rows)
    by_name = {s.name: s for s in c.summaries}
    n_seeds = len(c.seeds)
    teacher, student = c.teacher or {}, c.student or {}
    search = c.search or {}

    doc.h1(f"autokd comparison: {c.study_name}")
    lead: list = [f"Task {c.task_name}: strategies found by the search, retrained at full length with "
                  f"{n_seeds} seed{'s' if n_seeds != 1 else ''}, against hand-tuned baselines."]
    bf, bb = by_name.get(best_found), by_name.get(best_base)
    if bf is not None:
        lead.append(f" Best found strategy {bf.name}: {fmt_mean_sd(bf.test_mean, bf.test_sd)}% test accuracy"
                    + (f" ({fmt_gap(bf.gap_closed)} of the teacher-student gap closed)" if _finite(bf.gap_closed) else "")
                    + ".")
    if bb is not None:
        lead.append(f" Best baseline {bb.name}: {fmt_mean_sd(bb.test_mean, bb.test_sd)}%.")
    doc.p(lead, "lead")
    verdict = paired_sentence(c)
    if verdict:
        doc.p(verdict, "verdict")

    # -- task
    doc.h2("Task")
    ratio = ""
    if _finite(teacher.get("parameters")) and _finite(student.get("parameters")) and student["parameters"]:
        ratio = f" ({teacher['parameters'] / student['parameters']:.1f}x fewer than the teacher)"
    doc.facts([
        ("task", [("code", c.task_name)]),
        ("teacher", _model_line(teacher) + ([f"; validation {fmt_acc(teacher.get('val_acc'))}%, "
                                             f"test {fmt_acc(teacher.get('test_acc'))}%"]
                                            if _finite(teacher.get("test_acc")) else [])),
        ("student", _model_line(student) + [ratio]),
    ])

    # -- search
    doc.h2("Search")
    counts = _counts(c)
    order = ["complete", "pruned", "failed", "interrupted", "running", "waiting"]
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    parts += [f"{v} {k}" for k, v in counts.items() if k not in order and k != "finished" and v]
    finished = counts.get("finished", sum(counts.get(k, 0) for k in ("complete", "pruned", "failed")))
    budget = search.get("budget")
    trials_text = f"{finished} finished" + (f" of a budget of {budget}" if budget is not None else "")
    trials_text += (": " + ", ".join(parts)) if parts else ""
    if not counts and budget is None:
        trials_text = DASH
    wall, cpu = search.get("wall_seconds"), search.get("cpu_seconds")
    cpu_text = _fmt_seconds(cpu)
    if _finite(cpu) and _finite(wall) and wall > 0:
        cpu_text += f" ({cpu / wall:.1f}x the wall time)"
    facts = [("sampler", str(search.get("sampler", DASH)))]
    if search.get("space") is not None:
        facts.append(("space", [("code", str(search["space"]))]))
    facts += [
        ("trials", trials_text),
        ("wall time", _fmt_seconds(wall)),
        ("CPU time", cpu_text),
        ("proxy run", f"{search['proxy_epochs']} epochs per trial, ranked by validation accuracy"
                      if search.get("proxy_epochs") is not None else DASH),
    ]
    known = {"sampler", "space", "budget", "counts", "trials", "states", "wall_seconds", "cpu_seconds", "proxy_epochs",
             "complete", "pruned", "failed", "interrupted", "finished", "running", "waiting"}
    if search.get("workers") is not None:
        w = search["workers"]
        facts.append(("workers", "0 (trials one by one, in process)" if w == 0 else f"{w} trials at once"))
    known.add("workers")
    facts += [(str(k), _fmt_value(v)) for k, v in search.items() if k not in known]
    doc.facts(facts)
    _figure_or_note(doc, "optimization_history.png", "search history", plots, notes)
    _figure_or_note(doc, "importances.png", "parameter importances", plots, notes)

    # -- full-length recipe
    doc.h2("Full-length retraining")
    recipe = dict(c.recipe or {})
    recipe_seed = recipe.pop("seed", None)
    total = sum(r.seconds for r in c.runs if _finite(r.seconds))
    doc.facts([
        ("recipe", [("code", _fmt_value(recipe) if recipe else DASH)]),
        ("seeds", ", ".join(str(s) for s in c.seeds) + f" ({n_seeds} per strategy"
                  + (f"; the recipe's own seed {recipe_seed} is replaced by these" if recipe_seed is not None
                     and list(c.seeds) != [recipe_seed] else "") + ")"),
        ("runs", f"{len(c.runs)} full-length runs, {_fmt_seconds(total)} of training in all"),
    ])

    # -- comparison table
    doc.h2("Comparison")
    headers = ["rank", "strategy", "kind", "test mean ± sd", "se", "val mean", "gap closed", "proxy val", "strategy in full"]
    table_rows, classes = [], []
    for r, s in zip(ranks, rows):
        hl_row = (s.name == best_found and s.kind == FOUND) or (s.name == best_base and s.kind == BASELINE)
        table_rows.append([
            str(r) if r is not None else DASH, [("name-hl" if hl_row else "name", s.name)], s.kind, fmt_mean_sd(s.test_mean, s.test_sd), fmt_acc(s.test_se),
            fmt_acc(s.val_mean), fmt_gap(s.gap_closed), fmt_acc(s.proxy_val) if s.kind == FOUND else DASH,
            [("code", s.description)] if s.description else DASH,
        ])
        classes.append("best-found" if s.name == best_found and s.kind == FOUND
                       else "best-baseline" if s.name == best_base and s.kind == BASELINE else "")
    if table_rows:
        doc.table(headers, "rllrrrrrl", table_rows, classes, cls="ranking", fold=(8, 1))
        hl: list = []
        if best_found:
            hl += [("key", "found"), f"best found strategy ({best_found})"]
        if best_base:
            hl += [" and " if hl else "", ("key", "baseline"), f"best baseline ({best_base})"]
        doc.p([f"Accuracies in %. Ranked by full-length test accuracy (mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}; "
               f"sd across seeds, se = sd/√n). Gap closed = (test mean − student) / (teacher − student): "
               f"0% is the student trained alone with cross-entropy, 100% the teacher. Proxy val is the found "
               f"strategy's validation accuracy in the short search run."]
              + ([" Highlighted (bold in Markdown): "] + hl
               + [", the pair compared below." if c.paired is not None else ", by test mean."] if hl else []), "note")
    else:
        doc.p("No strategies were compared.", "note")
    _figure_or_note(doc, "comparison.png", "comparison plot", plots, notes)

    # -- paired
    doc.h2("Best found vs best baseline (paired by seed)")
    p = c.paired
    if p is None:
        doc.p("No paired comparison: it needs at least one found strategy and one baseline with common seeds.", "note")
    else:
        doc.facts([
            ("found", [("code", p.found)]),
            ("baseline", [("code", p.baseline)]),
            ("mean difference", f"{p.diff_mean:+.2f} points (found − baseline)" if _finite(p.diff_mean) else DASH),
            ("sd of differences", fmt_acc(p.diff_sd)),
            ("standard error", fmt_acc(p.diff_se)),
            ("t", f"{p.t:.2f}" if _finite(p.t) else DASH),
            ("p (two-sided)", fmt_p(p.p_value)),
            ("n", f"{p.n} paired seed{'s' if p.n != 1 else ''}"),
        ])
        doc.p(verdict or "", "verdict")
        doc.p("Each seed gives one test-accuracy difference; the mean difference, its standard error and a "
              "paired t-test over seeds say whether the gap is larger than seed-to-seed noise.", "note")

    # -- fidelity
    doc.h2("Proxy fidelity")
    f = c.fidelity
    doc.facts([
        ("Spearman ρ", f"{f.rho:.2f}" if _finite(f.rho) else "not enough points"),
        ("p", fmt_p(f.p_value)),
        ("n", f"{f.n} found strateg{'ies' if f.n != 1 else 'y'}"),
    ])
    doc.p(_fidelity_sentence(c))
    _figure_or_note(doc, "proxy_vs_full.png", "proxy-vs-full plot", plots, notes)

    # -- per-seed runs
    if c.runs:
        doc.h2("Every run")
        seeds = list(c.seeds) or sorted({r.seed for r in c.runs})
        cell = {(r.strategy, r.seed): r for r in c.runs}
        names = [s.name for s in rows] + sorted({r.strategy for r in c.runs} - {s.name for s in rows})
        kind = {s.name: s.kind for s in rows} | {r.strategy: r.kind for r in c.runs if r.strategy not in by_name}
        run_rows = []
        for name in names:
            run_rows.append([name, kind.get(name, "")] + [fmt_acc(cell[(name, sd)].test_acc) if (name, sd) in cell else DASH
                                                          for sd in seeds])
        doc.table(["strategy", "kind"] + [f"seed {sd}" for sd in seeds], "ll" + "r" * len(seeds), run_rows, cls="compact")
        doc.p("Test accuracy (%) of each full-length run; every run is in results.csv with its validation "
              "accuracy and time.", "note")

    # -- exported
    doc.h2("Best strategy, exported")
    if (c.exported or "").strip():
        doc.p(["The best found strategy as the config ", ("code", "autokd export"), " writes; train it with ",
               ("code", "autokd train --config best.yaml"), "."])
        doc.code(c.exported, "yaml")
    else:
        doc.p("No strategy was exported.", "note")

    # -- reproduce
    doc.h2("How to reproduce")
    cmd = "autokd search"
    if search.get("space") is not None:
        cmd += f" --space {search['space']}"
    if search.get("sampler") is not None:
        cmd += f" --sampler {search['sampler']}"
    if budget is not None:
        cmd += f" --budget {budget}"
    cmd += f" --name {c.study_name}"
    doc.code("\n".join([
        f"{cmd}",
        f"autokd compare {c.study_name} --seeds {n_seeds}",
        f"autokd export {c.study_name} -o best.yaml && autokd train --config best.yaml --seeds {n_seeds}",
    ]), "sh")
    doc.p("The first command runs (or, re-run, finishes) the search; the second retrains its best strategies "
          "and the baselines at full length and writes this report; the third trains the best strategy alone.",
          "note")
    return doc


def _figure_or_note(doc: _Doc, name: str, what: str, plots: dict[str, Path], notes: dict[str, str]) -> None:
    if name in plots:
        doc.figure(name, what, PLOTS[name], FIG_WIDTH[name])
    elif name in notes:
        doc.p(notes[name], "note")


def _draw_plots(c: Comparison, out_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    from autokd.compare import plots as P

    written: dict[str, Path] = {}
    notes: dict[str, str] = {}

    def attempt(name: str, fn) -> None:
        try:
            written[name] = fn(out_dir / name)
        except Exception as e:  # a broken plot must not cost the whole report
            warnings.warn(f"autokd compare: could not draw {name}: {e!r}", RuntimeWarning, stacklevel=3)
            notes[name] = f"The plot {name} could not be drawn ({type(e).__name__}: {e})."

    if c.history:
        attempt("optimization_history.png", lambda path: P.optimization_history(c.history, path))
    else:
        notes["optimization_history.png"] = "No search history was recorded, so there is no history plot."
    if c.importances:
        attempt("importances.png", lambda path: P.importances(c.importances, path))
    else:
        notes["importances.png"] = ("No parameter importances: Optuna could not compute them (too few complete "
                                    "trials, or parameters that never varied), so there is no importances plot.")
    rows = [s for s in ranked(c) if s.kind in (FOUND, BASELINE)]
    if rows:
        student = _student_summary(c)
        attempt("comparison.png", lambda path: P.comparison(
            [(s.name, s.kind, s.test_mean, s.test_sd) for s in rows], path,
            teacher=(c.teacher or {}).get("test_acc"), student=student.test_mean if student else None,
            n_seeds=len(c.seeds)))
    points = [(s.name, s.proxy_val, s.test_mean, s.test_sd) for s in c.summaries
              if s.kind == FOUND and _finite(s.proxy_val) and _finite(s.test_mean)]
    if points:
        attempt("proxy_vs_full.png", lambda path: P.proxy_vs_full(points, path, c.fidelity.rho, c.fidelity.p_value,
                                                                  c.fidelity.n))
    else:
        notes["proxy_vs_full.png"] = "No found strategy has a proxy value, so there is no proxy-vs-full plot."
    return written, notes


def write_report(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write the CSVs, plots, ``report.md`` and ``report.html`` into ``out_dir``; return {file name: path}."""
    import pandas as pd

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c = comparison
    written: dict[str, Path] = {}

    run_cols = ["strategy", "kind", "seed", "val_acc", "test_acc", "seconds"]
    runs = pd.DataFrame([{k: getattr(r, k) for k in run_cols} for r in c.runs], columns=run_cols)
    written["results.csv"] = out_dir / "results.csv"
    runs.to_csv(written["results.csv"], index=False)

    rows = ranked(c)
    summary_cols = ["rank"] + [f.name for f in fields(StrategySummary)]
    summary = pd.DataFrame([{"rank": r, **asdict(s)} for r, s in zip(_rank_numbers(rows), rows)], columns=summary_cols)
    for col in ("rank", "trial_number"):
        summary[col] = summary[col].astype("Int64")
    written["summary.csv"] = out_dir / "summary.csv"
    summary.to_csv(written["summary.csv"], index=False)

    plots, notes = _draw_plots(c, out_dir)
    written.update(plots)

    doc = _build(c, plots, notes)
    written["report.md"] = out_dir / "report.md"
    written["report.md"].write_text(doc.markdown(), encoding="utf-8")
    images = {name: path.read_bytes() for name, path in plots.items()}
    written["report.html"] = out_dir / "report.html"
    written["report.html"].write_text(doc.html(f"autokd comparison: {c.study_name}", images), encoding="utf-8")
    return written
