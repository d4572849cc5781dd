"""Data cards: the Hub's card parser accepts the header; funnel, stats, plots, separability."""

from huggingface_hub import DatasetCard

from selfpref.data.refs import read_dataset
from selfpref.data.schema import make_row
from selfpref.data.store import BuildRecord, write_dataset
from selfpref.datacards import card_writer


def _rows(n=20):
    return [make_row(f"Question {i}?", f"A clear, kind and correct answer about topic {i}.",
                     f"no idea lol {i}", method="sao", generator="g", labeler="self-judge:g",
                     confidence=0.5 + (i % 5) / 10, judge_consistent=i % 2 == 0) for i in range(n)]


def test_card_from_build_record(tmp_path):
    funnel = [{"step": "build:sao", "parameters": {}, "input": 25, "kept": 20,
               "dropped": {"refusal": 3, "judge_unparseable": 2}}]
    record = BuildRecord(name="demo", method="sao", models={"generator": "g"}, seed=3,
                         parameters={"temperature": 0.6}, funnel=funnel,
                         command="selfpref build sao --num-prompts 25 --output demo")
    write_dataset(_rows(), tmp_path / "demo", record, card=card_writer(license="apache-2.0"))
    text = (tmp_path / "demo" / "README.md").read_text()
    data = DatasetCard(text).data.to_dict()
    assert data["license"] == "apache-2.0" and data["size_categories"] == ["n<1K"]
    assert set(data["tags"]) >= {"synthetic", "preference", "dpo", "selfpref", "sao"}
    assert data["configs"][0]["data_files"][0]["path"] == "data/train-00000-of-00001.parquet"
    assert "| build:sao | 25 | 20 | refusal: 3, judge_unparseable: 2 |" in text
    assert "judge consistency (same verdict in both orders) | 50.0%" in text
    assert "selfpref build sao --num-prompts 25 --output demo" in text
    assert "Fully Self-Synthetic" in text
    for plot in ("lengths", "confidence", "funnel"):
        assert (tmp_path / "demo" / "plots" / f"{plot}.png").stat().st_size > 1000
        assert f"plots/{plot}.png" in text
    _, written = read_dataset(tmp_path / "demo")
    sep = written.stats["separability"]
    assert sep["folds"] == 5 and sep["accuracy"] > 0.9  # trivially separable answers
    assert f"{sep['accuracy']:.1%}" in text
    assert sep["ci95"][0] <= sep["accuracy"] <= sep["ci95"][1] and sep["pairs"] == 20
    assert f"95% interval {sep['ci95'][0]:.1%} to {sep['ci95'][1]:.1%}" in text
    assert sep["embedded"] == 40 and (tmp_path / "demo" / "separability.npz").is_file()


def test_unset_license_is_other_and_said(tmp_path):
    write_dataset(_rows(3), tmp_path / "d", BuildRecord(name="d", method="sao"), card=card_writer())
    text = (tmp_path / "d" / "README.md").read_text()
    assert DatasetCard(text).data.license == "other" and "not given at build time" in text
    assert "Not computed: needs at least 5 pairs" in text
