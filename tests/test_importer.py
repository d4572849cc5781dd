import polars as pl
import pytest
from typer.testing import CliRunner

from selfpref import SelfprefError
from selfpref.cli import app
from selfpref.data.importer import import_rows
from selfpref.data.refs import read_dataset
from selfpref.data.schema import prompt_id, validate


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


# --- the data people have, through `selfpref import` (file in, dataset folder out) -------------

def _import(tmp_path, rows, *args, name="src.jsonl"):
    import json

    src = tmp_path / name
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["import", str(src), "--output", str(out), *args])
    assert result.exit_code == 0, result.output
    df, record = read_dataset(out)
    validate(df)
    return df, record, result.output


def _hist(df, i=0):
    value = df["history"][i] if "history" in df.columns else None
    return value.to_list() if value is not None else []


def test_anthropic_hh_transcripts(tmp_path):
    ctx = "\n\nHuman: What is the capital of France?\n\nAssistant: Paris.\n\nHuman: And of Spain?"
    rows = [{"chosen": ctx + "\n\nAssistant: Madrid.", "rejected": ctx + "\n\nAssistant: Paris."},
            {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."},
            {"chosen": "\n\nHuman: A\n\nAssistant: x", "rejected": "\n\nHuman: B\n\nAssistant: y"}]
    df, record, output = _import(tmp_path, rows)
    assert "imported 2 of 3 rows (hh layout)" in output
    assert "dropped 1: hh_transcripts_differ_before_last_turn" in output
    assert df.select("prompt", "chosen", "rejected").rows() == [
        ("And of Spain?", "Madrid.", "Paris."), ("Hi", "Hello!", "Go away.")]
    assert _hist(df, 0) == [{"role": "user", "content": "What is the capital of France?"},
                            {"role": "assistant", "content": "Paris."}]
    assert _hist(df, 1) == []
    assert record.parameters["layout"] == "hh" and record.seed is None


def test_sharegpt_conversations(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": "Name a color."},
                               {"from": "gpt", "value": "Blue."},
                               {"from": "human", "value": "Another one?"}],
             "chosen": {"from": "gpt", "value": "Green."},
             "rejected": {"from": "gpt", "value": "Blue again."},
             "system": "Be brief."}]
    df, record, output = _import(tmp_path, rows)
    assert "(sharegpt layout)" in output
    assert df.select("prompt", "chosen", "rejected").row(0) == ("Another one?", "Green.", "Blue again.")
    assert _hist(df) == [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Name a color."},
                         {"role": "assistant", "content": "Blue."}]


def test_openai_messages(tmp_path):
    rows = [{"messages": [{"role": "developer", "content": "You are terse."},
                          {"role": "user", "content": "2+2?"}],
             "chosen": [{"role": "assistant", "content": "4"}],
             "rejected": [{"role": "assistant", "content": "5"}]},
            {"input": {"messages": [{"role": "user", "content": "Capital of Italy?"}]},
             "preferred_output": [{"role": "assistant", "content": "Rome."}],
             "non_preferred_output": [{"role": "assistant", "content": "Milan."}]}]
    df, _, output = _import(tmp_path, rows[:1])
    assert "(openai layout)" in output
    assert df.select("prompt", "chosen", "rejected").row(0) == ("2+2?", "4", "5")
    assert _hist(df) == [{"role": "system", "content": "You are terse."}]
    import shutil

    shutil.rmtree(tmp_path / "out")
    df, _, _ = _import(tmp_path, rows[1:], name="pref.jsonl")
    assert df.select("prompt", "chosen", "rejected").row(0) == ("Capital of Italy?", "Rome.", "Milan.")


def test_ultrafeedback_raw_is_binarized_with_a_recorded_seed(tmp_path):
    def completion(text, score):
        return {"model": "m", "response": text, "overall_score": score}

    rows = [{"source": "s", "instruction": "Explain rain.",
             "completions": [completion("Water vapour condenses and falls.", 9.0),
                             completion("It just happens.", 3.0),
                             completion("Clouds cry.", 2.0)]},
            {"source": "s", "instruction": "Tie?", "completions": [completion("a", 5.0)]}]
    df, record, output = _import(tmp_path, rows, "--seed", "7")
    assert "(ultrafeedback_raw layout)" in output
    assert "dropped 1: fewer_than_two_rated_completions" in output
    assert df["prompt"][0] == "Explain rain." and df["chosen"][0] == "Water vapour condenses and falls."
    assert df["rejected"][0] in ("It just happens.", "Clouds cry.")
    assert record.seed == 7 and record.parameters["seed"] == 7
    assert record.funnel[0]["dropped"] == {"fewer_than_two_rated_completions": 1}


def test_distilabel_generations_and_ratings(tmp_path):
    rows = [{"instruction": "Say hi.", "generations": ["Hello!", "hi", "..."], "ratings": [5, 3, None]}]
    df, record, output = _import(tmp_path, rows)
    assert "(distilabel layout)" in output
    assert df.select("prompt", "chosen", "rejected").row(0) == ("Say hi.", "Hello!", "hi")
    assert record.seed == 0


def test_split_picks_files_and_must_match(tmp_path):
    import json

    folder = tmp_path / "src"
    folder.mkdir()
    for split, n in (("train", 3), ("test", 2)):
        (folder / f"{split}.jsonl").write_text("".join(
            json.dumps({"prompt": f"{split} {i}", "chosen": "c", "rejected": "r"}) + "\n" for i in range(n)))
    result = CliRunner().invoke(app, ["import", str(folder), "--split", "test", "-o", str(tmp_path / "t")])
    assert result.exit_code == 0 and "imported 2 of 2" in result.output
    result = CliRunner().invoke(app, ["import", str(folder), "--split", "validation", "-o", str(tmp_path / "v")])
    assert isinstance(result.exception, SelfprefError) and "--split 'validation'" in str(result.exception)
    assert not (tmp_path / "v").exists()


def test_prompt_sets_take_a_column_or_a_list_turn(tmp_path):
    import json

    from selfpref.data.importer import read_texts

    mt = tmp_path / "question.jsonl"
    mt.write_text(json.dumps({"question_id": 81, "category": "writing",
                              "turns": ["Write a haiku.", "Now a limerick."]}) + "\n")
    assert read_texts(str(mt)) == ["Write a haiku."]
    msgs = tmp_path / "chats.jsonl"
    msgs.write_text(json.dumps({"messages": [{"role": "system", "content": "s"},
                                             {"role": "user", "content": "first"},
                                             {"role": "assistant", "content": "a"},
                                             {"role": "user", "content": "last"}]}) + "\n")
    assert read_texts(str(msgs)) == ["last"]
    named = tmp_path / "named.csv"
    named.write_text("id,question\n1,What is DPO?\n")
    assert read_texts(str(named), "question") == ["What is DPO?"]
    with pytest.raises(SelfprefError, match="--prompt-column text: .* has no 'text' column"):
        read_texts(str(named), "text")
    with pytest.raises(SelfprefError, match="--prompt-column"):
        read_texts(str(named))
