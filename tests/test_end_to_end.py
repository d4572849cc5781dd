"""Every method once on the real embedded model (SmolLM2-135M) on the CPU, few prompts, short answers.

The embedded model judges badly (docs/concepts/judges.md: it answers "A" 15 times of 16), so these tests check
that each pipeline runs and writes a valid folder, never that its labels are right.
"""

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from selfpref.cli import app
from selfpref.data.refs import read_dataset


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    pl.DataFrame({"prompt": ["How can I sleep better?", "What is a prime number?"]}).write_ndjson(path)
    return str(path)


def _build(args, out):
    result = CliRunner().invoke(app, ["build", *args, "--output", str(out), "--max-new-tokens", "24",
                                      "--seed", "0"])
    assert result.exit_code == 0, result.output
    return read_dataset(out)


@pytest.mark.slow
def test_sao_self_synthetic_then_simpo(tmp_path, default_model_path):
    df, record = _build(["sao", "--num-prompts", "3", "--judge-mode", "logits"], tmp_path / "sao")
    assert df.height >= 1 and record.funnel[0]["input"] == 3
    assert df["persona"].null_count() == 0  # the model wrote its own personas
    assert df["confidence"].min() >= 0.5
    result = CliRunner().invoke(app, ["train", "simpo", "--dataset", str(tmp_path / "sao"),
                                      "--output-dir", str(tmp_path / "model"), "--max-steps", "2",
                                      "--batch-size", "1", "--max-length", "160"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "model" / "selfpref_train.json").read_text())
    assert summary["steps"] == 2 and summary["dataset"]["fingerprint"] == record.fingerprint


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sso", "alignez", "selfee"])
def test_method_on_embedded_model(method, tmp_path, prompts_file, default_model_path):
    df, record = _build([method, "--prompts", prompts_file], tmp_path / method)
    assert record.funnel[0]["input"] == 2
    assert df.height + sum(record.funnel[0]["dropped"].values()) == 2
    if method == "selfee":
        assert record.models["reference"].startswith("reference-free")
        assert (df["labeler"].str.ends_with("|reference-free")).all()
