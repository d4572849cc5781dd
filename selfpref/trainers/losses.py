"""The papers' losses as pure functions of per-sequence log-probabilities.

Each takes tensors and returns per-example losses, so the tests check them against numbers
computed by hand from the equations, and the trainers only gather log-probs and call them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class SSOLogps:
    """Per-example *average* (per-token) log-probs of the six SSO sequences (SSO Eq. 4).

    chosen, rejected: y+ and y- given the plain query x; pos_chosen, pos_rejected: y+ and y- given
    x+ (good principle); neg_original, neg_chosen: y° and y+ given x- (bad principle).
    """

    chosen: Tensor
    rejected: Tensor
    pos_chosen: Tensor
    pos_rejected: Tensor
    neg_original: Tensor
    neg_chosen: Tensor


def _margin(policy_w: Tensor, policy_l: Tensor, ref_w: Tensor, ref_l: Tensor) -> Tensor:
    """h(w, l) = (pi_w - ref_w) - (pi_l - ref_l): the implicit reward margin."""
    return (policy_w - ref_w) - (policy_l - ref_l)


def ipo_pair_loss(h: Tensor, beta: float) -> Tensor:
    """IPO (Azar et al., Eq. 17): (h - 1/(2*beta))^2."""
    return (h - 1.0 / (2.0 * beta)) ** 2


def dpo_pair_loss(h: Tensor, beta: float) -> Tensor:
    """DPO: -log sigmoid(beta * h)."""
    return -F.logsigmoid(beta * h)


_BASE_LOSSES = {"ipo": ipo_pair_loss, "dpo": dpo_pair_loss}


def sso_loss(policy: SSOLogps, reference: SSOLogps, *, beta: float = 0.2, alpha: float = 0.66,
             theta: float = 0.1, base: str = "ipo", weight_scope: str = "all") -> Tensor:
    """SSO Eq. 1-5, per example.

    L_base = base(x, y+, y-); G = base(x+, y+, y-) + base(x-, y°, y+) (Eq. 3);
    W = sigmoid(-(alpha * avg_logp(y+|x) + (1 - alpha) * avg_logp(y-|x))) (Eq. 5), not detached:
    the paper keeps its gradient, unlike WPO. weight_scope "all" gives W * (theta*G + L_base)
    (Eq. 1); "steering" gives W * theta * G + L_base, as SSO's released training code does.
    """
    if base not in _BASE_LOSSES:
        raise ValueError(f"base={base!r}: use 'ipo' or 'dpo'")
    if weight_scope not in ("all", "steering"):
        raise ValueError(f"weight_scope={weight_scope!r}: use 'all' or 'steering'")
    pair = _BASE_LOSSES[base]
    l_base = pair(_margin(policy.chosen, policy.rejected, reference.chosen, reference.rejected), beta)
    g = (pair(_margin(policy.pos_chosen, policy.pos_rejected, reference.pos_chosen,
                      reference.pos_rejected), beta)
         + pair(_margin(policy.neg_original, policy.neg_chosen, reference.neg_original,
                        reference.neg_chosen), beta))
    w = torch.sigmoid(-(alpha * policy.chosen + (1.0 - alpha) * policy.rejected))
    if weight_scope == "all":
        return w * (theta * g + l_base)
    return w * theta * g + l_base


def selfee_refined_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor,
                        ref_rejected: Tensor, noisy: Tensor, *, beta: float = 0.1,
                        alpha: float = 0.1) -> Tensor:
    """SELFEE Eq. 10 with summed log-probs: label smoothing alpha on the pairs marked noisy.

    p = sigmoid(beta * h); loss = -((1 - alpha*z) log p + alpha*z log(1 - p)), z = noisy in {0, 1}.
    """
    z = noisy.to(policy_chosen.dtype)
    logits = beta * _margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    # log(1 - sigmoid(x)) = logsigmoid(-x), stable for large |x|.
    return -((1.0 - alpha * z) * F.logsigmoid(logits) + alpha * z * F.logsigmoid(-logits))


def extrapolated_logps(policy_logits: Tensor, ref_logits: Tensor, labels: Tensor,
                       lam: float) -> Tensor:
    """SELFEE Eq. 12: summed log-probs of ``labels`` under softmax((1+lam)*h_pi - lam*h_ref).

    ``labels[b, t]`` is the token predicted by ``logits[b, t]`` (already shifted); -100 is ignored.
    Only the labelled positions are normalised, so prompt and padding cost nothing.
    """
    mask = labels != -100
    mixed = (1.0 + lam) * policy_logits[mask] - lam * ref_logits[mask]
    if mixed.dtype in (torch.float16, torch.bfloat16):
        mixed = mixed.float()  # a 49k-way softmax in half precision loses the small probabilities
    token_logps = torch.log_softmax(mixed, dim=-1).gather(
        -1, labels[mask].unsqueeze(-1)).squeeze(-1)
    out = torch.zeros(labels.shape, dtype=token_logps.dtype, device=labels.device)
    out[mask] = token_logps
    return out.sum(dim=-1)


def selfee_confidence(ext_chosen: Tensor, ext_rejected: Tensor, ref_chosen: Tensor,
                      ref_rejected: Tensor, beta: float) -> Tensor:
    """SELFEE Eq. 11's p(y_w > y_l | x) under the extrapolated policy (Eq. 12)."""
    return torch.sigmoid(beta * _margin(ext_chosen, ext_rejected, ref_chosen, ref_rejected))
