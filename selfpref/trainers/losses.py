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
    """Per-example values for SSO's sequences: summed log-probs, or the answer-token counts.

    chosen, rejected: y+ and y- given the plain query x; pos_chosen, pos_rejected: y+ and y- given
    x+ (good principle); neg_original, neg_chosen: y° and y+ given x- (bad principle); pos_original:
    y° given x+ (only W', Eq. 6). A sequence the configuration does not use is None: G's four with
    theta 0, pos_original unless W' is asked for.
    """

    chosen: Tensor
    rejected: Tensor
    pos_chosen: Tensor | None = None
    pos_rejected: Tensor | None = None
    neg_original: Tensor | None = None
    neg_chosen: Tensor | None = None
    pos_original: Tensor | None = None


def _margin(policy_w: Tensor, policy_l: Tensor, ref_w: Tensor, ref_l: Tensor) -> Tensor:
    """h(w, l) = (pi_w - ref_w) - (pi_l - ref_l): the implicit reward margin."""
    return (policy_w - ref_w) - (policy_l - ref_l)


def ipo_pair_loss(h: Tensor, beta: float) -> Tensor:
    """IPO (Azar et al., Eq. 17): (h - 1/(2*beta))^2."""
    return (h - 1.0 / (2.0 * beta)) ** 2


def dpo_pair_loss(h: Tensor, beta: float) -> Tensor:
    """DPO: -log sigmoid(beta * h)."""
    return -F.logsigmoid(beta * h)


# base loss -> (pair loss, whether its log-probs are per-token averages). IPO averages, as TRL's IPO
# does (the IPO authors' normalisation); DPO sums, as vanilla DPO and SSO's released trainer do.
_BASE_LOSSES = {"ipo": (ipo_pair_loss, True), "dpo": (dpo_pair_loss, False)}
SSO_WEIGHTS = ("eq5", "eq6", "none")


def _avg(logps: SSOLogps, lengths: SSOLogps, name: str) -> Tensor:
    """pi~(y|x) = log pi(y|x) / |y| (SSO Eq. 4)."""
    return getattr(logps, name) / getattr(lengths, name).clamp(min=1)


def sso_weight(policy: SSOLogps, lengths: SSOLogps, *, alpha: float = 0.66, weight: str = "eq5") -> Tensor:
    """W of SSO Eq. 5, W' of Eq. 6, or 1 ('none', SSO Table 12's 'w/o W'); never detached.

    eq5: sigmoid(-(alpha * pi~(y+|x) + (1 - alpha) * pi~(y-|x)));
    eq6: sigmoid(-(alpha * pi~(y°|x+) + (1 - alpha) * pi~(y°|x-))), pi~ the average log-prob (Eq. 4).
    """
    if weight == "eq5":
        a, b = _avg(policy, lengths, "chosen"), _avg(policy, lengths, "rejected")
    elif weight == "eq6":
        if policy.pos_original is None or policy.neg_original is None:
            raise ValueError("weight='eq6' needs the log-probs of y° given x+ and given x-")
        a, b = _avg(policy, lengths, "pos_original"), _avg(policy, lengths, "neg_original")
    elif weight == "none":
        return torch.ones_like(policy.chosen)
    else:
        raise ValueError(f"weight={weight!r}: use one of {', '.join(SSO_WEIGHTS)}")
    return torch.sigmoid(-(alpha * a + (1.0 - alpha) * b))


def sso_loss(policy: SSOLogps, reference: SSOLogps, lengths: SSOLogps, *, beta: float = 0.2,
             alpha: float = 0.66, theta: float = 0.1, base: str = "ipo", weight: str = "eq5",
             weight_scope: str = "all") -> Tensor:
    """SSO Eq. 1-6, per example, from *summed* log-probs and the answers' token counts.

    L_base = base(x, y+, y-); G = base(x+, y+, y-) + base(x-, y°, y+) (Eq. 3); the weight is
    ``sso_weight`` (Eq. 5, Eq. 6 or 1). The IPO base uses per-token averages; the DPO base uses
    sums, so SSO with theta 0 and W = 1 is vanilla DPO (SSO A.1.2); W always uses averages (Eq. 4).
    weight_scope "all" gives W * (theta*G + L_base) (Eq. 1); "steering" gives W * theta * G +
    L_base, as SSO's released training code does. theta 0 (SSO Table 12's 'w/o G') skips G.
    """
    if base not in _BASE_LOSSES:
        raise ValueError(f"base={base!r}: use 'ipo' or 'dpo'")
    if weight_scope not in ("all", "steering"):
        raise ValueError(f"weight_scope={weight_scope!r}: use 'all' or 'steering'")
    pair, average = _BASE_LOSSES[base]

    def h(win: str, lose: str) -> Tensor:
        def lp(logps: SSOLogps, name: str) -> Tensor:
            return _avg(logps, lengths, name) if average else getattr(logps, name)

        return _margin(lp(policy, win), lp(policy, lose), lp(reference, win), lp(reference, lose))

    l_base = pair(h("chosen", "rejected"), beta)
    g = pair(h("pos_chosen", "pos_rejected"), beta) + pair(h("neg_original", "neg_chosen"), beta) \
        if theta != 0 else torch.zeros_like(l_base)
    w = sso_weight(policy, lengths, alpha=alpha, weight=weight)
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


def simpo_loss(chosen_logps: Tensor, rejected_logps: Tensor, chosen_lengths: Tensor,
               rejected_lengths: Tensor, *, beta: float = 10.0, gamma: float = 3.0,
               label_smoothing: float = 0.0) -> Tensor:
    """SimPO (SAO Eq. 5-7), per example, from *summed* log-probs and the answers' token counts.

    r(x, y) = beta / |y| * log M(y|x) (Eq. 5); p(y_w > y_l | x) = sigmoid(r_w - r_l - gamma) (Eq. 6);
    loss = -log p (Eq. 7). No reference model. ``label_smoothing`` e (0 in SimPO) gives the
    conservative form -(1 - e) log p - e log(1 - p), as TRL's CPO trainer offers it.
    """
    z = beta * chosen_logps / chosen_lengths.clamp(min=1) - beta * rejected_logps / rejected_lengths.clamp(min=1) - gamma
    # log(1 - sigmoid(z)) = logsigmoid(-z), stable for large |z|.
    return -(1.0 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)


def orpo_log_odds_ratio(chosen_avg_logps: Tensor, rejected_avg_logps: Tensor) -> Tensor:
    """ORPO's log odds ratio log(odds(y_w|x) / odds(y_l|x)), odds(y|x) = P(y|x) / (1 - P(y|x)).

    P(y|x) = exp(average per-token log-prob of y) (ORPO's length-normalised likelihood), so
    log odds = avg - log(1 - exp(avg)); computed in float32 or wider, log1p(-exp) stays finite.
    """
    a = chosen_avg_logps.to(torch.promote_types(chosen_avg_logps.dtype, torch.float32))
    b = rejected_avg_logps.to(a.dtype)
    return (a - b) - (torch.log1p(-torch.exp(a)) - torch.log1p(-torch.exp(b)))


def orpo_loss(chosen_avg_logps: Tensor, rejected_avg_logps: Tensor, chosen_nll: Tensor | float, *,
              lam: float = 0.1) -> Tensor:
    """ORPO (Hong et al. 2024, Eq. 6-7), per example: L_SFT + lambda * L_OR.

    L_OR = -log sigmoid(log odds ratio); L_SFT = ``chosen_nll``, the chosen answer's negative
    log-likelihood (per example, or one batch value broadcast, as the trainer passes it).
    """
    return chosen_nll - lam * F.logsigmoid(orpo_log_odds_ratio(chosen_avg_logps, rejected_avg_logps))


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
