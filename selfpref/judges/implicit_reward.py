"""Implicit-reward preference labels (SELFEE §4.1, Eq. 7-8) as a pure function.

Lives left of pipelines and trainers: the selfee pipeline labels pairs with it and the trainers'
tests check against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RewardLabel:
    first_is_chosen: bool | None  # None: equal rewards (a tie; the pair carries no label)
    reward_first: float
    reward_second: float
    margin: float  # reward_chosen - reward_rejected, >= 0
    confidence: float  # sigmoid(margin) = p(chosen > rejected | x), Eq. 7


def implicit_reward_label(logp_policy_1: float, logp_policy_2: float, logp_ref_1: float,
                          logp_ref_2: float, beta: float = 0.1) -> RewardLabel:
    """Eq. 7-8: r = beta * (log pi(y|x) - log pi_ref(y|x)) with summed log-probs; higher wins.

    With no reference model (SELFEE Table 5's reference-free judgment) pass 0.0 for both
    reference log-probs and per-token averaged policy log-probs.
    """
    r1 = beta * (logp_policy_1 - logp_ref_1)
    r2 = beta * (logp_policy_2 - logp_ref_2)
    if r1 == r2:
        return RewardLabel(None, r1, r2, 0.0, 0.5)
    margin = abs(r1 - r2)
    return RewardLabel(r1 > r2, r1, r2, margin, 1.0 / (1.0 + math.exp(-margin)))
