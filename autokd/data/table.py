"""A table (CSV or Parquet, read with pandas) as a task's data.

``data.label`` names the label column (whole numbers 0..C-1, or names); the features are
``data.features`` or every other column. Numeric features are standardised with the mean and
standard deviation of the training part (train without validation: the same seeded split as the
run's, so neither validation nor test statistics leak); other columns (text, categories,
booleans) are one-hot encoded with the training part's categories (a category seen only outside
it encodes as all zeros). The test split is ``data.test_path`` or a seeded ``test_fraction`` of
the rows. Missing or infinite values are an error, not silently filled: in a CSV only an empty cell
is missing (a text value such as ``None`` or ``NA`` is a category like any other), but in a
column of numbers pandas' missing-value spellings (``NaN``, ``NA``, ``None``, ...) are missing too.
A CSV feature column of numbers that pandas reads as text (integers beyond int64, say) is read as
numbers; one whose values are nearly all numbers but a few stays a one-hot category column, with a
warning naming those values (refused, naming them, when that would make about a column per row). A
text column with about a distinct value per row (an identifier, numbers with thousands separators)
is refused; a saved pandas index (``Unnamed: 0`` holding the row numbers) is warned about. The label column, and a Parquet column typed as text, stay as read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AutokdError, short_repr

READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}
TYPED = (".parquet", ".pq")  # formats whose columns carry their types (text typed as text stays text)
# only an empty CSV cell is missing: pandas' default spellings (NA, None, null...) are text values
READ_OPTIONS = {"read_csv": {"keep_default_na": False, "na_values": [""]}}
# pandas' default missing-value spellings: missing in a column of numbers, text elsewhere
NA_TEXT = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])
NUMERIC_SHARE = 0.9  # a text column whose values are at least this share numbers is a numeric column with typos
# a category column with more distinct values than this share of the training rows (and than MANY_CATEGORIES)
# is an identifier or numbers written as text ("85,210"): one-hot, a column per row, nothing to learn
UNIQUE_SHARE, MANY_CATEGORIES = 0.5, 50


def _about_one_per_row(distinct: int, rows: int) -> bool:
    return distinct > max(MANY_CATEGORIES, UNIQUE_SHARE * rows)


def read_table(path: str, what: str):
    import pandas as pd

    file = Path(path).expanduser()
    if not file.is_file():
        raise AutokdError(f"{what} {file} does not exist (a .csv or .parquet file)")
    reader = READERS.get(file.suffix.lower())
    if reader is None:
        raise AutokdError(f"{what} {file}: unknown table format {file.suffix!r}; use one of {', '.join(READERS)}")
    try:
        return getattr(pd, reader)(file, **READ_OPTIONS.get(reader, {}))
    except Exception as exc:
        raise AutokdError(f"{what} {file} cannot be read as {file.suffix} ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:150]})") from None


def load_table(spec) -> dict:
    """Raw arrays of the table (as :func:`autokd.data.arrays.as_task_arrays` takes them)."""
    from .arrays import _hold_out
    from .splits import split_indices

    source = f"table {Path(spec.path).expanduser()}"
    test_source = f"table {Path(spec.test_path).expanduser()}" if spec.test_path else source
    frame = read_table(spec.path, "data.path")
    columns = _columns(frame, spec, "data.path")
    _warn_row_numbers(frame, columns, source)
    typed = Path(spec.path).suffix.lower() in TYPED  # a Parquet column typed as text is text
    frame = _numbers_in_text(frame, columns, source, typed)  # the label column: names, as they are
    test = read_table(spec.test_path, "data.test_path") if spec.test_path else None
    if test is not None:
        missing = [c for c in [spec.label, *columns] if c not in test.columns]
        if missing:
            raise AutokdError(f"data.test_path lacks the column(s) {missing} that data.path has")
        test = _numbers_like_train(test, frame, [spec.label, *columns], test_source)
    if len(frame) < 3:
        raise AutokdError(f"{source} has {len(frame)} row(s); a task needs train, validation and test samples")
    _check_missing(frame, [spec.label, *columns], source)
    if test is None:
        idx = np.arange(len(frame))
        labels = frame[spec.label].to_numpy()  # a class held out whole is named there
        train_rows, _, test_rows, _ = _hold_out(idx, labels, spec.test_fraction, spec.seed, source)
        frame, test = frame.iloc[train_rows].reset_index(drop=True), frame.iloc[test_rows].reset_index(drop=True)
    else:
        _check_missing(test, [spec.label, *columns], test_source)
    fit_rows = split_indices(len(frame), spec.val_size, None, spec.seed)[0].numpy()  # train without validation
    encode = _encoder(frame.iloc[fit_rows], columns, source)
    return {"x_train": encode(frame, source), "y_train": frame[spec.label].to_numpy(),
            "x_test": encode(test, test_source), "y_test": test[spec.label].to_numpy()}


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


def _warn_row_numbers(frame, columns: list, source: str) -> None:
    """A column ``Unnamed: N`` holding 0, 1, 2, ... is the index pandas' ``to_csv`` writes: as a
    feature it is the row number (on a file sorted by label, the label itself). Said, not refused."""
    import warnings

    for c in columns:
        if str(c).startswith("Unnamed: ") and _is_numeric(frame[c]) and len(frame) > 2 \
                and np.array_equal(frame[c].to_numpy(), np.arange(len(frame))):
            warnings.warn(f"{source}: column {c!r} holds the row numbers 0, 1, 2, ... (the index pandas' to_csv "
                          f"writes): it is used as a feature; leave it out with data.features, or write the file "
                          f"with index=False", RuntimeWarning, stacklevel=3)


def _check_missing(frame, columns: list, source: str) -> None:
    counts = frame[columns].isna().sum()
    bad = {str(c): int(n) for c, n in counts.items() if n}
    if bad:
        raise AutokdError(f"{source} has missing values in {bad}; fill or drop them first")


def _encoder(fit, columns: list, source: str):
    """A function from a frame to float32 features, fitted on ``fit`` (the training part)."""
    numeric = [c for c in columns if _is_numeric(fit[c])]
    categorical = {c: sorted(fit[c].astype(str).unique()) for c in columns if c not in numeric}
    for c, values in categorical.items():
        if _about_one_per_row(len(values), len(fit)):
            raise AutokdError(f"{source}: column {c!r} is text with {len(values):,} distinct values in {len(fit):,} "
                              f"training rows (e.g. {', '.join(map(repr, values[:3]))}): one-hot encoded, nearly a "
                              f"column per row, it teaches nothing; an identifier, or numbers written as text "
                              f"(thousands separators, units)? Leave it out (data.features) or write plain numbers")
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

    def encode(frame, where: str) -> np.ndarray:
        parts = []
        for c in columns:
            if c in stats:
                try:
                    values = frame[c].to_numpy(dtype=np.float64)
                except (TypeError, ValueError):  # a test file's column of another kind (dates, say)
                    raise AutokdError(f"{where}: column {c!r} holds {frame[c].dtype} values, but numbers in "
                                      f"data.path; give it numbers") from None
                if not np.all(np.isfinite(values)):
                    raise AutokdError(f"{where}: column {c!r} holds infinite values; clean them first")
                with np.errstate(over="ignore", invalid="ignore"):
                    scaled = ((values - stats[c][0]) / stats[c][1]).astype(np.float32)
                if not np.all(np.isfinite(scaled)):
                    raise AutokdError(f"{where}: column {c!r} holds values too far from the training part's "
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


def _is_text(series) -> bool:
    import pandas as pd

    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def _parse_numbers(series):
    """``(numbers, bad)``: the values of a text column as floats (NaN where missing or written as
    one of pandas' missing-value spellings), and a mask of the present values that are not numbers."""
    import pandas as pd

    missing = series.isna().to_numpy() | series.astype(str).str.strip().isin(NA_TEXT).to_numpy()
    kept = series.where(~missing)
    try:
        numbers = np.array(pd.to_numeric(kept, errors="coerce"), dtype=np.float64)
    except (OverflowError, TypeError, ValueError):  # an integer beyond float's range, an odd object
        numbers = np.array([_as_number(v) for v in kept], dtype=np.float64)
    numbers[missing] = np.nan
    return numbers, ~missing & np.isnan(numbers)


def _as_number(value) -> float:
    try:
        return float(value) if not isinstance(value, str) or "_" not in value else np.nan
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")
    except (TypeError, ValueError):
        return np.nan


def _examples(series, bad) -> str:
    """``data row 17 holds 'x'`` for the first few bad values (rows counted from 1 after the header)."""
    rows = np.flatnonzero(bad)
    shown = ", ".join(f"data row {i + 1} holds {short_repr(series.iloc[i], 40)}" for i in rows[:3])
    return shown + (f" and {len(rows) - 3:,} more are not numbers" if len(rows) > 3 else "")


def _numbers_in_text(frame, columns: list, source: str, typed: bool):
    """Feature columns pandas read as untyped text (``object``: a CSV's, say) that hold only numbers
    (integers beyond int64, say) as numbers. One whose values are nearly all numbers but a few stays a
    category column, with a warning naming those (a stray ``x`` would make it one category per
    distinct number; ``1, 2, 3, 5+`` may mean to). In a ``typed`` file (Parquet) a column typed as text
    stays text; only untyped objects (decimals) are looked at."""
    import warnings

    import pandas as pd

    for c in columns:
        if not (pd.api.types.is_object_dtype(frame[c]) or (not typed and _is_text(frame[c]))):
            continue
        numbers, bad = _parse_numbers(frame[c])
        found, stray = int(np.count_nonzero(~np.isnan(numbers))), int(np.count_nonzero(bad))
        if found and not stray:
            frame[c] = numbers
        elif found and found >= NUMERIC_SHARE * (found + stray):
            distinct = frame[c].astype(str).nunique()
            if _about_one_per_row(distinct, len(frame)):  # one-hot would be a column per row
                raise AutokdError(f"{source}: column {c!r} is numbers ({found:,} of {found + stray:,} values) but "
                                  f"{_examples(frame[c], bad)}; as text it would be {distinct:,} categories, about "
                                  f"one per row; make those values numbers (autokd fills no missing value) or leave "
                                  f"the column out (data.features)")
            warnings.warn(f"{source}: column {c!r} looks numeric ({found:,} of {found + stray:,} values are numbers) "
                          f"but {_examples(frame[c], bad)}: it is one-hot encoded, one category per distinct value; "
                          f"make every value a number to have it read as one", RuntimeWarning, stacklevel=2)
    return frame


def _numbers_like_train(test, frame, columns: list, where: str):
    """The test file's text columns that hold numbers in ``data.path``, as numbers; a value that is
    not a number is an error naming it."""
    for c in columns:
        if _is_numeric(frame[c]) and _is_text(test[c]):
            numbers, bad = _parse_numbers(test[c])
            if bad.any():
                raise AutokdError(f"{where}: column {c!r} holds numbers in data.path, but {_examples(test[c], bad)}; "
                                  f"give it numbers only")
            test[c] = numbers
    return test
