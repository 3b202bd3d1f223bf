"""The report of benchmarks/compression.py: tables and the accuracy-against-size plot."""

from __future__ import annotations

from pathlib import Path

from common import command_paragraph, dated_paragraph, fmt


def _footprint(run: dict) -> dict:
    return run["runs"][0].get("footprint") or {}


def _acc(run: dict) -> str:
    return f"{fmt(run['test_mean'])} ± {fmt(run['test_sd'])}"


def _size_cells(run: dict) -> list[str]:
    f = _footprint(run)
    return [f"{f.get('params', 0):,}", fmt(f.get("size_bytes", 0) / 1024, ".1f"), fmt(f.get("latency_ms"), ".3f")]


def quantization_rows(runs: dict) -> list[list[str]]:
    rows = []
    for name, label in (("float", "float32"), ("int8", "int8 QAT (real int8 kernels)"), ("int4", "int4 QAT (simulated)")):
        ce, kd = runs[f"{name}-ce"], runs[f"{name}-kd"]
        rows.append([label, _acc(ce), _acc(kd), fmt(kd["test_mean"] - ce["test_mean"]), *_size_cells(kd)])
    return rows


def pruning_rows(report: dict) -> list[list[str]]:
    before, runs, rec = report["pruned_teachers"], report["runs"], report["recovered"]
    t = before["teacher"]
    rows = [["teacher (unpruned)", f"{t['params']:,}", fmt(t["test_acc"]), "", "", "", ""]]
    for key in rec:
        ce, kd = runs[f"{key}-ce"], runs[f"{key}-kd"]
        share = {k: "-" if v is None else f"{100 * v:.0f} %" for k, v in rec[key].items()}
        rows.append([f"teacher pruned {key[5:]} %", f"{before[key]['params']:,}", fmt(before[key]["test_acc"]),
                     _acc(ce), share["ce"], _acc(kd), share["kd"]])
    return rows


def search_rows(report: dict) -> list[list[str]]:
    from autokd.config.strategy import strategy_from_dict

    rows = []
    for name, run in sorted(report["front_runs"].items(), key=lambda kv: _footprint(kv[1]).get("size_bytes", 0)):
        rows.append([name, _acc(run), *_size_cells(run), strategy_from_dict(run["strategy"]).describe()])
    for name, run in report["grid_runs"].items():
        rows.append([name.replace("grid-sp-", "SP baseline, channels "), _acc(run), *_size_cells(run), ""])
    return rows


def report_blocks(report: dict) -> list:
    from autokd.document import Figure, Heading, Paragraph, simple_table

    runs = report["runs"]
    blocks = [
        Heading("Compression-aware distillation on the default task", 1),
        dated_paragraph(report),
        Paragraph(f"Every student at the task's full recipe over {report['seeds']} seeds; test accuracy (mean ± sd) of "
                  "the student as deployed. Size counts int8 weights at 1 byte and int4 at half a byte (plus a float "
                  "scale per channel); latency is the median of 30 forwards at batch 1 on one CPU thread of the "
                  "deployed model, measured on a shared machine (noisy)."),
        Heading("Quantization-aware training", 2),
        simple_table(["student (cnn1d, 64 channels)", "CE only", "KD (T=4, alpha=0.9)", "KD gain", "params", "KiB",
                      "ms"], quantization_rows(runs)),
        Heading("Prune the teacher, then recover", 2),
        Paragraph("The teacher pruned by L1 filter norm (channels removed), evaluated as pruned, then fine-tuned on "
                  "the student's 800 samples with cross-entropy only or with KD from the full teacher. Recovered: "
                  "(after - pruned) / (teacher - pruned), test accuracy."),
        simple_table(["model", "params", "as pruned, test %", "fine-tuned CE", "recovered", "fine-tuned KD",
                      "recovered"], pruning_rows(report)),
    ]
    if "search" in report:
        s = report["search"]
        blocks += [
            Heading("Student search: accuracy against deployed size", 2),
            Paragraph(f"`autokd search --space student_search --budget {report['budget']}` (TPE, objectives accuracy "
                      f"and size; {s['trials']} trials, {s['wall_s'] / 60:.1f} min): {len(s['front'])} points on the "
                      f"Pareto front of the proxy; {len(report['front_runs'])} of them (spread over sizes) retrained "
                      "at full length, next to the best single-teacher baseline (SP, last stage, weight 3000) at "
                      "each width of a grid (float, depth 3)."),
            simple_table(["student", "test %", "params", "KiB", "ms", "strategy"], search_rows(report)),
            Figure("compression.png", "Test accuracy against deployed size: the search's front and the SP grid"),
        ]
    blocks.append(command_paragraph(report["command"]))
    return blocks


def write_plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for runs, label, style in ((report["front_runs"], "search front (retrained)", "o-"),
                               (report["grid_runs"], "SP baseline, width grid", "s--")):
        pts = sorted((_footprint(r)["size_bytes"] / 1024, r["test_mean"], r["test_sd"]) for r in runs.values())
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt=style, label=label,
                    capsize=3)
    for name in ("float-kd", "int8-kd", "int4-kd"):
        run = report["runs"][name]
        ax.plot(_footprint(run)["size_bytes"] / 1024, run["test_mean"], "^", label=f"{name} (64 ch)")
    ax.set_xscale("log")
    ax.set_xlabel("deployed size (KiB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
