"""SAO's single judge call (``--judge-orders 1``) and SSO A.1.4's dispute filter: any judge, or the
mean, with SSO Table 15's leaderboard template."""

from __future__ import annotations

import polars as pl
import pytest

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset
from selfpref.filters import JudgeDispute
from selfpref.filters.runner import apply_filters
from selfpref.judges import make_judge
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build
from tests.build_files import prompts_file, script_file
from tests.test_filters import rows_from_prompts


class Probe:
    """Records what a forced-choice judge is shown; P(first shown) from a list, in order."""

    def __init__(self, probs):
        self.probs, self.chats, self.options = list(probs), [], []

    def option_probabilities(self, chats, options):
        self.chats += chats
        self.options.append(tuple(options))
        return [[p, 1 - p] for p in (self.probs.pop(0) for _ in chats)]


def test_one_order_is_one_call_with_a_first():
    probe = Probe([0.8])
    [j] = make_judge("logits", probe, model_label="p", orders=1).judge([("q", "ans-a", "ans-b")])
    assert len(probe.chats) == 1 and probe.chats[0][-1]["content"].index("ans-a") < \
        probe.chats[0][-1]["content"].index("ans-b")
    assert (j.p_a_first, j.score, j.consistent, j.orders) == (0.8, 0.8, None, 1)
    assert j.swapped().score == pytest.approx(0.2)
    two = make_judge("logits", Probe([0.8, 0.3]), model_label="p").judge([("q", "a", "b")])[0]
    assert (two.p_a_first, two.p_a_second, two.consistent) == (0.8, 0.7, True)
    with pytest.raises(SelfprefError, match="--judge-orders 3"):
        make_judge("length", orders=3)


def test_build_sao_with_one_judge_order_makes_one_call_per_pair(tmp_path):
    # two prompts, one call each: P(answers[0] better) 0.9 then 0.2
    script = script_file(tmp_path, answer_pair=["x1", "x2", "y1", "y2"],
                         option_probs={"self_judge": [0.9, 0.2]})
    build(BuildConfig(method="sao", backend="scripted", script=script, judge="logits", judge_orders=1,
                      prompts=prompts_file(tmp_path, ["p1", "p2"])), tmp_path / "out")
    df, rec = read_dataset(tmp_path / "out")
    rows = {r["prompt"]: r for r in df.iter_rows(named=True)}
    assert (rows["p1"]["chosen"], rows["p1"]["confidence"]) == ("x1", pytest.approx(0.9))
    assert (rows["p2"]["chosen"], rows["p2"]["confidence"]) == ("y2", pytest.approx(0.8))
    consistent = df.get_column("judge_consistent", default=None)  # not measured with one call
    assert consistent is None or consistent.to_list() == [None, None]
    assert rec.parameters["judge_orders"] == 1
    with pytest.raises(SelfprefError, match="--judge-orders 0"):
        BuildConfig(method="sao", judge_orders=0)
    with pytest.raises(SelfprefError, match="--judge-orders 1: only sao"):
        BuildConfig(method="sso", judge_orders=1)


def _pairs():
    return pl.DataFrame(rows_from_prompts(["q1", "q2"]))


def test_dispute_any_judge_drops_what_the_mean_keeps():
    # per pair, chosen shown first then second. Judge 1: q1 P(chosen) 0.9/0.9, q2 0.9/0.9.
    # Judge 2: q1 0.6/0.6, q2 P(chosen) = (0.3 + 0.5) / 2 = 0.4: it prefers the rejected answer.
    # any (A.1.4): q2 goes. mean: q2 is (0.9 + 0.4) / 2 = 0.65 >= 0.5, kept.
    def judges():
        return [Probe([0.9, 0.1, 0.9, 0.1]), Probe([0.6, 0.4, 0.3, 0.5])]

    kept, [report], _ = apply_filters(_pairs(), [JudgeDispute(["a", "b"], llms=judges())])
    assert kept["prompt"].to_list() == ["q1"] and report.dropped == {"judge_disputes": 1}
    assert report.parameters["rule"] == "any" and report.parameters["template"] == "sso"
    kept, [report], _ = apply_filters(_pairs(), [JudgeDispute(["a", "b"], llms=judges(), rule="mean")])
    assert kept["prompt"].to_list() == ["q1", "q2"] and report.dropped == {}
    with pytest.raises(SelfprefError, match="--dispute-rule 'all'"):
        JudgeDispute(["a"], rule="all")


def test_dispute_judges_see_sso_table_15_and_answer_m_or_M():
    probe = Probe([0.9, 0.1, 0.9, 0.1])
    apply_filters(_pairs(), [JudgeDispute(["a"], llms=[probe])])
    system, user = probe.chats[0]
    assert system["role"] == "system" and "create a leaderboard" in system["content"]
    assert '"model identifier": "m"' in user["content"] and '"model identifier": "M"' in user["content"]
    assert user["content"].rstrip().endswith("## Best Model Identifier")
    assert probe.options == [("m", "M")]
    # a text judge answers with the identifier: "M" names the second-shown answer
    from selfpref.models.scripted import ScriptedModel

    text = ScriptedModel(["m", "M", "M", "m"])  # q1: chosen both orders; q2: rejected both orders
    kept, [report], _ = apply_filters(_pairs(), [JudgeDispute(["j"], llms=[text], kind="text")])
    assert kept["prompt"].to_list() == ["q1"] and report.dropped == {"judge_disputes": 1}
    old = Probe([0.9, 0.1, 0.9, 0.1])
    apply_filters(_pairs(), [JudgeDispute(["a"], llms=[old], template="selfpref")])
    assert old.options == [("A", "B")] and len(old.chats[0]) == 1


def test_dispute_recipe_keys_and_flags():
    from selfpref.filters.apply import make_filter

    f = make_filter("judge_models", ["m"], {"judge": "rm", "dispute_rule": "mean",
                                            "judge_template": "selfpref"})
    assert (f.kind, f.rule, f.template) == ("rm", "mean", "selfpref")
