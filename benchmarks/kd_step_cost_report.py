"""The report of ``kd_step_cost.py``: its tables, the accounting of the extra time, the plot and
the Markdown document, from the benchmark's record (plain data, as saved in its JSON)."""

from __future__ import annotations

import statistics
from pathlib import Path

from common import command_paragraph, machine_text

from autokd.document import BulletList, Code, Figure, Heading, Paragraph, Strong, simple_table


def paired_diff(a: list[float], b: list[float]) -> float:
    """Median over rounds of a - b (both measured in the same rounds)."""
    return statistics.median(x - y for x, y in zip(a, b))


LABELS = {
    "ce": "CE only (no teacher)",
    "kd_cached": "KD a=0.9 T=4, cached teacher",
    "kd_live": "KD a=0.9 T=4, live teacher",
    "kd_fitnet": "KD + FitNets stages.1 x100, cached",
    "ce_plain": "(ref) CE step hand-written, no Distiller",
    "kd_cached_plain": "(ref) cached KD step hand-written, no Distiller",
}


PIECE_LABELS = {
    "lookup_logits": "TeacherCache.lookup: logits (128x10 gather)",
    "lookup_logits_and_stages1": "TeacherCache.lookup: logits + stages.1 (128x64x10 gather)",
    "ce_loss_fwd_bwd": "F.cross_entropy forward+backward on logits",
    "kd_loss_fwd_bwd": "kd() forward+backward on logits",
    "hint_proj_mse_fwd_bwd": "FitNets hint: projector (1x1 conv 8->64 + BN) + MSE, fwd+bwd",
    "teacher_forward": "teacher forward, no_grad (Distiller.teacher_outputs)",
    "adam_step_student": "Adam step, student params (11 tensors)",
    "adam_step_student_and_projector": "Adam step, student + projector (14 tensors)",
    "one_off_cache_build_logits_and_stages1": "one-off: compute_teacher_cache over 4000 samples (once per task)",
}


def step_table(steps: dict):
    rows = [[f"{name}: {LABELS[name]}", f"{r['median_ms']:.3f}", f"{r['q1_ms']:.3f}-{r['q3_ms']:.3f}",
             f"{r['ratio']:.2f}x", f"{r['ratio_q1']:.2f}-{r['ratio_q3']:.2f}"] for name, r in steps.items()]
    return simple_table(["variant", "ms / step (median)", "IQR ms", "x CE (median of per-round ratios)", "ratio IQR"],
                        rows, "lrrrr")


def epoch_table(epoch: dict):
    rows = [[name, f"{r['median_ms']:.1f}", f"{r['q1_ms']:.1f}-{r['q3_ms']:.1f}", f"{r['ratio']:.2f}x",
             f"{r['ratio_q1']:.2f}-{r['ratio_q3']:.2f}"] for name, r in epoch.items()]
    return simple_table(["variant", "ms / epoch via fit (median)", "IQR ms", "x CE", "ratio IQR"], rows, "lrrrr")


def piece_table(pieces: dict, ce_step_ms: float):
    rows = [[PIECE_LABELS[name], f"{r['median_ms']:.3f}",
             f"{r['q1_ms']:.3f}-{r['q3_ms']:.3f}" if "q1_ms" in r else "(single run)",
             f"{100 * r['median_ms'] / ce_step_ms:.0f}%"] for name, r in pieces.items()]
    return simple_table(["piece", "ms (median)", "IQR ms", "% of a CE step"], rows, "lrrr")


def verdict(ratio: float, target: float) -> str:
    return "MET" if ratio <= target else "MISSED"


def accounting(res: dict) -> list:
    """Where the extra milliseconds of each KD variant over CE go, from the isolated pieces."""
    s, p = res["steps"], res["pieces"]
    ce = s["ce"]["median_ms"]
    m = {k: v["median_ms"] for k, v in p.items()}
    kd_extra, live_extra, fit_extra = (s[k]["extra_ms"] for k in ("kd_cached", "kd_live", "kd_fitnet"))
    rounds = {k: v["rounds_ms"] for k, v in s.items()}
    loss_extra = m["kd_loss_fwd_bwd"]  # CE is still computed (x0.1) in KD, so kd() is pure extra
    return [Paragraph("Extra ms over CE = median over rounds of (variant - CE) in the same round."), BulletList([
        f"kd_cached: +{kd_extra:.3f} ms over CE. Isolated: lookup {m['lookup_logits']:.3f} + kd() fwd+bwd "
        f"{loss_extra:.3f} = {m['lookup_logits'] + loss_extra:.3f} ms; hand-written KD step minus hand-written "
        f"CE step: {paired_diff(rounds['kd_cached_plain'], rounds['ce_plain']):.3f} ms. Distiller's own "
        f"overhead (Distiller step minus hand-written step): CE {paired_diff(rounds['ce'], rounds['ce_plain']):.3f} ms "
        f"({100 * paired_diff(rounds['ce'], rounds['ce_plain']) / ce:.0f}%), KD "
        f"{paired_diff(rounds['kd_cached'], rounds['kd_cached_plain']):.3f} ms.",
        f"kd_live: +{live_extra:.3f} ms over CE; the teacher forward alone is {m['teacher_forward']:.3f} ms.",
        f"kd_fitnet: +{fit_extra:.3f} ms over CE. Isolated: features+logits lookup "
        f"{m['lookup_logits_and_stages1']:.3f} + kd() {loss_extra:.3f} + hint (projector+MSE) fwd+bwd "
        f"{m['hint_proj_mse_fwd_bwd']:.3f} + extra Adam work "
        f"{m['adam_step_student_and_projector'] - m['adam_step_student']:.3f} ms.",
    ])]


def plot(path: Path, report: dict) -> None:
    """Median ms per step of each variant (IQR as error bars), one group of bars per thread count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    names = list(results[0]["steps"])
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, res in enumerate(results):
        steps = res["steps"]
        xs = [k + (i - (len(results) - 1) / 2) * width for k in range(len(names))]
        med = [steps[n]["median_ms"] for n in names]
        err = [[steps[n]["median_ms"] - steps[n]["q1_ms"] for n in names], [steps[n]["q3_ms"] - steps[n]["median_ms"] for n in names]]
        ax.bar(xs, med, width, yerr=err, capsize=3, label=f"{res['threads']} thread(s)")
        for x, n in zip(xs, names):
            ax.annotate(f"{steps[n]['ratio']:.2f}x", (x, steps[n]["q3_ms"]), ha="center", va="bottom", fontsize=7)
    ce = results[0]["steps"]["ce"]["median_ms"]
    ax.axhline(ce * report["target_ratio"], color="red", ls="--", lw=1,
               label=f"target: {report['target_ratio']}x CE ({results[0]['threads']} thread(s))")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("ms per training step (median, IQR)")
    ax.set_title(f"KD step cost on {report['task']} (batch {report['batch_size']}); labels: ratio to CE")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_blocks(report: dict) -> list:
    m = report["machine"]
    blocks = [
        Heading("KD step cost", 1),
        Paragraph(["Task ", Code(report["task"]), f" (student batch {report['batch_size']}, Adam). "
                   f"Date {report['date']}. Machine: {machine_text(m)}. Load average (1/5/15 min) at start "
                   f"{m['load_average_at_start']}, at end {m['load_average_at_end']}: other work on the machine (more "
                   "runnable threads than cores) shows as wide IQRs."]),
        command_paragraph(report["command"]),
        Figure("kd_step_cost.png", "ms per step"),
        Paragraph(["Target: ", Strong(f"cached-teacher KD step <= {report['target_ratio']}x a CE step.")]),
        Paragraph(f"Method: {report['method']}"),
    ]
    for res in report["results"]:
        kd = res["steps"]["kd_cached"]
        blocks += [
            Heading(["torch.set_num_threads(", str(res["threads"]), ")"]),
            Paragraph(f"(load average after this part: {res['load_average_after']})"),
            Paragraph(f"Target {verdict(kd['ratio'], report['target_ratio'])}: cached-teacher KD step = {kd['ratio']:.2f}x a CE step "
                      f"(IQR {kd['ratio_q1']:.2f}-{kd['ratio_q3']:.2f})."),
            Heading("One training step", 3),
            step_table(res["steps"]),
            Heading(["One epoch through ", Code("fit"), f" (every batch of {report.get('train_samples', '?')} training "
                     f"samples in batches of {report['batch_size']}, then validation on "
                     f"{report.get('val_samples', '?')} samples)"], 3),
            epoch_table(res["epoch"]),
            Heading("Pieces (timed in isolation, batch 128)", 3),
            piece_table(res["pieces"], res["steps"]["ce"]["median_ms"]),
            Paragraph("Where the extra time goes:"),
            *accounting(res),
        ]
    return blocks

