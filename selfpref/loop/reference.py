"""Which model judges SELFEE's labels (Eq. 7) at iteration t: the variants of SELFEE Table 5.

At iteration t the policy pi_{t-1} samples two answers and labels them by the implicit reward
beta * (log pi_{t-1}(y|x) - log pi_ref(y|x)) (Eq. 7-8). SELFEE §4.1 takes pi_ref = pi_init, the
SFT model before the seed DPO; Table 5 (§5.3, "Additional analysis with judgment methods", run at
the move from iteration 1 to 2) compares it with two other choices:

- ``initial`` (the paper's method, Table 5 "Eq. 7 with initial SFT model (Ours)", LC 15.08):
  pi_ref = pi_init at every iteration: ``--reference-model`` when given, else ``--model`` (the
  model the seed DPO starts from).
- ``previous`` (Table 5 "Eq. 7 with previous model", LC 13.73): pi_ref = the model one step
  before the generating policy, pi_{t-2}. At t = 1 that is the model before pi_0, i.e. pi_init
  again, so ``previous`` and ``initial`` coincide at t = 1; which is why the paper can only
  compare them from iteration 2 on. The paper's words, "the current policy from the previous
  iteration as the reference model", cannot mean the generating policy pi_{t-1} itself: Eq. 7
  with pi_ref = pi_{t-1} is 0.5 for every pair. At its iteration 2 (data by pi_1) it is pi_0.
- ``none`` (Table 5 "Judgment without reference model", LC 12.83): "only using the likelihood
  of the current model", every iteration. selfpref averages it per token (the paper does not
  say), so that length alone does not decide (`selfpref.pipelines.selfee`).

Without --seed-data and without --reference-model, pi_0 is pi_init itself (SELFEE §5.3's no-seed
setting names a separate pi_init, the base model); Eq. 7 with pi_ref = pi_0 = the policy would
give every pair a zero margin, so t = 1 falls back to the reference-free judgment under
``initial`` and ``previous`` alike (and ``initial`` then labels against --model from t = 2 on,
where ``previous`` labels against pi_{t-2}; the two first differ at t = 3).
"""

from __future__ import annotations

from pathlib import Path

from selfpref import SelfprefError

# variant -> where it is in the paper (shown by --help and the error for an unknown one)
SELFEE_REFERENCES: dict[str, str] = {
    "initial": "pi_init every iteration (SELFEE Eq. 7, Table 5 'initial SFT model', the paper's)",
    "previous": "pi_{t-2}, the model before the generating policy (Table 5 'previous model')",
    "none": "no reference: per-token policy log-likelihood (Table 5 'without reference model')",
}


def check_selfee_reference(variant: str, method: str, reference_model: str | None) -> None:
    """One line naming --selfee-reference when the variant cannot apply to this loop."""
    if variant not in SELFEE_REFERENCES:
        raise SelfprefError(f"--selfee-reference {variant!r}: choose one of {', '.join(SELFEE_REFERENCES)}")
    if method != "selfee":
        raise SelfprefError(f"--selfee-reference is SELFEE's judgment reference (Table 5): it needs "
                            f"--method selfee, not {method}")
    if variant == "none" and reference_model:
        raise SelfprefError("--reference-model names pi_init for --selfee-reference initial or "
                            "previous; --selfee-reference none labels without a reference: drop one")


def policy_path(out: Path, t: int, model: str | None, seeded: bool) -> str | None:
    """pi_t: the starting model, the seed-trained pi_0, or iteration t's model."""
    if t == 0:
        return str(out / "seed-model") if seeded else model
    return str(out / f"iter-{t}" / "model")


def selfee_reference(variant: str, t: int, out: Path, model: str | None,
                     reference_model: str | None, seeded: bool) -> tuple[str | None, str]:
    """Eq. 7's pi_ref for iteration t (whose data pi_{t-1} generates) under a Table 5 variant.

    Returns (the model to label against, None for the reference-free judgment; its name in
    Alg. 1's terms: 'pi_init', 'pi_0', 'pi_1', ... or 'none').
    """
    from selfpref.models import resolve_model

    if variant == "none":
        return None, "none"
    separate_init = bool(reference_model) or seeded  # pi_init is not pi_0 itself
    if variant == "previous" and t >= 2:
        # pi_0 may be the starting model (None: the embedded one), so resolve it like pi_init
        return resolve_model(policy_path(out, t - 2, model, seeded)), f"pi_{t - 2}"
    if variant in ("initial", "previous"):  # previous at t = 1: the model before pi_0 is pi_init
        if t == 1 and not separate_init:
            return None, "none"  # pi_0 == pi_init: every margin would be zero
        if reference_model:
            return resolve_model(reference_model, flag="--reference-model"), "pi_init"
        return resolve_model(model), "pi_init"
    raise SelfprefError(f"--selfee-reference {variant!r}: choose one of {', '.join(SELFEE_REFERENCES)}")
