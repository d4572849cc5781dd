"""SAO Table 5's prompt sources: `--prompt-source random` (no persona) against persona prompts,
and App. E's repetition rate and most repeated prompts in the build stats and the card."""

import polars as pl
import pytest
import yaml

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset
from selfpref.data.schema import validate
from selfpref.datacards import card_writer
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.llms import ScriptedLLM
from selfpref.pipelines.prompting import RANDOM_PROMPT_TEMPLATE, WriteFreePrompt, WritePersona
from selfpref.pipelines.repetition import prompt_repetition
from selfpref.pipelines.run import build, build_inputs
from tests.build_files import script_file as _script

# Eight draws: "Summarize Pride and Prejudice." three times (twice with other case/spacing),
# "Write a poem about the sea." twice, two singletons and one refusal (dropped, not a prompt).
RANDOM_PROMPTS = ["Summarize Pride and Prejudice.", "Write a poem about the sea.",
                  "summarize  pride and prejudice.", "How do I fix a flat tyre?",
                  "I'm sorry, I can't do that.", "Write a poem about the sea.",
                  "Summarize Pride and Prejudice. ", "Explain photosynthesis."]


def _random_build(tmp_path, method="sao", **extra):
    script = _script(tmp_path, write_persona=["A PERSONA THAT MUST NOT APPEAR."],
                     write_prompt=RANDOM_PROMPTS, answer_pair=["Short.", "A much longer answer."],
                     self_judge=["A", "B"], allocate_features=["Accuracy,Helpfulness"],
                     principled_answers=["good", "bad", "plain"])
    config = BuildConfig(method=method, backend="scripted", script=script, prompt_mode="random",
                         num_prompts=len(RANDOM_PROMPTS), **extra)
    build(config, tmp_path / "out", card=card_writer(separability=False))
    return read_dataset(tmp_path / "out")


def test_random_prompt_source_writes_no_persona(tmp_path):
    df, record = _random_build(tmp_path)
    validate(df)
    assert "persona" not in df.columns or df["persona"].null_count() == df.height
    assert "MUST NOT APPEAR" not in (tmp_path / "out" / "README.md").read_text()
    steps = yaml.safe_load((tmp_path / "out" / "pipeline.yaml").read_text())["pipeline"]["steps"]
    names = [s["name"] for s in steps]
    assert "write_persona" not in names and "write_prompt" in names
    assert record.parameters["prompt_mode"] == "random"
    assert record.stats["prompt_source"].startswith("random: no persona")
    assert record.funnel[0]["parameters"]["inputs_from"] == "random"
    assert record.funnel[0]["dropped"] == {"refusal": 1}
    # the question asked has nothing to condition on: the same text for every draw
    task = WriteFreePrompt(name="write_prompt", llm=ScriptedLLM())
    assert task.conversations({"draw": 5}) == [[{"role": "user", "content": RANDOM_PROMPT_TEMPLATE}]]
    assert "persona" not in RANDOM_PROMPT_TEMPLATE and "{" not in RANDOM_PROMPT_TEMPLATE


def test_repetition_rate_by_hand_and_the_card_lists_the_most_repeated(tmp_path):
    df, record = _random_build(tmp_path)
    # 7 prompts (the refusal is not one); distinct after case/space folding: Pride, sea, tyre,
    # photosynthesis = 4. Rate = 1 - 4/7 = 3/7; prompts written more than once: 3 + 2 = 5 of 7.
    stats = record.stats
    assert stats["prompts_generated"] == 7
    assert stats["prompt_repetition_rate"] == pytest.approx(3 / 7)
    assert stats["prompt_repeated_share"] == pytest.approx(5 / 7)
    assert stats["prompt_top_repeats"] == [{"prompt": "Summarize Pride and Prejudice.", "count": 3},
                                           {"prompt": "Write a poem about the sea.", "count": 2}]
    assert df.height == 7  # the build keeps repeated prompts: dedup is a filter's job
    card = (tmp_path / "out" / "README.md").read_text()
    assert "### Most repeated prompts" in card
    assert "| Summarize Pride and Prejudice. | 3 |" in card
    assert "| Write a poem about the sea. | 2 |" in card
    assert "42.9% of 7 prompts" in card
    assert "random: no persona" in card


def test_random_prompt_source_serves_every_method(tmp_path):
    df, record = _random_build(tmp_path, method="sso")
    assert record.stats["prompt_repetition_rate"] == pytest.approx(3 / 7)
    assert set(df["prompt"]) >= {"Summarize Pride and Prejudice.", "Explain photosynthesis."}


def test_repetition_helper_by_hand():
    out = prompt_repetition(["a", "b", "A", "c", "c", "c", "d"], top=2)
    assert out["prompt_repetition_rate"] == pytest.approx(1 - 4 / 7)
    assert out["prompt_repeated_share"] == pytest.approx(5 / 7)
    assert out["prompt_top_repeats"] == [{"prompt": "c", "count": 3}, {"prompt": "a", "count": 2}]
    assert prompt_repetition([])["prompt_repetition_rate"] == 0.0
    assert prompt_repetition(["x", "y"])["prompt_top_repeats"] == []


def test_a_card_without_repeats_says_so(tmp_path):
    script = _script(tmp_path, write_persona=["A chef.", "A pilot."],
                     write_prompt=["How do I sharpen a knife?", "How do clouds form?"],
                     answer_pair=["Short.", "A much longer answer."], self_judge=["A", "B"])
    build(BuildConfig(method="sao", backend="scripted", script=script, num_prompts=2),
          tmp_path / "out", card=card_writer(separability=False))
    card = (tmp_path / "out" / "README.md").read_text()
    assert "No prompt was written twice." in card and "0.0% of 2 prompts" in card


@pytest.mark.parametrize("flag", ["prompts", "personas"])
def test_random_source_refuses_a_prompt_or_persona_set(flag):
    with pytest.raises(SelfprefError, match=f"--prompt-source random .*drop --{flag}"):
        BuildConfig(method="sao", prompt_mode="random", **{flag: "set.jsonl"})
    with pytest.raises(SelfprefError, match="--prompt-source 'none': must be 'persona' or 'random'"):
        BuildConfig(method="sao", prompt_mode="none")


def test_random_draws_are_independent_samples(tmp_path, tiny_model_path):
    """Every draw asks the same question; its draw number seeds it, so eight draws on a real
    (tiny, random) model are eight samples, not one sample copied eight times."""
    build(BuildConfig(method="sao", model=str(tiny_model_path), prompt_mode="random", num_prompts=8,
                      judge_mode="logits", max_new_tokens=4, prompt_max_new_tokens=8, temperature=1.0,
                      truncated_prompts="keep"),  # a random model never ends a prompt itself
          tmp_path / "out")
    _, record = read_dataset(tmp_path / "out")
    assert record.stats["prompts_generated"] >= 6
    assert record.stats["prompt_repetition_rate"] < 0.5


def test_a_domain_drawn_again_writes_a_new_persona(tiny_model_path):
    """Past 32 prompts the domains come round again: the second draw of a domain must not be
    a copy of the first persona (same conversation, same seed)."""
    rows, source = build_inputs(BuildConfig(method="sao", num_prompts=33))
    assert source == "domain" and "draw" not in rows[0] and rows[31].get("draw") is None
    assert rows[32] == {"domain": rows[0]["domain"], "draw": 1}
    from selfpref.models.pool import ModelPool
    from selfpref.pipelines.llms import make_llm

    llm = make_llm("transformers", str(tiny_model_path), model_id="tiny", step="write_persona",
                   generation={"max_new_tokens": 8, "temperature": 1.0, "top_p": 1.0})
    pool = ModelPool(batch_size=4)
    llm.bind(pool.get("transformers", str(tiny_model_path)))
    task = WritePersona(name="write_persona", llm=llm, input_batch_size=4, keep_truncated=True)
    out = [r for part in task.process([rows[0], rows[32], dict(rows[0])]) for r in part]
    pool.close()
    assert out[0]["persona"] == out[2]["persona"]  # the same row again: the same sample
    assert out[0]["persona"] != out[1]["persona"]  # a second draw: a new sample
    assert pl.Series([o["persona"] for o in out]).null_count() == 0


def test_persona_repetition_with_refusals_counted_as_sao_does(tmp_path):
    """SAO §4.4: the persona rate (0.7%) "only occurred when the model rejected generating
    prompts", so its rate counts refusals; selfpref's prompt rate leaves them out."""
    script = _script(tmp_path, write_persona=["A chef.", "A pilot.", "A nurse.", "A spy.", "A cat."],
                     write_prompt=["How do I sharpen a knife?", "I'm sorry, I can't do that.",
                                   "How do clouds form?", "I'm sorry, I can't do that.",
                                   "I'm  sorry, I can't do that."],
                     answer_pair=["Short.", "A much longer answer."], self_judge=["A", "B"])
    build(BuildConfig(method="sao", backend="scripted", script=script, num_prompts=5),
          tmp_path / "out", card=card_writer(separability=False))
    _, record = read_dataset(tmp_path / "out")
    stats = record.stats
    # prompts: knife, clouds -> 2 distinct of 2: rate 0
    assert stats["prompts_generated"] == 2 and stats["prompt_repetition_rate"] == 0.0
    # every text the stage wrote: knife, refusal, clouds, refusal, refusal (spacing folded)
    # -> 3 distinct of 5: 1 - 3/5 = 40%
    assert (stats["prompt_refusals"], stats["prompt_outputs_generated"]) == (3, 5)
    assert stats["prompt_repetition_rate_with_refusals"] == pytest.approx(2 / 5)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "SAO Table 5" not in card
    assert "refusals left out (share of prompts that repeat an earlier one) | 0.0% of 2 prompts" in card
    assert "with refusals counted" in card and "40.0% of 5 texts (3 refusals)" in card
