"""SAO Table 6's "w/o Criterion k": the ranking prompt without one of its four criteria."""

import pytest

from selfpref import SelfprefError
from selfpref.judges.prompts import CRITERIA, JUDGE_TEMPLATE, check_criteria, judge_chat


def test_the_default_prompt_names_the_four_criteria_as_before():
    assert CRITERIA == ("relevance", "accuracy", "completeness", "clarity")  # SAO §3.3's four
    assert "on relevance, accuracy, completeness and clarity, and decide" in JUDGE_TEMPLATE


def test_without_completeness_the_prompt_names_three():
    [turn] = judge_chat("Q?", "a1", "a2", criteria=check_criteria("clarity,relevance,accuracy"))
    assert "on relevance, accuracy and clarity, and decide" in turn["content"]
    assert "completeness" not in turn["content"]
    assert "[Response A]\na1" in turn["content"] and "[Response B]\na2" in turn["content"]


@pytest.mark.parametrize("bad", ["", "relevance,relevance", "helpfulness", ","])
def test_criteria_errors_name_the_flag(bad):
    with pytest.raises(SelfprefError, match="--judge-criteria"):
        check_criteria(bad)


def test_build_config_and_the_judge_step_carry_the_criteria(tmp_path):
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.sao import PairwiseSelfJudge

    cfg = BuildConfig(method="sao", judge="logits", judge_criteria="accuracy,relevance,clarity")
    assert cfg.judge_criteria == "relevance,accuracy,clarity"
    assert cfg.fingerprint(["q"]) != BuildConfig(method="sao", judge="logits").fingerprint(["q"])
    assert BuildConfig(method="sao").fingerprint(["q"]) == \
        BuildConfig(method="sao", judge_criteria=None).fingerprint(["q"])
    for bad in (dict(method="sso", judge_criteria="relevance"),
                dict(method="sao", judge="length", judge_criteria="relevance")):
        with pytest.raises(SelfprefError, match="--judge-criteria"):
            BuildConfig(**bad)
    assert PairwiseSelfJudge.model_fields["criteria"].default == list(CRITERIA)
    from selfpref.judges.pairwise import both_orders

    chats = both_orders("Q?", "a1", "a2", criteria=("relevance", "accuracy", "clarity"))
    assert len(chats) == 2 and all("completeness" not in c[-1]["content"] for c in chats)
    assert "[Response A]\na2" in chats[1][-1]["content"]  # the second order swaps them


def test_a_build_without_a_criterion_records_it(tmp_path):
    from selfpref.data.refs import read_dataset
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build
    from tests.build_files import prompts_file, script_file

    script = script_file(tmp_path, answer_pair=["short", "a longer answer"], self_judge=["A", "B"])
    build(BuildConfig(method="sao", backend="scripted", script=script, judge_criteria="relevance,clarity",
                      prompts=prompts_file(tmp_path, ["q1?", "q2?"])), tmp_path / "out")
    df, record = read_dataset(tmp_path / "out")
    assert df.height == 2 and record.parameters["judge_criteria"] == "relevance,clarity"
    assert "completeness" not in (tmp_path / "out" / "pipeline.yaml").read_text().split("criteria")[1][:80]


def test_a_judged_builds_bias_report_has_the_lc_length_coefficient():
    """The card's length line: the LC fit's coefficient, > 0 for a judge that favours length."""
    from selfpref.pipelines.sao import build_stats

    def row(chosen_len, rejected_len, p):
        return {"chosen": "x" * chosen_len, "rejected": "y" * rejected_len, "judge_consistent": True,
                "judge_p_chosen": [p, p]}

    # the more the chosen answer is longer, the surer the judge: a length-driven judge
    likes_length = [row(100 + d, 100, 0.5 + d / 250) for d in (10, 40, 80, 120)] + \
                   [row(100, 100 + d, 0.55) for d in (10, 40)]
    coef = build_stats(likes_length)["judge_bias"]["length_coef"]
    assert coef is not None and coef > 0
    indifferent = [row(100 + d, 100, 0.7) for d in (10, 40, 80)] + [row(100, 100 + d, 0.7) for d in (10, 40, 80)]
    assert abs(build_stats(indifferent)["judge_bias"]["length_coef"]) < 1e-9
