"""Pairwise judges: one verdict interface for the self-judge, the dispute filter and eval.

``make_judge(kind, model=...)`` gives a `PairwiseJudge` (text, logits, rm, length, random);
``make_panel(kinds, models, rule)`` several of them as one. ``judge.judge([(prompt, a, b), ...])``
asks each pair in both orders (``orders=1``: A first only) and returns one `Judgment` per pair
(P(A better) per order, their mean ``score``, ``consistent``, the raw outputs, per-aspect
judgments when asked, a panel's members). `bias` and `agreement` read a run's judgments.
"""

from selfpref.judges.base import Judgment, PairItem, PairwiseJudge, Shown, check_aspects
from selfpref.judges.factory import (
                                     JUDGE_KINDS,
                                     judge_backend,
                                     local_judge_backend,
                                     make_judge,
                                     make_panel,
)
from selfpref.judges.kinds import LengthJudge, LogitsJudge, RandomJudge, TextJudge
from selfpref.judges.panel import PanelJudge
from selfpref.judges.prompts import ASPECTS, JUDGE_TEMPLATE, judge_chat
from selfpref.judges.reward import RewardJudge

__all__ = ["ASPECTS", "JUDGE_KINDS", "JUDGE_TEMPLATE", "Judgment", "LengthJudge", "LogitsJudge",
           "PairItem", "PairwiseJudge", "PanelJudge", "RandomJudge", "RewardJudge", "Shown",
           "TextJudge", "check_aspects", "judge_backend", "judge_chat", "local_judge_backend",
           "make_judge", "make_panel"]
