"""`selfpref eval`: answer files, tiny models, a steer file, compare, errors, the shipped prompts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from selfpref import SelfprefError
from selfpref.cli import app
from selfpref.eval.run import EvalConfig, run_eval
from selfpref.judges import LogitsJudge

PROMPTS = ["What is 2+2?", "Name a colour.", "Say hello.", "Why is the sky blue?", "Count to three."]
ANSWERS_A = ["4", "Red, a warm colour.", "Hello!", "Light scatters.", "1, 2, 3"]
ANSWERS_B = ["Four, since 2+2=4.", "Blue.", "Hello there, my friend.", "Because of Rayleigh scattering.",
             "One two three."]


class LengthyScorer:
    """P(label A) = 0.5 + position bias + 0.01 * (len(first) - len(second)), clipped."""

    def option_probabilities(self, chats, options):
        out = []
        for chat in chats:
            text = chat[-1]["content"]
            first = re.search(r"\[Response A\]\n(.*?)\n\n\[Response B\]", text, re.S).group(1)
            second = re.search(r"\[Response B\]\n(.*?)\n\n", text, re.S).group(1)
            p = min(0.99, max(0.01, 0.5 + 0.12 + 0.01 * (len(first) - len(second))))
            out.append([p, 1 - p])
        return out


def _answers(path: Path, answers, prompts=PROMPTS, **extra) -> Path:
    pl.DataFrame({"prompt": prompts, "answer": answers, **extra}).write_ndjson(path)
    return path


def _cli(*args):
    return CliRunner().invoke(app, ["eval", *map(str, args)])


def test_eval_from_answer_files(tmp_path):
    a = _answers(tmp_path / "a.jsonl", ANSWERS_A)
    b = tmp_path / "b.parquet"
    pl.DataFrame({"prompt": PROMPTS[::-1], "answer": ANSWERS_B[::-1],
                  "generator": ["model-b"] * 5}).write_parquet(b)  # another order, another format
    result = _cli("--answers-a", a, "--answers-b", b, "--judge", "length", "--aspects", "depth,clarity",
                  "--bootstrap", 50, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "answers_a.json", "answers_b.json",
                                                    "eval.json", "judgments.parquet", "plots"]
    table = pl.read_parquet(out / "judgments.parquet")
    assert table.columns == ["prompt", "answer_a", "answer_b", "len_a", "len_b", "p_a_first",
                             "p_a_second", "score", "consistent", "judge_raw", "score_depth",
                             "consistent_depth", "judge_raw_depth", "score_clarity",
                             "consistent_clarity", "judge_raw_clarity"]
    assert table["prompt"].to_list() == PROMPTS and table["answer_b"].to_list() == ANSWERS_B
    assert table["len_b"].to_list() == [len(x) for x in ANSWERS_B]
    # the length judge (SAO Table 6) prefers the shorter answer: A is shorter on 4 of 5
    assert table["score"].to_list() == [1.0, 0.0, 1.0, 1.0, 1.0]
    summary = json.loads((out / "eval.json").read_text())
    assert (summary["n"], summary["win_rate"], summary["lose_rate"], summary["tie_rate"]) == (5, 80.0, 20.0, 0.0)
    assert summary["net_win"] == 60.0 and summary["judge_consistency"] == 100.0
    assert set(summary["ci95"]) == {"win_rate", "net_win", "lc_win_rate"}
    assert summary["aspects"]["depth"]["win_rate"] == 80.0
    assert summary["models"]["b"] == {"source": "answers", "path": str(b), "label": "model-b",
                                      "answers_fingerprint": summary["models"]["b"]["answers_fingerprint"]}
    # the same answers in another order have the same fingerprint
    from selfpref.eval.run import answers_fingerprint

    assert summary["models"]["b"]["answers_fingerprint"] == answers_fingerprint(PROMPTS[::-1], ANSWERS_B[::-1])
    assert summary["judge"]["label"] == "length" and summary["prompts"]["n"] == 5
    assert len(summary["prompts"]["fingerprint"]) == 64
    alpaca = json.loads((out / "answers_b.json").read_text())
    assert alpaca[0] == {"instruction": PROMPTS[0], "output": ANSWERS_B[0], "generator": "model-b"}
    readme = (out / "README.md").read_text()
    assert "`model-b`" in readme and "| depth |" in readme and (out / "plots" / "scores.png").is_file()
    # AlpacaEval's own layout is accepted as an answer file: the folder's outputs read back
    again = _cli("--answers-a", out / "answers_a.json", "--answers-b", out / "answers_b.json",
                 "--judge", "length", "--bootstrap", 0, "--output", tmp_path / "again")
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again" / "eval.json").read_text())["win_rate"] == 80.0
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_swapping_a_and_b_through_the_runner(tmp_path):
    a, b = _answers(tmp_path / "a.jsonl", ANSWERS_A), _answers(tmp_path / "b.jsonl", ANSWERS_B)
    judge = LogitsJudge(LengthyScorer(), model_label="scripted")
    ab = run_eval(EvalConfig(output=str(tmp_path / "ab"), answers_a=str(a), answers_b=str(b),
                             bootstrap=200), judge=judge)
    ba = run_eval(EvalConfig(output=str(tmp_path / "ba"), answers_a=str(b), answers_b=str(a),
                             bootstrap=200), judge=judge)
    assert 0 < ab["judge_consistency"] < 100 and ab["tie_rate"] == 0  # position bias at work
    assert ba["win_rate"] == pytest.approx(100 - ab["win_rate"])
    assert ba["lose_rate"] == pytest.approx(ab["win_rate"])
    assert ba["net_win"] == pytest.approx(-ab["net_win"])
    assert ba["mean_score"] == pytest.approx(100 - ab["mean_score"])
    assert ba["lc_win_rate"] == pytest.approx(100 - ab["lc_win_rate"], abs=1e-6)
    assert ba["judge_consistency"] == ab["judge_consistency"]
    t_ab, t_ba = (pl.read_parquet(tmp_path / f / "judgments.parquet") for f in ("ab", "ba"))
    assert t_ba["p_a_first"].to_list() == pytest.approx([1 - p for p in t_ab["p_a_second"]])


def test_eval_errors_name_the_flag(tmp_path):
    a = _answers(tmp_path / "a.jsonl", ANSWERS_A)
    no_answer = tmp_path / "bad.jsonl"
    pl.DataFrame({"prompt": PROMPTS, "output_text": ANSWERS_B}).write_ndjson(no_answer)
    other = _answers(tmp_path / "other.jsonl", ANSWERS_B, prompts=PROMPTS[:4] + ["Something else?"])
    out = tmp_path / "out"
    cases = [
        (["--answers-a", a, "--answers-b", no_answer], "--answers-b .*bad.jsonl: missing column 'answer'"),
        (["--answers-a", a, "--answers-b", other], "--answers-a and --answers-b answer different prompts"),
        (["--answers-a", a, "--answers-b", a, "--model-b", "default"], "--model-b and --answers-b: give only one"),
        (["--answers-a", a], "no B to compare"),
        (["--answers-a", a, "--steer-b", a], "--steer-b edits model A"),
        (["--steer-b", tmp_path / "none.safetensors"], "--steer-b .*none.safetensors: no such file"),
        (["--answers-a", a, "--answers-b", a, "--aspects", "tone"], "--aspects 'tone'"),
        (["--answers-a", a, "--answers-b", a, "--judge", "length", "--judge-model", "x/y"], "takes no --judge-model"),
        (["--answers-a", a, "--answers-b", a, "--judge-model", "gpt-x", "--judge-base-url",
          "http://127.0.0.1:9/v1", "--judge-api-key-env", "SELFPREF_TEST_UNSET", "--judge", "logits"],
         "--judge-api-key-env SELFPREF_TEST_UNSET: the environment variable is not set"),
        (["--answers-a", a, "--model-b", "./no/such/model"], "--model no/such/model|no such model folder"),
        (["--answers-a", a, "--answers-b", a, "--prompts", other], "no answer for 1 of 5 prompts"),
        (["--answers-a", a, "--answers-b", a, "--output", tmp_path], "exists and is not an eval folder"),
    ]
    for args, message in cases:
        judge = [] if "--judge" in args else ["--judge", "random"]
        result = _cli(*args, *judge, *([] if "--output" in args else ["--output", out]))
        assert result.exit_code != 0, args
        assert isinstance(result.exception, SelfprefError), (args, result.exception)
        assert re.search(message, str(result.exception)), (message, str(result.exception))
        assert "\n" not in str(result.exception)
    assert not out.exists()


def test_compare_relative_improvement(tmp_path):
    base = _answers(tmp_path / "base.jsonl", ["x" * 10] * 5, generator=["base"] * 5)
    ours = _answers(tmp_path / "ours.jsonl", ["y" * n for n in (5, 5, 5, 20, 20)])   # shorter on 3
    aligned = _answers(tmp_path / "al.jsonl", ["z" * n for n in (5, 5, 5, 5, 20)])   # shorter on 4
    for name, b in (("ours", ours), ("aligned", aligned)):
        assert _cli("--answers-a", base, "--answers-b", b, "--judge", "length", "--aspects", "depth",
                    "--bootstrap", 0, "--output", tmp_path / name).exit_code == 0
    # the length judge prefers the shorter: B over the base nets 3-2 = +20% (ours), 4-1 = +60%
    result = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "ours"),
                                      str(tmp_path / "aligned"), "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert (r["net_win_ours"], r["net_win_aligned"]) == (20.0, 60.0)
    assert r["relative_improvement"] == pytest.approx(100 * 20 / 60)
    assert r["aspects"]["depth"]["relative_improvement"] == pytest.approx(100 * 20 / 60)
    table = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "ours"), str(tmp_path / "aligned")])
    assert table.exit_code == 0 and "33.3" in table.output
    # another base (A side) or other prompts are refused
    other_base = _answers(tmp_path / "b2.jsonl", ["w" * 10] * 5, generator=["other-base"] * 5)
    _cli("--answers-a", other_base, "--answers-b", ours, "--judge", "length", "--bootstrap", 0,
         "--output", tmp_path / "other")
    bad = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "ours"), str(tmp_path / "other")])
    assert isinstance(bad.exception, SelfprefError) and "differ in model A" in str(bad.exception)
    resampled = _answers(tmp_path / "b3.jsonl", ["v" * 10] * 4 + ["v" * 11], generator=["base"] * 5)
    _cli("--answers-a", resampled, "--answers-b", ours, "--judge", "length", "--bootstrap", 0,
         "--output", tmp_path / "resampled")
    bad = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "ours"), str(tmp_path / "resampled")])
    assert "differ in A's answers" in str(bad.exception)
    missing = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "ours"), str(tmp_path)])
    assert "no eval.json" in str(missing.exception)


def _perturbed_copy(src: Path, dst: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    model.save_pretrained(dst)
    AutoTokenizer.from_pretrained(src).save_pretrained(dst)
    return dst


def test_eval_two_tiny_models_each_loaded_once(tmp_path, tiny_model_path, monkeypatch):
    import selfpref.models.load as load

    other = _perturbed_copy(tiny_model_path, tmp_path / "tiny-b")
    loads = []
    real = load.load_causal_lm
    monkeypatch.setattr(load, "load_causal_lm", lambda ref, *a, **k: loads.append(ref) or real(ref, *a, **k))
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"turns": [[p, "a follow-up"] for p in PROMPTS[:3]]}).write_ndjson(prompts)  # MT-Bench
    result = _cli("--model-a", tiny_model_path, "--model-b", other, "--judge-model", tiny_model_path,
                  "--prompts", prompts, "--max-new-tokens", 6, "--bootstrap", 20,
                  "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(loads) == sorted([str(tiny_model_path), str(other)])  # the judge reuses A's load
    summary = json.loads((tmp_path / "out" / "eval.json").read_text())
    table = pl.read_parquet(tmp_path / "out" / "judgments.parquet")
    assert table["prompt"].to_list() == PROMPTS[:3]  # the first turn of each
    assert summary["models"]["a"]["decoding"] == {"max_new_tokens": 6, "temperature": 0.0, "seed": 0}
    assert summary["judge"]["label"] == f"logits:{tiny_model_path}"
    assert all(0 < p < 1 for p in table["p_a_first"])
    assert summary["prompts"]["id"] == str(prompts)


def test_eval_steer_b_on_the_tiny_model(tmp_path, tiny_model_path):
    import torch

    from selfpref.steer import Directions

    # the random tiny model's MLP outputs are too small for the edit to move a sampled token;
    # larger weights make them count
    tiny_model_path = _perturbed_copy(tiny_model_path, tmp_path / "tiny-big")
    g = torch.Generator().manual_seed(3)
    Directions(torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g), torch.zeros(2),
               [0, 1]).save(tmp_path / "dirs.safetensors")
    prompts = _answers(tmp_path / "p.jsonl", ANSWERS_A[:3], prompts=PROMPTS[:3])
    result = _cli("--model-a", tiny_model_path, "--steer-b", tmp_path / "dirs.safetensors",
                  "--judge-model", tiny_model_path, "--judge", "text", "--judge-max-new-tokens", 3,
                  "--prompts", prompts, "--max-new-tokens", 8, "--temperature", 1.0, "--bootstrap", 0,
                  "--output", tmp_path / "out")  # sampled: the random tiny model's greedy text is blank
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert summary["models"]["b"]["source"] == "steer" and summary["models"]["b"]["layers"] == [0, 1]
    table = pl.read_parquet(tmp_path / "out" / "judgments.parquet")
    assert table["answer_a"].to_list() != table["answer_b"].to_list()  # the edit changed the answers
    # A's answers are the unsteered model's: the hooks are gone after B's generation
    plain = _cli("--model-a", tiny_model_path, "--model-b", tiny_model_path, "--judge", "random",
                 "--prompts", prompts, "--max-new-tokens", 8, "--temperature", 1.0, "--bootstrap", 0,
                 "--output", tmp_path / "plain")
    assert plain.exit_code == 0
    plain_table = pl.read_parquet(tmp_path / "plain" / "judgments.parquet")
    assert plain_table["answer_a"].to_list() == table["answer_a"].to_list()
    bad = _cli("--model-a", tiny_model_path, "--steer-b", tmp_path / "dirs.safetensors",
               "--steer-layers", "5", "--judge", "random", "--prompts", prompts, "--output", tmp_path / "x")
    assert "--steer-layers 5: this model has layers 0..1" in str(bad.exception)


def test_shipped_prompts_are_held_out():
    from selfpref.eval.sources import HELDOUT, load_prompts
    from selfpref.pipelines.domains import DOMAINS

    prompts = load_prompts()
    assert prompts.id == "selfpref-heldout-v1" and len(prompts.prompts) == 104
    assert prompts.describe()["categories"] == {c: 13 for c in (
        "writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")}
    assert len(set(prompts.prompts)) == 104 and HELDOUT.name == "prompts.jsonl"
    # none names a domain the SAO build writes personas from (pipelines/domains.py), nor the
    # head words of those domains
    heads = ["cooking", "recipe", "nutrition", "finance", "invest", "budget", "software engineer",
             "garden", "travel", "trip", "fitness", "workout", "exercise", "mental health",
             "parent", "small business", "startup", "history", "historical", "astronomy", "planet",
             "telescope", "music", "creative writing", "home repair", "plumbing", "law", "legal",
             "medicine", "medical", "doctor", "symptom", "teaching", "teacher", "classroom",
             "climate", "environment", "career", "job interview", "pet", "dog", "cat", "photograph",
             "language learning", "sport", "football", "video game", "fashion", "clothing",
             "philosophy", "philosopher", "data science", "machine learning", "policy",
             "government", "agriculture", "farm", "crop", "car", "engine", "art history", "painting"]
    for prompt in prompts.prompts:
        text = prompt.lower()
        for word in heads + [d.lower() for d in DOMAINS]:
            assert not re.search(rf"\b{re.escape(word)}s?\b", text), (word, prompt)
    import tomllib

    data = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "eval/*.jsonl" in data["tool"]["setuptools"]["package-data"]["selfpref"]


@pytest.mark.slow
def test_eval_embedded_model_against_itself(tmp_path):
    # the same model and greedy decoding on both sides: identical answers, and the forced choice
    # averaged over both orders is exactly indifferent, so every prompt is a tie
    result = _cli("--model-b", "default", "--max-prompts", 4, "--max-new-tokens", 16,
                  "--bootstrap", 100, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert summary["n"] == 4 and summary["tie_rate"] == 100.0 and summary["net_win"] == 0.0
    assert summary["judge"]["label"] == "logits:HuggingFaceTB/SmolLM2-135M-Instruct"
    assert summary["prompts"]["id"] == "selfpref-heldout-v1[:4]"
    table = pl.read_parquet(tmp_path / "out" / "judgments.parquet")
    assert table["answer_a"].to_list() == table["answer_b"].to_list()
    assert all(a.strip() for a in table["answer_a"])


def test_b_side_is_the_summary_from_b(tmp_path):
    """B's figures over the base A, from A's summary, equal a summary of the flipped judgments."""
    import numpy as np

    from selfpref.eval.stats import b_side, summarize_scores

    rng = np.random.default_rng(3)
    s = np.concatenate([rng.random(9), [0.5, 0.5, 0.2]])
    la, lb = rng.integers(10, 400, s.size), rng.integers(10, 400, s.size)
    c = rng.random(s.size) > 0.5
    a = summarize_scores(s, la, lb, c, bootstrap=200, seed=5)
    flipped = summarize_scores(1 - s, lb, la, c, bootstrap=200, seed=5)
    b = b_side(a, s)
    for key in ("win_rate", "lose_rate", "tie_rate", "net_win", "mean_score", "judge_consistency"):
        assert b[key] == pytest.approx(flipped[key]), key
    assert b["win_rate"] == a["lose_rate"] and b["tie_rate"] == a["tie_rate"] == pytest.approx(100 * 2 / 12)
    assert b["lc_win_rate"] == pytest.approx(flipped["lc_win_rate"], abs=1e-4)
    assert (b["mean_len"], b["mean_len_base"]) == (a["mean_len_b"], a["mean_len_a"])
    assert b["ci95"]["win_rate"] == flipped["ci95"]["win_rate"]  # A's lose rate, not a mirror of A's win
    assert b["ci95"]["net_win"] == pytest.approx(flipped["ci95"]["net_win"])
    assert b["ci95"]["lc_win_rate"] == pytest.approx(flipped["ci95"]["lc_win_rate"], abs=1e-3)
    assert b_side(summarize_scores(s, la, lb, c, bootstrap=0), s)["ci95"] is None


def test_spread_takes_each_category_in_turn(tmp_path):
    from selfpref.eval.sources import load_prompts, spread, write_prompts

    shipped = load_prompts()
    eight = spread(shipped, 8)
    assert eight.categories == ["writing", "roleplay", "reasoning", "math", "coding", "extraction",
                                "stem", "humanities"]
    assert eight.id == "selfpref-heldout-v1[spread:8]" and eight.prompts[0] == shipped.prompts[0]
    assert spread(shipped, 10).categories.count("writing") == 2 and spread(shipped, 500) is shipped
    back = load_prompts(str(write_prompts(eight, tmp_path / "p.jsonl")))
    assert (back.prompts, back.categories, back.fingerprint) == (eight.prompts, eight.categories, eight.fingerprint)
    plain = load_prompts(str(_answers(tmp_path / "a.jsonl", ANSWERS_A)))
    assert spread(plain, 2).prompts == PROMPTS[:2]


def test_compare_json_reaches_stdout_under_the_entry_point(tmp_path, monkeypatch, capfd):
    """`selfpref eval compare --json` through `main`, where fd 1 is the log while a command runs:
    the JSON goes to the user's stdout (the app's `out`), not into the log."""
    from selfpref.cli import main

    base = _answers(tmp_path / "base.jsonl", ["x" * 10] * 5, generator=["base"] * 5)
    ours = _answers(tmp_path / "ours.jsonl", ["y" * n for n in (5, 5, 5, 20, 20)])
    for name in ("ours", "aligned"):
        assert _cli("--answers-a", base, "--answers-b", ours, "--judge", "length", "--bootstrap", 0,
                    "--output", tmp_path / name).exit_code == 0
    monkeypatch.setenv("SELFPREF_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as code:
        main(["eval", "compare", str(tmp_path / "ours"), str(tmp_path / "aligned"), "--json"])
    out = capfd.readouterr().out
    assert code.value.code == 0 and json.loads(out)["net_win_ours"] == 20.0


def test_eval_reads_the_prompt_column_it_is_told(tmp_path):
    questions = tmp_path / "questions.jsonl"
    pl.DataFrame({"id": list(range(5)), "question": PROMPTS}).write_ndjson(questions)
    a, b = _answers(tmp_path / "a.jsonl", ANSWERS_A), _answers(tmp_path / "b.jsonl", ANSWERS_B)
    result = _cli("--answers-a", a, "--answers-b", b, "--prompts", questions, "--prompt-column",
                  "question", "--judge", "length", "--bootstrap", 0, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert summary["n"] == 5 and summary["prompts"]["id"] == str(questions)
    assert summary["config"]["prompt_column"] == "question"
    with pytest.raises(SelfprefError, match="--prompt-column question: it names a column of --prompts"):
        EvalConfig(output=str(tmp_path / "x"), answers_a=str(a), answers_b=str(b), prompt_column="question")


def test_eval_checks_models_before_any_work(tmp_path, monkeypatch):
    """A bad --judge-model is refused before model A is loaded or any answer is written."""
    import selfpref.eval.run as run

    monkeypatch.setattr(run, "run_eval", lambda *a, **k: pytest.fail("run_eval started"))
    result = _cli("--model-b", "default", "--judge-model", str(tmp_path / "nojudge"), "--output",
                  tmp_path / "out")
    assert result.exit_code != 0 and "--judge-model" in str(result.exception)
    assert not (tmp_path / "out").exists()
