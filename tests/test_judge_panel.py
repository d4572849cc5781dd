"""Panels of judges: the combining rules, Cohen's and Fleiss' kappa by hand, one load per distinct
model, and eval with a panel (agreement and bias in eval.json)."""

from __future__ import annotations

import json

import pytest

from selfpref import SelfprefError
from selfpref.judges.agreement import cohen_kappa, fleiss_kappa
from selfpref.judges.factory import judge_kinds, make_panel
from selfpref.judges.kinds import LogitsJudge
from selfpref.judges.panel import PanelJudge


class Fixed:
    """P(first shown better) per call, from a list (both orders of each pair, in order)."""

    def __init__(self, probs):
        self.probs = list(probs)

    def option_probabilities(self, chats, options):
        return [[p, 1 - p] for p in (self.probs.pop(0) for _ in chats)]


def _judge(probs, name):
    return LogitsJudge(Fixed(probs), model_label=name)


def test_cohen_kappa_by_hand():
    a = ["A", "A", "B", "B", "A", "tie"]
    b = ["A", "B", "B", "B", "A", "A"]
    # p_o = 4/6; p_e = (3/6)(3/6) + (2/6)(3/6) + (1/6)(0) = 5/12; kappa = (8/12 - 5/12) / (7/12) = 3/7
    assert cohen_kappa(a, b) == pytest.approx(3 / 7)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(["A", "A"], ["A", "A"]) is None  # p_e = 1: undefined


def test_fleiss_kappa_by_hand():
    ratings = [["A", "A", "A"], ["A", "A", "B"], ["B", "B", "B"], ["A", "B", "tie"]]
    # P_i = 1, 1/3, 1, 0 -> P_bar = 7/12; p_A = 6/12, p_B = 5/12, p_tie = 1/12 -> P_e = 62/144;
    # kappa = (84/144 - 62/144) / (82/144) = 11/41
    assert fleiss_kappa(ratings) == pytest.approx(11 / 41)


def test_panel_rules():
    # one pair, both orders: judge 1 P(A) 0.9 / 0.8 (A), judge 2 0.7 / 0.6 (A), judge 3 0.2 / 0.4 (B)
    def panel(rule):
        return PanelJudge([_judge([0.9, 0.2], "j1"), _judge([0.7, 0.4], "j2"), _judge([0.2, 0.6], "j3")], rule)

    [mean] = panel("mean").judge([("q", "a", "b")])
    assert (mean.p_a_first, mean.p_a_second) == (pytest.approx(0.6), pytest.approx(0.6))
    assert [round(m.score, 6) for m in mean.members.values()] == [0.85, 0.65, 0.3]
    assert json.loads(mean.raw[0]) == {"logits:j1": "0.900000", "logits:j2": "0.700000", "logits:j3": "0.200000"}
    [major] = panel("majority").judge([("q", "a", "b")])
    assert major.score == pytest.approx(2 / 3)
    [unan] = panel("unanimous").judge([("q", "a", "b")])
    assert unan.score == 0.5  # j3 disagrees: no verdict
    all_agree = PanelJudge([_judge([0.9, 0.2], "j1"), _judge([0.7, 0.4], "j2")], "unanimous")
    assert all_agree.judge([("q", "a", "b")])[0].score == pytest.approx(0.75)
    with pytest.raises(SelfprefError, match="--panel 'vote'"):
        PanelJudge([_judge([], "a"), _judge([], "b")], "vote")


def test_kinds_per_model_and_one_load_per_distinct_model():
    assert judge_kinds("text,rm", 2) == ["text", "rm"] and judge_kinds("logits", 3) == ["logits"] * 3
    with pytest.raises(SelfprefError, match="one kind for every judge model"):
        judge_kinds("text,rm", 3)
    with pytest.raises(SelfprefError, match="a panel's judges are models"):
        judge_kinds("length", 2)
    loads = []

    def load(kind, ref):
        loads.append((kind, ref))
        return Fixed([0.9, 0.1] * 4)

    panel = make_panel("logits,text", ["m1", "m1"], load=load)
    assert [j.kind for j in panel.judges] == ["logits", "text"]
    # the factory's own cache: one causal LM for the text and logits judges of one model
    panel = make_panel("logits,text", ["default", "default"])
    assert panel.judges[0].model is panel.judges[1].model


def test_eval_with_a_panel_reports_agreement_and_bias(tmp_path, tiny_model_path):
    from selfpref.eval.run import EvalConfig, ModelPool, build_judge, run_eval

    prompts = [f"q{i}" for i in range(4)]
    for side, answers in (("a", ["short", "x" * 30, "mid answer", "y"]), ("b", ["longer one", "z", "m", "w" * 9])):
        (tmp_path / f"{side}.jsonl").write_text("".join(
            json.dumps({"prompt": p, "answer": t}) + "\n" for p, t in zip(prompts, answers)))
    cfg = EvalConfig(output=str(tmp_path / "ev"), answers_a=str(tmp_path / "a.jsonl"),
                     answers_b=str(tmp_path / "b.jsonl"), judge_model=[str(tiny_model_path)] * 2,
                     judge="logits,text", judge_max_new_tokens=2, bootstrap=0)
    pool = ModelPool(8)
    judge = build_judge(cfg, pool)
    assert isinstance(judge, PanelJudge) and len(pool.models()) == 1  # one model, one load
    # judges 1 and 2 prefer A on every pair, judge 3 prefers B everywhere
    scripted = PanelJudge([_judge([0.9, 0.1] * 4, "j1"), _judge([0.8, 0.3] * 4, "j2"),
                           _judge([0.1, 0.9] * 4, "j3")], "majority")
    summary = run_eval(cfg, judge=scripted)
    panel = summary["judge_bias"]["panel"]
    # j1, j2 all A (kappa undefined: p_e = 1); j1 vs j3 never agree: p_o = 0, p_e = 1*0 + 0*1 = 0
    assert panel["pairwise"][0] == {"judges": ["logits:j1", "logits:j2"], "agreement": 100.0,
                                    "cohen_kappa": None}
    assert panel["pairwise"][1]["agreement"] == 0.0 and panel["pairwise"][1]["cohen_kappa"] == 0.0
    assert summary["judge_bias"]["consistency"] == 100.0 and summary["judge"]["rule"] == "majority"
    assert set(summary["judge_bias"]["members"]) == {"logits:j1", "logits:j2", "logits:j3"}
    import polars as pl

    row = pl.read_parquet(tmp_path / "ev" / "judgments.parquet").row(0, named=True)
    assert json.loads(row["judge_members"])["logits:j3"] == [pytest.approx(0.1), pytest.approx(0.1)]
    assert "Cohen's kappa" in (tmp_path / "ev" / "README.md").read_text()


def test_build_sao_with_a_panel_keeps_every_judges_p(tmp_path, tiny_model_path, monkeypatch):
    import selfpref.models.load as load
    from selfpref.data.refs import read_dataset
    from selfpref.datacards import card_writer
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build
    from tests.build_files import prompts_file

    loads, real = [], load.load_causal_lm
    monkeypatch.setattr(load, "load_causal_lm", lambda ref, *a, **k: loads.append(ref) or real(ref, *a, **k))
    build(BuildConfig(method="sao", model=str(tiny_model_path), judge="logits,text",
                      judge_models=[str(tiny_model_path), str(tiny_model_path)], panel="mean",
                      judge_max_new_tokens=2, prompts=prompts_file(tmp_path, ["q1?", "q2?"]),
                      max_new_tokens=4), tmp_path / "out",
          card=card_writer(license=None, separability=False))
    assert loads == [str(tiny_model_path)]  # generator and both judges: one model, one load
    df, rec = read_dataset(tmp_path / "out")
    assert df["labeler"][0] == f"panel-mean:logits:{tiny_model_path}+text:{tiny_model_path}"
    for row in df.iter_rows(named=True):
        members = json.loads(row["judge_panel"])
        assert len(members) == 2  # every judge's P, toward the chosen answer, both orders
        mean_first = sum(v[0] for v in members.values()) / 2
        assert row["judge_p_chosen"][0] == pytest.approx(mean_first)
        assert sum(row["judge_p_chosen"]) / 2 >= 0.5  # the chosen answer is the panel's pick
    bias = rec.stats["judge_bias"]
    assert bias["n"] == df.height and len(bias["panel"]["pairwise"]) == 1
    card = (tmp_path / "out" / "README.md").read_text()
    assert "### Judge bias" in card and "Cohen's kappa" in card
    with pytest.raises(SelfprefError, match="one kind for every judge model"):
        BuildConfig(method="sao", judge="text,logits,rm", judge_models=["a", "b"])
