"""The report of ``autokd calibrate``: ``calibration.md`` (and ``.html``), ``calibration.json`` with
every figure, and ``calibration.png``, rho against proxy length with its intervals and the cost.

``write_report(calibration, out_dir)`` returns {file name: path}; every write is atomic and a
failed one is a single :class:`~autokd.errors.AutokdError` line.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from autokd.calibrate.analysis import Calibration
from autokd.calibrate.space_copy import recommended_lines
from autokd.compare.results import Fidelity
from autokd.document import CodeBlock, Document, Figure, Heading, Paragraph, Strong, simple_table, to_html, to_markdown
from autokd.outputs import make_folder, write_atomic, write_text

PLOT = "calibration.png"


def rho_text(fid: Optional[Fidelity]) -> str:
    return "-" if fid is None or fid.rho is None else f"{fid.rho:.2f}"


def interval_text(fid: Optional[Fidelity]) -> str:
    if fid is None or fid.ci_low is None:
        return "-"
    return f"{fid.ci_low:.2f} to {fid.ci_high:.2f}"


def length_table(c: Calibration) -> list[list[str]]:
    return [[str(r.epochs), rho_text(r.fidelity), interval_text(r.fidelity),
             "-" if r.fidelity.p_value is None else f"{r.fidelity.p_value:.2g}", rho_text(r.top_fidelity),
             interval_text(r.top_fidelity), "-" if r.rung is None else str(r.rung), rho_text(r.rung_fidelity),
             rho_text(r.top_rung_fidelity), str(r.diverged), f"{r.seconds:.2f}"]
            for r in c.rows]


def summary_lines(c: Calibration) -> list[str]:
    """The table and the verdict as plain lines, for the terminal."""
    lines = ["proxy epochs | rho   | 95 % interval | better half | rho at rung (epoch), better half | s / trial"]
    for r in c.rows:
        rung = "-" if r.rung is None else f"{rho_text(r.rung_fidelity)} ({r.rung}), {rho_text(r.top_rung_fidelity)}"
        lines.append(f"{r.epochs:>12} | {rho_text(r.fidelity):>5} | {interval_text(r.fidelity):>13} | "
                     f"{rho_text(r.top_fidelity):>11} | {rung:>32} | {r.seconds:.2f}")
    lines.append(f"full-length validation vs test: rho {rho_text(c.val_fidelity)}; " + noise_text(c))
    lines.append(c.recommendation.text)
    return lines


def noise_text(c: Calibration) -> str:
    if c.seed_sd is None:
        return "seed noise not measured (one full-length seed: --seeds 2 measures it)"
    return (f"seed noise at full length: sd {c.seed_sd:.2f} points, rho of seed {c.full_seeds[0]} vs seed "
            f"{c.full_seeds[1]} {rho_text(c.seed_fidelity)}")


def method_text(c: Calibration) -> str:
    n_sampled = sum(s.kind == "sampled" for s in c.strategies)
    how = ("The proxy schedule does not depend on the run's length, so one run at the longest length, validated at "
           "every shorter length and rung, gave them (strategies in one stage without compression; others ran each "
           "length)." if c.by_curve else
           "The proxy schedule depends on the run's length (cosine, or step milestones that move with it), so every "
           "length is a run of its own, as a search with that proxy would train it.")
    return (f"{n_sampled} strategies drawn from the space and {len(c.strategies) - n_sampled} baselines, each trained "
            f"at full length ({c.full_epochs} epochs, seeds {', '.join(map(str, c.full_seeds))}, mean TEST accuracy: "
            f"the truth) and at each proxy length with the proxy's seed {c.proxy_seed} (VALIDATION accuracy, what a "
            f"search ranks on). {how} A run that diverged counts as 0 %. Intervals: 95 % percentile bootstrap over "
            "the strategies. Rho is also given over the better half (full-length test at or above the median): a few "
            "poor strategies are easy to rank and lift rho over all, while a search needs the good ones in order; a "
            "length is recommended when both clear the threshold (the better half once it holds 5 strategies).")


def document(c: Calibration) -> Document:
    rec = c.recommendation
    blocks = [
        Heading(f"Proxy calibration: {c.task}", 1),
        Paragraph(f"Space {c.source}; the space's proxy today: {c.current_proxy} epochs; threshold rho >= {c.threshold}."),
        Paragraph(method_text(c)),
        Paragraph([Strong("Verdict."), " " + rec.text], "verdict"),
        simple_table(["proxy epochs", "Spearman rho", "95 % interval", "p", "rho, better half", "its interval",
                      "rung (epoch)", "rho at rung", "at rung, better half", "diverged", "s / trial"], length_table(c),
                     "rrrrrrrrrrr"),
        Paragraph(f"Full-length validation vs full-length test: rho {rho_text(c.val_fidelity)} (what no proxy can "
                  f"beat much). {noise_text(c).capitalize()}. Full-length runs diverged: {c.full_diverged}; one "
                  f"full-length run: {c.full_seconds:.1f} s (median)."),
        Figure(PLOT, "Spearman rho against proxy length"),
    ]
    if rec.epochs is not None:
        blocks += [Paragraph("The lines to put in the space file (or use --write-space to get a copy with them):"),
                   CodeBlock(recommended_lines(rec.epochs, rec.pruning_safe, rec.milestones), "yaml")]
    if c.left_out:
        blocks.append(Paragraph(f"Baselines left out (the task cannot take them): {', '.join(c.left_out)}."))
    rows = [[s.name, s.description, f"{s.truth:.2f}"] + ["-" if s.proxy_val[r.epochs] is None else
                                                         f"{s.proxy_val[r.epochs]:.2f}" for r in c.rows]
            for s in sorted(c.strategies, key=lambda s: -s.truth)]
    blocks += [Heading("Strategies", 2),
               simple_table(["strategy", "what", "full test (mean)"] + [f"proxy {r.epochs} val" for r in c.rows], rows,
                            "llr" + "r" * len(c.rows))]
    return Document(f"Proxy calibration: {c.task}", blocks)


def plot(c: Calibration, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def draw(tmp: Path) -> None:
        epochs = [r.epochs for r in c.rows]
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
        rho = [r.fidelity.rho if r.fidelity.rho is not None else float("nan") for r in c.rows]
        # a percentile interval need not hold the point estimate (ties): its bar then ends at the point
        low = [max(0.0, r - x.fidelity.ci_low) if x.fidelity.ci_low is not None else 0 for r, x in zip(rho, c.rows)]
        high = [max(0.0, x.fidelity.ci_high - r) if x.fidelity.ci_high is not None else 0 for r, x in zip(rho, c.rows)]
        ax.errorbar(epochs, rho, yerr=[low, high], fmt="o-", capsize=3, label="proxy val vs full test (95 % CI)")
        rung = [(r.epochs, r.rung_fidelity.rho) for r in c.rows if r.rung_fidelity is not None and r.rung_fidelity.rho is not None]
        if rung:
            ax.plot(*zip(*rung), "s--", alpha=0.7, label="at the pruning rung (half)")
        top = [(r.epochs, r.top_fidelity.rho) for r in c.rows if r.top_fidelity is not None and r.top_fidelity.rho is not None]
        if top:
            ax.plot(*zip(*top), "^-", alpha=0.8, label="better half of the strategies")
        ax.axhline(c.threshold, color="red", ls="--", label=f"threshold {c.threshold}")
        if c.val_fidelity.rho is not None:
            ax.axhline(c.val_fidelity.rho, color="grey", ls=":", label=f"full val vs full test ({c.val_fidelity.rho:.2f})")
        if c.recommendation.epochs is not None:
            ax.axvline(c.recommendation.epochs, color="tab:purple", alpha=0.5, lw=2,
                       label=f"recommended: {c.recommendation.epochs} epochs")
        ax.set(xlabel="proxy epochs", ylabel="Spearman rho", ylim=(-1.05, 1.05), title="Proxy fidelity")
        ax.legend(loc="lower right", fontsize=7)
        bx.plot(epochs, [r.seconds for r in c.rows], "o-")
        bx.set(xlabel="proxy epochs", ylabel="seconds per proxy trial (median)", title="Proxy cost")
        bx.set_ylim(bottom=0)
        fig.tight_layout()
        fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)

    return write_atomic(path, draw, "the calibration plot")


def write_report(c: Calibration, out_dir: Path) -> dict[str, Path]:
    out_dir = make_folder(out_dir, "the calibration report")
    written = {"calibration.json": write_text(out_dir / "calibration.json",
                                              json.dumps(asdict(c), indent=2) + "\n", "the calibration figures"),
               PLOT: plot(c, out_dir / PLOT)}
    doc = document(c)
    written["calibration.md"] = write_text(out_dir / "calibration.md", to_markdown(doc), "the calibration report")
    from autokd.compare.report import CSS

    written["calibration.html"] = write_text(out_dir / "calibration.html",
                                             to_html(doc, CSS, {PLOT: written[PLOT].read_bytes()}), "the calibration report")
    return written
