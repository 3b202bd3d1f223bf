"""The report of ``autokd compare``: CSVs, plots, Markdown and self-contained HTML, from a hand-built Comparison."""

from __future__ import annotations

import dataclasses
import re
import statistics

import pandas as pd
import pytest

from autokd.compare.ranking import format_table
from autokd.compare.report import write_report
from autokd.compare.results import (
    BASELINE, FAILED, FOUND, Comparison, Fidelity, HistoryPoint, ModelSummary, PairedComparison, RunRecord,
    SearchSummary, StrategySummary,
)
from autokd.config.strategy import Recipe
from autokd.document import (
    Code, CodeBlock, Column, Document, Emphasis, Fact, Facts, Figure, Heading, Label, Paragraph, Row, Strong,
    Swatch, Table, Text, inline_markup, to_html, to_markdown,
)
from autokd.errors import AutokdError
from autokd.search.ledger import TrialCounts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEEDS = [0, 1, 2]
TEACHER_TEST, STUDENT_TEST = 94.0, 80.0

# test accuracies per seed; means: trial 12 = 88.2, kd = 86.4, trial 7 = 86.0, trial 3 = 85.23, fitnet = 84.6,
# student = 80.0 (the rank order)
TESTS = {
    "trial 12": (FOUND, [87.5, 89.0, 88.1]),
    "trial 7": (FOUND, [85.5, 86.5, 86.0]),
    "trial 3": (FOUND, [84.9, 85.6, 85.2]),
    "kd": (BASELINE, [86.4, 86.2, 86.6]),
    "fitnet": (BASELINE, [84.1, 85.0, 84.7]),
    "student": (BASELINE, [79.6, 80.3, 80.1]),
}
RANK_ORDER = ["trial 12", "kd", "trial 7", "trial 3", "fitnet", "student"]
# the search's proxy ranking 12 > 3 > 7 against the full-length 12 > 7 > 3: Spearman rho 0.5
PROXY = {"trial 12": 84.75, "trial 7": 83.5, "trial 3": 83.9}
DESCRIPTIONS = {
    "trial 12": "dkd T=3.2 alpha=0.7 + at(stages.1<-stages.2)x420 + rkd x1.5",
    "trial 7": "kd T=8 alpha=0.45 + sp x2.1e+03 <script>alert(1)</script>",
    "trial 3": "dkd T=1.7 alpha=0.93 + nst(stages.2<-stages.3)x12.5 + fitnet(stages.1<-stages.1)x31 + pkt x3.3e+04",
    "kd": "kd T=4 alpha=0.9",
    "fitnet": "kd T=4 alpha=0.9 + fitnet(stages.1<-stages.1)x100",
    "student": "ce only",
}
EXPORTED = "# Exported by autokd from study 'demo-tpe', trial 12\ntask:\n  name: tiny\nstrategy:\n  temperature: 3.2\n"


def make_comparison(**changes) -> Comparison:
    runs, summaries = [], []
    for name, (kind, accs) in TESTS.items():
        for seed, acc in zip(SEEDS, accs):
            runs.append(RunRecord(name, kind, seed, val_acc=acc + 0.5, test_acc=acc, seconds=12.0 + seed, key=f"{name}-{seed}"))
        mean, sd = statistics.mean(accs), statistics.stdev(accs)
        summaries.append(StrategySummary(
            name=name, kind=kind, description=DESCRIPTIONS[name], n=len(accs), failed=0, test_mean=mean, test_sd=sd,
            test_se=sd / len(accs) ** 0.5, val_mean=mean + 0.5,
            gap_closed=None if name == "student" else (mean - STUDENT_TEST) / (TEACHER_TEST - STUDENT_TEST),
            proxy_val=PROXY.get(name), trial_number=int(name.split()[1]) if kind == FOUND else None,
            baselines=[name] if kind == BASELINE else [],
        ))
    diffs = [a - b for a, b in zip(TESTS["trial 12"][1], TESTS["kd"][1])]
    d_mean, d_sd = statistics.mean(diffs), statistics.stdev(diffs)
    t = d_mean / (d_sd / 3 ** 0.5)
    p = 1 - t / (2 + t * t) ** 0.5  # two-sided, Student's t with 2 degrees of freedom
    paired = PairedComparison("trial 12", "kd", 3, d_mean, d_sd, d_sd / 3 ** 0.5, t=t, p_value=p)
    history = ([HistoryPoint(i, "COMPLETE", 70.0 + i) for i in range(0, 10)]
               + [HistoryPoint(10, "PRUNED", 60.0), HistoryPoint(11, "PRUNED", None),
                  HistoryPoint(12, "COMPLETE", 84.75), HistoryPoint(13, "FAIL", None)])
    c = Comparison(
        study_name="demo-tpe", task_name="tiny-mnist1d",
        teacher=ModelSummary("cnn1d", {"channels": 64}, 123456, val_acc=94.5, test_acc=TEACHER_TEST),
        student=ModelSummary("cnn1d", {"channels": 8}, 4321, val_acc=80.5, test_acc=STUDENT_TEST),
        search=SearchSummary("tpe", 14, TrialCounts(complete=11, pruned=2, failed=1), wall_seconds=754.0,
                             cpu_seconds=1432.0, workers=2, proxy_epochs=5, space="spaces/tiny.yaml"),
        recipe=Recipe(epochs=20, optimizer="adam", lr=0.01, schedule="cosine", batch_size=128, seed=0),
        seeds=SEEDS, summaries=summaries, runs=runs, paired=paired, fidelity=Fidelity(rho=0.5, p_value=0.667, n=3),
        exported=EXPORTED, history=history,
        importances={"alpha": 0.52, "temperature": 0.3, "pair_loss_0": 0.12, "weight_scale": 0.06},
    )
    return dataclasses.replace(c, **changes)


def _table_lines(text: str, marker: str) -> list[str]:
    return [line for line in text.splitlines() if marker in line]


def test_write_report_writes_every_file(tmp_path):
    out = tmp_path / "nested" / "report"
    written = write_report(make_comparison(), out)
    expected = {"results.csv", "summary.csv", "optimization_history.png", "importances.png", "comparison.png",
                "proxy_vs_full.png", "report.md", "report.html"}
    assert set(written) == expected
    for name, path in written.items():
        assert path == out / name and path.is_file(), name
    for name in expected:
        if name.endswith(".png"):
            data = (out / name).read_bytes()
            assert data[:8] == PNG_MAGIC and len(data) > 10_000, name


def test_csvs_hold_every_run_and_summary(tmp_path):
    c = make_comparison()
    write_report(c, tmp_path)
    runs = pd.read_csv(tmp_path / "results.csv")
    assert list(runs.columns) == ["strategy", "kind", "seed", "val_acc", "test_acc", "seconds", "steps", "state",
                                  "reason"]
    assert len(runs) == len(c.runs) == 18
    row = runs[(runs.strategy == "kd") & (runs.seed == 1)].iloc[0]
    assert row.kind == BASELINE and row.test_acc == pytest.approx(86.2) and row.val_acc == pytest.approx(86.7)
    assert row.seconds == pytest.approx(13.0) and row.state == "ok" and pd.isna(row.reason)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.name) == RANK_ORDER
    assert list(summary["rank"]) == [1, 2, 3, 4, 5, 6]
    first = summary.iloc[0]
    assert first.test_mean == pytest.approx(statistics.mean(TESTS["trial 12"][1]))
    assert first.proxy_val == pytest.approx(84.75) and first.trial_number == 12
    assert pd.isna(summary.iloc[-1].gap_closed) and pd.isna(summary.iloc[-1].proxy_val)
    assert list(summary.n) == [3] * 6 and list(summary.failed) == [0] * 6 and summary.iloc[1].baselines == "kd"


def test_markdown_and_html_tables_show_the_numbers(tmp_path):
    c = make_comparison()
    write_report(c, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "**proxy run:** 5 epochs per trial, ranked by validation accuracy" in md
    page = (tmp_path / "report.html").read_text()
    for s in c.summaries:
        mean_sd = f"{s.test_mean:.2f} ± {s.test_sd:.2f}"
        se, val = f"{s.test_se:.2f}", f"{s.val_mean:.2f}"
        gap = "—" if s.gap_closed is None else f"{100 * s.gap_closed:.1f}%"
        proxy = "—" if s.proxy_val is None else f"{s.proxy_val:.2f}"
        (md_row,) = [line for line in md.splitlines()
                     if re.match(r"\| \d+ \| ", line) and line.split("|")[2].strip(" *") == s.name]
        cells = [x.strip() for x in md_row.strip("|").split(" | ")]
        highlighted = s.name in ("trial 12", "kd")  # the paired comparison's pair: bold
        assert cells[1] == (f"**{s.name}**" if highlighted else s.name)
        cells[1] = s.name
        assert cells[1:9] == [s.name, s.kind, "3", mean_sd, se, val, gap, proxy], md_row
        for text in ("3", mean_sd, se, val, gap, proxy):
            assert f'<td class="num">{text}</td>' in page, (s.name, text)
    # rank order in the markdown table, the best found and best baseline highlighted in HTML
    names = [re.match(r"\| (\d+) \| ([^|]+) \|", line) for line in md.splitlines()]
    assert [(m.group(1), m.group(2).strip(" *")) for m in names if m] == [(str(i + 1), n) for i, n in enumerate(RANK_ORDER)]
    assert re.search(r'<tr class="best-found"><td class="num">1</td><td><span class="name">trial 12</span>', page)
    assert re.search(r'<tr class="best-baseline"><td class="num">2</td><td><span class="name">kd</span>', page)
    # task, search, paired, fidelity, exported, reproduce
    for text in ("123.5k parameters", "4.3k parameters", "94.00%", "tpe", "12m34s", "23m52s", "5 epochs",
                 "14 finished of a budget of 14: 11 complete, 2 pruned, 1 failed", "(28.6x fewer than the teacher)",
                 "trained alone (cross-entropy only): test 80.00%", "2 trials at once",
                 "trial 12 beats kd by 1.8 points (3.5 standard errors).", "ρ = 0.50", "epochs=20, optimizer=adam",
                 "autokd compare demo-tpe --seeds 3",
                 "autokd search --space spaces/tiny.yaml --sampler tpe --budget 14 --name demo-tpe"):
        assert text in md, text
        assert text in page, text
    assert "```yaml\n" + EXPORTED.rstrip() + "\n```" in md
    assert "temperature: 3.2" in page
    assert "Failed runs" not in md and "| failed |" not in md and "failed)" not in md  # nothing failed here
    for png in ("optimization_history.png", "importances.png", "comparison.png", "proxy_vs_full.png"):
        assert f"]({png})" in md


def test_html_is_self_contained_and_escaped(tmp_path):
    write_report(make_comparison(task_name="<b>tiny</b> & co"), tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "<b>" not in page and "&lt;b&gt;tiny&lt;/b&gt; &amp; co" in page
    assert page.count('src="data:image/png;base64,') == 4
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:|//)', page)
    assert "@import" not in page and "<link" not in page and "url(" not in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md = (tmp_path / "report.md").read_text()
    assert "`kd T=8 alpha=0.45 + sp x2.1e+03 <script>alert(1)</script>`" in md  # inert inside a code span


def test_no_importances_means_no_plot_and_a_note(tmp_path):
    written = write_report(make_comparison(importances={}), tmp_path)
    assert "importances.png" not in written and not (tmp_path / "importances.png").exists()
    for name in ("report.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert "No parameter importances" in text and "importances.png" not in text


def test_paired_sentence_within_noise_and_no_rho(tmp_path):
    paired = PairedComparison("trial 12", "kd", 3, diff_mean=0.4, diff_sd=0.9, diff_se=0.52, t=0.77, p_value=0.52)
    c = make_comparison(paired=paired, fidelity=Fidelity(rho=None, p_value=None, n=2))
    write_report(c, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "trial 12 does not beat kd (difference +0.4 points, within 2 standard errors" in md
    assert "not enough points" in md


def test_format_table_lists_strategies_in_rank_order():
    text = format_table(make_comparison())
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["rank", "strategy", "kind"]
    order = [line.split()[1] + (" " + line.split()[2] if line.split()[1] == "trial" else "") for line in lines[1:7]]
    assert order == RANK_ORDER
    sd = statistics.stdev(TESTS["trial 12"][1])
    assert f"88.20 ± {sd:.2f}" in lines[1] and "58.6%" in lines[1] and "84.75" in lines[1]
    assert lines[6].rstrip().endswith("-")  # the student: no gap closed, no proxy value
    # columns line up: every "±" in the same column
    assert len({line.index("±") for line in lines[1:7]}) == 1


def test_degenerate_comparison_still_writes_a_report(tmp_path):
    """One seed (no sd), no paired comparison, no history, no proxy values, no importances, no CE-only run."""
    from autokd.compare.plan import Contender
    from autokd.compare.summary import _summary

    runs = [RunRecord("trial 0", FOUND, 0, 82.0, 81.0, 3.0, "a"), RunRecord("kd", BASELINE, 0, 83.0, 82.5, 3.0, "b")]
    contenders = [Contender(FOUND, None, "kd T=2 alpha=0.5", "a", trial_number=0),
                  Contender(BASELINE, None, "kd T=4 alpha=0.9", "b", baselines=["kd"])]
    summaries = [_summary(c, [r], None, 99.0) for c, r in zip(contenders, runs)]
    assert [(s.test_mean, s.test_sd, s.test_se) for s in summaries] == [(81.0, None, None), (82.5, None, None)]
    c = make_comparison(seeds=[0], summaries=summaries, runs=runs, paired=None, history=[], importances={},
                        fidelity=Fidelity(None, None, 1), exported="",
                        student=ModelSummary("cnn1d", {}, None), teacher=ModelSummary("cnn1d", {}, None))
    written = write_report(c, tmp_path)
    assert set(written) == {"results.csv", "summary.csv", "comparison.png", "report.md", "report.html"}
    md = (tmp_path / "report.md").read_text()
    assert "| 81.00 | — |" in md and "81.00 ±" not in md and "No paired comparison" in md and "No strategy was exported" in md
    assert "? parameters" in md and "fewer than the teacher" not in md
    assert format_table(c).splitlines()[1].split()[1] == "kd"


def test_failed_runs_and_a_found_baseline_in_the_report(tmp_path):
    """A strategy whose runs all failed is listed, last, as failed; one with a failed seed is summarised over
    the others; every failed run is listed with its reason; a found strategy equal to a baseline is explained."""
    c = make_comparison()
    reason = "loss diverged to 3.1e+31 in epoch 1 (last batch: fitnet@stages.1=3.1e+31, a|b <x>)"
    runs = [dataclasses.replace(r, steps=30) for r in c.runs if not (r.strategy == "fitnet" and r.seed == 2)]
    runs.append(RunRecord("fitnet", BASELINE, 2, None, None, 0.4, "fitnet-2", FAILED, reason))
    runs += [RunRecord("huge_hint", BASELINE, s, None, None, 0.3, f"h-{s}", FAILED, reason) for s in SEEDS]
    summaries = [dataclasses.replace(s, n=2, failed=1) if s.name == "fitnet" else
                 dataclasses.replace(s, name="trial 3 = kd_mild", baselines=["kd_mild"]) if s.name == "trial 3" else s
                 for s in c.summaries]
    summaries.append(StrategySummary("huge_hint", BASELINE, "fitnet x1e+30", 0, 3, None, None, None, None, None,
                                     baselines=["huge_hint"]))
    c = dataclasses.replace(c, runs=runs, summaries=summaries)
    written = write_report(c, tmp_path)
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and "huge\\_hint" in line]
    assert rows[0].startswith("| — | huge\\_hint | baseline | 0 (3 failed) | failed | — |")  # no rank, no mean
    assert [line for line in md.splitlines() if line.startswith("| 5 | fitnet | baseline | 2 (1 failed) |")]
    assert "4 runs of 21 failed" in md and "## Failed runs" in md
    escaped = "loss diverged to 3.1e+31 in epoch 1 (last batch: fitnet@stages.1=3.1e+31, a\\|b \\<x>)"
    assert md.count(escaped) == 4 and page.count("a|b &lt;x&gt;)") == 4
    assert "| fitnet | baseline | 84.10 | 85.00 | failed |" in md  # the per-seed table
    assert "trial 3 = kd\\_mild: the search's trial 3 is the baseline kd\\_mild exactly" in md
    summary = pd.read_csv(written["summary.csv"])
    assert list(summary.name)[-1] == "huge_hint" and summary.iloc[-1].failed == 3 and pd.isna(summary.iloc[-1]["rank"])
    results = pd.read_csv(written["results.csv"])
    assert (results.state == "failed").sum() == 4 and results[results.state == "failed"].test_acc.isna().all()
    steps = [line.split(",")[6] for line in written["results.csv"].read_text().splitlines()[1:]]
    assert set(steps) == {"", "30"}, steps  # not 30.0 beside a failed run
    lines = format_table(c).splitlines()
    assert lines[-2].split()[:2] == ["-", "huge_hint"] and "failed" in lines[-2]
    assert lines[-1].endswith("4 runs failed (see the report)")


def test_report_write_failures_are_one_error_line(tmp_path):
    (tmp_path / "summary.csv").mkdir()  # a folder where a file should go
    with pytest.raises(AutokdError, match=r"^cannot write the summary table to .*summary.csv: it is a folder$"):
        write_report(make_comparison(), tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AutokdError, match="it is a file, not a folder"):
        write_report(make_comparison(), blocker)
    with pytest.raises(AutokdError, match="cannot create the folder"):
        write_report(make_comparison(), blocker / "sub")


# --- the document model -----------------------------------------------------------------------


def test_document_renders_escaped_markdown_and_html():
    doc = Document("a <title> & more", [
        Heading("Results *now* | <b>", 1),
        Paragraph(["x_1 * 2 ", Code("a|b`c"), " ", Strong("bold_"), " ", Emphasis("it"), Swatch("found"), " <script>"],
                  "note"),
        Paragraph("# not a heading"),
        Paragraph("> not a quote, 1 > 0"),
        Facts([Fact("k|1", [Code("v*1")])]),
        Table([Column("name"), Column("acc", right=True), Column("what", fold_into=0)],
              [Row([Label("trial_1", strong=True), "91.20", Code("fitnet|x <y>")], "best"),
               Row([Label("kd"), "90.00", ""])], "ranking"),
        CodeBlock("a: 1\n```\nb: <2>", "yaml"),
        Figure("plot.png", "a [plot]", "caption_1"),
    ])
    md = to_markdown(doc)
    assert md.startswith("# Results \\*now\\* \\| \\<b>\n\n")
    assert "> x\\_1 \\* 2 `` a|b`c `` **bold\\_** *it* \\<script>" in md  # the swatch is HTML only
    assert "\n\\# not a heading\n\n\\> not a quote, 1 > 0\n" in md
    assert "- **k\\|1:** `v*1`" in md
    table = md.split("| name |")[1].split("\n\n")[0].splitlines()
    assert table[0] == " acc | what |" and table[1] == "| --- | ---: | --- |"
    assert table[2] == "| **trial\\_1** | 91.20 | `fitnet\\|x <y>` |"  # a pipe in a cell cannot split it
    assert table[3] == "| kd | 90.00 |  |"
    assert "````yaml\na: 1\n```\nb: <2>\n````" in md and "![a \\[plot\\]](plot.png)\n\n*caption\\_1*" in md
    page = to_html(doc, css="p { color: red; }", images={"plot.png": b"PNG"})
    assert "<title>a &lt;title&gt; &amp; more</title>" in page and "<style>p { color: red; }</style>" in page
    assert "<h1>Results *now* | &lt;b&gt;</h1>" in page and "<script" not in page
    assert ('<p class="note">x_1 * 2 <code>a|b`c</code> <strong>bold_</strong> <em>it</em>'
            '<span class="key found"></span> &lt;script&gt;</p>') in page
    assert '<table class="facts"><tbody><tr><th>k|1</th><td><code>v*1</code></td></tr></tbody></table>' in page
    assert ('<thead><tr><th>name</th><th class="num">acc</th></tr></thead><tbody><tr class="best"><td>'
            '<span class="name">trial_1</span><div class="sub"><code>fitnet|x &lt;y&gt;</code></div></td>'
            '<td class="num">91.20</td></tr><tr><td><span class="name">kd</span></td><td class="num">90.00</td></tr>'
            ) in page  # the folded column is a second line of the first, and left out when empty
    assert "<pre><code>a: 1\n```\nb: &lt;2&gt;</code></pre>" in page
    assert '<img src="data:image/png;base64,UE5H" alt="a [plot]"><figcaption>caption_1</figcaption>' in page
    assert inline_markup("a `b*` **c** *d* e * f") == [Text("a "), Code("b*"), Text(" "), Strong("c"), Text(" "),
                                                       Emphasis("d"), Text(" e * f")]


def test_proxy_fidelity_has_a_bootstrap_interval_and_says_when_points_are_too_close():
    from autokd.compare.formats import fidelity_sentence
    from autokd.compare.stats import spearman

    proxy = [90.0, 91.0, 92.5, 93.0, 94.2, 95.0, 96.1]
    full = [88.0, 90.5, 90.0, 92.0, 93.5, 94.0, 95.5]
    f = spearman(proxy, full)
    assert f.n == 7 and f.rho == pytest.approx(0.9642857, abs=1e-6)
    assert f.ci_low is not None and f.ci_low <= f.rho <= f.ci_high <= 1.0 and f.proxy_range == pytest.approx(6.1)
    assert "95 % bootstrap interval" in fidelity_sentence(f) and "much as full-length training" in fidelity_sentence(f)
    close = spearman([96.10, 96.20, 96.25], [97.0, 96.0, 96.5])
    assert close.ci_low is None  # too few points for an interval
    assert "too close to rank" in fidelity_sentence(close) and "cannot judge" in fidelity_sentence(close)
    assert "Not enough points" in fidelity_sentence(spearman([1.0, 2.0], [1.0, 2.0]))


def test_a_run_cost_reads_in_steps_below_a_thousand_and_thousands_above():
    from autokd.compare.formats import fmt_cost

    assert fmt_cost(40, 2.0) == "40 steps, 2s" and fmt_cost(23_400, 41.0) == "23.4k steps, 41s"
    assert fmt_cost(None, None) == "—"
