"""`selfpref judge check`: a judge against human labels, with figures checked by hand, the length
rule as a known-bias control, and any layout `import` reads."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selfpref import SelfprefError
from selfpref.cli import app
from selfpref.eval.judge_check import JudgeCheckConfig, accuracy_figures, run_judge_check
from selfpref.judges.bias import bias_report
from selfpref.judges.reward import RewardJudge
from tests.judge_pairs import PAIRS, write_pairs


def test_figures_by_hand():
    # four pairs, P(chosen better) with chosen shown first / second:
    #   1: 0.9 / 0.8 -> right, consistent        2: 0.6 / 0.3 -> mean 0.45, wrong, inconsistent
    #   3: 0.5 / 0.5 -> tie (counts half)         4: 0.2 / 0.1 -> wrong, consistent
    # accuracy = (1 + 0 + 0.5 + 0) / 4 = 37.5; chosen first: (1 + 1 + .5 + 0) / 4 = 62.5;
    # chosen second: (1 + 0 + .5 + 0) / 4 = 37.5; consistency 2/4; ties 1/4.
    f = accuracy_figures([0.9, 0.6, 0.5, 0.2], [0.8, 0.3, 0.5, 0.1], [10, 5, 7, 3], [5, 9, 7, 8],
                         bootstrap=200, seed=1)
    assert (f["accuracy"], f["accuracy_chosen_first"], f["accuracy_chosen_second"]) == (37.5, 62.5, 37.5)
    assert (f["consistency"], f["ties"]) == (50.0, 25.0)
    # chosen longer: pair 1 (right) -> 100; chosen shorter: pairs 2, 4 (wrong) -> 0; same: pair 3
    assert f["by_length_diff"]["chosen_longer"] == {"n": 1, "accuracy": 100.0}
    assert f["by_length_diff"]["chosen_shorter"] == {"n": 2, "accuracy": 0.0}
    assert f["by_length_diff"]["same_length"] == {"n": 1, "accuracy": 50.0}
    lo, hi = f["ci95"]
    assert 0 <= lo <= 37.5 <= hi <= 100
    # position: decided single-order verdicts, chosen first in order 1 and second in order 2.
    # order 1: 0.9 first, 0.6 first, 0.2 second; order 2: 0.8 -> first shown (rejected) lost,
    # 0.3 -> first won, 0.1 -> first won: 4 of 6 for the first-shown answer.
    assert f["bias"]["first_shown"] == pytest.approx(400 / 6)
    # length: decided pairs of unequal length: 1 (longer won), 2 (rejected, the longer, won),
    # 4 (rejected, the longer, won): 3 of 3 for the longer answer.
    assert f["bias"]["longer"] == 100.0 and f["bias"]["longer_n"] == 3


def test_bias_report_one_order():
    r = bias_report([0.9, 0.1, 0.7], None, [3, 3, 1], [1, 5, 4])
    assert r["consistency"] is None and r["first_shown"] == pytest.approx(200 / 3)
    assert r["longer"] == pytest.approx(200 / 3)  # pairs 1, 2 the longer won; pair 3 the shorter


class KnowsFacts:
    """A scripted reward model that knows the right answers of `PAIRS`."""

    right = {c for _, c, _ in PAIRS}

    def rewards(self, chats):
        return [1.0 if c[-1]["content"] in self.right else -1.0 for c in chats]


def test_a_judge_that_knows_scores_100_and_the_length_rule_shows_its_bias(tmp_path):
    data = write_pairs(tmp_path)
    good = run_judge_check(JudgeCheckConfig(data=str(data), output=str(tmp_path / "rm"), bootstrap=100),
                           judge=RewardJudge(KnowsFacts(), model_label="oracle"))
    assert good["n"] == len(PAIRS) and good["accuracy"] == 100.0 and good["ci95"] == [100.0, 100.0]
    assert good["consistency"] == 100.0 and good["ties"] == 0.0
    # length (shorter wins): right exactly where the chosen answer is the shorter one
    short = run_judge_check(JudgeCheckConfig(data=str(data), output=str(tmp_path / "len"),
                                             judge="length", bootstrap=0))
    assert short["by_length_diff"]["chosen_shorter"] == {"n": 12, "accuracy": 100.0}
    assert short["by_length_diff"]["chosen_longer"] == {"n": 12, "accuracy": 0.0}
    assert short["accuracy"] == 50.0 and short["bias"]["longer"] == 0.0
    assert short["bias"]["length_coef"] < 0  # the fit sees shorter answers win
    files = sorted(p.name for p in (tmp_path / "len").iterdir())
    assert files == ["accuracy.png", "judge_check.json", "judgments.parquet"]


def test_cli_judge_check_reads_hh_rlhf_and_max_pairs(tmp_path):
    data = write_pairs(tmp_path, "hh")
    result = CliRunner().invoke(app, ["judge", "check", str(data), "-o", str(tmp_path / "out"),
                                      "--judge", "length:longer", "--max-pairs", "6", "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "judge_check.json").read_text())
    # the first six pairs' chosen answers are all shorter: the longer-wins rule misses every one
    assert summary["n"] == 6 and summary["accuracy"] == 0.0
    assert summary["judge"]["label"] == "length:longer" and "accuracy" in result.output
    with pytest.raises(SelfprefError, match="--max-pairs 0"):
        JudgeCheckConfig(data=str(data), output=str(tmp_path / "x"), max_pairs=0)


def test_bias_lines_in_a_card_and_self_preference_by_hand():
    from selfpref.judges.base import Judgment
    from selfpref.judges.bias import LINES, bias_markdown, judge_report

    # a panel of two: "me" wrote side A; "other" did not. P(A better) per pair, both orders:
    me = [Judgment(0.9, 0.9, ("", "")), Judgment(0.8, 0.6, ("", "")), Judgment(0.4, 0.2, ("", ""))]
    other = [Judgment(0.6, 0.6, ("", "")), Judgment(0.3, 0.3, ("", "")), Judgment(0.2, 0.2, ("", ""))]
    panel = [Judgment((a.p_a_first + b.p_a_first) / 2, (a.p_a_second + b.p_a_second) / 2, ("", ""),
                      members={"me": a, "other": b}) for a, b in zip(me, other)]
    report = judge_report(panel, [5, 5, 5], [3, 3, 3], own_side={"me": "a"})
    # me: A wins 2 of 3 -> 66.7; other: A wins 1 of 3 -> 33.3
    assert report["self_preference"]["me"]["own_judge"] == pytest.approx(200 / 3)
    assert report["self_preference"]["me"]["other_judge"] == pytest.approx(100 / 3)
    text = bias_markdown(report)
    for line in ("consistency", "first_shown", "longer", "self_preference"):
        assert LINES[line] in text
    assert "me vs other" in text


def test_eval_knows_which_side_a_judge_wrote():
    from selfpref.judges.bias import generator_sides

    sides = {"a": {"source": "model", "model": "m"}, "b": {"source": "answers", "path": "b.jsonl"}}
    assert generator_sides({"label": "logits:m", "model": "m"}, sides) == {"logits:m": "a"}
    panel = {"label": "panel", "members": [{"label": "x", "model": "other"}, {"label": "y", "model": "m"}]}
    assert generator_sides(panel, sides) == {"y": "a"}


def test_judge_check_of_a_panel_reports_each_member(tmp_path):
    from selfpref.judges.kinds import LengthJudge
    from selfpref.judges.panel import PanelJudge

    data = write_pairs(tmp_path)
    panel = PanelJudge([RewardJudge(KnowsFacts(), model_label="oracle"), LengthJudge()], "mean")
    s = run_judge_check(JudgeCheckConfig(data=str(data), output=str(tmp_path / "p"), bootstrap=0), judge=panel)
    assert s["members"]["rm:oracle"]["accuracy"] == 100.0 and s["members"]["length"]["accuracy"] == 50.0
    # they agree on the 12 pairs whose chosen answer is the shorter: 50%
    assert s["bias"]["panel"]["pairwise"][0]["agreement"] == 50.0


def test_implicit_reward_judge_by_hand():
    from selfpref.judges.reward import ImplicitRewardJudge

    class LogPs:
        def __init__(self, table):
            self.table = table

        def answer_logps(self, prompts, answers):
            return [self.table[a][0] for a in answers], [self.table[a][1] for a in answers]

    policy = LogPs({"good": (-4.0, 4), "bad": (-9.0, 3)})
    reference = LogPs({"good": (-6.0, 4), "bad": (-8.0, 3)})
    # r_good = 0.1 * (-4 + 6) = 0.2, r_bad = 0.1 * (-9 + 8) = -0.1: P = sigmoid(0.3) = 0.574442516811659
    [j] = ImplicitRewardJudge(policy, reference, beta=0.1).judge([("q", "good", "bad")])
    assert j.score == pytest.approx(0.574442516811659, abs=1e-12)
    # reference-free (SELFEE Table 5): per-token means, -1.0 vs -3.0 -> sigmoid(0.1 * 2.0)
    [k] = ImplicitRewardJudge(policy, beta=0.1).judge([("q", "good", "bad")])
    assert k.score == pytest.approx(0.549833997312478, abs=1e-12)
