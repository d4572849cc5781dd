"""Losses against numbers worked out by hand from the papers' equations."""

import math

import pytest
import torch

from selfpref.judges.implicit_reward import implicit_reward_label
from selfpref.trainers.losses import (
    SSOLogps,
    extrapolated_logps,
    orpo_log_odds_ratio,
    orpo_loss,
    selfee_confidence,
    selfee_refined_loss,
    simpo_loss,
    sso_loss,
)


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


# Summed log-probs and answer lengths; the per-token averages (SSO Eq. 4) are round numbers:
#   policy averages: chosen -1.0, rejected -2.0, pos_chosen -0.5, pos_rejected -2.5,
#                    neg_original -1.5, neg_chosen -1.0, pos_original -0.75
#   reference averages: chosen -1.2, rejected -1.8, pos_chosen -1.0, pos_rejected -2.0,
#                       neg_original -1.4, neg_chosen -1.1
LENGTHS = {"chosen": 10, "rejected": 4, "pos_chosen": 10, "pos_rejected": 4, "neg_original": 4, "neg_chosen": 10,
               "pos_original": 4}
POLICY = {"chosen": -10.0, "rejected": -8.0, "pos_chosen": -5.0, "pos_rejected": -10.0,
              "neg_original": -6.0, "neg_chosen": -10.0, "pos_original": -3.0}
REF = {"chosen": -12.0, "rejected": -7.2, "pos_chosen": -10.0, "pos_rejected": -8.0,
           "neg_original": -5.6, "neg_chosen": -11.0}


def logps(values, requires_grad=False):
    return SSOLogps(**{k: torch.tensor([v], dtype=torch.float64, requires_grad=requires_grad)
                       for k, v in values.items()})


def sso(policy=None, **kw):
    return sso_loss(policy or logps(POLICY), logps(REF), logps(LENGTHS), **kw)


# By hand, IPO base (averages; beta 0.2, so the IPO target 1/(2*beta) = 2.5):
#   h_base = (-1.0 + 1.2) - (-2.0 + 1.8) = 0.4   -> IPO (0.4 - 2.5)^2 = 4.41
#   h_pos  = (-0.5 + 1.0) - (-2.5 + 2.0) = 1.0   -> (1.0 - 2.5)^2 = 2.25
#   h_neg  = (-1.5 + 1.4) - (-1.0 + 1.1) = -0.2  -> (-0.2 - 2.5)^2 = 7.29
#   G = 9.54; W (Eq. 5) = sigmoid(-(0.66 * -1.0 + 0.34 * -2.0)) = sigmoid(1.34)
W = 1 / (1 + math.exp(-1.34))


def test_sso_ipo_eq1():
    assert sso().item() == pytest.approx(W * (0.1 * 9.54 + 4.41), rel=1e-12)


def test_sso_steering_scope():
    assert sso(weight_scope="steering").item() == pytest.approx(W * 0.1 * 9.54 + 4.41, rel=1e-12)


def test_sso_dpo_base_sums_log_probs():
    """SSO A.1.2: the DPO base is vanilla DPO, on summed log-probs; W still averages (Eq. 4-5)."""
    def dpo(h):
        return math.log(1 + math.exp(-0.2 * h))

    # sums: h_base = (-10 + 12) - (-8 + 7.2) = 2.8; h_pos = (-5 + 10) - (-10 + 8) = 7.0;
    #       h_neg = (-6 + 5.6) - (-10 + 11) = -1.4
    expected = W * (0.1 * (dpo(7.0) + dpo(-1.4)) + dpo(2.8))
    assert sso(base="dpo").item() == pytest.approx(expected, rel=1e-12)
    # theta 0 and W = 1: exactly DPO's -log sigmoid(beta * h) on sums
    assert sso(base="dpo", theta=0.0, weight="none").item() == pytest.approx(dpo(2.8), rel=1e-12)


def test_sso_eq6_weight():
    # W' = sigmoid(-(0.66 * avg(y°|x+) + 0.34 * avg(y°|x-))) = sigmoid(-(0.66 * -0.75 + 0.34 * -1.5))
    #    = sigmoid(0.495 + 0.51) = sigmoid(1.005)
    w6 = 1 / (1 + math.exp(-1.005))
    p = logps(POLICY, requires_grad=True)
    loss = sso(p, weight="eq6")
    assert loss.item() == pytest.approx(w6 * (0.1 * 9.54 + 4.41), rel=1e-12)
    loss.sum().backward()
    # W' is not detached: y° given x+ enters the loss only through W'.
    # dL/d sum(y°|x+) = dW'/d avg * d avg/d sum * inner = -0.66 * W'(1 - W') / 4 * (0.1*9.54 + 4.41)
    expected = -0.66 * w6 * (1 - w6) / 4 * (0.1 * 9.54 + 4.41)
    assert p.pos_original.grad.item() == pytest.approx(expected, rel=1e-10)


def test_sso_ablations_table12():
    assert sso(weight="none").item() == pytest.approx(0.1 * 9.54 + 4.41, rel=1e-12)  # w/o W
    assert sso(theta=0.0).item() == pytest.approx(W * 4.41, rel=1e-12)  # w/o G
    assert sso(theta=0.0, weight="none").item() == pytest.approx(4.41, rel=1e-12)  # w/o W, G
    # without G the steering sequences are not needed at all
    base_only = SSOLogps(chosen=t(-10.0), rejected=t(-8.0))
    loss = sso_loss(base_only, SSOLogps(chosen=t(-12.0), rejected=t(-7.2)),
                    SSOLogps(chosen=t(10.0), rejected=t(4.0)), theta=0.0)
    assert loss.item() == pytest.approx(W * 4.41, rel=1e-12)


def test_sso_gradient_flows_through_w():
    p = logps(POLICY, requires_grad=True)
    sso(p).sum().backward()
    grad_with_w = p.chosen.grad.clone()
    # Same loss with W detached: the gradient on y+|x loses the dW/dpi term.
    from selfpref.trainers.losses import ipo_pair_loss

    q = logps(POLICY, requires_grad=True)
    w = torch.sigmoid(-(0.66 * q.chosen / 10 + 0.34 * q.rejected / 4)).detach()
    l_base = ipo_pair_loss((q.chosen / 10 + 1.2) - (q.rejected / 4 + 1.8), 0.2)
    (w * (0.1 * 0 + l_base)).sum().backward()  # G has no pi_chosen term
    assert not torch.allclose(grad_with_w, q.chosen.grad)
    # dL/d sum(y+|x) by hand, through the average (1/|y+| = 1/10): dW/d avg = -0.66 * W (1 - W);
    # inner = 0.1*G + L_base; d L_base / d avg = 2 (0.4 - 2.5) = -4.2 (G does not depend on it).
    expected = (-0.66 * W * (1 - W) * (0.1 * 9.54 + 4.41) + W * (-4.2)) / 10
    assert grad_with_w.item() == pytest.approx(expected, rel=1e-10)


def test_sso_rejects_unknown_options():
    with pytest.raises(ValueError, match="base"):
        sso(base="kto")
    with pytest.raises(ValueError, match="weight"):
        sso(weight="eq7")


def test_selfee_refined_loss_eq10():
    # h = (-10 + 11) - (-12 + 11.5) = 1.5; beta h = 0.15; p = sigmoid(0.15)
    p = 1 / (1 + math.exp(-0.15))
    args = (t(-10.0, -10.0), t(-12.0, -12.0), t(-11.0, -11.0), t(-11.5, -11.5))
    loss = selfee_refined_loss(*args, torch.tensor([0, 1]), beta=0.1, alpha=0.1)
    assert loss[0].item() == pytest.approx(-math.log(p), rel=1e-12)
    assert loss[1].item() == pytest.approx(-(0.9 * math.log(p) + 0.1 * math.log(1 - p)), rel=1e-12)


def test_extrapolated_logps_eq12():
    policy = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 5.0]]], dtype=torch.float64)
    ref = torch.tensor([[[0.0, 1.0, 0.0], [3.0, 0.0, 0.0]]], dtype=torch.float64)
    labels = torch.tensor([[0, -100]])
    # lam 0.5: mixed = 1.5 * [1, 0, 0] - 0.5 * [0, 1, 0] = [1.5, -0.5, 0]
    expected = 1.5 - math.log(math.exp(1.5) + math.exp(-0.5) + 1.0)
    assert extrapolated_logps(policy, ref, labels, 0.5).item() == pytest.approx(expected, rel=1e-12)
    # lam 0 is the policy's own log-prob
    own = 1.0 - math.log(math.e + 2.0)
    assert extrapolated_logps(policy, ref, labels, 0.0).item() == pytest.approx(own, rel=1e-12)


def test_selfee_confidence():
    c = selfee_confidence(t(-10.0), t(-12.0), t(-11.0), t(-11.5), beta=0.1)
    assert c.item() == pytest.approx(1 / (1 + math.exp(-0.15)), rel=1e-12)


def test_implicit_reward_label_eq7_8():
    # r1 = 0.1 * (-20 - -22) = 0.2 ; r2 = 0.1 * (-18 - -17) = -0.1 -> first wins, margin 0.3
    label = implicit_reward_label(-20.0, -18.0, -22.0, -17.0, beta=0.1)
    assert label.first_is_chosen is True
    assert label.margin == pytest.approx(0.3)
    assert label.confidence == pytest.approx(1 / (1 + math.exp(-0.3)))
    tie = implicit_reward_label(-5.0, -6.0, -5.0, -6.0)
    assert tie.first_is_chosen is None and tie.margin == 0.0


# --- SimPO, SAO Eq. 5-7: r = beta/|y| * log M(y|x); loss = -log sigmoid(r_w - r_l - gamma)

def test_simpo_eq7_with_saos_beta_and_gamma():
    # SAO §4.1: beta 10, gamma 3. chosen: sum -5 over 5 tokens (avg -1.0); rejected: -6 over 5 (-1.2)
    #   r_w = 10 * -1.0 = -10; r_l = 10 * -1.2 = -12; z = -10 + 12 - 3 = -1
    #   loss = -log sigmoid(-1) = log(1 + e^1) = 1.3132616875...
    loss = simpo_loss(t(-5.0), t(-6.0), t(5.0), t(5.0), beta=10.0, gamma=3.0)
    assert loss.item() == pytest.approx(math.log(1 + math.e), rel=1e-12)


def test_simpo_normalises_by_length():
    # same sums, different lengths: chosen -6 over 6 tokens (avg -1), rejected -6 over 3 (avg -2)
    #   z = 10 * -1 - 10 * -2 - 3 = 7 -> loss = log(1 + e^-7); summed log-probs would give z = -3
    loss = simpo_loss(t(-6.0), t(-6.0), t(6.0), t(3.0), beta=10.0, gamma=3.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-7)), rel=1e-12)


def test_simpo_gradient_and_label_smoothing():
    chosen = t(-5.0).requires_grad_()
    simpo_loss(chosen, t(-6.0), t(5.0), t(5.0), beta=10.0, gamma=3.0).sum().backward()
    # d/d sum_w of -log sigmoid(z) = -(1 - sigmoid(z)) * beta/|y_w| = -(1 - sigmoid(-1)) * 10/5
    assert chosen.grad.item() == pytest.approx(-(1 - 1 / (1 + math.e)) * 2.0, rel=1e-12)
    # conservative form, e 0.1: -(0.9 log sigmoid(-1) + 0.1 log sigmoid(1))
    smoothed = simpo_loss(t(-5.0), t(-6.0), t(5.0), t(5.0), beta=10.0, gamma=3.0, label_smoothing=0.1)
    expected = -(0.9 * math.log(1 / (1 + math.e)) + 0.1 * math.log(1 / (1 + math.exp(-1))))
    assert smoothed.item() == pytest.approx(expected, rel=1e-12)


# --- ORPO, Eq. 6-7: L = L_SFT + lambda * L_OR, L_OR = -log sigmoid(log(odds_w / odds_l)),
# odds = P / (1 - P), P = exp(average log-prob of the answer)

def test_orpo_odds_ratio_by_hand():
    # P_w = 0.5 -> odds 1; P_l = 0.2 -> odds 0.25; log odds ratio = log 4
    lo = orpo_log_odds_ratio(t(math.log(0.5)), t(math.log(0.2)))
    assert lo.item() == pytest.approx(math.log(4.0), rel=1e-12)
    # sigmoid(log 4) = 4/5, so L_OR = log(5/4); L_SFT 2.0 and lambda 0.1: 2.0 + 0.1 * log 1.25
    loss = orpo_loss(t(math.log(0.5)), t(math.log(0.2)), 2.0, lam=0.1)
    assert loss.item() == pytest.approx(2.0 + 0.1 * math.log(1.25), rel=1e-12)


def test_orpo_gradient_by_hand():
    a = t(math.log(0.5)).requires_grad_()
    orpo_loss(a, t(math.log(0.2)), 2.0, lam=0.1).sum().backward()
    # d log odds / d a = 1 + P/(1 - P) = 1/(1 - P_w) = 2; d L_OR / d log odds = -(1 - 4/5) = -0.2
    # -> lambda * -0.2 * 2 = -0.04 (L_SFT is a constant here)
    assert a.grad.item() == pytest.approx(-0.04, rel=1e-10)
    # lambda 0 leaves L_SFT alone, per example
    assert orpo_loss(t(-1.0, -2.0), t(-3.0, -1.0), t(0.7, 0.9), lam=0.0).tolist() == [0.7, 0.9]
