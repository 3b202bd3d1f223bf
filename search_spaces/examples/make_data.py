"""Write the small data files the data-source examples use (nothing is downloaded):

* ``data/signals.npz``: 2-channel signals of length 64 in 4 classes (a noisy sine of one of four
  frequencies on channel 0, its phase-shifted echo on channel 1), x_train/y_train (3,000) and
  x_test/y_test (1,000) -- for ``arrays_space.yaml``;
* ``data/patients.csv``: a mixed-type table (age, dose, a categorical site, a yes/no flag, a
  string label low/medium/high), 3,000 rows -- for ``table_space.yaml`` (test held out by
  ``test_fraction``).

    python search_spaces/examples/make_data.py [--out search_spaces/examples/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def signals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 1, 64, dtype=np.float32)
    y = rng.integers(0, 4, n)
    freq = (2.0 + 1.5 * y)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    base = np.sin(2 * np.pi * freq * t + phase)
    echo = np.sin(2 * np.pi * freq * t + phase + np.pi / 3)
    x = np.stack([base, 0.7 * echo], axis=1) + rng.normal(0, 0.6, (n, 2, 64))
    return x.astype(np.float32), y.astype(np.int64)


def patients(n: int, rng: np.random.Generator):
    import pandas as pd

    age = rng.integers(18, 90, n)
    dose = rng.gamma(2.0, 15.0, n).round(1)
    site = rng.choice(["north", "south", "east", "west"], n)
    smoker = rng.choice(["yes", "no"], n, p=[0.3, 0.7])
    risk = 0.03 * (age - 50) + 0.02 * (dose - 30) + (smoker == "yes") * 1.2 + (site == "east") * 0.8
    risk += rng.normal(0, 0.7, n)
    label = np.where(risk < -0.3, "low", np.where(risk < 0.9, "medium", "high"))
    return pd.DataFrame({"age": age, "dose": dose, "site": site, "smoker": smoker, "risk": label})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    args.out.mkdir(parents=True, exist_ok=True)
    x_train, y_train = signals(3000, rng)
    x_test, y_test = signals(1000, rng)
    np.savez(args.out / "signals.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    patients(3000, rng).to_csv(args.out / "patients.csv", index=False)
    print(f"wrote {args.out / 'signals.npz'} and {args.out / 'patients.csv'}")


if __name__ == "__main__":
    main()
