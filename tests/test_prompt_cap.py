"""SAO's prompts are "less than 200 words" (SAO §4.4, Fig. 3): a persona or prompt cut at the
token cap is not the model's prompt, so it is dropped and counted (prompt_truncated,
persona_truncated); the paper recipe allows a whole 200-word prompt."""

from pathlib import Path

import pytest
import yaml

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset
from selfpref.pipelines.config import BuildConfig, load_build_recipe
from selfpref.pipelines.run import build

# SAO Table 13's generated prompt (for the persona "A newly hired general counsel at TurpCo Industries")
TABLE_13 = (
    "As a newly hired General Counsel at TurpCo Industries, I need to understand the legal "
    "landscape of our operations. Could you provide a detailed report on the major legal risks and "
    "compliance issues our company might face in the next fiscal year, including any potential "
    "changes in legislation that could affect our business? Additionally, please include "
    "recommendations for mitigating these risks and ensuring our compliance with all relevant laws "
    "and regulations.")
RECIPE = Path(__file__).resolve().parents[1] / "selfpref" / "recipes" / "build" / "sao-paper.yaml"


def test_table_13_prompt_is_cut_at_the_cpu_cap_and_whole_in_the_paper_recipe(tiny_model_path):
    from selfpref.models.local import LocalModel
    from selfpref.pipelines.llms import make_llm
    from selfpref.pipelines.prompting import WritePrompt

    backend = LocalModel(str(tiny_model_path)).load()
    ids = backend.tokenizer(TABLE_13, add_special_tokens=False)["input_ids"]
    assert len(ids) == 79  # SmolLM2's tokenizer: longer than the CPU default of 64
    paper = BuildConfig(**load_build_recipe(RECIPE))
    assert paper.prompt_max_new_tokens >= 300 and paper.truncated_prompts == "drop"
    assert BuildConfig(method="sao").prompt_max_new_tokens == 64

    def parse(text, cap):
        llm = make_llm("transformers", str(tiny_model_path), model_id="tiny", step="write_prompt",
                       generation={"max_new_tokens": cap}).bind(backend)
        return WritePrompt(name="write_prompt", llm=llm).parse({"persona": "p"}, [[text]])

    cut = backend.tokenizer.decode(ids[:64])  # what a 64-token generation of it returns
    assert parse(cut, 64) == {"prompt": None, "drop_reason": "prompt_truncated", "refusal_text": None}
    assert parse(TABLE_13, paper.prompt_max_new_tokens) == {"prompt": TABLE_13, "drop_reason": None, "refusal_text": None}
    # a prompt the model ended itself has at most cap - 1 tokens (its end of turn took one)
    ended = backend.tokenizer.decode(ids[:63])
    assert parse(ended, 64) == {"prompt": ended.strip(), "drop_reason": None, "refusal_text": None}


def _sao(tmp_path, out, **options):
    script = tmp_path / "script.yaml"  # the scripted backend counts words as tokens
    script.write_text(yaml.safe_dump({
        "write_persona": ["A beekeeper.", "one two three four five six seven eight", "A chef.", "A pilot."],
        "write_prompt": ["How do I calm bees?", "a b c d e f g h", "How do I land?"],
        "answer_pair": ["Short.", "A much longer answer."], "self_judge": ["A", "B"]}))
    return build(BuildConfig(method="sao", backend="scripted", script=str(script), num_prompts=4,
                             prompt_max_new_tokens=8, **options), tmp_path / out)


def test_cut_personas_and_prompts_are_dropped_and_counted(tmp_path):
    _sao(tmp_path, "drop")
    df, record = read_dataset(tmp_path / "drop")
    # persona 2 is 8 words (the cap): dropped; prompt 2 ("a b c ... h") of persona 3 likewise
    assert record.funnel[0]["dropped"] == {"persona_truncated": 1, "prompt_truncated": 1}
    assert sorted(df["prompt"]) == ["How do I calm bees?", "How do I land?"]
    _sao(tmp_path, "keep", truncated_prompts="keep")
    kept, record = read_dataset(tmp_path / "keep")
    assert kept.height == 4 and not record.funnel[0]["dropped"]
    assert "a b c d e f g h" in kept["prompt"].to_list()


def test_cap_options_are_checked_up_front():
    with pytest.raises(SelfprefError, match="--truncated-prompts 'maybe': must be 'drop' or 'keep'"):
        BuildConfig(method="sao", truncated_prompts="maybe")
    with pytest.raises(SelfprefError, match="--prompt-max-new-tokens 0: must be at least 1"):
        BuildConfig(method="sao", prompt_max_new_tokens=0)
    # keeping cut prompts makes other parts, so a build does not resume across the two
    plain = BuildConfig(method="sao", backend="scripted", script="s.yaml")
    assert plain.fingerprint(["x"]) != BuildConfig(method="sao", backend="scripted", script="s.yaml",
                                                    truncated_prompts="keep").fingerprint(["x"])
