import polars as pl
import pytest
from typer.testing import CliRunner

from selfpref import SelfprefError
from selfpref.cli import app
from selfpref.data.importer import import_rows
from selfpref.data.schema import prompt_id, validate
from selfpref.data.refs import read_dataset


def test_trl_standard_strings():
    src = pl.DataFrame({"prompt": ["p1", "p2"], "chosen": ["good", "yes"], "rejected": ["bad", "no"]})
    rows, dropped = import_rows(src)
    validate(rows)
    assert dropped == {}
    assert rows["labeler"].to_list() == ["human", "human"]
    assert rows["prompt_id"][0] == prompt_id("p1")


def test_ultrafeedback_binarized_layout():
    u = {"role": "user", "content": "Why is the sky blue?"}
    src = pl.DataFrame({
        "prompt": ["Why is the sky blue?"],
        "chosen": [[u, {"role": "assistant", "content": "Rayleigh scattering."}]],
        "rejected": [[u, {"role": "assistant", "content": "Paint."}]],
        "score_chosen": [8.0], "score_rejected": [2.0],
    })
    rows, dropped = import_rows(src)
    assert rows.select("prompt", "chosen", "rejected").row(0) == (
        "Why is the sky blue?", "Rayleigh scattering.", "Paint.")


def test_multi_turn_keeps_history_and_counts_unmappable():
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "Tell me a joke"}]
    src = pl.DataFrame({
        "prompt": [turns, turns, turns],
        "chosen": [[{"role": "assistant", "content": "A pun."}],
                   [{"role": "assistant", "content": "same"}],
                   [{"role": "user", "content": "oops"}]],
        "rejected": [[{"role": "assistant", "content": "No."}],
                     [{"role": "assistant", "content": "same"}],
                     [{"role": "assistant", "content": "x"}]],
    })
    rows, dropped = import_rows(src)
    assert rows.height == 1
    assert rows["prompt"][0] == "Tell me a joke"
    assert rows["history"][0].to_list() == turns[:2]
    assert dropped == {"chosen_equals_rejected": 1, "chosen_does_not_end_with_assistant": 1}
    validate(rows)


def test_implicit_prompt():
    u = {"role": "user", "content": "2+2?"}
    src = pl.DataFrame({"chosen": [[u, {"role": "assistant", "content": "4"}]],
                        "rejected": [[u, {"role": "assistant", "content": "5"}]]})
    rows, _ = import_rows(src)
    assert rows["prompt"][0] == "2+2?" and rows["chosen"][0] == "4"


def test_nothing_importable_is_one_line():
    with pytest.raises(SelfprefError, match="no column 'chosen'"):
        import_rows(pl.DataFrame({"text": ["a"]}))


def test_cli_import_writes_folder(tmp_path):
    src = tmp_path / "src.jsonl"
    pl.DataFrame({"prompt": ["a", "b", "c"], "chosen": ["x", "y", ""],
                  "rejected": ["z", "w", "q"]}).write_ndjson(src)
    result = CliRunner().invoke(app, ["import", str(src), "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "imported 2 of 3 rows" in result.output and "dropped 1: empty_answer" in result.output
    df, record = read_dataset(tmp_path / "out")
    assert df.height == 2 and record.method == "import"
    assert record.funnel[0]["dropped"] == {"empty_answer": 1}
