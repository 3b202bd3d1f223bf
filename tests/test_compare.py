"""autokd compare: baselines adapted to a task, statistics on known numbers, reuse of runs, reports."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from conftest import run_cli, write_space

from autokd.config.baselines import load_baselines
from autokd.compare.compare import CompareRequest, run_compare
from autokd.compare.results import BASELINE, FOUND
from autokd.compare.stats import gap_closed, mean_sd_se, paired, spearman
from autokd.config.strategy import Recipe
from autokd.errors import AutokdError
from autokd.search.driver import run_search
from autokd.search.settings import SearchSettings
from autokd.search.space_file import load_space_file

PAIRS = [("stages.0", "stages.0"), ("stages.1", "stages.1"), ("stages.2", "stages.2")]
SPACE = {"pair_losses": ["none", "fitnet", "at"], "relation_losses": ["rkd"], "weight_scale": {"low": 0.01, "high": 1, "log": True}}


# --- baselines --------------------------------------------------------------------------


def test_shipped_baselines_adapt_to_the_task_pairs():
    baselines = {b.name: b for b in load_baselines(None, PAIRS, Recipe(epochs=24, lr=0.02))}
    assert set(baselines) == {"student", "kd", "kd_mild", "fitnet", "at", "nst", "sp", "rkd", "pkt", "crd", "dkd",
                              "combined", "kd_ls", "dkd_ls", "dist", "wttm"}
    assert baselines["student"].strategy.alpha == 0 and not baselines["student"].strategy.needs_teacher
    kd = baselines["kd"].strategy
    assert (kd.temperature, kd.alpha) == (4.0, 0.9)
    assert [(p.student, p.loss, p.weight) for p in baselines["fitnet"].strategy.pairs] == [("stages.1", "fitnet", 100.0)]
    assert [p.student for p in baselines["at"].strategy.pairs] == ["stages.0", "stages.1", "stages.2"]
    assert [p.student for p in baselines["sp"].strategy.pairs] == ["stages.2"]
    assert baselines["rkd"].strategy.relations[0].params == {"distance_weight": 25.0, "angle_weight": 50.0}
    assert baselines["dkd"].strategy.logit_params == {"alpha": 1.0, "beta": 8.0, "warmup": 2}  # 1/12 of 24 epochs
    # the stronger logit baselines: published settings, CE : KD ratio kept in alpha
    logit = {name: baselines[name].strategy for name in ("kd_ls", "dkd_ls", "dist", "wttm")}
    assert [(s.logit_loss, s.temperature, s.logit_standardization) for s in logit.values()] == [
        ("kd", 2.0, True), ("dkd", 2.0, True), ("dist", 4.0, False), ("wttm", 5.0, False)]
    assert logit["kd_ls"].alpha / (1 - logit["kd_ls"].alpha) == pytest.approx(9 / 0.1, rel=1e-4)  # CE 0.1, KD 9
    assert logit["dkd_ls"].alpha == 0.9 and logit["dkd_ls"].logit_params == {"alpha": 1.0, "beta": 8.0, "warmup": 2}
    assert logit["dist"].alpha == pytest.approx(2 / 3, abs=1e-6) and logit["dist"].logit_params == {"beta": 1.0, "gamma": 1.0}
    assert logit["wttm"].alpha == 0.8 and logit["wttm"].logit_params == {}
    assert baselines["kd_ls"].description.startswith("KD with logit standardization")
    assert baselines["kd_ls"].strategy.describe() == "kd+ls T=2 alpha=0.989"
    for b in baselines.values():  # every baseline trains with the task's full recipe
        assert b.strategy.recipe == Recipe(epochs=24, lr=0.02)


def test_run_keys_of_strategies_without_standardization_are_those_of_before_it_existed(tiny_task):
    """Runs stored before ``logit_standardization``, ``scheme`` and ``task.teachers`` existed are still
    found: each field at its default (false, single, none) is left out of the key; another value makes
    another strategy."""
    import hashlib

    from autokd.compare.store import run_key, strategy_key
    from autokd.config.parse import to_mapping
    from autokd.config.strategy import Strategy

    def format_1_key(strategy, seed):  # the key as computed before the field was added
        payload = {"task": to_mapping(tiny_task), "strategy": to_mapping(strategy), "seed": seed, "format": 1}
        del payload["strategy"]["logit_standardization"], payload["strategy"]["scheme"], payload["task"]["teachers"]
        payload["strategy"]["recipe"]["seed"] = seed
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    plain = Strategy(alpha=0.9, temperature=2.0)
    assert strategy_key(tiny_task, plain) == format_1_key(plain, None)
    assert run_key(tiny_task, plain, 3) == format_1_key(plain, 3)
    ls = Strategy(alpha=0.9, temperature=2.0, logit_standardization=True)
    assert strategy_key(tiny_task, ls) != strategy_key(tiny_task, plain)
    from autokd.config.schemes import BornAgainScheme

    ban = Strategy(alpha=0.9, temperature=2.0, scheme=BornAgainScheme(generations=2))
    assert strategy_key(tiny_task, ban) != strategy_key(tiny_task, plain)


def test_user_baselines_file_and_its_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("baselines:\n  hint_first:\n    alpha: 0.2\n    pairs: [{at: first, loss: fitnet, weight: 3}]\n")
    (b,) = load_baselines(path, PAIRS, Recipe())
    assert b.name == "hint_first" and b.strategy.pairs[0].student == "stages.0" and b.strategy.alpha == 0.2
    path.write_text("baselines:\n  x:\n    pairs: [{at: middlish, loss: at, weight: 1}]\n")
    with pytest.raises(AutokdError, match="'middlish'; allowed: all, first, middle, last"):
        load_baselines(path, PAIRS, Recipe())
    path.write_text("baselines:\n  x:\n    pairs: [{at: all, loss: hint, weight: 1}]\n")
    with pytest.raises(AutokdError, match=r"mine\.yaml: baselines\.x\.pairs\[0\]\.loss: unknown value 'hint'; known: at"):
        load_baselines(path, PAIRS, Recipe())
    path.write_text("baselines:\n  short:\n    alpha: 0.5\n    recipe: {epochs: 3}\n")
    with pytest.raises(AutokdError, match=r"mine\.yaml: baselines\.short\.recipe: a baseline trains with the recipe"):
        load_baselines(path, PAIRS, Recipe())  # compare trained it at full length: its recipe was dropped unsaid
    path.write_text("strategies: {}\n")
    with pytest.raises(AutokdError, match="expected one top-level key 'baselines'"):
        load_baselines(path, PAIRS, Recipe())


@pytest.mark.parametrize("name, needle", [
    ("true", "baseline name True was read as bool, not text"),
    ("1", "baseline name 1 was read as int, not text"),
    ("null", "a baseline name is empty (null)"),
    ("'trial 0'", "baseline name 'trial 0' is how compare and calibrate label their own strategies"),
    ("'sampled 12'", "'sampled 12' is how compare and calibrate label"),
    ("'kd = hinton'", "holds ' = ', which compare and calibrate put between names"),
    ("'kd @ channels=2'", "holds ' @ ', which compare and calibrate put between names"),
    ("''", "a baseline name is empty ('')"),
    ("'   '", "a baseline name is empty ('   ')"),
    ('"a\\nb"', "holds a control character"),
    ('"kd\\t"', "holds a control character"),
    ("' kd'", "starts or ends with spaces"),
])
def test_baseline_names_that_are_not_text_or_clash_with_autokd_labels_are_refused(tmp_path, name, needle):
    """A baseline named like a found trial was merged with it in the report (its runs pooled); 'kd = hinton' was
    the merged row of kd and hinton too; '' showed as ****."""
    path = tmp_path / "mine.yaml"
    path.write_text(f"baselines:\n  {name}: {{alpha: 0.5}}\n")
    with pytest.raises(AutokdError) as info:
        load_baselines(path, PAIRS, Recipe())
    assert needle in str(info.value) and str(info.value).count("\n") == 0, str(info.value)
    path.write_text("baselines:\n  'trial zero': {alpha: 0.5}\n  'on': {alpha: 0.2}\n")
    assert [b.name for b in load_baselines(path, PAIRS, Recipe())] == ["trial zero", "on"]


# --- statistics -------------------------------------------------------------------------


def test_statistics_on_known_numbers():
    mean, sd, se = mean_sd_se([70.0, 72.0, 74.0])
    assert (mean, sd, se) == pytest.approx((72.0, 2.0, 2.0 / math.sqrt(3)))
    assert mean_sd_se([5.0]) == (5.0, 0.0, 0.0)
    assert gap_closed(80.0, student=70.0, teacher=90.0) == pytest.approx(0.5)
    assert gap_closed(65.0, student=70.0, teacher=90.0) == pytest.approx(-0.25)
    # paired over seeds: differences 2, 3, 4 -> mean 3, sd 1, se 1/sqrt(3), t = 3 sqrt(3)
    result = paired("trial 3", {0: 80.0, 1: 81.0, 2: 84.0}, "kd", {0: 78.0, 1: 78.0, 2: 80.0, 3: 99.0})
    assert result.n == 3 and result.diff_mean == pytest.approx(3.0) and result.diff_sd == pytest.approx(1.0)
    assert result.t == pytest.approx(3 * math.sqrt(3))
    t = 3 * math.sqrt(3)  # two-sided p of Student's t with 2 degrees of freedom, in closed form
    assert result.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2))
    fid = spearman([1, 2, 3, 4], [10, 20, 40, 30])
    assert fid.rho == pytest.approx(0.8) and fid.n == 4
    assert spearman([1, 2], [3, 4]).rho is None


# --- the run store ---------------------------------------------------------------------------


def test_run_store_reads_lines_written_before_run_states_and_skips_a_cut_line(tmp_path):
    from autokd.compare.results import FAILED, RunRecord
    from autokd.compare.store import RunStore

    path = tmp_path / "runs.jsonl"
    old = {"strategy": "kd", "kind": "baseline", "seed": 0, "val_acc": 80.5, "test_acc": 79.25, "seconds": 3.0, "key": "k0"}
    path.write_text(json.dumps(old) + "\n" + '{"strategy": "kd", "kind": "base')  # the second line was cut by a kill
    store = RunStore(path)
    assert list(store.runs) == ["k0"] and store.runs["k0"].ok and store.runs["k0"].test_acc == 79.25
    store.add(RunRecord("x", "baseline", 1, None, None, 0.5, "k1", FAILED, "loss diverged"))
    again = RunStore(path)
    assert again.runs["k1"].state == FAILED and again.runs["k1"].reason == "loss diverged" and not again.runs["k1"].ok
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(AutokdError, match="cannot keep compare runs in .*folder.jsonl: it is a folder"):
        RunStore(tmp_path / "folder.jsonl")


@pytest.mark.parametrize("change", [{"test_acc": "abc"}, {"seed": 1.5}, {"seed": True}, {"key": None},
                                    {"extra": 1}, {"footprint": [1]}])
def test_run_store_counts_and_skips_a_line_edited_to_a_wrong_type(tmp_path, change):
    from autokd.compare.store import RunStore

    good = {"strategy": "kd", "kind": "baseline", "seed": 0, "val_acc": 80.5, "test_acc": 79.25, "seconds": 3.0,
            "key": "k0"}
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "key": "k1", **change}) + "\n\n")
    store, said = RunStore(path), []
    assert list(store.runs) == ["k0"]
    assert store.unreadable == 1
    store.warn_unreadable(said.append)
    assert said == [f"warning: 1 line(s) of {path} are not runs (cut short or edited); those runs are trained again"]


# --- end to end ----------------------------------------------------------------------------

MINI = "baselines:\n  student: {alpha: 0.0}\n  kd: {alpha: 0.9, temperature: 4.0}\n"
# a FitNets hint at weight 1e30: the loss passes 1e8 in the first epoch, so every run of it diverges
DIVERGING = "  huge_hint:\n    alpha: 0.0\n    pairs: [{at: middle, loss: fitnet, weight: 1.0e+30}]\n"


def _study(tmp_path, budget=3):
    path = write_space(tmp_path / "tiny.yaml", space=SPACE)
    space_file = load_space_file(path)
    settings = SearchSettings(space_file.text, space_file.source, sampler="random", budget=budget, workers=0,
                              device="cpu", pruning=False)
    return run_search(space_file, settings, "cmp", str(tmp_path / "s.db"), say=lambda _m: None)


def _request(tmp_path, out, **kw) -> CompareRequest:
    return CompareRequest(out, baselines_path=str(tmp_path / "baselines.yaml"), workers=0, device="cpu", **kw)


def _runs(out) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("entry, needle", [
    ("{alpha: 0.5, student: {bogus: 4}}", "baseline x: model 'cnn1d' has no kwarg 'bogus'"),
    ("{alpha: 0.9, scheme: {kind: assistant, model: nosuchmodel}}", "baseline x: unknown model 'nosuchmodel'"),
])
def test_a_baseline_that_cannot_run_is_an_error_naming_it_before_any_run(tmp_path, entry, needle):
    """It was left out with a wrong reason (a student kwarg), or failed once training had begun (a scheme model)."""
    study = _study(tmp_path, budget=1)
    (tmp_path / "baselines.yaml").write_text(f"baselines:\n  x: {entry}\n")
    out = tmp_path / "report"
    with pytest.raises(AutokdError) as info:
        run_compare(study, _request(tmp_path, out, top_k=1, seeds=1), say=lambda _m: None)
    assert needle in str(info.value), str(info.value)
    assert not (out / "runs.jsonl").exists()


def test_compare_reuses_runs_adds_only_new_seeds_and_survives_a_diverging_baseline(tmp_path):
    study = _study(tmp_path)
    (tmp_path / "baselines.yaml").write_text(MINI + DIVERGING)
    out = tmp_path / "report"
    first = run_compare(study, _request(tmp_path, out, top_k=2, seeds=2), say=lambda _m: None)
    assert len(_runs(out)) == (2 + 3) * 2
    assert sorted({r.seed for r in first.runs}) == [0, 1]
    again = run_compare(study, _request(tmp_path, out, top_k=2, seeds=3), say=lambda _m: None)
    lines = _runs(out)
    assert len(lines) == (2 + 3) * 3  # only the new seed ran; the failed runs were reused, not retried
    old = {(line["strategy"], line["seed"]): line["test_acc"] for line in lines}
    for r in first.runs:  # the earlier runs were reused as they were
        assert old[(r.strategy, r.seed)] == r.test_acc
    failed = [line for line in lines if line["state"] == "failed"]
    assert {(f["strategy"], f["seed"]) for f in failed} == {("huge_hint", s) for s in (0, 1, 2)}
    assert all("diverged" in f["reason"] and f["test_acc"] is None for f in failed)
    assert all(line["state"] == "ok" and line["reason"] is None for line in lines if line["strategy"] != "huge_hint")
    summary = {s.name: s for s in again.summaries}
    best = max((t for t in study.trials if t.value is not None), key=lambda t: (t.value, -t.number))
    assert f"trial {best.number}" in summary and {"student", "kd", "huge_hint"} <= set(summary)
    huge = summary["huge_hint"]
    assert (huge.n, huge.failed, huge.test_mean, huge.gap_closed) == (0, 3, None, None)
    assert again.summaries[-1] is huge  # listed, last, without a mean
    runs = [r.test_acc for r in again.runs if r.strategy == "kd"]
    assert summary["kd"].n == 3 and summary["kd"].failed == 0 and summary["kd"].test_mean == pytest.approx(sum(runs) / 3)
    assert again.paired.found == f"trial {best.number}" and again.paired.baseline in ("student", "kd")
    assert again.paired.n == 3
    # proxy fidelity over every strategy with a proxy value: the 2 found (their trials) and the baselines
    # whose proxy run did not diverge (one proxy run each, kept and reused by the second compare)
    proxies = [json.loads(line) for line in (out / "proxy_runs.jsonl").read_text().splitlines()]
    assert sorted(p["strategy"] for p in proxies) == ["huge_hint", "kd", "student"]
    assert {p["seed"] for p in proxies} == {0}
    assert again.fidelity.n == 2 + 2 and summary["kd"].proxy_val == next(p["val_acc"] for p in proxies
                                                                        if p["strategy"] == "kd")
    assert summary["student"].gap_closed is None
    assert again.student.test_acc == pytest.approx(summary["student"].test_mean)
    assert again.teacher.test_acc > summary["student"].test_mean
    assert again.search.counts.finished == 3 and again.search.budget == 3


def _add_trial(study, like, value: float, strategy: dict) -> int:
    """A complete trial with ``like``'s parameters, ``value`` and the stored ``strategy``."""
    import optuna

    trial = optuna.trial.create_trial(params=like.params, distributions=like.distributions, value=value,
                                      user_attrs={**like.user_attrs, "strategy": strategy})
    study.add_trial(trial)
    return study.trials[-1].number


def test_compare_retrains_distinct_strategies_and_names_a_found_baseline_both_ways(tmp_path):
    from autokd.compare.report import write_report
    from autokd.config.strategy import strategy_from_dict, strategy_to_dict

    study = _study(tmp_path)
    (tmp_path / "baselines.yaml").write_text(MINI)
    complete = sorted((t for t in study.trials if t.value is not None), key=lambda t: (-t.value, t.number))
    assert len(complete) == 3, "the tiny random search should complete its 3 trials"
    best, second = complete[0], complete[1]
    # the best strategy found again, ranked first; the kd baseline found, ranked second
    again = _add_trial(study, best, best.value + 2, best.user_attrs["strategy"])
    kd = strategy_to_dict(strategy_from_dict({"alpha": 0.9, "temperature": 4.0},
                                             strategy_from_dict(best.user_attrs["strategy"]).recipe))
    as_kd = _add_trial(study, second, best.value + 1, kd)
    out = tmp_path / "report"
    c = run_compare(study, _request(tmp_path, out, top_k=3, seeds=2), say=lambda _m: None)
    names = {s.name: s for s in c.summaries}
    # trial `again` stands for `best` (same strategy), so the third is the next distinct one
    assert set(names) == {f"trial {again}", f"trial {as_kd} = kd", f"trial {second.number}", "student"}
    merged = names[f"trial {as_kd} = kd"]
    assert (merged.kind, merged.baselines, merged.trial_number) == (FOUND, ["kd"], as_kd)
    assert [s.kind for s in c.summaries].count(BASELINE) == 1  # kd is no longer a baseline row
    lines = _runs(out)
    assert len(lines) == 4 * 2 and len({line["key"] for line in lines}) == 8  # every strategy and seed once
    assert all(s.n == 2 and s.failed == 0 for s in c.summaries)
    for s in c.summaries:  # each run counted once, under its own row
        accs = [r.test_acc for r in c.runs if r.strategy == s.name]
        assert len(accs) == 2 and s.test_mean == pytest.approx(sum(accs) / 2)
    assert c.paired.found == f"trial {again}" and c.paired.baseline == "student"
    write_report(c, out)
    md = (out / "report.md").read_text()
    assert f"trial {as_kd} = kd: the search's trial {as_kd} is the baseline kd exactly" in md
    assert md.count(f"| trial {again} |") == 1  # one row in the per-seed table


def test_compare_cli_on_ray_records_a_diverging_baseline_and_writes_the_report(tmp_path):
    study = _study(tmp_path, budget=2)
    mini = tmp_path / "baselines.yaml"
    mini.write_text("baselines:\n  student: {alpha: 0.0}\n  fitnet:\n    alpha: 0.0\n"
                    "    pairs: [{at: middle, loss: fitnet, weight: 100.0}]\n" + DIVERGING)
    out = tmp_path / "rep"
    result = run_cli("compare", "cmp", "--storage", tmp_path / "s.db", "--top-k", "1", "--seeds", "2",
                     "--baselines", mini, "--out", out, "--workers", "2")
    assert result.returncode == 0, result.stderr
    for name in ("report.md", "report.html", "results.csv", "comparison.png", "optimization_history.png"):
        assert (out / name).exists(), name
    table = pd.read_csv(out / "results.csv")
    winner = f"trial {study.best_trial.number}"
    assert len(table) == 4 * 2 and set(table["strategy"]) == {"student", "fitnet", "huge_hint", winner}
    failed = table[table["state"] == "failed"]
    assert set(failed["strategy"]) == {"huge_hint"} and len(failed) == 2
    assert failed["reason"].str.contains("diverged").all() and failed["test_acc"].isna().all()
    assert (table[table["strategy"] != "huge_hint"]["state"] == "ok").all()
    assert [line["state"] for line in _runs(out)].count("failed") == 2
    md = (out / "report.md").read_text()
    ok = table[table["state"] == "ok"]
    for _, mean in ok.groupby("strategy")["test_acc"].mean().items():
        assert f"{mean:.2f}" in md  # the table holds the runs' numbers
    assert "## Failed runs" in md and "| huge\\_hint | baseline | 0 | loss diverged" in md
    assert "2 runs of 8 failed" in md
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.split()[:1] == ["-"]}
    assert "failed" in lines["huge_hint"] and "0 (2 failed)" in lines["huge_hint"]
    assert "fitnet" in result.stdout and "student" in result.stdout
    missing = run_cli("compare", "nope", "--storage", tmp_path / "s.db")
    assert missing.returncode == 2 and "unknown study 'nope'" in missing.stderr


def test_compare_out_that_is_a_file_is_one_error_line_before_training(tmp_path):
    _study(tmp_path, budget=1)
    (tmp_path / "baselines.yaml").write_text(MINI)
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the report folder should be")
    result = run_cli("compare", "cmp", "--storage", tmp_path / "s.db", "--baselines", tmp_path / "baselines.yaml",
                     "--out", blocker, "--workers", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: cannot write the compare report into {blocker}: it is a "
                                                  "file, not a folder"]
    assert "teacher" not in result.stderr + result.stdout  # refused before any training


def test_baselines_are_repeated_at_searched_student_sizes_but_not_at_the_task_s_own():
    """A found student written {channels: 4} on a task whose student has 4 channels gave 'kd @ channels=4',
    the same strategy as kd, trained again under a second name."""
    from autokd.compare.plan import Contender, shipped_baselines
    from autokd.config.strategy import Strategy

    kd = load_baselines(None, PAIRS, Recipe())[:1]
    found = [Contender("found", Strategy(student={"channels": c}), "", f"k{c}", trial_number=c) for c in (4, 8)]
    assert [b.name for b in shipped_baselines(found, kd, {"channels": 4})] == [f"{kd[0].name} @ channels=8"]


def test_the_best_baseline_among_tied_ones_is_the_first_the_ranking_lists():
    """The table listed dgkd first of three baselines tied at 17.00, the verdict paired the winner with kd."""
    from autokd.compare.results import RunRecord, StrategySummary
    from autokd.compare.summary import paired_with_best_baseline

    summaries = [StrategySummary(name, BASELINE, "", 1, 0, 17.0, None, None, 17.0, None) for name in ("kd", "dgkd")]
    runs = [RunRecord(name, kind, 0, 17.0, acc, 1.0, name) for name, kind, acc in
            (("kd", BASELINE, 17.0), ("dgkd", BASELINE, 17.0), ("trial 0", FOUND, 18.0))]
    assert paired_with_best_baseline("trial 0", summaries, runs).baseline == "dgkd"


def test_compare_seeds_stay_within_the_largest_seed():
    from autokd.compare.execute import seed_list as _seeds

    assert _seeds(7, 3) == [7, 8, 9] and _seeds(2**32 - 1, 1) == [2**32 - 1]
    with pytest.raises(AutokdError, match=r"--seeds 2 from the recipe's seed 4294967295 .* at most 1 seeds"):
        _seeds(2**32 - 1, 2)


def test_baselines_at_searched_prune_amounts_that_read_alike_keep_names_of_their_own():
    """Amounts 0.42 and 0.424 both read 'prune student 42%': compare refused the study (two strategies under
    one name); before that check their runs were pooled."""
    from autokd.compare.plan import Contender, by_unique_name, shipped_baselines
    from autokd.config.compression import Compression, Prune
    from autokd.config.strategy import Strategy

    kd = load_baselines(None, PAIRS, Recipe())[:1]
    found = [Contender("found", Strategy(compression=Compression(prune=Prune(amount=a, of="student"))), "", f"k{a}",
                       trial_number=i) for i, a in enumerate((0.42, 0.424, 0.42413, 0.424134))]
    names = [b.name for b in shipped_baselines(found, kd, {"channels": 4})]
    assert names == [f"{kd[0].name} @ prune student {p}" for p in ("42%", "42.4%", "42.41%", "42.41% #2")]
    by_unique_name([Contender("baseline", b.strategy, "", b.name, baselines=[b.name])
                    for b in shipped_baselines(found, kd, {"channels": 4})])
