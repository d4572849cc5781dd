"""SSO's on-policy filter (from the authors' released code), for SSO rows.

Mean per-token log-probs of chosen (c) and rejected (r) under the plain query (o), the good
principle (p) and the bad principle (n). Keep rows with p_c > o_c > n_c and n_r > o_r > p_r;
of those, rows whose o_c and o_r are at or above their means; of those, rows whose (p_c - n_c)
and (n_r - p_r) exceed their means.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selfpref.filters.base import Batches, Filter, gather


def onpolicy_reasons(lp: dict[str, np.ndarray]) -> list[str | None]:
    """The three stages on precomputed mean log-probs (keys p_c o_c n_c p_r o_r n_r)."""
    n = len(lp["o_c"])
    reasons: list[str | None] = [None] * n
    order = (lp["p_c"] > lp["o_c"]) & (lp["o_c"] > lp["n_c"]) & (lp["n_r"] > lp["o_r"]) & (lp["o_r"] > lp["p_r"])
    for i in np.flatnonzero(~order):
        reasons[i] = "onpolicy_order"
    alive = order.copy()
    if alive.any():
        likely = (lp["o_c"] >= lp["o_c"][alive].mean()) & (lp["o_r"] >= lp["o_r"][alive].mean())
        for i in np.flatnonzero(alive & ~likely):
            reasons[i] = "onpolicy_low_likelihood"
        alive &= likely
    if alive.any():
        gap_c, gap_r = lp["p_c"] - lp["n_c"], lp["n_r"] - lp["p_r"]
        wide = (gap_c > gap_c[alive].mean()) & (gap_r > gap_r[alive].mean())
        for i in np.flatnonzero(alive & ~wide):
            reasons[i] = "onpolicy_small_gap"
    return reasons


class SSOOnPolicy(Filter):
    name = "sso_onpolicy"
    columns = ("prompt", "chosen", "rejected", "principle_chosen", "principle_rejected")

    def __init__(self, model: str | None = None, batch_size: int = 8, loaded: Any = None) -> None:
        self.model, self.batch_size = model, batch_size
        self._loaded = loaded

    def parameters(self) -> dict:
        from selfpref.models import model_label

        return {"model": model_label(self.model)}

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        from selfpref.models import load_causal_lm
        from selfpref.models.scoring import answer_logps

        rows = gather(batches)
        model, tok = self._loaded or load_causal_lm(self.model)
        contexts = {
            "o": [[{"role": "user", "content": p}] for p in rows["prompt"]],
            "p": [[{"role": "system", "content": s}, {"role": "user", "content": p}]
                  for s, p in zip(rows["principle_chosen"], rows["prompt"])],
            "n": [[{"role": "system", "content": s}, {"role": "user", "content": p}]
                  for s, p in zip(rows["principle_rejected"], rows["prompt"])],
        }
        lp = {}
        for ctx, prompts in contexts.items():
            for side, col in (("c", "chosen"), ("r", "rejected")):
                sums, counts = answer_logps(model, tok, prompts, rows[col].to_list(),
                                            batch_size=self.batch_size)
                lp[f"{ctx}_{side}"] = np.array(sums) / np.maximum(np.array(counts), 1)
        return onpolicy_reasons(lp)
