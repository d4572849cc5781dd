"""`selfpref iterate`: two SELFEE iterations on the tiny model with scripted answers, a crash, a resume."""

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from selfpref import SelfprefError
from selfpref.cli import app
from selfpref.loop.iterate import IterateConfig, iterate, split_prompts
from selfpref.data.refs import read_dataset


def test_split_prompts_disjoint_and_equal():
    prompts = [f"q{i}" for i in range(10)] + ["q1", " q2 ", ""]
    parts = split_prompts(prompts, 3, None, seed=0)
    assert [len(p) for p in parts] == [3, 3, 3]
    flat = [p for part in parts for p in part]
    assert len(set(flat)) == 9 and set(flat) <= {f"q{i}" for i in range(10)}
    assert split_prompts(prompts, 3, None, seed=0) == parts  # same seed, same split
    assert [len(p) for p in split_prompts(prompts, 2, 2, seed=0)] == [2, 2]
    with pytest.raises(SelfprefError, match="distinct prompts for 4 iterations"):
        split_prompts(["a", "b", "c"], 4, None, seed=0)


def test_config_errors_name_the_flag(tmp_path):
    with pytest.raises(SelfprefError, match="needs --prompts"):
        IterateConfig(method="sso", iterations=2, output=str(tmp_path))
    with pytest.raises(SelfprefError, match="--lambdas has 1 values for 2"):
        IterateConfig(method="selfee", iterations=2, output=str(tmp_path), prompts="p", lambdas=[0.5])
    with pytest.raises(SelfprefError, match="not both"):
        IterateConfig(method="selfee", iterations=1, output=str(tmp_path), prompts="p",
                      seed_data="s", reference_model="r")
    sso = IterateConfig(method="sso", iterations=1, output=str(tmp_path), prompts="p", judge_models=["j"])
    assert [k for k, _ in sso.filters] == ["dedup", "max_length_diff", "judge_models", "balance_length"]
    result = CliRunner().invoke(app, ["iterate", "--method", "dpo", "--output", str(tmp_path / "x")])
    assert "iterate runs sao, sso, selfee" in str(result.exception)


def test_two_selfee_iterations_resume_after_a_crash(tmp_path, tiny_model_path, monkeypatch):
    import selfpref.pipelines.run
    import selfpref.trainers.run as run

    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"answer_pair": [
        "Short.", "A longer answer with several more words in it.", "Yes, here it is.", "No."]}))
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"How do I do task {i}?" for i in range(8)]}).write_ndjson(prompts)
    loop = tmp_path / "loop"
    cfg = IterateConfig(method="selfee", iterations=2, output=str(loop), model=str(tiny_model_path),
                        prompts=str(prompts), build={"backend": "scripted", "script": str(script)},
                        train={"max_steps": 1, "per_device_train_batch_size": 2, "max_length": 64,
                               "warmup_steps": 0})

    real_train, trained = run.train, []

    def crash_on_second(method, dataset, output_dir, **kwargs):
        trained.append((method, dataset, kwargs.get("model")))
        if len(trained) == 2:
            raise KeyboardInterrupt("killed during iteration 2's training")
        return real_train(method, dataset, output_dir, **kwargs)

    monkeypatch.setattr(run, "train", crash_on_second)
    log: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        iterate(cfg, notify=log.append)
    assert (loop / "iter-1" / "summary.json").exists()
    assert (loop / "iter-2" / "raw" / "selfpref.json").exists()
    assert not (loop / "iter-2" / "model").exists()  # nothing that looks like a finished model

    real_build, built = selfpref.pipelines.run.build, []
    monkeypatch.setattr(selfpref.pipelines.run, "build", lambda *a, **k: built.append(a) or real_build(*a, **k))
    monkeypatch.setattr(run, "train", real_train)
    rows = iterate(cfg, notify=log.append)
    assert built == []  # iteration 1 skipped, iteration 2's dataset reused
    assert "iteration 1/2: finished earlier, skipped" in log
    assert [r["iteration"] for r in rows] == [1, 2]
    assert all(r["rows_kept"] > 0 and r["train_loss"] == r["train_loss"] for r in rows)

    d1, r1 = read_dataset(loop / "iter-1" / "raw")
    d2, r2 = read_dataset(loop / "iter-2" / "raw")
    assert (r1.version, r2.version) == ("0.1.0", "0.2.0")
    assert set(d1["prompt"]).isdisjoint(set(d2["prompt"]))
    # iteration 1: pi_0 == pi_init, so the reference-free judgment; iteration 2 labels against pi_init
    assert r1.models["reference"].startswith("reference-free")
    assert r2.models["reference"] == str(tiny_model_path)
    assert r1.stats["iteration"]["policy"] == str(tiny_model_path)
    assert r2.stats["iteration"]["policy"] == str(loop / "iter-1" / "model")
    assert r2.models["generator"] == str(loop / "iter-1" / "model")
    m1 = json.loads((loop / "iter-1" / "model" / "selfpref_train.json").read_text())
    m2 = json.loads((loop / "iter-2" / "model" / "selfpref_train.json").read_text())
    assert m1["lineage"] == {"parent_model": str(tiny_model_path),
                             "parent_dataset": str(loop / "iter-1" / "raw"), "iteration": 1}
    assert m2["lineage"]["parent_model"] == str(loop / "iter-1" / "model")
    assert (m1["hyperparameters"]["selfee_lambda"], m2["hyperparameters"]["selfee_lambda"]) == (0.5, 0.25)
    assert json.loads((loop / "summary.json").read_text()) == rows

    other = IterateConfig(method="selfee", iterations=3, output=str(loop), model=str(tiny_model_path),
                          prompts=str(prompts), build=cfg.build, train=cfg.train)
    with pytest.raises(SelfprefError, match="started with other arguments"):
        iterate(other, notify=log.append)


def test_seed_stage_uses_its_own_dpo_recipe(tmp_path, monkeypatch):
    """SELFEE Alg. 1's pi_0 is DPO: --train-config (a selfee recipe) never reaches it."""
    import yaml

    import selfpref.trainers.run as run
    from selfpref.loop.iterate import SELFEE_SEED_SETTINGS, _seed_model

    calls = []

    def fake_train(method, dataset, out, *, model=None, recipe=None, **overrides):
        calls.append((method, recipe, overrides))
        Path(out).mkdir(parents=True)
        return {"train_loss": 0.0}

    monkeypatch.setattr(run, "train", fake_train)
    cfg = IterateConfig(method="selfee", iterations=1, output=str(tmp_path), prompts="p.jsonl",
                        seed_data="seed", train_recipe="recipes/selfee/paper.yaml",
                        train={"max_steps": 2})
    _seed_model(cfg, tmp_path, lambda _m: None)
    method, recipe, overrides = calls[0]
    assert (method, recipe) == ("dpo", None)
    assert overrides == {**SELFEE_SEED_SETTINGS, "max_steps": 2}
    cfg2 = IterateConfig(method="selfee", iterations=1, output=str(tmp_path / "b"), prompts="p.jsonl",
                         seed_data="seed", seed_train_recipe="my-seed.yaml")
    _seed_model(cfg2, tmp_path / "b", lambda _m: None)
    assert calls[1][:2] == ("dpo", "my-seed.yaml") and calls[1][2] == {}
    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes/dpo/selfee-seed.yaml").read_text())
    shipped.pop("method")
    assert {k: shipped[k] for k in SELFEE_SEED_SETTINGS} == SELFEE_SEED_SETTINGS


def test_prompts_per_iteration_are_checked_up_front(tmp_path):
    sso = IterateConfig(method="sso", iterations=3, output=str(tmp_path), prompts="p")
    assert sso.min_prompts() == 4  # length balance needs pairs on both sides
    with pytest.raises(SelfprefError, match="1 per iteration.*at least 12 prompts"):
        split_prompts([f"q{i}" for i in range(4)], 3, None, seed=0, minimum=sso.min_prompts())
    assert IterateConfig(method="selfee", iterations=1, output=str(tmp_path), prompts="p").min_prompts() == 2


def test_no_pair_hint_names_only_what_applies(tmp_path):
    from selfpref.loop.iterate import no_pair_hint

    build = {"step": "build", "kept": 6, "dropped": {}}
    sao = IterateConfig(method="sao", iterations=2, output=str(tmp_path), build={"judge_mode": "logits"})
    hint = no_pair_hint(sao, [build, {"step": "minhash_dedup", "kept": 6},
                              {"step": "judge_consistency", "kept": 0}], 6)
    assert "sao-small-judge.yaml" in hint and "--judge-mode" not in hint and "--num-prompts" not in hint
    text = IterateConfig(method="sao", iterations=2, output=str(tmp_path))
    hint = no_pair_hint(text, [{"step": "build", "kept": 1, "dropped": {"judge_unparseable": 5}},
                               {"step": "minhash_dedup", "kept": 0}], 6)
    assert "--judge-mode logits" in hint and "--num-prompts" in hint
    sso = IterateConfig(method="sso", iterations=2, output=str(tmp_path), prompts="p.jsonl")
    hint = no_pair_hint(sso, [build, {"step": "length_balance", "kept": 0}], 4)
    assert "more prompts per iteration" in hint and "--num-prompts" not in hint
    assert "--judge-mode" not in hint


def test_summary_table_never_clips():
    from selfpref.cli.iterate import summary_table

    row = {"iteration": 1, "dataset": "a-rather-long-dataset-name-for-the-loop@0.1.0", "rows_kept": 6,
           "mean_chosen_chars": 165.0, "mean_rejected_chars": 209.7, "mean_confidence": 0.512,
           "separability": 0.233, "train_loss": 2.8294}
    text = summary_table([row])
    assert row["dataset"] in text and "2.8294" in text and "0.512" in text
