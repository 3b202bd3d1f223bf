"""What `pip install .` ships: every package under autokd/ is listed in pyproject.toml (autokd.calibrate was
not: an editable install found it, a wheel or plain install would have left `autokd calibrate` broken)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_installed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "autokd").rglob("__init__.py")}
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert listed - found == {"autokd.search_spaces"}  # the shipped spaces, from search_spaces/
