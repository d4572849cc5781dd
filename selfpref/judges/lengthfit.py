"""AlpacaEval 2's length-controlled fit: P(A better | dlen) = sigmoid(a + b * tanh(dlen / sd)).

It lives below eval so that a build's data card can report a judge's length coefficient (the
judges' bias report) with the same fit as `selfpref eval`'s length-controlled win rate; eval.stats
imports it from here.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from selfpref import SelfprefError

TIE_TOLERANCE = 1e-9
# Scores are clipped into [LC_CLIP, 1 - LC_CLIP] for the LC fit only, so that a judge that gives
# hard 0/1 verdicts perfectly separated by length still has a finite maximum-likelihood fit.
LC_CLIP = 1e-3


def _sigmoid(z: float) -> float:
    return 0.5 * (1.0 + math.tanh(z / 2.0))


def _logit(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p) - math.log1p(-p)


def _scores(scores: ArrayLike) -> np.ndarray:
    s = np.asarray(scores, dtype=float).reshape(-1)
    if s.size == 0:
        raise SelfprefError("no judgments to summarize: the score list is empty")
    if not np.all(np.isfinite(s)) or s.min() < 0.0 or s.max() > 1.0:
        bad = s[~(np.isfinite(s) & (s >= 0.0) & (s <= 1.0))][0]
        raise SelfprefError(f"score {bad!r} is not a probability in [0, 1]; drop prompts the judge "
                            "could not score (and count them) before summarizing")
    return s


def _lengths(s: np.ndarray, len_a: ArrayLike, len_b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    la = np.asarray(len_a, dtype=float).reshape(-1)
    lb = np.asarray(len_b, dtype=float).reshape(-1)
    if la.shape != s.shape or lb.shape != s.shape:
        raise SelfprefError(f"{s.size} scores but {la.size} len_a and {lb.size} len_b values: "
                            "give one length pair per judged prompt")
    if not (np.all(np.isfinite(la)) and np.all(np.isfinite(lb))) or min(la.min(), lb.min()) < 0:
        raise SelfprefError("answer lengths must be finite character counts >= 0")
    return la, lb


def fit_soft_logistic(x: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """(intercept, slope) of an unpenalized logistic regression of soft labels on one feature.

    Each prompt is two rows with the same x: label 1 weighted by its score and label 0 weighted by
    1 - score, which is the cross-entropy against the soft label (AlpacaEval's trick). The
    maximum-likelihood fit must exist: scores all 0/1 and separated by x make it diverge
    (`length_fit` guards against that). ``C=inf`` is scikit-learn's unpenalized fit (``penalty=None``
    is deprecated from 1.8 and maps to the same thing).
    """
    from scipy.linalg import LinAlgWarning
    from sklearn.linear_model import LogisticRegression

    xs = np.asarray(x, dtype=float).reshape(-1, 1)
    s = np.asarray(scores, dtype=float).reshape(-1)
    n = s.size
    # Newton steps: exact in a few iterations and ~20x faster than lbfgs on this 2-parameter fit
    # (it runs once per bootstrap resample). A constant x makes the Hessian singular: lbfgs then.
    solver = "newton-cholesky" if np.ptp(xs) > 0 else "lbfgs"
    model = LogisticRegression(C=np.inf, solver=solver, tol=1e-10, max_iter=1000)
    with warnings.catch_warnings():
        # a bootstrap resample of a few prompts can repeat one length difference: Newton's Hessian
        # is then near-singular and scikit-learn falls back to lbfgs with a warning per fit
        warnings.simplefilter("ignore", LinAlgWarning)
        model.fit(np.vstack([xs, xs]), np.r_[np.ones(n), np.zeros(n)], sample_weight=np.r_[s, 1.0 - s])
    return float(model.intercept_[0]), float(model.coef_[0, 0])


@dataclass(frozen=True)
class LengthFit:
    """P(A better | dlen) = sigmoid(intercept + length_coef * tanh(dlen / sd_delta_len))."""

    intercept: float  # +-inf only when every score is 1 (or 0)
    length_coef: float  # > 0: the judge favours the longer answer
    sd_delta_len: float  # 0.0 when the length differences do not vary (no length control)

    @property
    def lc_win_rate(self) -> float:
        """Percent: the fitted P(A better) at equal lengths."""
        return 100.0 * _sigmoid(self.intercept)

    def predict(self, delta_len: ArrayLike) -> np.ndarray:
        d = np.asarray(delta_len, dtype=float)
        x = np.tanh(d / self.sd_delta_len) if self.sd_delta_len > 0 else np.zeros_like(d)
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-(self.intercept + self.length_coef * x)))


def length_fit(scores: ArrayLike, len_a: ArrayLike, len_b: ArrayLike) -> LengthFit:
    """AlpacaEval 2's length-controlled GLM fitted on this run: score ~ 1 + tanh(dlen / sd(dlen)).

    dlen = len_a - len_b in characters; sd is the sample standard deviation (ddof=1, as
    AlpacaEval's pandas ``.std()``). Degenerate cases, answered in closed form rather than fitted:

    - every score equal to s: the fit is exact with slope 0, so intercept = logit(s) and LC = 100 s
      (s = 1 gives intercept +inf and LC = 100, s = 0 gives -inf and 0);
    - sd(dlen) == 0 (one prompt, or the same length difference on every prompt): length cannot be
      told apart from A's quality, x = 0 everywhere, the fit is intercept-only with
      intercept = logit(mean score), so LC = 100 * mean score (no length control is possible).

    Otherwise scores are clipped into [LC_CLIP, 1 - LC_CLIP] (moving each by at most 0.001) so a
    judge with hard verdicts perfectly separated by length still has a finite fit.
    """
    s = _scores(scores)
    la, lb = _lengths(s, len_a, len_b)
    d = la - lb
    sd = float(d.std(ddof=1)) if s.size > 1 else 0.0
    if s.min() == s.max():
        return LengthFit(_logit(float(s[0])), 0.0, sd)
    if not sd > 0:
        return LengthFit(_logit(float(s.mean())), 0.0, 0.0)
    s_fit = np.clip(s, LC_CLIP, 1.0 - LC_CLIP)
    intercept, coef = fit_soft_logistic(np.tanh(d / sd), s_fit)
    return LengthFit(intercept, coef, sd)


def lc_win_rate(scores: ArrayLike, len_a: ArrayLike, len_b: ArrayLike) -> float:
    """Length-controlled win rate in percent: 100 * sigmoid(intercept) of `length_fit`."""
    return length_fit(scores, len_a, len_b).lc_win_rate
