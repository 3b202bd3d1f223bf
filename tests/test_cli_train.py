"""The ``autokd`` command run for real in subprocesses: ``--help`` (light), ``train``, ``teacher``,
``layers``, and user mistakes (exit code 2, one ``error:`` line, no traceback).

Each subprocess pays Python + torch start-up, so the commands of this module are started
together (a few at a time) by module-scoped fixtures and the tests read their results.
"""

from __future__ import annotations

import copy
import json
import os
import re
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from autokd.config import load_config, strategy_from_dict

from conftest import TINY_TASK, run_cli, write_config, write_space

HEAVY = ("torch", "ray", "optuna", "stable_baselines3", "pandas", "matplotlib", "mnist1d")
FITNET_HINT = {
    "temperature": 4.0,
    "alpha": 0.5,
    "pairs": [{"teacher": "stages.1", "student": "stages.1", "loss": "fitnet", "weight": 1.0}],
}


def _cli_env(cache_dir: Path) -> dict:
    # module-scoped fixtures run before the autouse per-test fixture, so say it explicitly
    return {"AUTOKD_CACHE": str(cache_dir), "MPLBACKEND": "Agg", "RAY_AUTH_MODE": "disabled"}


def _run_all(commands: dict, cwd: Path, env: dict) -> dict:
    """Run ``{name: args}`` as ``autokd ARGS`` concurrently; ``{name: CompletedProcess}``."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(run_cli, *args, cwd=cwd, env=env, timeout=300) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder with the tiny space and train configs (in a subfolder, task given relative to it)."""
    root = tmp_path_factory.mktemp("cli")
    write_space(root / "tiny.yaml")
    configs = root / "configs"
    write_config(configs / "ce.yaml", {"alpha": 0.0}, "../tiny.yaml")
    write_config(configs / "fitnets.yaml", FITNET_HINT, "../tiny.yaml")
    write_config(configs / "unknown_loss.yaml", {"alpha": 0.5, "pairs": [{**FITNET_HINT["pairs"][0], "loss": "fitnett"}]},
                 "../tiny.yaml")
    write_config(configs / "unknown_layer.yaml",
                 {"alpha": 0.5, "pairs": [{**FITNET_HINT["pairs"][0], "student": "stages.9"}]}, "../tiny.yaml")
    write_config(configs / "alpha2.yaml", {"alpha": 2}, "../tiny.yaml")
    bad_model = copy.deepcopy(TINY_TASK)
    bad_model["student"]["model"] = "cnn2d"
    write_config(configs / "unknown_model.yaml", {"alpha": 0.0}, bad_model)
    bad_callable = copy.deepcopy(TINY_TASK)
    bad_callable["student"]["model"] = "nosuch_pkg.nets:build"
    write_config(configs / "bad_callable.yaml", {"alpha": 0.0}, bad_callable)
    (configs / "syntax.yaml").write_text("task: ../tiny.yaml\nstrategy:\n  alpha: 0.5\n    temperature: 4\n")
    return root


@pytest.fixture(scope="module")
def ok_runs(workspace, _session_cache_dir) -> dict:
    return _run_all(
        {
            "ce": ["train", "--config", "configs/ce.yaml", "--seeds", "2", "--out", "out/result.json", "--device", "cpu"],
            "fitnets": ["train", "--config", "configs/fitnets.yaml", "--epochs", "2"],
            "teacher": ["teacher", "--space", "tiny.yaml", "--device", "cpu"],
            "layers_model": ["layers", "cnn1d", "--kwarg", "channels=4"],
            "layers_space": ["layers", "--space", "tiny.yaml"],
        },
        workspace,
        _cli_env(_session_cache_dir),
    )


@pytest.fixture(scope="module")
def error_runs(workspace, _session_cache_dir) -> dict:
    return _run_all(
        {
            "missing_config": ["train", "--config", "configs/nope.yaml"],
            "syntax": ["train", "--config", "configs/syntax.yaml"],
            "unknown_loss": ["train", "--config", "configs/unknown_loss.yaml"],
            "alpha2": ["train", "--config", "configs/alpha2.yaml"],
            "epochs0": ["train", "--config", "configs/ce.yaml", "--epochs", "0"],
            "cuda": ["train", "--config", "configs/ce.yaml", "--device", "cuda"],
            "unknown_layer": ["train", "--config", "configs/unknown_layer.yaml"],
            "unknown_model": ["train", "--config", "configs/unknown_model.yaml"],
            "unknown_model_layers": ["layers", "cnn2d"],
            "layers_model_and_space": ["layers", "cnn1d", "--space", "tiny.yaml"],
            "bad_callable": ["train", "--config", "configs/bad_callable.yaml"],
        },
        workspace,
        _cli_env(_session_cache_dir),
    )


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def _accuracies(stdout: str) -> dict:
    found = {}
    for split in ("val", "test"):
        match = re.search(rf"^\s+{split}\s+(\d+\.\d+)(?: ± (\d+\.\d+))? %", stdout, re.M)
        assert match, f"no {split} accuracy in:\n{stdout}"
        found[split] = (float(match.group(1)), match.group(2) and float(match.group(2)))
    return found


# ----------------------------------------------------------------------------- help


def test_help_works_and_loads_no_heavy_library(tmp_path):
    code = (
        "import json, sys\n"
        "from autokd.cli.main import main\n"
        "for argv in (['--help'], ['train', '--help'], ['teacher', '--help'], ['layers', '--help'],"
        " ['search', '--help'], ['--version']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (argv, exc.code)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    out = _ok(proc)
    assert "--config" in out and "--seeds" in out and "--space" in out and "0.1.0" in out
    assert json.loads(out.strip().splitlines()[-1]) == [], "autokd --help imported heavy libraries"
    # the installed console script and `python -m`
    script = Path(sys.executable).with_name("autokd")
    for argv in ([str(script), "--help"] if script.exists() else [], [sys.executable, "-m", "autokd.cli.main", "-h"]):
        if argv:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
            out = _ok(proc)
            for command in ("train", "teacher", "layers", "search"):
                assert command in out


# ----------------------------------------------------------------------------- train


def test_train_ce_only_with_two_seeds_writes_json(ok_runs, workspace):
    out = _ok(ok_runs["ce"])
    acc = _accuracies(out)
    assert "ce only" in out and "(2 seeds)" in out
    result = json.loads((workspace / "out" / "result.json").read_text())
    assert result["task"] == TINY_TASK["name"]
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    vals = [r["val_acc"] for r in result["runs"]]
    tests = [r["test_acc"] for r in result["runs"]]
    assert all(0 <= v <= 100 for v in vals + tests)
    assert result["val_mean"] == pytest.approx(statistics.fmean(vals))
    assert result["val_sd"] == pytest.approx(statistics.stdev(vals))
    assert result["test_mean"] == pytest.approx(statistics.fmean(tests))
    assert result["test_sd"] == pytest.approx(statistics.stdev(tests))
    assert acc["val"] == (round(result["val_mean"], 2), round(result["val_sd"], 2))
    assert acc["test"] == (round(result["test_mean"], 2), round(result["test_sd"], 2))
    # the strategy written is the one trained: the config's, with the task's full recipe
    config = load_config(workspace / "configs" / "ce.yaml")
    assert strategy_from_dict(result["strategy"]) == config.strategy
    assert set(result["teacher"]) == {"val_acc", "test_acc"}
    assert "seed 0: val" in ok_runs["ce"].stderr and "seed 1: val" in ok_runs["ce"].stderr


def test_train_fitnets_hint(ok_runs):
    proc = ok_runs["fitnets"]
    out = _ok(proc)
    acc = _accuracies(out)
    assert acc["val"][1] is None and acc["test"][1] is None  # one seed: no spread, none printed
    assert "fitnet(stages.1<-stages.1)" in out and "kd T=4 alpha=0.5" in out and "(1 seed)" in out
    assert "recipe: 2 epochs" in proc.stderr  # --epochs overrides the recipe
    assert "seed 0  epoch 3/" not in proc.stderr


def test_teacher_command(ok_runs, workspace):
    out = _ok(ok_runs["teacher"])
    assert re.search(r"^\s+val\s+\d+\.\d+ %$", out, re.M) and re.search(r"^\s+test\s+\d+\.\d+ %$", out, re.M)
    assert "teacher cnn1d" in out and "parameters" in out
    weights = re.search(r"weights: (.+)$", out, re.M).group(1)
    assert Path(weights).is_file() and Path(weights).suffix == ".pt"


def test_layers_of_a_model_and_of_a_space(ok_runs):
    out = _ok(ok_runs["layers_model"])
    assert re.search(r"^\s+stages\.1\s+Sequential\s+4x10$", out, re.M), out
    assert re.search(r"^\s+embedding\s+.*\s4$", out, re.M)
    out = _ok(ok_runs["layers_space"])
    assert re.search(r"^\s+stages\.1\s+Sequential\s+16x10$", out, re.M)  # teacher
    assert re.search(r"^\s+stages\.1\s+Sequential\s+4x10$", out, re.M)  # student
    pairs = out.split("automatic pairs")[1]
    assert [line.strip() for line in pairs.splitlines()[1:] if line.strip()] == [
        "stages.0 -> stages.0", "stages.1 -> stages.1", "stages.2 -> stages.2"]


# ----------------------------------------------------------------------------- user errors

ERRORS = [
    # name, words the error line must hold, whether stderr is that line only
    ("missing_config", ["file not found", "nope.yaml"], True),
    ("syntax", ["YAML syntax error", "syntax.yaml", "line 4"], True),
    ("unknown_loss", ["'fitnett'", "did you mean 'fitnet'", "known:"], True),
    ("alpha2", ["strategy.alpha", "[0, 1]"], True),
    ("cuda", ["'cuda'", "no CUDA GPU"], True),
    ("unknown_layer", ["'stages.9'", "tappable:", "stages.1"], False),  # after the teacher is ready
    ("unknown_model", ["unknown model 'cnn2d'", "did you mean 'cnn1d'"], False),
    ("unknown_model_layers", ["unknown model 'cnn2d'", "cnn1d"], True),
    ("layers_model_and_space", ["give MODEL", "or --space, not both: MODEL and --space 'tiny.yaml'"], True),
    ("bad_callable", ["nosuch_pkg.nets:build", "cannot import module"], False),
]


@pytest.mark.parametrize("name,needles,only_line", ERRORS, ids=[e[0] for e in ERRORS])
def test_user_errors_exit_2_with_one_error_line(error_runs, name, needles, only_line):
    if name == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = error_runs[name]
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    if only_line:
        assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"


def test_bad_flag_is_a_click_usage_error(error_runs):
    proc = error_runs["epochs0"]
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line, as autokd's own errors
    assert re.fullmatch(r"error: Invalid value for '--epochs': 0 is not in the range 1<=x<=100000 "
                        r"\(see 'autokd train --help'\)\n", proc.stderr), proc.stderr


# ----------------------------------------------------------------------------- hardening

BOMB = "".join(
    [f"l0: &l0 [{', '.join(['lol'] * 9)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)]
)


@pytest.fixture(scope="module")
def hardening_runs(workspace, _session_cache_dir) -> dict:
    configs = workspace / "configs"
    (workspace / "a_folder").mkdir()
    (workspace / "a_file").write_text("x")
    write_config(configs / "diverge.yaml", {"alpha": 0.0, "recipe": {"lr": 1e6, "optimizer": "sgd", "epochs": 1}},
                 "../tiny.yaml")
    write_config(configs / "last_seed.yaml", {"alpha": 0.0, "recipe": {"seed": 2**32 - 1}}, "../tiny.yaml")
    (configs / "nan.yaml").write_text("task: ../tiny.yaml\nstrategy:\n  alpha: .nan\n")
    (configs / "dup.yaml").write_text("task: ../tiny.yaml\nstrategy:\n  alpha: 0.5\n  temperature: 2\n  alpha: 0.3\n")
    (configs / "bomb.yaml").write_text(BOMB + "task: ../tiny.yaml\nstrategy: {alpha: 0.5, logit_params: *l8}\n")
    diverging_teacher = copy.deepcopy(TINY_TASK)
    diverging_teacher["teacher"]["recipe"].update(lr=1e6, optimizer="sgd", epochs=1)
    write_space(workspace / "diverging_teacher.yaml", task=diverging_teacher)
    env = _cli_env(_session_cache_dir)
    runs = _run_all(
        {
            "out_is_folder": ["train", "--config", "configs/ce.yaml", "--out", "a_folder"],
            "out_under_a_file": ["train", "--config", "configs/ce.yaml", "--out", "a_file/result.json"],
            "out_is_the_config": ["train", "--config", "configs/ce.yaml", "--out", "configs/../configs/ce.yaml"],
            "save_is_out": ["train", "--config", "configs/ce.yaml", "--out", "r.json", "--save", "./r.json"],
            "out_is_the_task_file": ["train", "--config", "configs/ce.yaml", "--out", "tiny.yaml"],
            "diverging_student": ["train", "--config", "configs/diverge.yaml", "--seeds", "2"],
            "diverging_teacher": ["teacher", "--space", "diverging_teacher.yaml"],
            "seeds_past_the_last": ["train", "--config", "configs/last_seed.yaml", "--seeds", "2"],
            "nan": ["train", "--config", "configs/nan.yaml"],
            "duplicate_key": ["train", "--config", "configs/dup.yaml"],
            "alias_bomb": ["train", "--config", "configs/bomb.yaml"],
            "bad_device": ["train", "--config", "configs/ce.yaml", "--device", "cuda:first"],
            "layers_bad_kwarg_yaml": ["layers", "cnn1d", "--kwarg", "channels=[4"],
            "layers_huge_shape": ["layers", "cnn1d", "--input-shape", "1,100000000"],
            "layers_huge_model": ["layers", "cnn1d", "--kwarg", "channels=200000"],
            "layers_kwarg_twice": ["layers", "cnn1d", "--kwarg", "channels=4", "--kwarg", "channels=8"],
            "layers_kwarg_inf": ["layers", "cnn1d", "--kwarg", "channels=4", "--kwarg", "scale=.inf"],
        },
        workspace,
        env,
    )
    blocked = workspace / "cache_is_a_file"
    blocked.write_text("x")
    runs["unwritable_cache"] = run_cli("teacher", "--space", "tiny.yaml", "--device", "cpu", cwd=workspace,
                                       env={**env, "AUTOKD_CACHE": str(blocked)})
    return runs


HARDENING_ERRORS = [
    ("out_is_folder", ["--out", "a_folder", "is a directory"]),  # click's own check
    ("out_under_a_file", ["a_file", "it is a file, not a folder"]),
    ("out_is_the_config", ["--out and --config both name configs/../configs/ce.yaml", "name another file"]),
    ("save_is_out", ["--save and --out both name ./r.json", "name another file"]),
    ("out_is_the_task_file", ["--out tiny.yaml exists and is not a results file autokd wrote", "name a new file"]),
    ("diverging_student", ["student diverged with seed 0", "strategy.recipe.lr (now 1e+06)", "loss weights"]),
    ("diverging_teacher", ["teacher 'cnn1d' diverged", "task.teacher.recipe.lr (now 1e+06)"]),
    ("seeds_past_the_last", ["--seeds 2 from seed 4294967295", "at most 1 seeds"]),
    ("nan", ["strategy.alpha must be a finite number", "nan"]),
    ("duplicate_key", ["duplicate key 'alpha'", "line 5", "first at line 3"]),
    ("alias_bomb", ["expands to more than 100,000 values"]),
    ("bad_device", ["unknown device 'cuda:first'", "cuda:N"]),
    ("layers_bad_kwarg_yaml", ["YAML syntax error in --kwarg channels"]),
    ("layers_huge_shape", ["--input-shape '1,100000000' is too large", "16,777,216"]),
    ("layers_huge_model", ["'cnn1d' has 400,004,200,010 parameters", "at most 2,000,000,000"]),
    ("layers_kwarg_twice", ["--kwarg channels is given twice", "'channels=8'"]),
    ("layers_kwarg_inf", ["--kwarg scale must be a finite number, got inf"]),
]


@pytest.mark.parametrize("name,needles", HARDENING_ERRORS, ids=[e[0] for e in HARDENING_ERRORS])
def test_hardening_errors_exit_2_with_one_error_line(hardening_runs, name, needles):
    proc = hardening_runs[name]
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(errors) == 1 and proc.stderr.rstrip().splitlines()[-1] == errors[0], proc.stderr
    assert len(errors[0]) < 500, errors[0]
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    if name in ("out_is_folder", "out_under_a_file", "out_is_the_config", "save_is_out", "out_is_the_task_file"):
        assert "seed 0" not in proc.stderr and "generating" not in proc.stderr


def test_out_and_save_replace_only_files_an_earlier_train_wrote(tmp_path):
    """--save over the task's teacher checkpoint replaced the teacher with the student (data loss)."""
    from autokd.cli.train_cmd import _check_out
    from autokd.errors import AutokdError
    from autokd.compression.saved import save_student

    results, empty, task = tmp_path / "r.json", tmp_path / "empty.json", tmp_path / "task.yaml"
    results.write_text(json.dumps({"task": "t", "strategy": {}, "runs": [], "val_mean": 90.0}))
    empty.write_text("")
    task.write_text("task: default\n")
    for ok in (results, empty, tmp_path / "new.json"):
        _check_out(ok, "--out")
    with pytest.raises(AutokdError, match=r"--out .*task\.yaml exists and is not a results file autokd wrote"):
        _check_out(task, "--out")
    checkpoint, student = tmp_path / "teacher.pt", tmp_path / "student.pt"
    torch.save({"weight": torch.zeros(2)}, checkpoint)
    save_student(student, torch.nn.Linear(2, 2), ("mlp", {}), 2, (2,), {}, {})
    _check_out(student, "--save")
    for mine in (checkpoint, results):
        with pytest.raises(AutokdError, match="exists and is not a student autokd wrote"):
            _check_out(mine, "--save")


def test_an_unwritable_cache_keeps_the_teacher_for_the_run(hardening_runs):
    proc = hardening_runs["unwritable_cache"]
    out = _ok(proc)
    assert "weights: not saved" in out and "(1,000" not in out
    warnings_seen = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings_seen) == 2, proc.stderr  # once for the MNIST-1D cache, once for the teacher
    assert "MNIST-1D cache" in warnings_seen[0] and "trained teacher" in warnings_seen[1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_into_a_read_only_folder(workspace, _session_cache_dir):
    folder = workspace / "read_only"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    try:
        proc = run_cli("train", "--config", "configs/ce.yaml", "--out", "read_only/r.json", cwd=workspace,
                       env=_cli_env(_session_cache_dir))
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 2 and "not writable" in proc.stderr and "Traceback" not in proc.stderr


def test_a_pair_mistake_in_a_config_is_refused_before_the_teacher_trains(tmp_path):
    """A layer typo (or a pair its loss cannot take) in a hand-written config was an error only after the
    teacher had trained: minutes on a real task. A fresh cache: a teacher trained first would say so."""
    space = write_space(tmp_path / "s.yaml")
    typo = write_config(tmp_path / "typo.yaml", {"alpha": 0.5, "pairs": [
        {"teacher": "stages.1", "student": "stage.1", "loss": "fitnet"}]}, str(space))
    misfit = write_config(tmp_path / "misfit.yaml", {"alpha": 0.5, "pairs": [
        {"teacher": "stages.1", "student": "fc", "loss": "at"}]}, str(space))
    for config, needle in ((typo, "no layer 'stage.1' (did you mean 'stages.1'?)"),
                           (misfit, "strategy.pairs[0] (teacher stages.1 -> student fc, at): at needs feature maps")):
        result = run_cli("train", "--config", config, env={"AUTOKD_CACHE": str(tmp_path / "cache")})
        assert result.returncode == 2 and needle in result.stderr, result.stderr
        assert "teacher" not in result.stdout, result.stdout  # neither loaded nor trained
