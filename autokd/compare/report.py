"""The report of ``autokd compare``: CSV tables, PNG plots, ``report.md`` and a self-contained ``report.html``.

``write_report(comparison, out_dir)`` writes

* ``results.csv``  one row per full-length run: strategy, kind, seed, val_acc, test_acc, seconds,
  state (ok or failed) and the reason a failed run failed;
* ``summary.csv``  one row per strategy in rank order: rank, then the :class:`StrategySummary` fields;
* ``optimization_history.png``, ``importances.png`` (only when there are importances),
  ``comparison.png``, ``proxy_vs_full.png`` (only when a found strategy has a proxy value);
* ``report.md`` with the plots linked relatively, and ``report.html``, the same content in one file
  (plots as base64 data URIs, CSS inline, nothing fetched from anywhere);

and returns ``{file name: path}`` of everything written. Every file is written atomically, and a
write that fails (a read-only folder, a file where the folder should be, a full disk) is one
:class:`~autokd.errors.AutokdError` line. The sections are in :mod:`autokd.compare.sections`.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

from autokd.compare.plots import draw_all
from autokd.compare.ranking import rank_numbers, by_test_mean
from autokd.compare.results import Comparison, RunRecord, StrategySummary
from autokd.compare.sections import build_document
from autokd.document import to_html, to_markdown
from autokd.outputs import make_folder, write_atomic, write_text

RUN_COLUMNS = ["strategy", "kind", "seed", "val_acc", "test_acc", "seconds", "steps", "state", "reason"]


def write_report(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write the CSVs, plots, ``report.md`` and ``report.html`` into ``out_dir``; return {file name: path}."""
    out_dir = make_folder(out_dir, "the compare report")
    written = {"results.csv": _write_runs(comparison.runs, out_dir / "results.csv"),
               "summary.csv": _write_summary(by_test_mean(comparison), out_dir / "summary.csv")}
    figures = draw_all(comparison, out_dir)
    written.update(figures.drawn)
    doc = build_document(comparison, figures)
    written["report.md"] = write_text(out_dir / "report.md", to_markdown(doc), "the Markdown report")
    images = {name: path.read_bytes() for name, path in figures.drawn.items()}
    written["report.html"] = write_text(out_dir / "report.html", to_html(doc, CSS, images), "the HTML report")
    return written


def _write_runs(runs: list[RunRecord], path: Path) -> Path:
    import pandas as pd

    table = pd.DataFrame([{k: getattr(r, k) for k in RUN_COLUMNS} for r in runs], columns=RUN_COLUMNS)
    table["steps"] = table["steps"].astype("Int64")  # whole numbers, blank for a failed run (not 30.0 and NaN)
    return write_atomic(path, lambda tmp: table.to_csv(tmp, index=False), "the table of runs")


def _write_summary(rows: list[StrategySummary], path: Path) -> Path:
    import pandas as pd

    columns = ["rank"] + [f.name for f in fields(StrategySummary)]
    records = [{**asdict(s), "rank": r, "baselines": " ".join(s.baselines)} for r, s in zip(rank_numbers(rows), rows)]
    table = pd.DataFrame(records, columns=columns)
    for col in ("rank", "trial_number"):
        table[col] = table[col].astype("Int64")
    return write_atomic(path, lambda tmp: table.to_csv(tmp, index=False), "the summary table")


CSS = """
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
