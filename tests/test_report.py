"""The report of ``autokd compare``: CSVs, plots, Markdown and self-contained HTML, from a hand-built Comparison."""

from __future__ import annotations

import dataclasses
import re
import statistics

import pytest

from autokd.compare.report import format_table, write_report
from autokd.compare.results import (
    BASELINE, FOUND, Comparison, Fidelity, PairedComparison, RunRecord, StrategySummary,
)

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
            name=name, kind=kind, description=DESCRIPTIONS[name], n=len(accs), test_mean=mean, test_sd=sd,
            test_se=sd / len(accs) ** 0.5, val_mean=mean + 0.5,
            gap_closed=None if name == "student" else (mean - STUDENT_TEST) / (TEACHER_TEST - STUDENT_TEST),
            proxy_val=PROXY.get(name), trial_number=int(name.split()[1]) if kind == FOUND else None,
        ))
    diffs = [a - b for a, b in zip(TESTS["trial 12"][1], TESTS["kd"][1])]
    d_mean, d_sd = statistics.mean(diffs), statistics.stdev(diffs)
    t = d_mean / (d_sd / 3 ** 0.5)
    p = 1 - t / (2 + t * t) ** 0.5  # two-sided, Student's t with 2 degrees of freedom
    paired = PairedComparison("trial 12", "kd", 3, d_mean, d_sd, d_sd / 3 ** 0.5, t=t, p_value=p)
    history = [(i, "COMPLETE", 70.0 + i) for i in range(0, 10)] + [(10, "PRUNED", 60.0), (11, "PRUNED", None),
                                                                    (12, "COMPLETE", 84.75), (13, "FAIL", None)]
    c = Comparison(
        study_name="demo-tpe", task_name="tiny-mnist1d",
        teacher={"model": "cnn1d", "kwargs": {"channels": 64}, "parameters": 123456, "val_acc": 94.5, "test_acc": TEACHER_TEST},
        student={"model": "cnn1d", "kwargs": {"channels": 8}, "parameters": 4321},
        search={"sampler": "tpe", "budget": 14, "counts": {"complete": 11, "pruned": 2, "failed": 1},
                "wall_seconds": 754.0, "cpu_seconds": 1432.0, "proxy_epochs": 5},
        recipe={"epochs": 20, "optimizer": "adam", "lr": 0.01, "schedule": "cosine", "batch_size": 128, "seed": 0},
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
    import pandas as pd

    c = make_comparison()
    write_report(c, tmp_path)
    runs = pd.read_csv(tmp_path / "results.csv")
    assert list(runs.columns) == ["strategy", "kind", "seed", "val_acc", "test_acc", "seconds"]
    assert len(runs) == len(c.runs) == 18
    row = runs[(runs.strategy == "kd") & (runs.seed == 1)].iloc[0]
    assert row.kind == BASELINE and row.test_acc == pytest.approx(86.2) and row.val_acc == pytest.approx(86.7)
    assert row.seconds == pytest.approx(13.0)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.name) == RANK_ORDER
    assert list(summary["rank"]) == [1, 2, 3, 4, 5, 6]
    first = summary.iloc[0]
    assert first.test_mean == pytest.approx(statistics.mean(TESTS["trial 12"][1]))
    assert first.proxy_val == pytest.approx(84.75) and first.trial_number == 12
    assert pd.isna(summary.iloc[-1].gap_closed) and pd.isna(summary.iloc[-1].proxy_val)


def test_markdown_and_html_tables_show_the_numbers(tmp_path):
    c = make_comparison()
    write_report(c, tmp_path)
    md = (tmp_path / "report.md").read_text()
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
        assert cells[1:8] == [s.name, s.kind, mean_sd, se, val, gap, proxy], md_row
        for text in (mean_sd, se, val, gap, proxy):
            assert f'<td class="num">{text}</td>' in page, (s.name, text)
    # rank order in the markdown table, the best found and best baseline highlighted in HTML
    names = [re.match(r"\| (\d+) \| ([^|]+) \|", line) for line in md.splitlines()]
    assert [(m.group(1), m.group(2).strip(" *")) for m in names if m] == [(str(i + 1), n) for i, n in enumerate(RANK_ORDER)]
    assert re.search(r'<tr class="best-found"><td class="num">1</td><td><span class="name">trial 12</span>', page)
    assert re.search(r'<tr class="best-baseline"><td class="num">2</td><td><span class="name">kd</span>', page)
    # task, search, paired, fidelity, exported, reproduce
    for text in ("123.5k parameters", "4.3k parameters", "94.00%", "tpe", "12m34s", "23m52s", "5 epochs",
                 "11 complete, 2 pruned, 1 failed", "trial 12 beats kd by 1.8 points (3.5 standard errors).", "ρ = 0.50",
                 "autokd compare demo-tpe --seeds 3", "autokd search --sampler tpe --budget 14 --name demo-tpe"):
        assert text in md, text
        assert text in page, text
    assert "```yaml\n" + EXPORTED.rstrip() + "\n```" in md
    assert "temperature: 3.2" in page
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
    """One seed (sd 0), no paired comparison, no history, no proxy values, no importances."""
    summaries = [StrategySummary("trial 0", FOUND, "kd T=2 alpha=0.5", 1, 81.0, 0.0, 0.0, 82.0, None),
                 StrategySummary("kd", BASELINE, "kd T=4 alpha=0.9", 1, 82.5, 0.0, 0.0, 83.0, None)]
    runs = [RunRecord("trial 0", FOUND, 0, 82.0, 81.0, 3.0, "a"), RunRecord("kd", BASELINE, 0, 83.0, 82.5, 3.0, "b")]
    c = make_comparison(seeds=[0], summaries=summaries, runs=runs, paired=None, history=[], importances={},
                        fidelity=Fidelity(None, None, 1), search={}, teacher={}, student={}, recipe={}, exported="")
    written = write_report(c, tmp_path)
    assert set(written) == {"results.csv", "summary.csv", "comparison.png", "report.md", "report.html"}
    md = (tmp_path / "report.md").read_text()
    assert "81.00 ± 0.00" in md and "No paired comparison" in md and "No strategy was exported" in md
    assert format_table(c).splitlines()[1].split()[1] == "kd"
