"""Tables (CSV) read by autokd.data.table: numbers pandas reads as text, text where a test file
should hold numbers, literal NA-like text values, and the seeded test hold-out."""

from __future__ import annotations

import numpy as np
import pytest

from autokd.data import load_task_data
from autokd.data.spec import DataSpec
from autokd.errors import AutokdError

N = 40


def _labels(n: int = N) -> list:
    return ["yes" if i % 2 else "no" for i in range(n)]


def _write(path, columns: dict) -> str:
    import pandas as pd

    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


def _load(path: str, **kw):
    return load_task_data(DataSpec(name="table", path=path, label="label", val_size=5, **kw))


def _error(path: str, **kw) -> str:
    with pytest.raises(AutokdError) as err:
        _load(path, **kw)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_integers_beyond_int64_are_one_numeric_feature_not_one_hot(tmp_path):
    amounts = [str(16370000000000000000000 + i * 10**18) for i in range(N)]  # pandas reads them as objects
    data = _load(_write(tmp_path / "t.csv", {"amount": amounts, "label": _labels()}))
    assert data.input_shape == (1,) and data.class_names == ("no", "yes")
    x = data.train.x.numpy()
    assert abs(float(x.mean())) < 0.5 and 0.5 < float(x.std()) < 1.5  # standardised, not 0/1 columns


def test_a_numeric_column_with_a_stray_text_value_is_a_category_column_with_a_warning_naming_it(tmp_path):
    """It became one category per distinct number, silently; refusing it left no way to one-hot `1, 2, 3, 5+`."""
    amounts = [str(i % 4) for i in range(N)]
    amounts[16] = "x"
    path = _write(tmp_path / "t.csv", {"amount": amounts, "label": _labels()})
    with pytest.warns(RuntimeWarning) as caught:
        data = _load(path)
    message = str(caught[0].message)
    assert f"table {path}: column 'amount' looks numeric (39 of 40 values are numbers)" in message, message
    assert "data row 17 holds 'x'" in message and "one-hot encoded" in message
    assert data.input_shape in ((4,), (5,))  # one-hot: 0, 1, 2, 3 (and x, when it is in the training part)


def test_parquet_text_columns_stay_text_labels_and_codes_alike(tmp_path):
    """Typed text that looks like numbers ("1", "2", "3" labels; "001" codes) was read as numbers: labels then
    failed the 0..C-1 rule, codes silently became one standardised number."""
    import pandas as pd

    labels = pd.Series([str(1 + i % 3) for i in range(N)], dtype="string")
    codes = pd.Series([["001", "002", "017"][i % 3] for i in range(N)], dtype="string")
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": np.arange(N) * 0.5, "code": codes, "label": labels}).to_parquet(path)
    data = _load(str(path))
    assert data.class_names == ("1", "2", "3") and data.input_shape == (4,)  # a, and code one-hot (3)


def test_a_text_column_with_a_few_numbers_stays_a_category_column(tmp_path):
    colours = ["red", "green", "blue", "7"] * (N // 4)  # 25% numbers: text, one-hot encoded
    data = _load(_write(tmp_path / "t.csv", {"colour": colours, "a": np.arange(N) * 0.5, "label": _labels()}))
    assert data.input_shape == (5,)


def test_text_in_a_test_files_numeric_column_names_the_file_column_and_value(tmp_path):
    train = _write(tmp_path / "train.csv", {"a": np.linspace(0, 1, N), "label": _labels()})
    values = [str(v) for v in np.linspace(0, 1, 10)]
    values[2] = "abc"
    test = _write(tmp_path / "test.csv", {"a": values, "label": _labels(10)})
    message = _error(train, test_path=test)
    assert f"table {test}: column 'a' holds numbers in data.path, but data row 3 holds 'abc'" in message, message
    values[2] = "NA"  # a missing-value spelling in a column of numbers: missing, as in data.path
    test = _write(tmp_path / "test.csv", {"a": values, "label": _labels(10)})
    assert f"table {test} has missing values in {{'a': 1}}" in _error(train, test_path=test)


def test_literal_none_na_null_text_values_are_categories_not_missing(tmp_path):
    kinds = ["None", "NA", "null", "NaN"] * (N // 4)
    labels = ["None" if i % 2 else "cat" for i in range(N)]
    data = _load(_write(tmp_path / "t.csv", {"kind": kinds, "a": np.arange(N) * 1.0, "label": labels}))
    assert data.class_names == ("None", "cat") and data.input_shape == (5,)  # a, and 4 one-hot columns


@pytest.mark.parametrize("text", ["NaN", "NA", "None", ""])
def test_a_numeric_column_with_nan_text_or_an_empty_cell_is_still_missing(tmp_path, text):
    values = [str(v) for v in np.arange(N) * 1.5]
    values[3] = text
    message = _error(_write(tmp_path / "t.csv", {"a": values, "label": _labels()}))
    assert "has missing values in {'a': 1}" in message, message


def test_an_empty_text_cell_is_still_missing(tmp_path):
    kinds = ["red", "blue"] * (N // 2)
    kinds[5] = ""
    path = _write(tmp_path / "t.csv", {"kind": kinds, "label": _labels()})
    assert "has missing values in {'kind': 1}" in _error(path)


def test_a_held_out_test_part_keeps_every_row_once(tmp_path):
    data = _load(_write(tmp_path / "t.csv", {"a": np.arange(N) * 1.0, "label": _labels()}), test_fraction=0.25)
    assert (len(data.train) + len(data.val), len(data.test)) == (30, 10)


def test_a_text_column_with_a_value_per_row_is_refused(tmp_path):
    """Numbers with thousands separators were one-hot encoded, a column per row (2,331 features from
    2,360 rows), with no word: the models trained at chance, and a large table would not fit in memory."""
    rows = 120
    incomes = [f"{40000 + 997 * i:,}" for i in range(rows)]
    message = _error(_write(tmp_path / "t.csv", {"income": incomes, "label": _labels(rows)}))
    assert "column 'income' is text with" in message and "distinct values in" in message
    assert "(e.g. '" in message and "data.features" in message
    few = [["red", "green", "blue"][i % 3] for i in range(rows)]  # a real category column is fine
    assert _load(_write(tmp_path / "ok.csv", {"colour": few, "label": _labels(rows)})).input_shape == (3,)


def test_a_saved_pandas_index_column_is_warned_about(tmp_path):
    import pandas as pd

    path = tmp_path / "t.csv"
    pd.DataFrame({"v": np.arange(N) % 7, "label": _labels()}).to_csv(path)  # index=True: "Unnamed: 0"
    with pytest.warns(RuntimeWarning, match=r"column 'Unnamed: 0' holds the row numbers 0, 1, 2"):
        data = _load(str(path))
    assert data.input_shape == (2,)


def test_a_numeric_column_with_a_few_stray_values_that_would_be_a_category_per_row_names_them(tmp_path):
    """It warned "one-hot encoded, one category per distinct value", then refused the column as text
    "an identifier, or numbers written as text?": the error now names the stray values."""
    rows = 120
    incomes = [f"{40000.5 + 997 * i}" for i in range(rows)]
    incomes[7] = "?"
    message = _error(_write(tmp_path / "t.csv", {"income": incomes, "label": _labels(rows)}))
    assert message.endswith("leave the column out (data.features)"), message
    assert "column 'income' is numbers (119 of 120 values) but data row 8 holds '?'" in message
