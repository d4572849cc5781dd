"""Losses against numbers worked out by hand from the papers' equations."""

import math

import pytest
import torch

from selfpref.judges.implicit_reward import implicit_reward_label
from selfpref.trainers.losses import (SSOLogps, extrapolated_logps, selfee_confidence,
                                      selfee_refined_loss, sso_loss)


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


POLICY = dict(chosen=-1.0, rejected=-2.0, pos_chosen=-0.5, pos_rejected=-2.5,
              neg_original=-1.5, neg_chosen=-1.0)
REF = dict(chosen=-1.2, rejected=-1.8, pos_chosen=-1.0, pos_rejected=-2.0,
           neg_original=-1.4, neg_chosen=-1.1)


def logps(values, requires_grad=False):
    return SSOLogps(**{k: torch.tensor([v], dtype=torch.float64, requires_grad=requires_grad)
                       for k, v in values.items()})


# By hand (beta 0.2, so the IPO target 1/(2*beta) = 2.5):
#   h_base = (-1.0 + 1.2) - (-2.0 + 1.8) = 0.4   -> IPO (0.4 - 2.5)^2 = 4.41
#   h_pos  = (-0.5 + 1.0) - (-2.5 + 2.0) = 1.0   -> (1.0 - 2.5)^2 = 2.25
#   h_neg  = (-1.5 + 1.4) - (-1.0 + 1.1) = -0.2  -> (-0.2 - 2.5)^2 = 7.29
#   G = 9.54; W = sigmoid(-(0.66 * -1.0 + 0.34 * -2.0)) = sigmoid(1.34)
W = 1 / (1 + math.exp(-1.34))


def test_sso_ipo_eq1():
    loss = sso_loss(logps(POLICY), logps(REF))
    assert loss.item() == pytest.approx(W * (0.1 * 9.54 + 4.41), rel=1e-12)


def test_sso_steering_scope():
    loss = sso_loss(logps(POLICY), logps(REF), weight_scope="steering")
    assert loss.item() == pytest.approx(W * 0.1 * 9.54 + 4.41, rel=1e-12)


def test_sso_dpo_base():
    def dpo(h):
        return math.log(1 + math.exp(-0.2 * h))

    expected = W * (0.1 * (dpo(1.0) + dpo(-0.2)) + dpo(0.4))
    loss = sso_loss(logps(POLICY), logps(REF), base="dpo")
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_sso_gradient_flows_through_w():
    p = logps(POLICY, requires_grad=True)
    sso_loss(p, logps(REF)).sum().backward()
    grad_with_w = p.chosen.grad.clone()
    # Same loss with W detached: the gradient on y+|x loses the dW/dpi term.
    from selfpref.trainers.losses import ipo_pair_loss

    q, r = logps(POLICY, requires_grad=True), logps(REF)
    w = torch.sigmoid(-(0.66 * q.chosen + 0.34 * q.rejected)).detach()
    l_base = ipo_pair_loss((q.chosen - r.chosen) - (q.rejected - r.rejected), 0.2)
    (w * (0.1 * 0 + l_base)).sum().backward()  # G has no pi_chosen term
    assert not torch.allclose(grad_with_w, q.chosen.grad)
    # dL/dpi_chosen by hand: dW/dpi_c = -0.66 * W (1 - W); inner = 0.1*G + L_base;
    # d L_base / d pi_c = 2 (0.4 - 2.5) = -4.2 (G does not depend on pi_c).
    expected = -0.66 * W * (1 - W) * (0.1 * 9.54 + 4.41) + W * (-4.2)
    assert grad_with_w.item() == pytest.approx(expected, rel=1e-10)


def test_sso_rejects_unknown_options():
    with pytest.raises(ValueError, match="base"):
        sso_loss(logps(POLICY), logps(REF), base="kto")


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
