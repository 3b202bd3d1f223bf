"""autokd compare against hostile input: baseline names that collide with compare's own, a baseline
named ``student`` that is not the student alone, data replaced since the search, a run store edited
by hand, and an --out folder holding files of the user's."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from conftest import TINY_TASK, arrays_file, run_cli, write_space

from autokd.compare.compare import CompareRequest, run_compare
from autokd.config.baselines import load_baselines
from autokd.config.strategy import Recipe
from autokd.errors import AutokdError
from autokd.search.driver import run_search
from autokd.search.settings import SearchSettings
from autokd.search.space_file import load_space_file

PAIRS = [("stages.0", "stages.0"), ("stages.1", "stages.1"), ("stages.2", "stages.2")]
SPACE = {"pair_losses": ["none", "fitnet"], "relation_losses": ["rkd"], "weight_scale": {"low": 0.01, "high": 1, "log": True}}


def _study(tmp_path, task=None):
    path = write_space(tmp_path / "tiny.yaml", task=task, space=SPACE)
    space_file = load_space_file(path)
    settings = SearchSettings(space_file.text, space_file.source, sampler="random", budget=1, workers=0,
                              device="cpu", pruning=False)
    return run_search(space_file, settings, "cmp", str(tmp_path / "s.db"), say=lambda _m: None)


def _request(tmp_path, out, text: str, epochs=1) -> CompareRequest:
    (tmp_path / "baselines.yaml").write_text(text)
    return CompareRequest(out, top_k=1, seeds=1, epochs=epochs, baselines_path=str(tmp_path / "baselines.yaml"),
                          workers=0, device="cpu")


# --- baseline names and pairs ---------------------------------------------------------------


def test_names_in_any_script_are_kept():
    """Format characters are text: an emoji joined by U+200D, Persian with U+200C, a right-to-left mark."""
    import tempfile
    from pathlib import Path

    names = ["\U0001f9d1\u200d\U0001f52c kd", "\u062a\u0642\u0637\u06cc\u0631\u200c\u0634\u062f\u0647",
             "kd\u200f", "kd \u2013 mild"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "names.yaml"
        path.write_text("baselines:\n" + "".join(f'  "{n}": {{alpha: 0.{i + 1}}}\n' for i, n in enumerate(names)),
                        encoding="utf-8")
        assert [b.name for b in load_baselines(path, PAIRS, Recipe())] == names


@pytest.mark.parametrize("extra", ["student: stages.0", "teacher: stages.0", "teacher: stages.0, student: stages.0"])
def test_a_pair_naming_layers_next_to_at_is_refused(tmp_path, extra):
    """{at: last, student: stages.0} trained student stages.0: the pair's keys overrode what `at` chose."""
    path = tmp_path / "mine.yaml"
    path.write_text(f"baselines:\n  hint:\n    alpha: 0.0\n    pairs: [{{at: last, loss: fitnet, weight: 1, {extra}}}]\n")
    with pytest.raises(AutokdError, match=r"mine.yaml: baselines.hint.pairs\[0\]: .*next to 'at'"):
        load_baselines(path, PAIRS, Recipe())


def test_two_strategies_under_one_name_are_an_error_not_pooled():
    from autokd.compare.plan import Contender, by_unique_name
    from autokd.config.strategy import Strategy

    one = [Contender("baseline", Strategy(alpha=a), "", f"k{a}", baselines=["x"]) for a in (0.1, 0.2)]
    with pytest.raises(AutokdError, match="two different strategies are both named 'x'"):
        by_unique_name(one)


# --- the student alone, merged duplicates -------------------------------------------------------


def test_the_student_alone_is_found_by_what_it_trains_and_duplicates_are_one_row(tmp_path):
    """A KD baseline named `student` was reported as the student alone, the real CE baseline closing -36.8 % of the gap."""
    study = _study(tmp_path)
    out = tmp_path / "report"
    c = run_compare(study, _request(tmp_path, out, "baselines:\n  kd: {alpha: 0.9, temperature: 4.0}\n"
                                    "  hinton: {alpha: 0.9, temperature: 4.0}\n"
                                    "  student: {description: my KD, alpha: 0.9, temperature: 2.0}\n"
                                    "  ce: {alpha: 0.0}\n", epochs=None), say=lambda _m: None)  # the full 3 epochs
    rows = {s.name: s for s in c.summaries}
    assert set(rows) == {f"trial {study.best_trial.number}", "kd = hinton", "student", "ce"}
    assert all(s.n == 1 and s.failed == 0 for s in c.summaries)  # one seed: one run each, none pooled
    proxies = {p["strategy"]: p["val_acc"] for p in map(json.loads, (out / "proxy_runs.jsonl").read_text().splitlines())}
    assert rows["kd = hinton"].proxy_val == proxies["kd = hinton"] and rows["ce"].proxy_val == proxies["ce"]
    assert c.student.test_acc == rows["ce"].test_mean  # the CE-only strategy, whatever its name
    assert rows["ce"].gap_closed is None and rows["student"].gap_closed is not None


# --- the study's data ------------------------------------------------------------------------------


def _checkpoint(path: Path, seed: int) -> Path:
    import torch

    from autokd.models.registry import build_model

    torch.manual_seed(seed)
    torch.save(build_model("cnn1d", TINY_TASK["teacher"]["kwargs"], 10, (1, 40)).state_dict(), path)
    return path


def test_compare_refuses_data_changed_since_the_search_and_a_refused_compare_leaves_no_folder(tmp_path):
    """With a checkpoint teacher and new data, compare retrained on the new data beside the old proxy values."""
    task = copy.deepcopy(TINY_TASK)
    task["data"] = {"name": "arrays", "path": str(arrays_file(tmp_path / "d.npz", val_labels_seed=1))}
    task["teacher"]["checkpoint"] = str(_checkpoint(tmp_path / "teacher.pt", seed=1))
    study = _study(tmp_path, task)
    out = tmp_path / "report"
    (tmp_path / "teacher.pt").rename(tmp_path / "kept.pt")
    with pytest.raises(AutokdError, match="teacher checkpoint not found"):
        run_compare(study, _request(tmp_path, out, "baselines:\n  ce: {alpha: 0.0}\n"), say=lambda _m: None)
    assert not out.exists()  # was left behind, empty
    (tmp_path / "kept.pt").rename(tmp_path / "teacher.pt")
    arrays_file(tmp_path / "d.npz", val_labels_seed=2)
    with pytest.raises(AutokdError, match="was searched on other data"):
        run_compare(study, _request(tmp_path, out, "baselines:\n  ce: {alpha: 0.0}\n"), say=lambda _m: None)
    assert not out.exists()


# --- the run store ---------------------------------------------------------------------------------

GOOD = {"strategy": "kd", "kind": "baseline", "seed": 0, "val_acc": 80.5, "test_acc": 79.25, "seconds": 3.0,
        "key": "k0"}


@pytest.mark.parametrize("change", [
    {"test_acc": math.nan}, {"test_acc": math.inf}, {"val_acc": -math.inf}, {"test_acc": 150.0}, {"test_acc": -20},
    {"test_acc": None}, {"state": "ok", "val_acc": None}, {"state": "weird"}, {"seconds": math.nan}, {"seconds": -1},
    {"steps": -3}, {"curve": {"1": [50.0]}}, {"curve": {"1": ["abc", 1.0]}}, {"curve": {"x": [50.0, 1.0]}},
    {"curve": {"1": [math.nan, 1.0]}}, {"curve": {"1": [50.0, -1.0]}}, {"curve": {"1": "abc"}},
    {"footprint": {"bogus": 1}}, {"footprint": {"params": 10, "size_bytes": 40, "macs": None}},  # (was a KeyError)
    {"footprint": {"params": -1, "size_bytes": 40, "macs": None, "latency_ms": None}},
    {"footprint": {"params": 10, "size_bytes": 40, "macs": 1.5, "latency_ms": math.nan}},
])
def test_a_line_edited_to_a_value_no_run_gives_is_not_a_run(tmp_path, change):
    """NaN gave an AttributeError in statistics.stdev, an ok run without test_acc a TypeError, 150 % a gap closed of 349 %."""
    from autokd.compare.store import RunStore

    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "key": "k1", **change}) + "\n")
    store, said = RunStore(path), []
    assert list(store.runs) == ["k0"] and store.unreadable == 1
    store.warn_unreadable(said.append)
    assert said == [f"warning: 1 line(s) of {path} are not runs (cut short or edited); those runs are trained again"]
    failed = {**GOOD, "key": "k2", "state": "failed", "val_acc": None, "test_acc": None, "reason": "loss diverged"}
    path.write_text(json.dumps(failed) + "\n" + json.dumps({**GOOD, "curve": {"1": [50, 0.5], "3": [60.0, 2]}}) + "\n")
    assert sorted(RunStore(path).runs) == ["k0", "k2"]  # what a run does give is read


# --- the report folder (CLI) ---------------------------------------------------------------------


def _compare(tmp_path, out):
    return run_cli("compare", "cmp", "--storage", tmp_path / "s.db", "--top-k", "1", "--seeds", "1", "--epochs", "1",
                   "--baselines", tmp_path / "baselines.yaml", "--out", out, "--workers", "0")


@pytest.mark.parametrize("name, text, needle", [
    ("report.md", "# my own notes\n", "its report.md is not a report of autokd compare"),
    ("results.csv", "a,b\n1,2\n", "its results.csv is not a table of autokd compare"),
    ("runs.jsonl", '{"epoch": 1, "loss": 0.3}\n', "its runs.jsonl is not a run store of autokd compare"),
])
def test_compare_refuses_an_out_folder_holding_files_it_did_not_write(tmp_path, name, text, needle):
    """A user's own report.md was silently replaced; an unrelated runs.jsonl had run records appended."""
    _study(tmp_path)
    (tmp_path / "baselines.yaml").write_text("baselines:\n  ce: {alpha: 0.0}\n")
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text(text)
    result = _compare(tmp_path, out)
    assert result.returncode == 2 and result.stderr.startswith("error: --out ") and needle in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "teacher" not in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [name] and (out / name).read_text() == text


def test_compare_runs_again_into_its_own_folder_and_retrains_a_line_edited_to_nan(tmp_path):
    _study(tmp_path)
    (tmp_path / "baselines.yaml").write_text("baselines:\n  ce: {alpha: 0.0}\n")
    out = tmp_path / "rep"
    first = _compare(tmp_path, out)
    assert first.returncode == 0, first.stderr
    lines = (out / "runs.jsonl").read_text().splitlines()
    edited = json.loads(lines[0])
    edited["test_acc"] = math.nan
    (out / "runs.jsonl").write_text(json.dumps(edited) + "\n" + "\n".join(lines[1:]) + "\n")
    again = _compare(tmp_path, out)  # its own report, tables, plots and run stores: used again
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr and "(1 already done)" in again.stdout + again.stderr
    assert "warning: 1 line(s) of" in again.stdout + again.stderr
    kept = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if "NaN" not in line]
    assert len(kept) == 2 and all(math.isfinite(r["test_acc"]) for r in kept)


def test_a_line_nested_thousands_deep_is_not_a_run(tmp_path):
    """A RecursionError traceback before."""
    from autokd.compare.store import RunStore

    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + '{"strategy": ' + "[" * 200_000 + "\n")
    store = RunStore(path)
    assert list(store.runs) == ["k0"] and store.unreadable == 1
    good = {**GOOD, "key": "k3", "footprint": {"params": 10, "size_bytes": 40.5, "macs": 100, "latency_ms": 0.1}}
    path.write_text(json.dumps(good) + "\n")
    assert list(RunStore(path).runs) == ["k3"]
