"""The report of a comparison as a document: one function per section, each returning its blocks.

Rendered to ``report.md`` and ``report.html`` by :mod:`autokd.document`; the tables' number
formats are those of :mod:`autokd.compare.formats`.
"""

from __future__ import annotations

from dataclasses import asdict

from autokd.compare.formats import (
    DASH, finite, fidelity_sentence, fmt_acc, fmt_cost, fmt_gap, fmt_mean_sd, fmt_p, fmt_params, fmt_runs, fmt_seconds,
    fmt_value, model_line, paired_sentence, plural,
)
from autokd.compare.plots import FIGURES, Figures
from autokd.compare.ranking import highlighted, rank_numbers, by_test_mean, test_cell
from autokd.compare.results import BASELINE, FOUND, Comparison
from autokd.document import (
    Block, Code, CodeBlock, Column, Document, Fact, Facts, Figure, Heading, Label, Paragraph, Row, Swatch, Table,
    simple_table,
)

TRIAL_STATES = ("complete", "pruned", "failed", "void", "running", "waiting")


def build_document(c: Comparison, figures: Figures) -> Document:
    blocks = [
        *title_section(c), *task_section(c), *search_section(c, figures), *retraining_section(c),
        *comparison_section(c, figures), *paired_section(c), *fidelity_section(c, figures), *runs_section(c),
        *failures_section(c), *exported_section(c), *reproduce_section(c),
    ]
    return Document(f"autokd comparison: {c.study_name}", blocks)


def _figure_or_note(name: str, alt: str, figures: Figures) -> list[Block]:
    if name in figures.drawn:
        caption, width = FIGURES[name]
        return [Figure(name, alt, caption, width)]
    return [Paragraph(figures.notes[name], "note")] if name in figures.notes else []


def _failed_runs(c: Comparison) -> int:
    return sum(not r.ok for r in c.runs)


def title_section(c: Comparison) -> list[Block]:
    by_name = {s.name: s for s in c.summaries}
    best_found, best_base = (by_name.get(n) for n in highlighted(c))
    lead = (f"Task {c.task_name}: strategies found by the search, retrained at full length with "
            f"{plural(len(c.seeds), 'seed')}, against hand-tuned baselines.")
    if best_found is not None:
        gap = f" ({fmt_gap(best_found.gap_closed)} of the teacher-student gap closed)" if finite(best_found.gap_closed) else ""
        lead += (f" Best found strategy {best_found.name}: {fmt_mean_sd(best_found.test_mean, best_found.test_sd)}% "
                 f"test accuracy{gap}.")
    if best_base is not None:
        lead += f" Best baseline {best_base.name}: {fmt_mean_sd(best_base.test_mean, best_base.test_sd)}%."
    if _failed_runs(c):
        lead += f" {plural(_failed_runs(c), 'run')} of {len(c.runs)} failed (see Failed runs)."
    blocks: list[Block] = [Heading(f"autokd comparison: {c.study_name}", 1), Paragraph(lead, "lead")]
    verdict = paired_sentence(c.paired)
    return blocks + ([Paragraph(verdict, "verdict")] if verdict else [])


def task_section(c: Comparison) -> list[Block]:
    t, s = c.teacher, c.student
    teacher = [Code(model_line(t.model, t.kwargs)), f", {fmt_params(t.parameters)}"]
    if finite(t.test_acc):
        teacher.append(f"; validation {fmt_acc(t.val_acc)}%, test {fmt_acc(t.test_acc)}%")
    student = [Code(model_line(s.model, s.kwargs)), f", {fmt_params(s.parameters)}"]
    if finite(t.parameters) and finite(s.parameters) and s.parameters:
        student.append(f" ({t.parameters / s.parameters:.1f}x fewer than the teacher)")
    if finite(s.test_acc):
        student.append(f"; trained alone (cross-entropy only): test {fmt_acc(s.test_acc)}%")
    return [Heading("Task"), Facts([Fact("task", Code(c.task_name)), Fact("teacher", teacher),
                                    Fact("student", student)])]


def search_section(c: Comparison, figures: Figures) -> list[Block]:
    s = c.search
    counts = [f"{getattr(s.counts, k)} {k}" for k in TRIAL_STATES if getattr(s.counts, k)]
    trials = f"{s.counts.finished} finished of a budget of {s.budget}" + (": " + ", ".join(counts) if counts else "")
    if s.counts.void:
        trials += " (void: interrupted or otherwise not counted toward the budget)"
    cpu = fmt_seconds(s.cpu_seconds)
    if finite(s.cpu_seconds) and finite(s.wall_seconds) and s.wall_seconds > 0:
        cpu += f" ({s.cpu_seconds / s.wall_seconds:.1f}x the wall time)"
    workers = ("automatic (the CPU count)" if s.workers is None
               else "0 (trials one by one, in process)" if s.workers == 0 else f"{s.workers} trials at once")
    facts = [
        Fact("sampler", s.sampler), Fact("space", Code(s.space)), Fact("trials", trials),
        Fact("wall time", fmt_seconds(s.wall_seconds)), Fact("CPU time", cpu),
        Fact("proxy run", f"{s.proxy_epochs} epochs per trial, ranked by validation accuracy"),
        Fact("workers", workers),
    ]
    return ([Heading("Search"), Facts(facts)] + _figure_or_note("optimization_history.png", "search history", figures)
            + _figure_or_note("importances.png", "parameter importances", figures))


def retraining_section(c: Comparison) -> list[Block]:
    recipe = asdict(c.recipe)
    recipe_seed = recipe.pop("seed")
    replaced = f"; the recipe's own seed {recipe_seed} is replaced by these" if list(c.seeds) != [recipe_seed] else ""
    total = sum(r.seconds for r in c.runs if finite(r.seconds))
    failed = _failed_runs(c)
    runs = f"{len(c.runs)} full-length runs, {fmt_seconds(total)} of training in all"
    return [Heading("Full-length retraining"), Facts([
        Fact("recipe", Code(fmt_value(recipe))),
        Fact("seeds", ", ".join(str(s) for s in c.seeds) + f" ({len(c.seeds)} per strategy{replaced})"),
        Fact("runs", runs + (f"; {failed} failed (training diverged), see Failed runs" if failed else "")),
    ])]


def comparison_section(c: Comparison, figures: Figures) -> list[Block]:
    rows = by_test_mean(c)
    if not rows:
        return [Heading("Comparison"), Paragraph("No strategies were compared.", "note")]
    best_found, best_base = highlighted(c)
    columns = [Column("rank", right=True), Column("strategy"), Column("kind"), Column("runs", right=True),
               Column("test mean ± sd", right=True), Column("se", right=True), Column("val mean", right=True),
               Column("gap closed", right=True), Column("proxy val", right=True), Column("cost", right=True),
               Column("strategy in full", fold_into=1)]
    table_rows = []
    for rank, s in zip(rank_numbers(rows), rows):
        style = ("best-found" if s.name == best_found and s.kind == FOUND
                 else "best-baseline" if s.name == best_base and s.kind == BASELINE else "")
        table_rows.append(Row([
            str(rank) if rank is not None else DASH, Label(s.name, strong=bool(style)), s.kind, fmt_runs(s.n, s.failed),
            test_cell(s, DASH), fmt_acc(s.test_se), fmt_acc(s.val_mean), fmt_gap(s.gap_closed),
            fmt_acc(s.proxy_val), fmt_cost(s.steps_mean, s.seconds_mean),
            Code(s.description) if s.description else "",
        ], style))
    return ([Heading("Comparison"), Table(columns, table_rows, "ranking"), _comparison_note(c, best_found, best_base)]
            + _same_as_baseline_notes(c) + _figure_or_note("comparison.png", "comparison plot", figures)
            + _figure_or_note("cost.png", "accuracy against cost", figures) + _size_blocks(c, figures))


def _size_blocks(c: Comparison, figures: Figures) -> list[Block]:
    """The students' size and speed, when the compared students differ in size (a student search)."""
    if "size.png" not in figures.drawn and "size.png" not in figures.notes:
        return []
    rows = sorted((s for s in c.summaries if finite(s.size_kib)), key=lambda s: s.size_kib)
    table = simple_table(["strategy", "kind", "params", "KiB as deployed", "ms (batch 1, 1 CPU thread)", "test mean"],
                         [[s.name, s.kind, f"{s.params:,}", f"{s.size_kib:,.1f}",
                           f"{s.latency_ms:.3f}" if finite(s.latency_ms) else DASH, fmt_acc(s.test_mean)]
                          for s in rows], align="llrrrr")
    return [Heading("Accuracy against size", 3), table] + _figure_or_note("size.png", "accuracy against size", figures)


def _comparison_note(c: Comparison, best_found, best_base) -> Paragraph:
    seeds = plural(len(c.seeds), "seed")
    key: list = []
    if best_found:
        key += [Swatch("found"), f"best found strategy ({best_found})"]
    if best_base:
        key += [" and " if key else "", Swatch("baseline"), f"best baseline ({best_base})"]
    text = [f"Accuracies in %. Ranked by full-length test accuracy (mean over {seeds}, leaving out any run that "
            f"failed; sd across seeds, se = sd/√n). Runs: how many runs the numbers are over, and how many failed. "
            f"Gap closed = (test mean − student) / (teacher − student): 0% is the student trained alone with "
            f"cross-entropy, 100% the teacher. Proxy val is the validation accuracy at the search's short "
            f"proxy length: a found strategy's in its trial, a baseline's in one run at the proxy's recipe and "
            f"seed. Cost: one run's training steps (batches x models trained, every stage of its scheme) and "
            f"wall time."]
    if key:
        text += [" Highlighted (bold in Markdown): "] + key + [
            ", the pair compared below." if c.paired is not None else ", by test mean."]
    return Paragraph(text, "note")


def _same_as_baseline_notes(c: Comparison) -> list[Block]:
    return [Paragraph(f"{s.name}: the search's trial {s.trial_number} is the baseline "
                      f"{' and '.join(s.baselines)} exactly; it was trained once per seed and is listed once, as a "
                      f"found strategy (not among the baselines).", "note")
            for s in c.summaries if s.kind == FOUND and s.baselines]


def paired_section(c: Comparison) -> list[Block]:
    blocks: list[Block] = [Heading("Best found vs best baseline (paired by seed)")]
    p = c.paired
    if p is None:
        return blocks + [Paragraph("No paired comparison: it needs at least one found strategy and one baseline "
                                   "with common seeds.", "note")]
    both_ok = " where both trained without failing" if _failed_runs(c) else ""
    blocks.append(Facts([
        Fact("found", Code(p.found)),
        Fact("baseline", Code(p.baseline)),
        Fact("mean difference", f"{p.diff_mean:+.2f} points (found − baseline)" if finite(p.diff_mean) else DASH),
        Fact("sd of differences", fmt_acc(p.diff_sd) if p.n > 1 else DASH),
        Fact("standard error", fmt_acc(p.diff_se) if p.n > 1 else DASH),
        Fact("t", f"{p.t:.2f}" if finite(p.t) else DASH),
        Fact("p (two-sided)", fmt_p(p.p_value)),
        Fact("n", plural(p.n, "paired seed") + both_ok),
    ]))
    return blocks + [
        Paragraph(paired_sentence(p), "verdict"),
        Paragraph("Each seed gives one test-accuracy difference; the mean difference, its standard error and a "
                  "paired t-test over seeds say whether the gap is larger than seed-to-seed noise.", "note"),
    ]


def fidelity_section(c: Comparison, figures: Figures) -> list[Block]:
    f = c.fidelity
    return [Heading("Proxy fidelity"), Facts([
        Fact("Spearman ρ", f"{f.rho:.2f}" if finite(f.rho) else "not enough points"),
        Fact("p", fmt_p(f.p_value)),
        Fact("n", plural(f.n, "strategy", "strategies")),
    ]), Paragraph(fidelity_sentence(f))] + _figure_or_note("proxy_vs_full.png", "proxy-vs-full plot", figures)


def runs_section(c: Comparison) -> list[Block]:
    if not c.runs:
        return []
    cell = {(r.strategy, r.seed): r for r in c.runs}
    rows = []
    for s in by_test_mean(c):
        accs = [cell.get((s.name, seed)) for seed in c.seeds]
        rows.append([s.name, s.kind] + [DASH if r is None else fmt_acc(r.test_acc) if r.ok else "failed" for r in accs])
    return [Heading("Every run"),
            simple_table(["strategy", "kind"] + [f"seed {sd}" for sd in c.seeds], rows, "ll" + "r" * len(c.seeds),
                         "compact"),
            Paragraph("Test accuracy (%) of each full-length run; every run is in results.csv with its validation "
                      "accuracy and time.", "note")]


def failures_section(c: Comparison) -> list[Block]:
    failed = [r for r in c.runs if not r.ok]
    if not failed:
        return []
    rows = [[r.strategy, r.kind, str(r.seed), r.reason or "unknown"] for r in failed]
    return [Heading("Failed runs"), simple_table(["strategy", "kind", "seed", "reason"], rows, "llrl", "compact"),
            Paragraph("A failed run (its training diverged) counts in no statistic: each strategy is summarised "
                      "over its other runs, and the paired comparison uses the seeds both strategies trained "
                      "without failing. Failed runs are kept in runs.jsonl with their reasons and, like finished "
                      "ones, reused by the next compare.", "note")]


def exported_section(c: Comparison) -> list[Block]:
    if not c.exported.strip():
        return [Heading("Best strategy, exported"), Paragraph("No strategy was exported.", "note")]
    return [Heading("Best strategy, exported"),
            Paragraph(["The best found strategy as the config ", Code("autokd export"), " writes; train it with ",
                       Code("autokd train --config best.yaml"), "."]),
            CodeBlock(c.exported, "yaml")]


def reproduce_section(c: Comparison) -> list[Block]:
    s, n = c.search, len(c.seeds)
    commands = [
        f"autokd search --space {s.space} --sampler {s.sampler} --budget {s.budget} --name {c.study_name}",
        f"autokd compare {c.study_name} --seeds {n}",
        f"autokd export {c.study_name} -o best.yaml && autokd train --config best.yaml --seeds {n}",
    ]
    return [Heading("How to reproduce"), CodeBlock("\n".join(commands), "sh"),
            Paragraph("The first command runs (or, re-run, finishes) the search; the second retrains its best "
                      "strategies and the baselines at full length and writes this report; the third trains the best "
                      "strategy alone.", "note")]
