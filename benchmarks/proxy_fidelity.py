"""Does the search's short proxy rank strategies like full-length training does, and how short can it be?

A thin call of ``autokd calibrate`` (:mod:`autokd.calibrate`) on a space (the default task unless
--space says otherwise): strategies drawn from the space plus the shipped baselines, trained at full
length (test accuracy over --seeds seeds) and at each proxy length (validation, the proxy's seed);
Spearman rho per length with bootstrap intervals, rho at the pruning rung, seed noise, time per
trial, and the recommended proxy. Its runs are kept in --work-dir (git-ignored), so a rerun reuses
them: the same runs can be trained by the CLI first (``autokd calibrate --out WORK ...`` with the
same strategies, seeds and lengths) and read back here.

Next to its figures the report puts those of the hand-made benchmark this replaced (the committed
``proxy_fidelity_manual.json`` and ``proxy_fidelity_long.json``, same task, 36 strategies), per
length, to check that the command reproduces them.

    .venv/bin/python benchmarks/proxy_fidelity.py                # 24 + 16 strategies, 2 seeds, ~40 min on 2 cores

Writes reports/benchmarks/proxy_fidelity.{json,md,png} (--out-dir, --name).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, command_paragraph, fmt, load_average, machine_info, run_paragraph, write_markdown  # noqa: E402

from autokd.document import Figure, Heading, Paragraph, inline_markup, simple_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "reports" / "benchmarks"
MANUAL = ("proxy_fidelity_manual.json", "proxy_fidelity_long.json")  # the hand-made benchmark's runs


def parse_args(argv: Optional[Iterable[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="default", help="shipped space name or a space YAML file")
    p.add_argument("--strategies", type=int, default=24, help="strategies drawn from the space")
    p.add_argument("--seeds", type=int, default=2, help="full-length seeds per strategy")
    p.add_argument("--lengths", type=int, nargs="+", default=[8, 15, 20, 30, 40, 45], help="proxy lengths (epochs)")
    p.add_argument("--workers", type=int, default=2, help="Ray tasks at once (0: in this process)")
    p.add_argument("--work-dir", type=Path, default=OUT / "proxy_fidelity_work", help="the calibration's folder")
    p.add_argument("--out-dir", type=Path, default=OUT)
    p.add_argument("--name", default="proxy_fidelity", help="report file stem")
    return p.parse_args(argv)


def manual_reports(out_dir: Path) -> list[dict]:
    return [json.loads((out_dir / name).read_text()) for name in MANUAL if (out_dir / name).is_file()]


def manual_rows(reports: list[dict]) -> dict[int, float]:
    """rho per proxy length from the hand-made benchmark's reports (the later file wins a length)."""
    return {r["epochs"]: r["rho"] for report in reports for r in report["rows"]}


def like_for_like(reports: list[dict], calibration) -> list[list[str]]:
    """Per length both measured: rho over the baselines both runs trained (same strategies, recipes and
    seeds), the hand-made run's and this one's with its interval; and the spread of each run's sampled
    strategies (their full-length test range), which is what differs between the two sets."""
    from autokd.compare.stats import spearman

    old = {s["name"]: s for report in reports for s in report["strategies"] if s["kind"] == "baseline"}
    new = {s.name: s for s in calibration.strategies if s.kind == "baseline"}
    common = sorted(set(old) & set(new))
    rows = []
    for row in calibration.rows:
        e = str(row.epochs)
        if len(common) < 3 or any(e not in old[n]["proxy_val"] for n in common):
            continue
        was = spearman([old[n]["proxy_val"][e] for n in common], [old[n]["full_test_mean"] for n in common])
        now = spearman([new[n].proxy_val[row.epochs] or 0.0 for n in common], [new[n].truth for n in common])
        rows.append([e, str(len(common)), fmt(was.rho), fmt(now.rho), f"{fmt(now.ci_low)} to {fmt(now.ci_high)}"])
    return rows


def spread_text(reports: list[dict], calibration) -> str:
    old = [s["full_test_mean"] for report in reports[-1:] for s in report["strategies"] if s["kind"] == "random"]
    new = [s.truth for s in calibration.strategies if s.kind == "sampled"]
    if not old or not new:
        return ""
    return (f"The sampled strategies differ: today's space (DIST, TTM, WTTM, logit standardization since) gave full-length "
            f"test accuracies of {min(new):.1f}-{max(new):.1f} %, the hand-made run's {min(old):.1f}-{max(old):.1f} %; "
            "a few poor strategies are easy to rank and lift rho over all, which is why rho over the better half is "
            "shown and judged too.")


def runs_in(work_dir: Path) -> list[dict]:
    path = work_dir / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def within(rho: Optional[float], row) -> str:
    f = row.fidelity
    if rho is None or f.ci_low is None:
        return "-"
    return "yes" if f.ci_low <= rho <= f.ci_high else "no"


def report_blocks(report: dict, calibration, reports: list[dict]) -> list:
    manual = manual_rows(reports)
    rows = [[str(r.epochs), fmt(r.fidelity.rho), f"{fmt(r.fidelity.ci_low)} to {fmt(r.fidelity.ci_high)}",
             fmt(r.top_fidelity.rho if r.top_fidelity else None), fmt(r.rung_fidelity.rho if r.rung_fidelity else None),
             fmt(r.top_rung_fidelity.rho if r.top_rung_fidelity else None), fmt(manual.get(r.epochs)),
             within(manual.get(r.epochs), r), f"{r.seconds:.1f}"] for r in calibration.rows]
    noise = ("-" if calibration.seed_sd is None else
             f"sd {calibration.seed_sd:.2f} points, seed-vs-seed rho {fmt(calibration.seed_fidelity.rho)}")
    return [
        Heading("Proxy fidelity (autokd calibrate)", 1),
        Paragraph(f"Task {calibration.task} ({calibration.source}); the space's proxy: {calibration.current_proxy} "
                  f"epochs of {calibration.full_epochs}."),
        run_paragraph(report, f"; {report['runs_reused']} runs were read from the work folder (trained earlier by "
                              f"the CLI), the rest trained here; the runs' own time adds up to "
                              f"{report['run_seconds_sum'] / 60:.0f} min"),
        command_paragraph(report["command"]),
        Paragraph(f"{report['n_strategies']} strategies ({report['n_sampled']} drawn from the space, RandomSampler "
                  f"seed 0, and {report['n_strategies'] - report['n_sampled']} shipped baselines); full length: test "
                  f"accuracy, mean of seeds {calibration.full_seeds}; proxies: validation accuracy, seed "
                  f"{calibration.proxy_seed}, each length its own run (cosine anneals over the run). Intervals: 95 % "
                  "bootstrap over the strategies."),
        Paragraph(["Verdict: ", calibration.recommendation.text]),
        simple_table(["proxy epochs", "rho", "95 % interval", "rho, better half", "rho at rung", "at rung, better half",
                      "hand-made benchmark rho", "inside the interval", "s / trial"], rows, "rrrrrrrrr"),
        Paragraph(inline_markup(
            f"Full-length validation vs test: rho {fmt(calibration.val_fidelity.rho)}. Seed noise at full length: "
            f"{noise}. The hand-made benchmark (`proxy_fidelity_manual.md`, `proxy_fidelity_long.md`): 24 sampled "
            "strategies + the 12 baselines of its day, the same seeds and recipes.")),
        Figure(f"{report['name']}.png", "rho against proxy length"),
        Heading("Against the hand-made benchmark, like for like", 2),
        Paragraph("Rho over the baselines both runs trained (the same strategies, recipes and seeds; the teacher was "
                  "trained again on this machine): the hand-made run's, and this one's with its interval. "
                  + spread_text(reports, calibration)),
        simple_table(["proxy epochs", "baselines", "hand-made rho", "calibrate rho", "95 % interval"],
                     like_for_like(reports, calibration), "rrrrr"),
    ]


def main(argv: Optional[Iterable[str]] = None) -> int:
    from autokd.calibrate.calibrate import CalibrateRequest, run_calibrate
    from autokd.calibrate.report import summary_lines, write_report
    from autokd.search.space_file import load_space_file

    args = parse_args(argv)
    load_start, wall = load_average(), time.perf_counter()
    stored = runs_in(args.work_dir)
    request = CalibrateRequest(args.work_dir, args.lengths, args.strategies, 0, args.seeds, None, 0.7, args.workers)
    calibration = run_calibrate(load_space_file(args.space), request,
                                status=lambda text, _force: print(text, flush=True))
    files = write_report(calibration, args.work_dir)
    print("\n".join(summary_lines(calibration)))
    report = {"benchmark": "proxy_fidelity", "name": args.name, "command": command_line(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(), "workers": args.workers, "threads": 1,
              "load_average_at_start": load_start, "load_average_at_end": load_average(),
              "wall_s": time.perf_counter() - wall, "n_strategies": len(calibration.strategies),
              "n_sampled": args.strategies, "runs_reused": len(stored),
              "run_seconds_sum": sum(r["seconds"] for r in runs_in(args.work_dir)), "calibration": asdict(calibration)}
    reports = manual_reports(args.out_dir)
    report["manual_rho"] = manual_rows(reports)
    report["like_for_like"] = like_for_like(reports, calibration)
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_markdown(args.out_dir / f"{args.name}.md", report_blocks(report, calibration, reports))
    shutil.copyfile(files["calibration.png"], args.out_dir / f"{args.name}.png")
    print(f"\nwrote {args.out_dir}/{args.name}.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
