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


def test_concision_is_one_of_the_seven_features_as_sso_reads():
    """SSO §3.1: "we defined seven preference features: Safety, Logicality, Concise, etc."; Table 14
    allocates "Accuracy,Logicality". Concision is allocated and picked like any feature, and no
    probability outside the seven is applied by default (no seed text gives one)."""
    from pathlib import Path

    from selfpref.pipelines.config import load_build_recipe
    from selfpref.pipelines.features import FEATURES, load_features

    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names)) == 7
    assert {"Safety", "Logicality", "Concision", "Accuracy"} <= set(names)
    assert load_features(None)[1] in FEATURES  # the feature concision_probability adds is one of them
    recipe = Path(__file__).resolve().parents[1] / "selfpref" / "recipes" / "build" / "sso-paper.yaml"
    for config in (BuildConfig(method="sso"), BuildConfig(**load_build_recipe(recipe))):
        assert config.concision_probability == 0.0
    task = AllocateFeatures(name="allocate_features", llm=ScriptedLLM(), seed=0)
    picks = [task.parse({"prompt": f"Shorten my essay {i}"}, [["Concision,Safety"]]) for i in range(20)]
    assert all(p["allocated"] == ["Concision", "Safety"] and p["feature_source"] == "allocated" for p in picks)
    assert {p["feature"] for p in picks} == {"Concision", "Safety"}  # one of the two, alone, each time
    # the option, when set, never lists Concision twice
    twice = AllocateFeatures(name="a", llm=ScriptedLLM(), seed=0, concision_probability=1.0)
    assert {twice.parse({"prompt": f"q{i}"}, [["Concision,Safety"]])["feature"] for i in range(20)} == {
        "Concision", "Safety,Concision"}
