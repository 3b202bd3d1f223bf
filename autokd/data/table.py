"""A table (CSV or Parquet, read with pandas) as a task's data.

``data.label`` names the label column (whole numbers 0..C-1, or names); the features are
``data.features`` or every other column. Numeric features are standardised with the mean and
standard deviation of the training part (train without validation: the same seeded split as the
run's, so neither validation nor test statistics leak); other columns (text, categories,
booleans) are one-hot encoded with the training part's categories (a category seen only outside
it encodes as all zeros). The test split is ``data.test_path`` or a seeded ``test_fraction`` of
the rows. Missing or infinite values are an error, not silently filled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AutokdError, short_repr

READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}


def read_table(path: str, what: str):
    import pandas as pd

    file = Path(path).expanduser()
    if not file.is_file():
        raise AutokdError(f"{what} {file} does not exist (a .csv or .parquet file)")
    reader = READERS.get(file.suffix.lower())
    if reader is None:
        raise AutokdError(f"{what} {file}: unknown table format {file.suffix!r}; use one of {', '.join(READERS)}")
    try:
        return getattr(pd, reader)(file)
    except Exception as exc:
        raise AutokdError(f"{what} {file} cannot be read as {file.suffix} ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:150]})") from None


def load_table(spec) -> dict:
    """Raw arrays of the table (as :func:`autokd.data.arrays.as_task_arrays` takes them)."""
    from .arrays import _hold_out
    from .splits import split_indices

    source = f"table {Path(spec.path).expanduser()}"
    frame = read_table(spec.path, "data.path")
    columns = _columns(frame, spec, "data.path")
    test = read_table(spec.test_path, "data.test_path") if spec.test_path else None
    if test is not None:
        missing = [c for c in [spec.label, *columns] if c not in test.columns]
        if missing:
            raise AutokdError(f"data.test_path lacks the column(s) {missing} that data.path has")
    if len(frame) < 3:
        raise AutokdError(f"{source} has {len(frame)} row(s); a task needs train, validation and test samples")
    _check_missing(frame, [spec.label, *columns], source)
    if test is None:
        idx = np.arange(len(frame))
        train_rows, _, test_rows, _ = _hold_out(idx, idx, spec.test_fraction, spec.seed, source)
        frame, test = frame.iloc[train_rows].reset_index(drop=True), frame.iloc[test_rows].reset_index(drop=True)
    else:
        _check_missing(test, [spec.label, *columns], f"table {spec.test_path}")
    fit_rows = split_indices(len(frame), spec.val_size, None, spec.seed)[0].numpy()  # train without validation
    encode = _encoder(frame.iloc[fit_rows], columns, source)
    return {"x_train": encode(frame), "y_train": frame[spec.label].to_numpy(),
            "x_test": encode(test), "y_test": test[spec.label].to_numpy()}


def _columns(frame, spec, what: str) -> list:
    names = list(frame.columns)
    if spec.label not in names:
        raise AutokdError(f"data.label {short_repr(spec.label)} is not a column of {what}; columns: "
                          f"{', '.join(map(str, names[:30]))}")
    features = list(spec.features) if spec.features is not None else [c for c in names if c != spec.label]
    unknown = [c for c in features if c not in names]
    if unknown:
        raise AutokdError(f"data.features {unknown} are not columns of {what}; columns: {', '.join(map(str, names[:30]))}")
    if spec.label in features or not features:
        raise AutokdError("data.features must list one or more columns other than the label")
    return features


def _check_missing(frame, columns: list, source: str) -> None:
    counts = frame[columns].isna().sum()
    bad = {str(c): int(n) for c, n in counts.items() if n}
    if bad:
        raise AutokdError(f"{source} has missing values in {bad}; fill or drop them first")


def _encoder(fit, columns: list, source: str):
    """A function from a frame to float32 features, fitted on ``fit`` (the training part)."""
    numeric = [c for c in columns if _is_numeric(fit[c])]
    categorical = {c: sorted(fit[c].astype(str).unique()) for c in columns if c not in numeric}
    stats = {}
    for c in numeric:
        values = fit[c].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise AutokdError(f"{source}: column {c!r} holds infinite values; clean them first")
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = values.mean(), values.std()
        if not (np.isfinite(mean) and np.isfinite(std)):
            raise AutokdError(f"{source}: column {c!r} holds values too large to standardise (up to "
                              f"{np.abs(values).max():.3g}); rescale them first")
        stats[c] = (mean, std if std > 1e-12 else 1.0)

    def encode(frame) -> np.ndarray:
        parts = []
        for c in columns:
            if c in stats:
                values = frame[c].to_numpy(dtype=np.float64)
                if not np.all(np.isfinite(values)):
                    raise AutokdError(f"{source}: column {c!r} holds infinite values; clean them first")
                with np.errstate(over="ignore", invalid="ignore"):
                    scaled = ((values - stats[c][0]) / stats[c][1]).astype(np.float32)
                if not np.all(np.isfinite(scaled)):
                    raise AutokdError(f"{source}: column {c!r} holds values too far from the training part's "
                                      f"(mean {stats[c][0]:.3g}, sd {stats[c][1]:.3g}) to standardise; rescale them first")
                parts.append(scaled[:, None])
            else:
                text = frame[c].astype(str).to_numpy()
                parts.append(np.stack([text == v for v in categorical[c]], axis=1).astype(np.float64))
        return np.concatenate(parts, axis=1).astype(np.float32)

    return encode


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
