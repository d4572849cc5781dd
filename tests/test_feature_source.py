"""SSO §3.1 allocates the features a query needs; when the allocation does not parse, selfpref
draws them at random, and the `feature_source` column, the build stats and the card say so."""

import polars as pl
import yaml

from selfpref.data.refs import read_dataset
from selfpref.data.schema import validate
from selfpref.datacards import card_writer
from selfpref.filters.apply import filter_dataset
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.llms import ScriptedLLM
from selfpref.pipelines.run import build
from selfpref.pipelines.sso import AllocateFeatures


def _task(seed=0):
    return AllocateFeatures(name="allocate_features", llm=ScriptedLLM(), seed=seed,
                            concision_probability=0.0)


def test_allocation_parsed_unparsed_and_partial():
    task = _task()
    full = task.parse({"prompt": "q"}, [["Accuracy, Helpfulness"]])
    assert full["feature_source"] == "allocated" and full["feature"] in ("Accuracy", "Helpfulness")
    none = task.parse({"prompt": "q"}, [["I think the answer should be nice."]])
    assert none["feature_source"] == "random"
    # one valid name: topped up with one random feature; the label follows the one picked
    seen = set()
    for i in range(40):
        out = task.parse({"prompt": f"query {i}"}, [["Safety"]])
        assert out["allocated"][0] == "Safety" and len(out["allocated"]) == 2
        assert out["feature_source"] == ("allocated" if out["feature"] == "Safety" else "random")
        seen.add(out["feature_source"])
    assert seen == {"allocated", "random"}  # both outcomes occur over 40 prompts


def test_concision_does_not_change_the_label():
    task = AllocateFeatures(name="a", llm=ScriptedLLM(), seed=1, concision_probability=1.0)
    out = task.parse({"prompt": "q"}, [["Safety,Accuracy"]])
    assert out["feature"].endswith(",Concision") and out["feature_source"] == "allocated"


def test_build_records_feature_source_in_rows_stats_and_card(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"Question {i}?" for i in range(4)]}).write_ndjson(prompts)
    script = tmp_path / "script.yaml"
    # two parse, two do not: the card says 50% allocated, 50% random fallback
    script.write_text(yaml.safe_dump({
        "allocate_features": ["Accuracy,Logicality", "no idea", "Safety and Helpfulness", ""],
        "principled_answers": [f"{kind} {i}" for i in range(4) for kind in ("good", "bad", "plain")]}))
    build(BuildConfig(method="sso", backend="scripted", script=str(script), prompts=str(prompts)),
          tmp_path / "out", card=card_writer(separability=False))
    df, record = read_dataset(tmp_path / "out")
    validate(df)
    assert df.sort("prompt")["feature_source"].to_list() == ["allocated", "random", "allocated", "random"]
    assert record.stats["feature_source"] == {"allocated": 2, "random": 2}
    assert record.stats["feature_allocation"] == (
        "feature allocated by the model for 50.0% of pairs (random fallback 50.0%)")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "feature allocated by the model for 50.0% of pairs (random fallback 50.0%)" in card

    # the column survives filtering, and the child's card states the share from its own rows
    filter_dataset(tmp_path / "out", tmp_path / "kept", [("max_length_diff", 3000)],
                   card=card_writer(separability=False))
    child, _ = read_dataset(tmp_path / "kept")
    validate(child)
    assert child["feature_source"].to_list() == df["feature_source"].to_list()
    assert "random fallback 50.0%" in (tmp_path / "kept" / "README.md").read_text()


def test_validate_checks_the_column_type():
    import pytest

    from selfpref.data.schema import SchemaError, make_row

    row = make_row("q", "a", "b", method="sso", generator="g", labeler="l", feature_source=1)
    with pytest.raises(SchemaError, match="feature_source"):
        validate([row])
