"""Training configs: TRL's config classes, subclassed where selfpref adds fields.

Every added field has a help string and ``__post_init__`` names the field and the fix. Recipes
(YAML) are checked against the fields: a key that is not a field is an error, never ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from trl import DPOConfig, RewardConfig

from selfpref import SelfprefError
from selfpref.data.recipes import load_yaml_mapping
from selfpref.trainers.defaults import DEFAULTS


@dataclass
class SSOConfig(DPOConfig):
    """DPOConfig plus SSO's loss options (SSO Eq. 1-6, Table 12; §3.1 training settings).

    The ablations of SSO Table 12 are settings: without W is ``sso_weight: none``, without G is
    ``sso_theta: 0`` (G's four sequences are then not scored at all), without both is both.
    """

    beta: float = field(default=0.2, metadata={"help": "IPO/DPO beta of the base loss (SSO §3.1: 0.2)."})
    sso_alpha: float = field(default=0.66, metadata={
        "help": "alpha of the weight W (Eq. 5; W' of Eq. 6 uses the same alpha)."})
    sso_theta: float = field(default=0.1, metadata={
        "help": "theta: weight of the self-steering loss G (Eq. 1); 0 is SSO Table 12's 'w/o G'."})
    sso_base: str = field(default="ipo", metadata={
        "help": "base pair loss: 'ipo' (the paper's default; per-token averaged log-probs, as TRL's "
                "IPO) or 'dpo' (summed log-probs, vanilla DPO; SSO A.1.2)."})
    sso_weight: str = field(default="eq5", metadata={
        "help": "the weight function: 'eq5' W = sigmoid(-(alpha*avg_logp(y+|x) + (1-alpha)*avg_logp(y-|x))); "
                "'eq6' W' = sigmoid(-(alpha*avg_logp(y°|x+) + (1-alpha)*avg_logp(y°|x-))), which scores "
                "one more sequence (y° given x+) per example; 'none' W = 1, SSO Table 12's 'w/o W'."})
    sso_weight_scope: str = field(default="all", metadata={
        "help": "'all': W*(theta*G + L_base) as in Eq. 1; 'steering': W*theta*G + L_base, as the "
                "authors' released code trains."})

    def __post_init__(self) -> None:
        if self.sso_base not in ("ipo", "dpo"):
            raise ValueError(f"sso_base={self.sso_base!r}: use 'ipo' or 'dpo'")
        if self.sso_weight not in ("eq5", "eq6", "none"):
            raise ValueError(f"sso_weight={self.sso_weight!r}: use 'eq5', 'eq6' or 'none'")
        if self.sso_weight_scope not in ("all", "steering"):
            raise ValueError(f"sso_weight_scope={self.sso_weight_scope!r}: use 'all' or 'steering'")
        if not 0.0 <= self.sso_alpha <= 1.0:
            raise ValueError(f"sso_alpha={self.sso_alpha}: must be in [0, 1]")
        if self.sso_theta < 0:
            raise ValueError(f"sso_theta={self.sso_theta}: must be >= 0 (0 trains without G)")
        super().__post_init__()


@dataclass
class SelfeeConfig(DPOConfig):
    """DPOConfig plus SELFEE's self-refinement options (SELFEE §4.2, §5.1, B.3)."""

    beta: float = field(default=0.1, metadata={"help": "DPO beta (SELFEE §5.1: 0.1)."})
    selfee_alpha: float = field(default=0.1, metadata={
        "help": "label-smoothing alpha on pairs detected as noisy (Eq. 10)."})
    selfee_lambda: float = field(default=0.5, metadata={
        "help": "lambda of the extrapolated policy (Eq. 12); the paper uses 1/2, 1/4, 1/8 over "
                "iterations, 0 is plain self-refinement."})
    selfee_k: float = field(default=10.0, metadata={
        "help": "K: pairs below the K-th percentile of recent confidences are noisy (Eq. 9, 11)."})
    selfee_window: int = field(default=50, metadata={
        "help": "how many recent confidences the percentile is taken over (B.3: 50)."})
    selfee_warmup: float = field(default=0.2, metadata={
        "help": "share of training steps before refinement starts (§5.1: 20%)."})

    def __post_init__(self) -> None:
        if not 0.0 < self.selfee_k < 100.0:
            raise ValueError(f"selfee_k={self.selfee_k}: a percentile strictly between 0 and 100")
        if self.selfee_window < 1:
            raise ValueError(f"selfee_window={self.selfee_window}: must be at least 1")
        if self.selfee_lambda < 0:
            raise ValueError(f"selfee_lambda={self.selfee_lambda}: must be >= 0")
        super().__post_init__()


# DPOConfig fields that act only through DPO's reference model or DPO's own loss: SimPO and ORPO
# (no reference, their own loss) refuse a value other than DPOConfig's default instead of ignoring it.
_DPO_ONLY = ("loss_type", "loss_weights", "ld_alpha", "f_divergence_type", "use_weighting",
             "precompute_ref_log_probs", "sync_ref_model")


def _refuse_dpo_only(config: Any, method: str) -> None:
    defaults = {f.name: f for f in dataclasses.fields(DPOConfig)}
    for name in _DPO_ONLY:
        f = defaults[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if getattr(config, name) != default:
            raise ValueError(f"{name}={getattr(config, name)!r}: `train {method}` has no reference model "
                             f"and its own loss, so DPO's {name} does not apply; remove it")


@dataclass
class SimPOConfig(DPOConfig):
    """DPOConfig for SimPO (SAO §3.5, Eq. 5-7): reference-free, length-normalised rewards."""

    beta: float = field(default=10.0, metadata={
        "help": "SimPO beta, the reward scale of Eq. 5: r = beta/|y| * log pi(y|x) (SAO §4.1: 10)."})
    # the card lists no DPO-only field: a reference-free run has none of them in effect
    not_on_card: ClassVar[tuple[str, ...]] = _DPO_ONLY
    simpo_gamma: float = field(default=3.0, metadata={
        "help": "gamma, the target reward margin of Eq. 6: p = sigmoid(r_w - r_l - gamma) (SAO §4.1: 3)."})

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"beta={self.beta}: SimPO's reward scale must be > 0")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing={self.label_smoothing}: must be in [0, 0.5) (SimPO: 0)")
        super().__post_init__()
        _refuse_dpo_only(self, "simpo")


@dataclass
class ORPOConfig(DPOConfig):
    """DPOConfig for ORPO (Hong et al. 2024, Eq. 6-7): reference-free, NLL plus odds-ratio term."""

    beta: float = field(default=0.1, metadata={
        "help": "ORPO's lambda, the weight of the odds-ratio loss L_OR (named beta as in TRL; "
                "the authors' Mistral-ORPO-beta script: 0.1)."})
    not_on_card: ClassVar[tuple[str, ...]] = _DPO_ONLY
    orpo_prompt_loss: bool = field(default=True, metadata={
        "help": "whether L_SFT (the chosen answer's NLL) also covers the prompt tokens: true as the "
                "authors' scripts train (main.py without --disable_prompt_loss) and TRL's ORPOTrainer; "
                "false for the answer tokens only, as ORPO's L_SFT is written."})

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError(f"beta={self.beta}: ORPO's lambda must be >= 0")
        if self.label_smoothing != 0.0:
            raise ValueError(f"label_smoothing={self.label_smoothing}: ORPO has no label smoothing; remove it")
        super().__post_init__()
        _refuse_dpo_only(self, "orpo")


# method -> (config class, {field: (default, where the value comes from)}); the values live in
# defaults.py, which `train --help` reads without importing TRL.
_CLASSES: dict[str, type] = {"dpo": DPOConfig, "ipo": DPOConfig, "simpo": SimPOConfig, "orpo": ORPOConfig,
                             "sso": SSOConfig, "selfee": SelfeeConfig, "rm": RewardConfig}
METHODS: dict[str, tuple[type, dict[str, tuple[Any, str]]]] = {
    method: (cls, DEFAULTS[method]) for method, cls in _CLASSES.items()}


def load_recipe(path: str | Path, method: str) -> dict[str, Any]:
    """A recipe's keys, checked against the method's config fields (unknown keys are errors)."""
    if method not in METHODS:
        raise SelfprefError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    data = dict(load_yaml_mapping(path, what="training recipe", flag="--config"))
    recipe_method = data.pop("method", method)
    if recipe_method != method:
        raise SelfprefError(f"{path} is a recipe for {recipe_method!r}, not {method!r}")
    data.pop("model", None), data.pop("dataset", None)  # run-level keys the CLI reads itself
    fields = {f.name for f in dataclasses.fields(METHODS[method][0])}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise SelfprefError(f"{path}: unknown key '{unknown[0]}' for `train {method}` "
                            f"({METHODS[method][0].__name__} has no such field); fix or remove it")
    return data


def recipe_run_keys(path: str | Path) -> dict[str, Any]:
    data = load_yaml_mapping(path, what="training recipe", flag="--config")
    return {k: data[k] for k in ("method", "model", "dataset") if k in data}


def build_config(method: str, output_dir: str, recipe: dict[str, Any] | None = None,
                 **overrides: Any) -> Any:
    """The method's config: paper defaults < recipe < explicit flags; CPU-safe precision."""
    if method not in METHODS:
        raise SelfprefError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    cls = METHODS[method][0]
    kwargs = {key: value for key, (value, _) in _layers(method, recipe, overrides).items()}
    try:
        return cls(output_dir=output_dir, **kwargs)
    except (ValueError, TypeError) as exc:
        raise SelfprefError(f"bad `train {method}` option: {exc}") from None


def config_sources(method: str, recipe: dict[str, Any] | None = None, **overrides: Any) -> dict[str, str]:
    """Where each value selfpref sets comes from: the paper default's source, 'recipe' or 'flag'."""
    return {key: source for key, (_, source) in _layers(method, recipe, overrides).items()}


def _layers(method: str, recipe: dict[str, Any] | None, overrides: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    import torch

    out: dict[str, tuple[Any, str]] = {
        "report_to": ("none", "selfpref"), "logging_steps": (1, "selfpref"),
        "save_strategy": ("no", "selfpref: the model is saved once, when training ends"),
        **METHODS[method][1]}
    out.update({k: (v, "recipe") for k, v in (recipe or {}).items()})
    out.update({k: (v, "flag") for k, v in overrides.items() if v is not None})
    if not torch.cuda.is_available():
        # TRL defaults to bf16; on a CPU that made a SimPO step stall for minutes.
        out.update(bf16=(False, "CPU: no bf16"), fp16=(False, "CPU: no fp16"), use_cpu=(True, "CPU"))
    return out
