import polars as pl
import pytest

from selfpref.data.schema import SchemaError, prompt_id, validate
from tests.conftest import make_rows


def _df(rows):
    return pl.DataFrame(rows, schema_overrides={"confidence": pl.Float64})


def test_valid_rows_pass(rows):
    assert validate(rows).height == len(rows)


def test_prompt_id_is_sha256_prefix():
    import hashlib

    assert prompt_id("hi") == hashlib.sha256(b"hi").hexdigest()[:16]
    assert len(prompt_id("x")) == 16


@pytest.mark.parametrize("column", ["prompt_id", "prompt", "chosen", "rejected", "method",
                                    "generator", "labeler", "confidence"])
def test_missing_column(rows, column):
    with pytest.raises(SchemaError, match=f"column '{column}': missing; fix: add"):
        validate(_df(rows).drop(column))


def test_wrong_type_names_column(rows):
    df = _df(rows).with_columns(pl.lit(3).alias("generator"))
    with pytest.raises(SchemaError, match="column 'generator': has type"):
        validate(df)


@pytest.mark.parametrize("column", ["prompt", "chosen", "rejected"])
def test_empty_text_names_row(rows, column):
    rows[3][column] = "   "
    if column == "prompt":
        rows[3]["prompt_id"] = prompt_id("   ")
    with pytest.raises(SchemaError, match=f"column '{column}', row 3: is empty"):
        validate(rows)


def test_null_text_names_row(rows):
    rows[2]["labeler"] = None
    with pytest.raises(SchemaError, match="column 'labeler', row 2: is null"):
        validate(rows)


def test_chosen_equals_rejected(rows):
    rows[4]["rejected"] = rows[4]["chosen"]
    with pytest.raises(SchemaError, match="column 'chosen', row 4: equals 'rejected'.*two different"):
        validate(rows)


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_confidence_out_of_range(rows, value):
    rows[1]["confidence"] = value
    with pytest.raises(SchemaError, match="column 'confidence', row 1"):
        validate(rows)


def test_confidence_null_is_allowed(rows):
    for r in rows:
        r["confidence"] = None
    validate(_df(rows))


def test_prompt_id_must_match(rows):
    rows[5]["prompt_id"] = "0" * 16
    with pytest.raises(SchemaError, match=r"column 'prompt_id', row 5.*prompt_id\(prompt\)"):
        validate(rows)


def test_unknown_method(rows):
    rows[0]["method"] = "magic"
    with pytest.raises(SchemaError, match="column 'method', row 0: is 'magic'; fix: use one of sao"):
        validate(rows)


def test_method_column_types_checked():
    rows = make_rows(3, judge_consistent=["yes", "no", "yes"])
    with pytest.raises(SchemaError, match="column 'judge_consistent': has type"):
        validate(rows)
