"""`selfpref iterate`: two SELFEE iterations on the tiny model with scripted answers, a crash, a resume."""

import dataclasses
import json
import math
import re
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from selfpref import SelfprefError
from selfpref.cli import app
from selfpref.data.refs import read_dataset
from selfpref.filters.apply import load_filter_recipe
from selfpref.loop.iterate import IterateConfig, iterate, split_prompts

RECIPES = Path(__file__).resolve().parents[1] / "selfpref" / "recipes"


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
    # --judge-models adds A.1.4's dispute step: alone (no filter by default), or before the
    # length balance of a recipe, as A.1.4 orders them
    sso = IterateConfig(method="sso", iterations=1, output=str(tmp_path), prompts="p", judge_models=["j"])
    assert sso.filters == [("judge_models", ["j"])]
    steps, _ = load_filter_recipe(RECIPES / "filter" / "sso-a14.yaml")
    sso = IterateConfig(method="sso", iterations=1, output=str(tmp_path), prompts="p",
                        judge_models=["j"], filters=steps)
    assert [k for k, _ in sso.filters] == ["dedup", "max_length_diff", "judge_models", "balance_length"]
    with pytest.raises(SelfprefError, match="--judge-models is SSO A.1.4's .* --method sso, not sao"):
        IterateConfig(method="sao", iterations=1, output=str(tmp_path), judge_models=["j"])
    with pytest.raises(SelfprefError, match="in one place"):
        IterateConfig(method="sso", iterations=1, output=str(tmp_path), prompts="p", judge_models=["j"],
                      filters=[("judge_models", ["k"])])
    for sizes, message in (([8, 20], "has 2 sizes for 3 iterations"), ([8, 0, 3], "at least 1")):
        with pytest.raises(SelfprefError, match=f"--prompts-per-iteration.*{message}"):
            IterateConfig(method="sso", iterations=3, output=str(tmp_path), prompts="p",
                          prompts_per_iteration=sizes)
    with pytest.raises(SelfprefError, match="--prompts-per-iteration .* --num-prompts .* one of them"):
        IterateConfig(method="sso", iterations=1, output=str(tmp_path), prompts="p", num_prompts=4,
                      prompts_per_iteration=[4])
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
    # SELFEE §5.1's unequal prompt sets (8K/20K/30K there): 3 then 5 of the 8 prompts
    cfg = IterateConfig(method="selfee", iterations=2, output=str(loop), model=str(tiny_model_path),
                        prompts=str(prompts), build={"backend": "scripted", "script": str(script)},
                        train={"max_steps": 1, "per_device_train_batch_size": 2, "max_length": 64,
                               "warmup_steps": 0}, prompts_per_iteration=[3, 5])

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

    d1, r1 = read_dataset(loop / "iter-1" / "raw")
    d2, r2 = read_dataset(loop / "iter-2" / "raw")
    assert (r1.version, r2.version) == ("0.1.0", "0.2.0")
    assert set(d1["prompt"]).isdisjoint(set(d2["prompt"]))
    assert (d1["prompt"].n_unique(), d2["prompt"].n_unique()) == (3, 5)
    funnel = json.loads((loop / "iterate.json").read_text())["prompt_funnel"]
    assert funnel[-1]["per_iteration"] == [3, 5] and r2.stats["iteration"]["prompt_funnel"] == funnel
    assert "prompts: distinct_prompts: 8 -> 8; split_per_iteration: 8 -> 8" in log
    # each row reports its own iteration's dataset and model (not a copy, not a NaN)
    for row, data in zip(rows, (d1, d2)):
        trained = json.loads((Path(row["model"]) / "selfpref_train.json").read_text())
        assert row["model"] == str(loop / f"iter-{row['iteration']}" / "model")
        assert row["rows_kept"] == data.height > 0
        assert math.isfinite(trained["train_loss"]) and row["train_loss"] == round(trained["train_loss"], 4)
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


def test_loop_trains_on_unfiltered_pairs_by_default(tmp_path):
    """SAO Alg. 1 adds every judged pair to D, inconsistent self-judgments too; SSO filters only
    its offline set (A.1.4); SELFEE trains on every labelled pair: no filter inside the loop."""
    from selfpref.loop.iterate import DEFAULT_FILTERS, _plan
    from selfpref.loop.stages import _build_stage, _filter_stage, _Stage

    assert DEFAULT_FILTERS == {"sao": [], "sso": [], "selfee": []}
    script = tmp_path / "script.yaml"  # P(A first) 0.9, then 0.8 swapped: the judge contradicts itself
    script.write_text(yaml.safe_dump({"answer_pair": ["x1", "x2", "y1", "y2"],
                                      "option_probs": {"self_judge": [0.9, 0.8]}}))
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"Question {i}?" for i in range(4)]}).write_ndjson(prompts)
    cfg = IterateConfig(method="sao", iterations=1, output=str(tmp_path / "loop"), prompts=str(prompts),
                        build={"backend": "scripted", "script": str(script), "judge_mode": "logits"})
    assert cfg.filters == []
    st = _Stage(cfg, _plan(cfg, tmp_path / "loop"), 1, tmp_path / "loop", lambda _m: None, "simpo")
    st.folder.mkdir()
    _build_stage(st)
    _filter_stage(st)
    trained_on, record = read_dataset(st.data)
    assert st.data == st.raw and [f["step"] for f in record.funnel] == ["build:sao"]
    assert trained_on.height == 4 and not any(trained_on["judge_consistent"])  # all kept

    # A.1.4's chain is the named recipe for the offline set, in the paper's order
    steps, options = load_filter_recipe(RECIPES / "filter" / "sso-a14.yaml")
    assert steps == [("dedup", "minhash"), ("max_length_diff", 3000), ("balance_length", True)]
    shown = CliRunner().invoke(app, ["iterate", "--help"], env={"COLUMNS": "3000"}).output
    help_text = " ".join(shown.replace("│", " ").split())
    assert "default: none, as the papers' online loops (SAO Alg. 1 adds every judged pair" in help_text
    assert "A.1.4: selfpref/recipes/filter/sso-a14.yaml" in help_text


def test_prompt_plan_unequal_sets_without_the_seed_prompts(tmp_path):
    """SELFEE §5.1: prompt sets of 8K, 20K, 30K; §4.1: X_i ∩ X_j = ∅ for j = 0..i-1, X_0 the seed
    set's prompts, which are taken out first and counted."""
    from selfpref.loop.iterate import plan_prompts
    from selfpref.loop.plan import prompt_plan

    prompts = [f"q{i}" for i in range(12)] + ["q1", " ", "q3 "]
    splits, funnel = prompt_plan(prompts, 3, seed=0, sizes=[1, 3, 5], exclude=["q0", "q5", "other"])
    assert [len(s) for s in splits] == [1, 3, 5]
    flat = [p for s in splits for p in s]
    assert len(set(flat)) == 9 and not {"q0", "q5"} & set(flat)
    assert funnel == [
        {"step": "distinct_prompts", "input": 15, "kept": 12, "dropped": {"empty": 1, "duplicate": 2}},
        {"step": "exclude_seed_prompts", "input": 12, "kept": 10, "dropped": {"in_seed_set": 2}},
        {"step": "split_per_iteration", "input": 10, "kept": 9, "dropped": {"unused": 1},
         "per_iteration": [1, 3, 5]}]
    with pytest.raises(SelfprefError, match=r"--prompts-per-iteration 1,3,7 needs 11 distinct prompts, "
                                            r"--prompts has 10 to split \(2 of them are --seed-data"):
        prompt_plan(prompts, 3, seed=0, sizes=[1, 3, 7], exclude=["q0", "q5"])
    with pytest.raises(SelfprefError, match="--prompts-per-iteration 1,3: each iteration needs 2"):
        prompt_plan(prompts, 2, seed=0, sizes=[1, 3], minimum=2)

    # sao writes its own prompts: the sizes are the personas of each iteration, checked the same way
    from selfpref.loop.iterate import plan_splits

    with pytest.raises(SelfprefError, match="--prompts-per-iteration 1,3: each iteration needs 2"):
        plan_splits(IterateConfig(method="sao", iterations=2, output=str(tmp_path / "s"),
                                  prompts_per_iteration=[1, 3]))
    result = CliRunner().invoke(app, ["iterate", "--prompts-per-iteration", "8000,lots", "-o", str(tmp_path / "y")])
    assert "--prompts-per-iteration '8000,lots': give int values" in str(result.exception)

    # through the loop's config: --seed-data's prompts never reach an iteration
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(10)))
    (tmp_path / "seed.jsonl").write_text("".join(
        json.dumps({"prompt": f"q{i}", "chosen": "a", "rejected": "b"}) + "\n" for i in (2, 7)))
    cfg = IterateConfig(method="selfee", iterations=2, output=str(tmp_path / "loop"),
                        prompts=str(tmp_path / "p.jsonl"), seed_data=str(tmp_path / "seed.jsonl"),
                        prompts_per_iteration=[3, 5])
    splits, funnel = plan_prompts(cfg)
    assert [len(s) for s in splits] == [3, 5] and not {"q2", "q7"} & {p for s in splits for p in s}
    assert funnel[1]["dropped"] == {"in_seed_set": 2}
    result = CliRunner().invoke(app, ["iterate", "--method", "selfee", "--prompts", str(tmp_path / "p.jsonl"),
                                      "--iterations", "2", "--prompts-per-iteration", "6,5",
                                      "--seed-data", str(tmp_path / "seed.jsonl"), "-o", str(tmp_path / "x")])
    assert isinstance(result.exception, SelfprefError), result.output
    assert str(result.exception).startswith("--prompts-per-iteration 6,5 needs 11 distinct prompts")
    assert not (tmp_path / "x").exists()


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
                        seed_data="seed", train_recipe="selfpref/recipes/selfee/paper.yaml",
                        train={"max_steps": 2})
    _seed_model(cfg, tmp_path, lambda _m: None)
    method, recipe, overrides = calls[0]
    assert (method, recipe) == ("dpo", None)
    assert overrides == {**SELFEE_SEED_SETTINGS, "max_steps": 2}
    cfg2 = IterateConfig(method="selfee", iterations=1, output=str(tmp_path / "b"), prompts="p.jsonl",
                         seed_data="seed", seed_train_recipe="my-seed.yaml")
    _seed_model(cfg2, tmp_path / "b", lambda _m: None)
    assert calls[1][:2] == ("dpo", "my-seed.yaml") and calls[1][2] == {}
    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "selfpref/recipes/dpo/selfee-seed.yaml").read_text())
    shipped.pop("method")
    assert {k: shipped[k] for k in SELFEE_SEED_SETTINGS} == SELFEE_SEED_SETTINGS


def test_prompts_per_iteration_are_checked_up_front(tmp_path):
    steps, _ = load_filter_recipe(RECIPES / "filter" / "sso-a14.yaml")
    sso = IterateConfig(method="sso", iterations=3, output=str(tmp_path), prompts="p", filters=steps)
    assert sso.min_prompts() == 4  # length balance needs pairs on both sides
    assert IterateConfig(method="sso", iterations=3, output=str(tmp_path), prompts="p").min_prompts() == 2
    with pytest.raises(SelfprefError, match="1 per iteration.*at least 12 prompts"):
        split_prompts([f"q{i}" for i in range(4)], 3, None, seed=0, minimum=sso.min_prompts())
    assert IterateConfig(method="selfee", iterations=1, output=str(tmp_path), prompts="p").min_prompts() == 2


def test_no_pair_hint_names_only_what_applies(tmp_path):
    from selfpref.loop.iterate import no_pair_hint

    build = {"step": "build", "kept": 6, "dropped": {}}
    sao = IterateConfig(method="sao", iterations=2, output=str(tmp_path), build={"judge_mode": "logits"})
    hint = no_pair_hint(sao, [build, {"step": "minhash_dedup", "kept": 6},
                              {"step": "judge_consistency", "kept": 0}], 6)
    assert "sao-small-judge" in hint and "--judge-mode" not in hint and "--num-prompts" not in hint
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


def _selfee_loop(tmp_path, tiny_model_path, learning_rate=5e-7):
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"answer_pair": [
        "Short.", "A longer answer with several more words in it.", "Yes, here it is.", "No."]}))
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"How do I do task {i}?" for i in range(8)]}).write_ndjson(prompts)
    return IterateConfig(method="selfee", iterations=2, output=str(tmp_path / "loop"),
                         model=str(tiny_model_path), prompts=str(prompts),
                         build={"backend": "scripted", "script": str(script)},
                         train={"max_steps": 1, "per_device_train_batch_size": 2, "max_length": 64,
                                "warmup_steps": 0, "learning_rate": learning_rate})


def test_loop_evaluates_pi_t_against_pi_0(tmp_path, tiny_model_path, monkeypatch):
    """A finished loop rerun with an evaluation: pi_0 answers once, each pi_t is judged, the rows,
    the model cards and the loop README gain the figures; a rerun skips finished evals; other
    eval settings are refused before any work."""
    import selfpref.eval.run as eval_run
    import selfpref.trainers.run as run
    from selfpref.loop.evaluate import LoopEval

    cfg = _selfee_loop(tmp_path, tiny_model_path, learning_rate=0.05)  # pi_t's answers differ from pi_0's
    loop = Path(cfg.output)
    log: list[str] = []
    iterate(cfg, notify=log.append)  # no evaluation: the README says how to add one
    assert "Not evaluated" in (loop / "README.md").read_text()
    assert not (loop / "plots").exists()

    eval_prompts = tmp_path / "eval.jsonl"
    pl.DataFrame({"prompt": ["Say hi.", "Name a fruit.", "Count to two.", "Unused?"]}).write_ndjson(eval_prompts)
    # sampled: the random tiny model's greedy answers are blank
    evaluation = LoopEval(prompts=str(eval_prompts), num_prompts=3, judge_model=str(tiny_model_path),
                          max_new_tokens=6, temperature=1.0, batch_size=4, bootstrap=20)
    with_eval = dataclasses.replace(cfg, evaluation=evaluation)
    assert with_eval.fingerprint() == cfg.fingerprint()  # evaluation options are not the loop's

    answered, judges = [], []
    real_answer, real_judge = eval_run.answer_prompts, eval_run.build_judge
    monkeypatch.setattr(eval_run, "answer_prompts",
                        lambda models, ref, prompts, **kw: answered.append(ref) or real_answer(models, ref, prompts, **kw))
    monkeypatch.setattr(eval_run, "build_judge", lambda *a, **k: judges.append(1) or real_judge(*a, **k))
    monkeypatch.setattr(run, "train", lambda *a, **k: pytest.fail("a finished iteration was retrained"))
    rows = iterate(with_eval, notify=log.append)
    models = [str(loop / f"iter-{t}" / "model") for t in (1, 2)]
    pi0 = json.loads((loop / "eval" / "answers_pi0.json").read_text())
    assert answered == [str(tiny_model_path), *models] and judges == [1]  # pi_0 once, one judge
    for t, row in zip((1, 2), rows):
        folder = loop / f"iter-{t}" / "eval"
        summary = json.loads((folder / "eval.json").read_text())
        assert summary["models"]["a"]["source"] == "answers" and summary["n"] == 3
        assert summary["models"]["a"]["label"] == str(tiny_model_path)
        assert summary["models"]["b"]["label"] == models[t - 1]
        # the rows are pi_t's (B's): eval.json is pi_0's (A's)
        assert row["eval_win_rate"] == pytest.approx(summary["lose_rate"], abs=0.01)
        assert row["eval_lc_win_rate"] == pytest.approx(100 - summary["lc_win_rate"], abs=0.01)
        assert set(row["eval_ci95"]) == {"win_rate", "net_win", "lc_win_rate"}
        assert row["eval_judge_consistency"] == pytest.approx(summary["judge_consistency"], abs=0.01)
        assert row["eval_mean_len_b"] == pytest.approx(summary["mean_len_b"], abs=0.01)
        assert summary["tie_rate"] < 100  # not a vacuous check: the judge preferred a side
        table = pl.read_parquet(folder / "judgments.parquet")
        assert table["answer_a"].to_list() == [r["output"] for r in pi0]  # pi_0's cached answers
        assert row["eval_judge"] == f"logits:{tiny_model_path}"
        assert json.loads((loop / f"iter-{t}" / "summary.json").read_text()) == row
        card = (loop / f"iter-{t}" / "model" / "README.md").read_text()
        assert card.count("## Evaluation") == 1 and "# SELFEE model trained with selfpref" in card
        assert f"`pi_0 = {tiny_model_path}`" in card and "judge consistency" in card
    assert json.loads((loop / "summary.json").read_text()) == rows
    assert [r["instruction"] for r in pi0] == ["Say hi.", "Name a fruit.", "Count to two."]
    readme = (loop / "README.md").read_text()
    assert "win % vs pi_0" in readme and "plots/iterations.png" in readme and "judge consistency" in readme
    assert "Not evaluated" not in readme
    assert (loop / "plots" / "iterations.png").stat().st_size > 1000

    from selfpref.cli.iterate import eval_note, summary_table

    table = summary_table(rows)
    assert "win %" in table and "LC win" in table and f"{rows[1]['eval_win_rate']:.1f}" in table
    assert "pi_t's" in eval_note(rows)

    # a rerun skips finished evaluations (the cards keep one Evaluation section)
    answered.clear(), judges.clear()
    again = iterate(with_eval, notify=log.append)
    assert answered == [] and judges == [] and again == rows
    assert log.count("iteration 2/2: evaluation finished earlier, skipped") == 1
    assert (loop / "iter-1" / "model" / "README.md").read_text().count("## Evaluation") == 1
    # an interrupted evaluation is redone with pi_0's cached answers
    import shutil

    shutil.rmtree(loop / "iter-2" / "eval")
    iterate(with_eval, notify=log.append)
    assert answered == [models[1]]
    # other settings would mix two evaluations in one table: refused before anything runs
    answered.clear()
    other = dataclasses.replace(cfg, evaluation=dataclasses.replace(evaluation, max_new_tokens=5))
    with pytest.raises(SelfprefError, match=r"iter-1/eval was evaluated with other settings \(max new tokens 6 there, 5 now"):
        iterate(other, notify=log.append)
    assert answered == []


def test_eval_flags_are_checked_up_front(tmp_path):
    out = tmp_path / "loop"
    cases = [
        (["--eval-judge", "text"], "--eval-judge: evaluates the loop, which needs --eval-prompts"),
        (["--eval-prompts", str(tmp_path / "none.jsonl")], "--eval-prompts .*none.jsonl"),
        (["--eval-prompts", "default", "--eval-judge", "nope"], "--eval-judge 'nope': use one of"),
        (["--eval-prompts", "default", "--eval-judge", "length", "--eval-judge-model", "x/y"],
         "--eval-judge length is a rule .* takes no --eval-judge-model"),
        (["--eval-prompts", "default", "--eval-judge-model", str(tmp_path)], "--eval-judge-model .*config.json"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, ["iterate", "--output", str(out), *args])
        assert isinstance(result.exception, SelfprefError), (args, result.output, result.exception)
        assert re.search(message, str(result.exception)), (message, str(result.exception))
        assert "\n" not in str(result.exception)
    result = CliRunner().invoke(app, ["iterate", "--output", str(out), "--eval-prompts", "default",
                                      "--eval-num-prompts", "0"])
    assert result.exit_code == 2 and "0 is not >= 1" in result.output
    assert not out.exists()


def test_model_card_evaluation_section_is_replaced(tmp_path):
    from selfpref.trainers.run import record_evaluation

    (tmp_path / "README.md").write_text("---\ntags: [selfpref]\n---\n\n# SIMPO model\n\nReproduce: `x`\n")
    e = {"baseline": "pi_0 = base", "judge": "logits:j", "prompts": "p", "n": 4, "win_rate": 25.0,
         "lose_rate": 50.0, "tie_rate": 25.0, "lc_win_rate": 40.0,
         "ci95": {"win_rate": [0.0, 75.0], "lc_win_rate": [10.0, 70.0]}, "judge_consistency": 0.0,
         "mean_len": 120.0, "mean_len_baseline": 100.0, "note": "A note."}
    assert record_evaluation(tmp_path, e)
    assert not record_evaluation(tmp_path, e)  # the same figures: the card is left as it is
    assert record_evaluation(tmp_path, {**e, "win_rate": 75.0})
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\ntags: [selfpref]") and "Reproduce: `x`" in card
    assert card.count("## Evaluation") == 1 and "| win rate % | 75.0 | 0.0 to 75.0 |" in card
    assert "| mean answer length, this model / baseline (characters) | 120 / 100 | |" in card
