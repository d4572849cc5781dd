"""Per-sequence log-probs of completions, shared by the SSO, SimPO and ORPO trainers."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def token_logps(model: Any, input_ids: Tensor, attention_mask: Tensor, scored: Tensor) -> Tensor:
    """Per-token log-probs of the tokens marked in ``scored`` (0 elsewhere), shifted: column t
    is the log-prob of token t + 1.

    Uses TRL's fused LM head (patched on by DPOTrainer), which projects only the scored
    positions through the 49k-way head instead of materialising every position's logits.
    """
    labels = input_ids.masked_fill(scored == 0, -100)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                fused_lm_head=True, use_cache=False)
    mask = scored[:, 1:].to(out.log_probs.dtype)
    return out.log_probs[:, -mask.size(1):] * mask


def completion_logps(model: Any, input_ids: Tensor, attention_mask: Tensor,
                     completion_mask: Tensor) -> tuple[Tensor, Tensor]:
    """(summed log-probs of each row's completion tokens, number of those tokens)."""
    per_token = token_logps(model, input_ids, attention_mask, completion_mask)
    return per_token.sum(dim=1), completion_mask[:, 1:].to(per_token.dtype).sum(dim=1)


def completion_logps_by_group(model: Any, input_ids: Tensor, attention_mask: Tensor,
                              completion_mask: Tensor, *, groups: int) -> tuple[Tensor, Tensor]:
    """``completion_logps`` over ``groups`` equal row blocks, each cut to its own longest row.

    SSO's sequence kinds differ in length (x+ / x- carry a system prompt, y- and y° are often
    short); one forward over all of them pads every row to the longest. Per-kind forwards hold
    only real tokens in the autograd graph: same values, less activation memory.
    """
    sums, counts = [], []
    for ids, att, comp in zip(input_ids.chunk(groups), attention_mask.chunk(groups),
                              completion_mask.chunk(groups)):
        width = int(att.sum(dim=1).max())
        total, n = completion_logps(model, ids[:, :width], att[:, :width], comp[:, :width])
        sums.append(total)
        counts.append(n)
    return torch.cat(sums), torch.cat(counts)
