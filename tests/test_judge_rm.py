"""The reward-model judge (``--judge rm``): Bradley-Terry P from two rewards, and SSO's loop on the
tiny model: data -> `train rm` -> that reward model labels the next build, with no conversion."""

from __future__ import annotations

import functools
import math

import pytest

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset
from selfpref.data.store import BuildRecord, write_dataset
from selfpref.judges import make_judge
from selfpref.judges.reward import RewardJudge, bradley_terry
from tests.build_files import prompts_file


class Rewards:
    """A scripted reward model: a fixed reward per answer text, and a count of what it scored."""

    label = "scripted-rm"

    def __init__(self, table):
        self.table, self.scored = table, []

    def rewards(self, chats):
        self.scored += [c[-1]["content"] for c in chats]
        return [self.table[c[-1]["content"]] for c in chats]


def test_p_is_sigmoid_of_the_reward_difference_by_hand():
    # r_A = 2.0, r_B = 0.5: P(A better) = 1 / (1 + e^-1.5) = 0.8175744761936437 (by hand)
    judge = RewardJudge(Rewards({"good": 2.0, "bad": 0.5}))
    [j] = judge.judge([("q?", "good", "bad")])
    assert j.p_a_first == pytest.approx(0.8175744761936437, abs=1e-12)
    assert j.p_a_second == pytest.approx(0.8175744761936437, abs=1e-12)  # order does not matter
    assert j.consistent is True and j.raw == ("rewards 2 vs 0.5", "rewards 0.5 vs 2")
    [k] = judge.judge([("q?", "bad", "good")])
    assert k.score == pytest.approx(1 - 0.8175744761936437, abs=1e-12)
    # equal rewards: a tie in both orders; a huge difference does not overflow
    assert RewardJudge(Rewards({"x": 1.0, "y": 1.0})).judge([("q", "x", "y")])[0].score == 0.5
    assert bradley_terry(-800.0, 800.0) == 0.0 and bradley_terry(800.0, -800.0) == 1.0


def test_each_answer_is_scored_once_for_both_orders():
    scorer = Rewards({"a": 1.0, "b": 0.0, "c": -1.0})
    RewardJudge(scorer).judge([("q", "a", "b"), ("q", "a", "c")])
    assert sorted(scorer.scored) == ["a", "b", "c"]  # 'a' shared, each once, not 8 presentations


def test_rm_judge_errors_are_one_line(tmp_path):
    with pytest.raises(SelfprefError, match="--judge rm needs --judge-model"):
        make_judge("rm")
    with pytest.raises(SelfprefError, match="--judge-model .*no-such"):
        make_judge("rm", str(tmp_path / "no-such"))
    with pytest.raises(SelfprefError, match="--aspects"):
        RewardJudge(Rewards({}), aspects="depth")


@pytest.fixture(scope="module")
def trained_rm(tiny_model_path, tmp_path_factory):
    """A reward model written by `selfpref train rm` on human-labelled toy pairs."""
    from selfpref.data.schema import make_row
    from selfpref.trainers.run import train

    root = tmp_path_factory.mktemp("rm")
    rows = [make_row(f"Say something {i}", "yes yes yes yes", f"no {i}", method="import",
                     generator="toy", labeler="human") for i in range(8)]
    write_dataset(rows, root / "toy", BuildRecord(name="toy", method="import"))
    train("rm", str(root / "toy"), root / "rm", model=str(tiny_model_path), max_steps=2,
          per_device_train_batch_size=8, learning_rate=5e-3, seed=0)
    return root / "rm"


@functools.lru_cache(maxsize=2)
def _loaded(path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoTokenizer.from_pretrained(path), AutoModelForSequenceClassification.from_pretrained(path).eval()


def _direct_reward(path, prompt, answer):
    """The reward as `train rm`'s own test reads it: the chat template, one forward."""
    import torch

    tok, rm = _loaded(path)
    text = tok.apply_chat_template([{"role": "user", "content": prompt},
                                    {"role": "assistant", "content": answer}], tokenize=False)
    with torch.no_grad():
        return rm(**tok(text, return_tensors="pt")).logits[0, 0].item()


def test_a_trained_rm_labels_the_next_build(tmp_path, tiny_model_path, trained_rm, monkeypatch):
    from selfpref.datacards import card_writer
    from selfpref.models.reward import RewardModel
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build

    loads, real = [], RewardModel.load
    monkeypatch.setattr(RewardModel, "load",
                        lambda self: (loads.append(self.ref) if self.model is None else None) or real(self))
    build(BuildConfig(method="sao", model=str(tiny_model_path), judge="rm", judge_model=str(trained_rm),
                      prompts=prompts_file(tmp_path, ["q1?", "q2?"]), chunk_size=1,
                      max_new_tokens=6), tmp_path / "out", card=card_writer(license=None, separability=False))
    assert loads == [str(trained_rm)]  # two chunks, one load
    df, rec = read_dataset(tmp_path / "out")
    assert df.height >= 1 and set(df["labeler"]) == {f"rm:{trained_rm}"}
    assert rec.models["judge"].startswith(f"rm:{trained_rm}")
    for row in df.iter_rows(named=True):
        r_c, r_r = (_direct_reward(trained_rm, row["prompt"], row[s]) for s in ("chosen", "rejected"))
        assert r_c > r_r  # the chosen answer is the one the reward model scores higher
        first = row["judge_raw"][0].split()
        assert sorted([float(first[1]), float(first[3])]) == pytest.approx(sorted([r_c, r_r]), abs=1e-4)
        assert row["confidence"] == pytest.approx(1 / (1 + math.exp(-(r_c - r_r))), abs=1e-4)
        assert row["judge_consistent"] is True


def test_rm_batches_sorted_by_length_in_input_order(trained_rm):
    from selfpref.models.reward import RewardModel

    model = RewardModel(str(trained_rm), batch_size=2)
    chats = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "word " * n}]
             for n in (9, 1, 5, 3, 7)]
    batched = model.rewards(chats)
    assert model.forwards == 3  # 5 conversations, batches of 2
    alone = RewardModel(str(trained_rm), batch_size=1).rewards(chats)
    assert batched == pytest.approx(alone, abs=1e-4)  # right padding changes no score
    assert alone[0] == pytest.approx(_direct_reward(trained_rm, "q", "word " * 9), abs=1e-4)


def test_dispute_filter_and_eval_take_a_trained_rm(tmp_path, trained_rm):
    import polars as pl

    from selfpref.data.schema import make_row
    from selfpref.eval.run import EvalConfig, ModelPool, build_judge
    from selfpref.filters import JudgeDispute
    from selfpref.filters.runner import apply_filters

    rows = [make_row("Say something 1", "yes yes yes yes", "no 1", method="import", generator="t", labeler="h"),
            make_row("Say something 2", "no 2", "yes yes yes yes", method="import", generator="t", labeler="h")]
    r = {(p, a): _direct_reward(trained_rm, p, a) for p, a in
         [("Say something 1", "yes yes yes yes"), ("Say something 1", "no 1"),
          ("Say something 2", "yes yes yes yes"), ("Say something 2", "no 2")]}
    expected = [p for p, c, rj in (("Say something 1", "yes yes yes yes", "no 1"),
                                   ("Say something 2", "no 2", "yes yes yes yes")) if r[(p, c)] >= r[(p, rj)]]
    kept, [report], _ = apply_filters(pl.DataFrame(rows), [JudgeDispute([str(trained_rm)], kind="rm")])
    assert kept["prompt"].to_list() == expected and report.parameters["judge"] == "rm"
    cfg = EvalConfig(output=str(tmp_path / "ev"), model_b="default", judge="rm", judge_model=str(trained_rm))
    assert build_judge(cfg, ModelPool(8)).label == f"rm:{trained_rm}"
