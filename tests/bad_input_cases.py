"""The cases of the bad-input matrix (test_bad_input.py): name -> (CLI arguments, a fragment the
error must contain). Each group builds the files its cases read in the folder it is given."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
import yaml
from conftest import TINY_TASK, write_config, write_space

SPACE = {"pair_losses": ["none", "fitnet"], "relation_losses": [], "weight_scale": {"low": 0.01, "high": 1, "log": True}}


def space_file(folder: Path, name: str, task_changes=None, space_changes=None) -> Path:
    task = copy.deepcopy(TINY_TASK)
    for dotted, value in (task_changes or {}).items():
        node = task
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return write_space(folder / name, task=task, space={**SPACE, **(space_changes or {})})


def all_cases(d: Path) -> dict[str, tuple[list, str]]:
    """name -> (CLI arguments, a fragment the error must contain); d holds good.yaml and studies.db."""
    good = str(d / "good.yaml")
    st = ["--storage", str(d / "studies.db")]
    return {
        **_file_cases(d, st, good),
        **_command_cases(d, st, good),
        **_integrity_cases(d, st, good),
        **_hardening_cases(d, st),
        **_limit_cases(d, st),
        **_scheme_cases(d, st, good),
    }


def _file_cases(d: Path, st: list, good: str) -> dict[str, tuple[list, str]]:
    """Space files, models and teacher checkpoints."""
    syntax = d / "syntax.yaml"
    syntax.write_text("task:\n  name: x\n  data: {name: mnist1d\n  teacher: {}\n")
    garbage = d / "garbage.pt"
    garbage.write_bytes(os.urandom(256))
    other = d / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    return {
        "missing space file": (["search", "--space", d / "nope.yaml", *st], "file not found"),
        "space is a folder": (["search", "--space", d, *st], "is a folder"),
        "yaml syntax error": (["search", "--space", syntax, *st], "line 4"),
        "unknown key": (["search", "--space", space_file(d, "k.yaml", {"data.num_sample": 10}), *st], "num_sample"),
        "wrong type": (["search", "--space", space_file(d, "t.yaml", {"data.num_samples": "many"}), *st],
                       "num_samples must be an integer"),
        "empty range": (["search", "--space", space_file(d, "r.yaml", space_changes={"temperature": {"low": 9, "high": 2}}), *st],
                        "empty range, low 9"),
        "zero budget": (["search", "--space", good, "--budget", "0", *st], "0 is not in the range"),
        "negative budget": (["search", "--space", good, "--budget", "-4", *st], "-4 is not in the range"),
        "unknown sampler": (["search", "--space", good, "--sampler", "bayes", *st], "'bayes' is not one of"),
        "unknown loss": (["search", "--space", space_file(d, "l.yaml", space_changes={"pair_losses": ["fitnet", "hint"]}), *st],
                         "space.pair_losses: unknown loss 'hint'"),
        "unknown layer path": (["search", "--space", space_file(d, "p.yaml", space_changes={
            "pairs": [{"teacher": "stages.1", "student": "stage.1"}]}), *st], "stages.1"),
        "pair cannot be projected": (["search", "--space", space_file(d, "u.yaml", space_changes={
            "pairs": [{"teacher": "stages.1", "student": "fc"}]}), *st], "cannot take fitnet"),
        "unknown model name": (["search", "--space", space_file(d, "m.yaml", {"student.model": "cnn9"}), *st],
                               "unknown model 'cnn9'"),
        "bad module:callable": (["search", "--space", space_file(d, "c.yaml", {"student.model": "nosuchpkg.nets:Tiny"}), *st],
                                "nosuchpkg.nets"),
        "checkpoint missing": (["teacher", "--space", space_file(d, "ck1.yaml", {"teacher.checkpoint": str(d / "no.pt")})],
                               "teacher checkpoint not found"),
        "checkpoint not a checkpoint": (["teacher", "--space", space_file(d, "ck2.yaml", {"teacher.checkpoint": str(garbage)})],
                                        "not a loadable PyTorch checkpoint"),
        "checkpoint does not fit": (["teacher", "--space", space_file(d, "ck3.yaml", {"teacher.checkpoint": str(other)})],
                                    "does not fit the teacher model"),
        "cifar data root missing": (["teacher", "--space", space_file(d, "cifar.yaml", {
            "data": {"name": "cifar10", "root": str(d / "no-data")}, "teacher.model": "resnet8x4",
            "student.model": "resnet8x4"})], "not found under"),
    }


def _command_cases(d: Path, st: list, good: str) -> dict[str, tuple[list, str]]:
    """Commands, flags and studies."""
    no_strategy = d / "nostrategy.yaml"
    no_strategy.write_text("task: default\n")
    return {
        "resume unknown study": (["resume", "nope", *st], "unknown study 'nope'"),
        "export unknown study": (["export", "nope", *st], "unknown study 'nope'"),
        "compare unknown study": (["compare", "nope", *st], "unknown study 'nope'"),
        "show unknown study": (["show", "nope", *st], "unknown study 'nope'"),
        "search with a changed space": (["search", "--space", space_file(d, "changed.yaml", space_changes={"alpha": 0.3}),
                                         "--name", "base", "--workers", "0", *st], "different search space"),
        "bad storage url": (["studies", "--storage", "nosuchdb://host/x"], "cannot open storage"),
        "bad storage path": (["studies", "--storage", str(d / "studies.txt")], "neither a URL"),
        "unreachable ray address": (["search", "--space", good, "--name", "base", "--address", "127.0.0.1:9", *st],
                                    "cannot reach the Ray cluster"),
        "rank beyond leaderboard": (["export", "base", "--rank", "50", *st], "--rank 50 is beyond the leaderboard"),
        "export with no finished trial": (["export", "allfail", *st], "no complete trial yet"),
        "more workers than cpus": (["search", "--space", good, "--name", "base", "--workers", "512", *st],
                                   "more than this machine's"),
        "negative workers": (["search", "--space", good, "--name", "base", "--workers", "-1", *st], "must be >= 0"),
        "gpu on a cpu machine (search)": (["search", "--space", good, "--name", "base", "--device", "cuda", *st],
                                          "no CUDA GPU"),
        "gpu on a cpu machine (train)": (["train", "--config", write_config(d / "ce.yaml", {"alpha": 0.0}, good),
                                          "--device", "cuda"], "no CUDA GPU"),
        "zero epochs": (["train", "--config", d / "ce.yaml", "--epochs", "0"], "0 is not in the range"),
        "config without strategy": (["train", "--config", no_strategy], "missing top-level key 'strategy'"),
        "unknown dataset": (["teacher", "--space", space_file(d, "ds.yaml", {"data.name": "mnist2d"})], "mnist2d"),
        "zero seeds in compare": (["compare", "base", "--seeds", "0", *st], "0 is not in the range"),
        "10**12 seeds in compare": (["compare", "base", "--seeds", "1000000000000", *st], "1<=x<=1000"),  # MemoryError
        "unknown baseline position": (["compare", "base", "--baselines", _baselines(d), "--workers", "0", *st],
                                      "'middlish'; allowed: all, first, middle, last"),
        # every trial trained, then found infeasible: the whole budget spent on students the limit excludes
        "a parameter limit no student meets": (["search", "--space", good, "--max-params", "10", *st],
                                               "no student this space can ship meets max_params 10: the smallest, "
                                               "the task's student, has"),
        "a size limit no quantized student meets": (["search", "--space", space_file(d, "q.yaml", space_changes={
            "quantize": ["none", 8], "student": {"channels": [2, 4]}}), "--max-size-kb", "0.01", *st],
            "meets max_size_kb 0.01: the smallest, the student with {'channels': 2}, has "),
    }


def _scheme_cases(d: Path, st: list, good: str) -> dict[str, tuple[list, str]]:
    """Who-teaches-whom mistakes, in train configs and in search spaces."""
    def config(name: str, scheme: dict, task=good) -> Path:
        return write_config(d / name, {"alpha": 0.5, "scheme": scheme}, task)

    def space(name: str, **changes) -> Path:
        return space_file(d, name, space_changes=changes)

    return {
        "unknown scheme kind": (["train", "--config", config("sk.yaml", {"kind": "teacher_assistant"})],
                                "strategy.scheme.kind: unknown value 'teacher_assistant' (did you mean 'assistant'?)"),
        "born-again generations out of range": (["train", "--config", config("sg.yaml", {"kind": "born_again",
                                                                                         "generations": 9})],
                                                "generations must be a whole number from 1 to 5, got 9"),
        "mutual peers zero": (["train", "--config", config("sp.yaml", {"kind": "mutual", "peers": 0})],
                              "peers must be a whole number from 1 to 4"),
        "online temperature nan": (["train", "--config", config("st.yaml", {"kind": "online", "temperature": float("nan")})],
                                   "temperature must be a finite number"),
        "assistant without a model": (["train", "--config", config("sa.yaml", {"kind": "assistant"})],
                                      "strategy.scheme.model is missing"),
        "assistant model without logits": (["train", "--config", config("sl.yaml", {"kind": "assistant",
                                                                                    "model": "torch.nn:Flatten"})],
                                           "assistant model 'torch.nn:Flatten'"),
        "ensemble on a one-teacher task": (["train", "--config", config("se.yaml", {"kind": "ensemble"})],
                                           "the task has one teacher"),
        "scheme knob of an unlisted scheme": (["search", "--space", space("s1.yaml", scheme_knobs={"mutual": {"peers": [1]}}),
                                               *st], "space.scheme_knobs.mutual: 'mutual' is not one of the space's schemes"),
        "unknown scheme in a space": (["search", "--space", space("s2.yaml", schemes=["single", "bam"]), *st],
                                      "space.schemes: unknown scheme 'bam'"),
        "scheme knob typo": (["search", "--space", space("s3.yaml", schemes=["born_again"],
                                                         scheme_knobs={"born_again": {"generation": [2]}}), *st],
                             "space.scheme_knobs.born_again.generation (did you mean 'generations'?)"),
        "peer model without logits in a space": (["search", "--space", space("s4.yaml", schemes=["online"], scheme_knobs={
            "online": {"peer_model": "torch.nn:Flatten"}}), *st], "online peer model 'torch.nn:Flatten'"),
        "ensemble space on a one-teacher task": (["search", "--space", space("s5.yaml", schemes=["ensemble"]), *st],
                                                 "the task has one teacher"),
        "task teachers not a list": (["teacher", "--space", space_file(d, "s6.yaml", {"teachers": {"model": "cnn1d"}})],
                                     "task.teachers must be a list"),
        "unknown shipped baselines": (["compare", "base", "--baselines", "scheme_baseline", "--workers", "0", *st],
                                      "did you mean 'scheme_baselines'?); give a baselines YAML file or one of"),
    }


EXITING_MODEL = "import sys\nsys.exit(3)\n"
PAIR_MODEL = (
    "import torch.nn as nn\n\n"
    "class PairNet(nn.Module):\n"
    "    def __init__(self, num_classes=10):\n"
    "        super().__init__()\n"
    "        self.fc = nn.Linear(40, num_classes)\n\n"
    "    def forward(self, x):\n"
    "        return self.fc(x.flatten(1)), x\n"
)
FITNET_PAIR = {"teacher": "stages.1", "student": "stages.1", "loss": "fitnet"}


def _alias_bomb_text(levels: int = 9) -> str:
    """l0..l8: nine lists of nine aliases each: 9**9 = 387 million strings once expanded."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _hardening_files(d: Path) -> dict[str, Path]:
    """Files the hardening cases read: raw YAML that yaml.safe_dump cannot write, a FIFO, a sparse
    11 MB file, user model modules (in d, the CLI's working directory)."""
    good = d / "good.yaml"
    files = {"good": good}
    text = good.read_text()
    files["dup"] = d / "dup.yaml"
    files["dup"].write_text(text.replace("  name: tiny-mnist1d\n", "  name: tiny-mnist1d\n  name: again\n", 1))
    files["bomb"] = d / "bomb.yaml"
    files["bomb"].write_text(_alias_bomb_text() + text.replace("channels: 4", "channels: *l8", 1))
    files["recursive"] = d / "recursive.yaml"
    files["recursive"].write_text(text.replace("channels: 4", "channels: &me [1, *me]", 1))
    files["fifo"] = d / "fifo.yaml"
    if not files["fifo"].exists():  # the two case groups that read these files both build them
        os.mkfifo(files["fifo"])
    files["huge"] = d / "huge.yaml"
    with open(files["huge"], "wb") as handle:
        handle.truncate(11 * 1024 * 1024)  # sparse: nothing is written
    files["latin1"] = d / "latin1.yaml"
    files["latin1"].write_bytes("task: caf\xe9\nstrategy: {}\n".encode("latin-1"))
    (d / "exiting_model.py").write_text(EXITING_MODEL)
    (d / "pair_model.py").write_text(PAIR_MODEL)
    files["a_file"] = d / "a_file"
    files["a_file"].write_text("not a folder")
    return files


def _hardening_cases(d: Path, st: list) -> dict[str, tuple[list, str]]:
    f = _hardening_files(d)
    nan, inf = float("nan"), float("inf")

    def config(name: str, strategy: dict, task_ref=None) -> Path:
        return write_config(d / name, strategy, task_ref if task_ref is not None else f["good"])

    return {
        # YAML files
        "duplicate key": (["search", "--space", f["dup"], *st], "duplicate key 'name'"),
        "alias bomb in student.kwargs": (["search", "--space", f["bomb"], *st], "expands to more than 100,000 values"),
        "recursive alias": (["teacher", "--space", f["recursive"]], "refers to a node that contains it"),
        "space is a FIFO": (["search", "--space", f["fifo"], *st], "is a FIFO (named pipe)"),
        "config is a device": (["train", "--config", "/dev/null"], "/dev/null is a character device"),
        "config over 10 MB": (["train", "--config", f["huge"]], "11,534,336 bytes; a YAML file may hold at most"),
        "config not UTF-8": (["train", "--config", f["latin1"]], "not UTF-8 text"),
        "task reference of the wrong type": (["train", "--config", config("tref.yaml", {"alpha": 0.5}, [1, 2])],
                                             "task must be a shipped space name, a path to a space file or a mapping"),
        # numbers
        "nan temperature in the space": (["search", "--space", space_file(d, "h1.yaml", space_changes={"temperature": nan}), *st],
                                         "space.temperature must be a finite number"),
        "inf in a space range": (["search", "--space", space_file(d, "h2.yaml", space_changes={
            "weight_scale": {"low": 0.01, "high": inf, "log": True}}), *st], "space.weight_scale.high must be a finite number"),
        "nan teacher lr": (["teacher", "--space", space_file(d, "h3.yaml", {"teacher.recipe.lr": nan})],
                           "task.teacher.recipe.lr must be a finite number"),
        "inf full-recipe lr": (["search", "--space", space_file(d, "h4.yaml", {"recipes.full.lr": inf}), *st],
                               "task.recipes.full.lr must be a finite number"),
        "nan test_fraction": (["teacher", "--space", space_file(d, "h5.yaml", {"data.test_fraction": nan})],
                              "task.data.test_fraction must be a finite number"),
        "inf alpha in a config": (["train", "--config", config("h6.yaml", {"alpha": inf})], "strategy.alpha must be a finite number"),
        "nan pair weight": (["train", "--config", config("h7.yaml", {"pairs": [{**FITNET_PAIR, "weight": nan}]})],
                            "strategy.pairs[0].weight must be a finite number"),
    }


def _limit_cases(d: Path, st: list) -> dict[str, tuple[list, str]]:
    """Seeds, sizes and bounds, strategies, models, paths and outputs."""
    f = _hardening_files(d)

    def config(name: str, strategy: dict, task_ref=None) -> Path:
        return write_config(d / name, strategy, task_ref if task_ref is not None else f["good"])

    return {
        # seeds and sizes
        "negative recipe seed": (["search", "--space", space_file(d, "h8.yaml", {"recipes.full.seed": -1}), *st],
                                 "task.recipes.full.seed must be a whole number in [0, 2**32 - 1]"),
        "data seed past 2**32 - 1": (["teacher", "--space", space_file(d, "h9.yaml", {"data.seed": 2**32})],
                                     "task.data.seed must be a whole number in [0, 2**32 - 1]"),
        "teacher seed too large": (["teacher", "--space", space_file(d, "h10.yaml", {"teacher.recipe.seed": 2**40})],
                                   "task.teacher.recipe.seed must be a whole number in [0, 2**32 - 1]"),
        "seeds past the last seed": (["train", "--config", config("h11.yaml", {"alpha": 0.0, "recipe": {"seed": 2**32 - 1}}),
                                      "--seeds", "2"], "--seeds 2 from seed 4294967295 goes past the largest seed"),
        "epochs beyond the bound": (["search", "--space", space_file(d, "h12.yaml", {"recipes.full.epochs": 10**6}), *st],
                                    "task.recipes.full.epochs must be a whole number at least 1 and at most 100,000"),
        "batch size beyond the bound": (["teacher", "--space", space_file(d, "h13.yaml", {"teacher.recipe.batch_size": 2**21})],
                                        "at most 1,048,576"),
        "num_samples beyond the bound": (["teacher", "--space", space_file(d, "h14.yaml", {"data.num_samples": 10**9})],
                                         "task.data.num_samples must be a whole number from 100"),
        "image_size beyond the bound": (["teacher", "--space", space_file(d, "h15.yaml", {
            "data": {"name": "imagefolder", "root": str(d), "image_size": 5000}})], "task.data.image_size must be a whole number of pixels from 1 to 1024"),
        "val_size count beyond the bound": (["search", "--space", space_file(d, "h16.yaml", {"data.val_size": 10**10}), *st],
                                            "is more than 1,000,000,000 samples"),
        "model beyond the parameter bound": (["teacher", "--space", space_file(d, "h17.yaml", {"teacher.kwargs": {"channels": 200000}})],
                                             "has 400,004,200,010 parameters"),
        "loss parameter beyond its bound": (["train", "--config", config("h18.yaml", {
            "relations": [{"loss": "crd", "params": {"feat_dim": 10**9}}]})], "params.feat_dim must be a whole number from 1 to 4,096"),
        # strategies
        "pair listed twice": (["train", "--config", config("h19.yaml", {"pairs": [FITNET_PAIR, FITNET_PAIR]})],
                              "strategy.pairs[1] repeats pairs[0]"),
        "relation loss listed twice": (["train", "--config", config("h20.yaml", {"relations": [{"loss": "rkd"}, {"loss": "rkd"}]})],
                                       "strategy.relations[1] repeats relations[0]"),
        # models, paths, outputs
        "model kwargs key not a name": (["teacher", "--space", space_file(d, "h21.yaml", {"student.kwargs": {"1x": 2}})],
                                        "is not a keyword name"),
        "user model calls sys.exit": (["teacher", "--space", space_file(d, "h22.yaml", {"teacher.model": "exiting_model:build"})],
                                      "it called sys.exit(3)"),
        "student returns a tuple": (["train", "--config", config("h23.yaml", {"alpha": 0.0}, _space_dict("pair_model:PairNet"))],
                                    "forward returned a tuple of 2"),
        "checkpoint is a folder": (["teacher", "--space", space_file(d, "h24.yaml", {"teacher.checkpoint": str(d)})],
                                   "is not a regular file"),
        "data.root with a NUL byte": (["teacher", "--space", space_file(d, "h25.yaml", {"data.root": "a\0b"})], "NUL bytes"),
        "--out under a file": (["train", "--config", config("h26.yaml", {"alpha": 0.0}), "--out", f["a_file"] / "r.json"],
                               "it is a file, not a folder"),
        "unknown device name": (["train", "--config", config("h27.yaml", {"alpha": 0.0}), "--device", "cuda:first"],
                                "unknown device 'cuda:first'"),
        "huge unknown key is echoed short": (["train", "--config", config("h28.yaml", {"x" * 100_000: 1})],
                                             "unknown key h28.yaml: strategy.'xxxx"),
    }


def _space_dict(student_model: str) -> dict:
    """The tiny task inline, with another student model."""
    task = copy.deepcopy(TINY_TASK)
    task["student"] = {"model": student_model}
    return task


def _integrity_cases(d: Path, st: list, good: str) -> dict[str, tuple[list, str]]:
    """Names, seeds, storages, write targets, teachers (issue: search integrity)."""
    (d / "folder.db").mkdir(exist_ok=True)
    if not (d / "fifo.db").exists():
        os.mkfifo(d / "fifo.db")
    search = ["search", "--space", good, "--workers", "0", *st]
    return {
        "study name with a path": ([*search, "--name", "../escape"], "study name '../escape' is not allowed"),
        "study name with a newline": ([*search, "--name", "a\nb"], "is not allowed"),
        "study name too long": ([*search, "--name", "n" * 101], "1-100 letters"),
        "seed below its range": ([*search, "--seed", "-1"], "-1 is not in the range"),
        "seed above its range": ([*search, "--seed", str(2**32)], "4294967296 is not in the range"),
        "layer pair listed twice": (["search", "--space", space_file(d, "twice.yaml", space_changes={"pairs": [
            {"teacher": "stages.1", "student": "stages.1"}, {"teacher": "stages.1", "student": "stages.1"}]}), *st],
            "space.pairs[1] repeats"),
        "unknown device": ([*search, "--device", "tpu"], "unknown device 'tpu'"),
        "address not host:port": ([*search, "--name", "base", "--workers", "1", "--address", "nonsense"],
                                  "must look like HOST:PORT"),
        "resume with negative workers": (["resume", "base", "--workers", "-3", *st], "must be >= 0"),
        "export rank 0": (["export", "base", "--rank", "0", *st], "rank must be 1.."),
        "export into a missing folder": (["export", "base", "-o", d / "missing" / "best.yaml", *st],
                                         "folder " + str(d / "missing") + " does not exist"),
        "export into a read-only folder": (["export", "base", "-o", "/sys/best.yaml", *st], "Permission denied"),
        "export onto a device": (["export", "base", "-o", "/dev/null", *st], "not a regular file"),
        "export onto a folder": (["export", "base", "-o", d, *st], "is a directory"),
        "storage that is a folder": (["studies", "--storage", d / "folder.db"], "not a regular file"),
        "storage that is a fifo": (["show", "base", "--storage", d / "fifo.db"], "not a regular file"),
        "show on a missing storage file": (["show", "base", "--storage", d / "nowhere.db"], "no study storage at"),
        "export from a missing storage file": (["export", "base", "--storage", d / "nowhere.db"], "no study storage at"),
        "postgres nobody listens on": (["studies", "--storage", "postgresql://u:pw@127.0.0.1:9/x"], "refused"),
        "resume with another teacher": (["resume", "swapped", "--budget", "3", *st], "searched with another teacher"),
        "unknown warm start": ([*search, "--warm-start", "published"], "'published' is not 'baselines'"),
        "layer search over an unknown layer": (["search", "--space", space_file(d, "ls.yaml", space_changes={
            "pairs": {"student": ["stages.7"], "teacher": ["stages.0"]}}), *st], "no layer 'stages.7'"),
        "layer search without a pair loss": (["search", "--space", space_file(d, "ls2.yaml", space_changes={
            "pairs": "search", "pair_losses": ["none"]}), *st], "pairs: search needs pair_losses other than 'none'"),
        "standardization with no loss that takes it": (["search", "--space", space_file(d, "ls3.yaml", space_changes={
            "logit_losses": ["ttm", "wttm"], "logit_standardization": True}), *st],
            "logit_standardization applies to kd, dkd, dist"),
        "unknown logit loss in a space": (["search", "--space", space_file(d, "ls4.yaml", space_changes={
            "logit_losses": ["kd", "wtm"]}), *st], "unknown loss 'wtm' (did you mean 'wttm'?)"),
        "resume with a missing checkpoint": (["resume", "lost", "--budget", "9", *st], "teacher checkpoint not found"),
    }


def _baselines(d: Path) -> Path:
    path = d / "bad-baselines.yaml"
    path.write_text(yaml.safe_dump({"baselines": {"x": {"pairs": [{"at": "middlish", "loss": "at", "weight": 1}]}}}))
    return path


