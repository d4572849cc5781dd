"""Pairwise judges: one verdict interface for the self-judge, the dispute filter and eval.

``make_judge(kind, model=...)`` gives a `PairwiseJudge`; ``judge.judge([(prompt, a, b), ...])``
asks each pair in both orders and returns one `Judgment` per pair (P(A better) per order, their
mean ``score``, ``consistent``, the raw outputs, and per-aspect judgments when asked).
"""

from selfpref.judges.base import Judgment, PairItem, PairwiseJudge, Shown, check_aspects
from selfpref.judges.factory import JUDGE_KINDS, judge_backend, local_judge_backend, make_judge
from selfpref.judges.kinds import LengthJudge, LogitsJudge, RandomJudge, TextJudge
from selfpref.judges.prompts import ASPECTS, JUDGE_TEMPLATE, judge_chat

__all__ = ["ASPECTS", "JUDGE_KINDS", "JUDGE_TEMPLATE", "Judgment", "LengthJudge", "LogitsJudge",
           "PairItem", "PairwiseJudge", "RandomJudge", "Shown", "TextJudge", "check_aspects",
           "judge_backend", "judge_chat", "local_judge_backend", "make_judge"]
