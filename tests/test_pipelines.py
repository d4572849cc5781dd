"""Each method's pipeline on scripted LLM outputs: parsing, drops with reasons, the record."""


import pytest
import yaml

from selfpref.data.refs import read_dataset
from selfpref.data.schema import validate
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build
from selfpref.pipelines.sao import decide
from tests.build_files import prompts_file as _prompts
from tests.build_files import script_file as _script


def test_sao_text_judge_counts_every_drop(tmp_path):
    script = _script(
        tmp_path,
        write_persona=["A beekeeper in Vermont."],
        write_prompt=["User prompt: How do I keep bees calm?", "I'm sorry, I can't do that.", "",
                      "Prompt: What flowers feed bees?", "How do I harvest honey?",
                      "How big is a hive?"],
        answer_pair=["Use smoke.", "Move slowly.", "Clover.", "Clover.", "Wait for capped comb.",
                     "Spin frames.", "About 50k bees.", "Large."],
        self_judge=["A", "Response A is better.", "Tie", "garbage", "B", "nonsense"],
    )
    record = build(BuildConfig(method="sao", backend="scripted", script=script, num_prompts=6,
                               chunk_size=6), tmp_path / "out")
    df, rec = read_dataset(tmp_path / "out")
    validate(df)
    funnel = rec.funnel[0]
    assert funnel["input"] == 6
    assert funnel["dropped"] == {"refusal": 1, "empty_prompt": 1, "identical_answers": 1,
                                 "judge_tie": 1}
    assert funnel["kept"] == df.height == 2
    rows = df.sort("prompt").to_dicts()
    bees = next(r for r in rows if r["prompt"] == "How do I keep bees calm?")
    # order 1 says A (= "Use smoke."), order 2 says A (= "Move slowly."): inconsistent
    assert (bees["chosen"], bees["judge_consistent"], bees["confidence"]) == ("Use smoke.", False, 0.5)
    hive = next(r for r in rows if r["prompt"] == "How big is a hive?")
    assert (hive["chosen"], hive["judge_consistent"]) == ("Large.", False)  # "B" then unparseable
    assert rec.stats["prompt_repetition_rate"] == 0.0
    assert rec.models == {"generator": "HuggingFaceTB/SmolLM2-135M-Instruct",
                          "judge": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    assert "selfpref-sao" in (tmp_path / "out" / "pipeline.yaml").read_text()
    assert not (tmp_path / ".out.parts").exists()
    assert record.fingerprint == rec.fingerprint


def test_decide_logits_cancels_position_bias():
    # P(A) 0.9 when answers[0] is shown first, P(A) 0.8 when answers[1] is first: a judge that
    # mostly says "A". Averaged: P(answers[0] better) = (0.9 + 0.2) / 2 = 0.55.
    idx, consistent, confidence, reason = decide(["0.9", "0.8"], "logits")
    assert (idx, consistent, reason) == (0, False, None)
    assert confidence == pytest.approx(0.55)
    idx, consistent, confidence, _ = decide(["0.3", "0.9"], "logits")
    assert (idx, consistent) == (1, True) and confidence == pytest.approx(0.8)
    assert decide(["0.5", "0.5"], "logits")[3] == "judge_tie"
    assert decide(None, "text")[3] == "judge_unparseable"


def test_sao_logits_mode_and_given_prompts(tmp_path):
    script = _script(tmp_path, answer_pair=["x1", "x2", "y1", "y2"],
                     option_probs={"self_judge": [0.9, 0.8, 0.2, 0.1]})
    build(BuildConfig(method="sao", backend="scripted", script=script, judge_mode="logits",
                      prompts=_prompts(tmp_path, ["p1", "p2"])), tmp_path / "out")
    df, _ = read_dataset(tmp_path / "out")
    # row 2: P(A)=0.2 with y1 first, 0.1 with y2 first -> P(y1 better) = (0.2 + 0.9) / 2
    assert df["chosen"].to_list() == ["x1", "y1"]
    assert df["confidence"].to_list() == pytest.approx([0.55, 0.55])
    assert df["labeler"][0].endswith("|logits")


def test_sso_triples_and_drops(tmp_path):
    script = _script(tmp_path,
                     allocate_features=["Accuracy,Helpfulness", "nonsense", "Safety"],
                     principled_answers=["good1", "bad1", "plain1", "same", "same", "plain2",
                                         "good3", "bad3", "good3"])
    build(BuildConfig(method="sso", backend="scripted", script=script, seed=3,
                      prompts=_prompts(tmp_path, ["q1", "q2", "q3"])), tmp_path / "out")
    df, rec = read_dataset(tmp_path / "out")
    assert rec.funnel[0]["dropped"] == {"identical_answers": 1, "answer_equals_original": 1}
    row = df.row(0, named=True)
    assert (row["chosen"], row["rejected"], row["original"]) == ("good1", "bad1", "plain1")
    assert row["feature"].split(",")[0] in ("Accuracy", "Helpfulness")
    assert "Never mention" in row["principle_chosen"] and row["labeler"].startswith("principle:")
    assert row["principle_chosen"] != row["principle_rejected"]


def test_sso_allocation_tops_up_to_two(tmp_path):
    from selfpref.pipelines.llms import ScriptedLLM
    from selfpref.pipelines.sso import AllocateFeatures

    task = AllocateFeatures(name="a", llm=ScriptedLLM(), seed=1, concision_probability=1.0)
    out = task.parse({"prompt": "q"}, [["Safety"]])
    assert out["allocated"][0] == "Safety" and len(out["allocated"]) == 2
    assert out["feature"].endswith(",Concision")
    assert task.parse({"prompt": "q"}, [["Safety"]]) == out  # deterministic per prompt and seed


def test_alignez_pairs(tmp_path):
    script = _script(tmp_path,
                     describe_characteristics=["be clear and kind", "be rude and wrong", "", ""],
                     conditioned_answers=["Kind answer.", "Rude answer."])
    build(BuildConfig(method="alignez", backend="scripted", script=script,
                      prompts=_prompts(tmp_path, ["How do plants grow?", "Why?"])), tmp_path / "out")
    df, rec = read_dataset(tmp_path / "out")
    assert df.select("chosen", "rejected", "characteristics_chosen").row(0) == (
        "Kind answer.", "Rude answer.", "be clear and kind")
    assert rec.funnel[0]["dropped"] == {"empty_characteristics": 1}


def test_selfee_labels_with_reference(tmp_path, tiny_model_path):
    from selfpref.judges.implicit_reward import implicit_reward_label

    script = _script(tmp_path, answer_pair=["Short.", "A much longer answer here.", "a", "b"])
    build(BuildConfig(method="selfee", backend="scripted", script=script, model=str(tiny_model_path),
                      reference_model=str(tmp_path / "ref"), prompts=_prompts(tmp_path, ["q1", "q2"]))
          if _copy(tiny_model_path, tmp_path / "ref") else None, tmp_path / "out")
    df, rec = read_dataset(tmp_path / "out")
    assert df.height + sum(rec.funnel[0]["dropped"].values()) == 2
    for row in df.iter_rows(named=True):
        label = implicit_reward_label(row["logp_policy_chosen"], row["logp_policy_rejected"],
                                      row["logp_ref_chosen"], row["logp_ref_rejected"], 0.1)
        assert label.first_is_chosen is True
        assert row["reward_margin"] == pytest.approx(label.margin)
    assert rec.models["reference"] == str(tmp_path / "ref")


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    # perturb the reference so margins are not all zero
    from safetensors.torch import load_file, save_file

    weights = load_file(str(dst / "model.safetensors"))
    weights = {k: v * 1.5 if "mlp" in k else v for k, v in weights.items()}
    save_file(weights, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return True


def test_selfee_refuses_same_model_as_reference():
    from selfpref import SelfprefError

    with pytest.raises(SelfprefError, match="same as --model"):
        BuildConfig(method="selfee", model="org/m", reference_model="org/m")


def test_unknown_build_recipe_key(tmp_path):
    from selfpref import SelfprefError
    from selfpref.pipelines.config import load_build_recipe

    (tmp_path / "r.yaml").write_text("num_prompt: 3\n")
    with pytest.raises(SelfprefError, match="unknown key 'num_prompt'"):
        load_build_recipe(tmp_path / "r.yaml")


def test_labelling_logps_equal_direct_torch(tiny_model_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfpref.models.scoring import answer_logps

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    prompts = [[{"role": "user", "content": "Hi there"}], [{"role": "user", "content": "A longer question?"}]]
    answers = ["Hello!", "Here is a somewhat longer answer to it."]
    sums, counts = answer_logps(model, tok, prompts, answers, batch_size=2)
    for p, a, s, n in zip(prompts, answers, sums, counts):
        prompt_ids = tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True)["input_ids"]
        full = tok.apply_chat_template(p + [{"role": "assistant", "content": a}], tokenize=True)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([full])).logits[0]
        logp = torch.log_softmax(logits.double(), -1)
        expected = sum(logp[t - 1, full[t]].item() for t in range(len(prompt_ids), len(full)))
        assert s == pytest.approx(expected, abs=1e-4)
        assert n == len(full) - len(prompt_ids)


def test_ray_workers_on_a_local_runtime_match_the_local_build(tmp_path, monkeypatch):
    """`--ray`: two Ray workers (actors that keep their models) share four chunks; the parts,
    their order and the rows are those of the local build."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # no token file written for a local runtime
    script = _script(tmp_path, answer_pair=["one", "two, longer", "three", "four!"],
                     self_judge=["A", "B", "B"])
    prompts = _prompts(tmp_path, [f"q{i}?" for i in range(8)])
    common = dict(method="sao", backend="scripted", script=script, prompts=prompts, num_prompts=8,
                  chunk_size=2)
    build(BuildConfig(**common), tmp_path / "local")
    states = []
    build(BuildConfig(**common, ray=True, ray_workers=2), tmp_path / "ray",
          progress=lambda s: states.append(s.chunks_done))
    local, _ = read_dataset(tmp_path / "local")
    df, record = read_dataset(tmp_path / "ray")
    validate(df)
    assert df.height == 8 and df.equals(local)
    assert states[-1] == 4 and record.parameters["ray"] is True and record.parameters["ray_workers"] == 2
    assert record.stats["build_fingerprint"] == read_dataset(tmp_path / "local")[1].stats["build_fingerprint"]


def test_more_prompts_than_a_batch_does_not_hang(tmp_path):
    """Sequential step loading once hung when the loader had a second batch (12 prompts, batch 8)."""
    import subprocess
    import sys

    script = _script(tmp_path, describe_characteristics=["kind", "rude"],
                     conditioned_answers=["Good.", "Bad."])
    prompts = _prompts(tmp_path, [f"q{i}?" for i in range(5)])
    code = ("from selfpref.pipelines.run import build; from selfpref.pipelines.config import BuildConfig; "
            f"build(BuildConfig(method='alignez', backend='scripted', script={script!r}, "
            f"prompts={prompts!r}, num_prompts=5, batch_size=2), {str(tmp_path / 'out')!r})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    df, _ = read_dataset(tmp_path / "out")
    assert df.height == 5


def test_build_sso_principles_flag_replaces_the_feature_table(tmp_path):
    from typer.testing import CliRunner

    from selfpref.cli import app

    feature = dict(meaning="how it reads", good="witty", bad="humourless",
                   good_principle="Make the answer witty.", bad_principle="Make the answer humourless.")
    principles = tmp_path / "principles.yaml"
    principles.write_text(yaml.safe_dump({"features": [
        {"name": "Wit", **feature},
        {"name": "Warmth", **{**feature, "good": "warm", "bad": "cold",
                              "good_principle": "Be warm.", "bad_principle": "Be cold."}}]}))
    script = _script(tmp_path, allocate_features=["Wit,Warmth"],
                     principled_answers=["good1", "bad1", "plain1", "good2", "bad2", "plain2"])
    result = CliRunner().invoke(app, ["build", "sso", "--backend", "scripted", "--script", script,
                                      "--prompts", _prompts(tmp_path, ["q1", "q2"]),
                                      "--principles", str(principles), "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    df, record = read_dataset(tmp_path / "out")
    assert df.height == 2 and set(df["feature"].str.split(",").list.first()) <= {"Wit", "Warmth"}
    assert all("Make the answer witty." in p or "Be warm." in p for p in df["principle_chosen"])
    assert record.parameters["principles"] == str(principles)
