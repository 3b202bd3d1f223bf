"""The recommendation as space-file lines, and a copy of the user's space file that carries it.

The user's own file is never written: ``--write-space`` names another file, and the copy is the
original with ``task.recipes.proxy.epochs`` and ``space.pruning`` set, the task inlined (when the
file named a shipped space or another file) and relative data paths made absolute so the copy means
the same data wherever it is kept. YAML comments are not carried over (said in the copy's header).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from autokd.errors import AutokdError

HEADER_MARK = "with the proxy recommended by autokd calibrate"  # the copy's first line holds it


def recommended_lines(epochs: int, pruning_safe: Optional[bool], milestones: Optional[list] = None) -> str:
    """The space lines of the recommendation (``milestones``: the proxy's own step milestones at that length)."""
    own = f", milestones: {list(milestones)}" if milestones is not None else ""
    return (f"task:\n  recipes:\n    proxy: {{epochs: {epochs}{own}}}\nspace:\n"
            f"  pruning: {'true' if pruning_safe else 'false'}\n")


def check_destination(source: str, dest: Path) -> None:
    """``--write-space``: not the calibrated file itself, not a folder, not a file of the user's (a
    task file, another space: only an earlier copy is replaced); checked before any training."""
    from autokd.config.files import resolve_space_path
    from autokd.outputs import check_replaceable

    dest = Path(dest).expanduser()
    if dest.is_dir():
        raise AutokdError(f"--write-space {dest} is a folder; name the copy's file")
    if dest.suffix not in (".yaml", ".yml"):
        raise AutokdError(f"--write-space {dest}: name a .yaml or .yml file")
    if dest.exists() and dest.resolve() == Path(resolve_space_path(source)).resolve():
        raise AutokdError(f"--write-space {dest} is the space file being calibrated; calibrate never writes into it: "
                          "name another file")
    check_replaceable(dest, "--write-space", "a space file copy", _is_a_copy)


def _is_a_copy(path: Path) -> bool:
    """A file calibrate wrote (its header's first line says so): only such a file is replaced."""
    from autokd.outputs import first_line

    first = first_line(path)
    return first.startswith("# ") and HEADER_MARK in first


def write_space_copy(source: str, dest: Path, epochs: int, pruning_safe: Optional[bool],
                     milestones: Optional[list] = None) -> Path:
    """Write the copy and read it back as a space file (so a copy that would not load is never left)."""
    from autokd.config.files import resolve_space_path, task_mapping, with_paths_resolved
    from autokd.config.yaml_io import dump_yaml, load_yaml_file
    from autokd.outputs import write_text
    from autokd.search.space_file import load_space_file

    path = resolve_space_path(source)
    data = load_yaml_file(path)
    task = data.get("task")
    task = task_mapping(task, relative_to=path)[0] if isinstance(task, str) else with_paths_resolved(task, path)
    recipes = dict(task.get("recipes") or {})
    recipes["proxy"] = {**(recipes.get("proxy") or {}), "epochs": epochs,
                        **({"milestones": list(milestones)} if milestones is not None else {})}
    space = dict(data.get("space") or {})
    space["pruning"] = bool(pruning_safe)
    header = (f"# {path.name} {HEADER_MARK}: {epochs} epochs, pruning "
              f"{'on' if pruning_safe else 'off'}.\n# Written from {path}; its comments are not carried over.\n")
    dest = Path(dest).expanduser()
    text = header + dump_yaml({"task": {**task, "recipes": recipes}, "space": space})
    written = write_text(dest, text, "the space file copy", create_folder=True)
    try:
        load_space_file(written)
    except AutokdError as exc:
        written.unlink(missing_ok=True)
        raise AutokdError(f"the copy of {path.name} would not load ({exc}); nothing was written") from None
    return written
