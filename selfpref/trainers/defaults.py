"""Each training method's default settings with their sources, without importing TRL.

`selfpref train METHOD --help` prints these (so help stays fast), `configs.METHODS` pairs them
with TRL's config classes, and the model card lists every value with its source.
"""

from __future__ import annotations

from typing import Any

# Where a CPU needs smaller numbers than the paper: the papers' effective batches (32 to 128 pairs
# per optimizer step) make a small CPU run one or two steps long, so the defaults step on 8 pairs
# (per-device batch x gradient accumulation); `selfpref/recipes/<method>/*.yaml` keep the paper's batch.
CPU_BATCH_SOURCE = "CPU-sized: effective batch 8 (the paper's batch is in the method's recipe)"


def _batch(per_device: int, accumulation: int) -> dict[str, tuple[Any, str]]:
    return {"per_device_train_batch_size": (per_device, CPU_BATCH_SOURCE),
            "gradient_accumulation_steps": (accumulation, CPU_BATCH_SOURCE)}


# method -> {field: (default, where the value comes from)}. The values follow the
# paper named in PAPERS; a value the paper does not state says so and names selfpref's choice.
DEFAULTS: dict[str, dict[str, tuple[Any, str]]] = {
    "dpo": {
        "loss_type": (["sigmoid"], "DPO Eq. 7"),
        "beta": (0.1, "DPO App. B"),
        "learning_rate": (1e-6, "DPO App. B"),
        "optim": ("rmsprop", "DPO App. B: RMSprop"),
        "lr_scheduler_type": ("constant_with_warmup", "DPO App. B: linear warm-up, then constant"),
        "warmup_steps": (150, "DPO App. B: warm-up over 150 steps"),
        "num_train_epochs": (1, "not stated in DPO; selfpref: one epoch"),
        **_batch(4, 2),  # DPO App. B: batch 64 (selfpref/recipes/dpo/paper.yaml)
    },
    # Azar et al. give no LLM training settings; the seed that trains IPO is SSO (its base loss and
    # its IPO baseline), so these are SSO §3.1's IPO settings.
    "ipo": {
        "loss_type": (["ipo"], "IPO Eq. 17 (per-token averaged log-probs, as TRL)"),
        "beta": (0.2, "SSO §3.1 (IPO beta)"),
        "learning_rate": (5e-7, "SSO §3.1"),
        "lr_scheduler_type": ("cosine", "not stated in SSO; selfpref: cosine, as SAO and SELFEE"),
        "warmup_steps": (0.1, "not stated in SSO; selfpref: 10% warm-up, as SAO and SELFEE"),
        "num_train_epochs": (1, "not stated in SSO; selfpref: one epoch per iteration"),
        **_batch(4, 2),  # SSO §3.1: batch 128 (selfpref/recipes/ipo/sso-baseline.yaml)
    },
    "simpo": {
        "beta": (10.0, "SAO §4.1 (beta, the reward scale of Eq. 5)"),
        "simpo_gamma": (3.0, "SAO §4.1 (gamma, the target margin of Eq. 6)"),
        "learning_rate": (1e-6, "SAO §4.1"),
        "lr_scheduler_type": ("cosine", "SAO §4.1: cosine decay"),
        "warmup_steps": (0.1, "SAO §4.1: warm-up ratio 0.1"),
        "num_train_epochs": (1, "SAO §4.1: a single epoch"),
        **_batch(4, 2),  # SAO §4.1: global batch 128 (selfpref/recipes/simpo/sao.yaml)
    },
    "orpo": {
        "beta": (0.1, "ORPO lambda 0.1 (authors' Mistral-ORPO-beta script, xfactlab/orpo)"),
        "orpo_prompt_loss": (True, "ORPO: authors' Mistral-ORPO-beta script (main.py without "
                                   "--disable_prompt_loss: L_SFT covers prompt and answer)"),
        "learning_rate": (5e-6, "ORPO: authors' Mistral-ORPO-beta script"),
        "lr_scheduler_type": ("inverse_sqrt", "ORPO: authors' Mistral-ORPO-beta script"),
        "warmup_steps": (200, "ORPO: authors' Mistral-ORPO-beta script"),
        "num_train_epochs": (1, "ORPO Fig. 1: a single epoch; SAO §4.1: one epoch"),
        **_batch(4, 2),  # ORPO script: 8 per device on 4 GPUs = 32 (selfpref/recipes/orpo/paper.yaml)
    },
    "sso": {
        "beta": (0.2, "SSO §3.1"),
        "sso_base": ("ipo", "SSO §3.1: IPO base loss"),
        "sso_alpha": (0.66, "SSO Eq. 5, §2.4"),
        "sso_theta": (0.1, "SSO §3.1 (weight of G)"),
        "sso_weight": ("eq5", "SSO Eq. 5"),
        "learning_rate": (5e-7, "SSO §3.1"),
        "lr_scheduler_type": ("cosine", "not stated in SSO; selfpref: cosine, as SAO and SELFEE"),
        "warmup_steps": (0.1, "not stated in SSO; selfpref: 10% warm-up, as SAO and SELFEE"),
        "num_train_epochs": (1, "not stated in SSO; selfpref: one epoch per iteration"),
        # six sequences per example: half the per-device rows of the other methods, same effective batch
        **_batch(2, 4),  # SSO §3.1: batch 128 (selfpref/recipes/sso/paper.yaml)
        "remove_unused_columns": (False, "selfpref: the SSO collator reads the x+/x-/y° columns"),
    },
    "selfee": {
        "beta": (0.1, "SELFEE §5.1"),
        "selfee_alpha": (0.1, "SELFEE §5.1"),
        "selfee_k": (10.0, "SELFEE §5.1"),
        "selfee_window": (50, "SELFEE B.3"),
        "selfee_warmup": (0.2, "SELFEE §5.1: denoising after 20% of the steps"),
        "selfee_lambda": (0.5, "SELFEE §5.1: 1/2 in iteration 1 (1/4, 1/8 later)"),
        "learning_rate": (5e-7, "SELFEE §5.1"),
        "optim": ("adamw_torch", "SELFEE §5.1"),
        "lr_scheduler_type": ("cosine", "SELFEE §5.1"),
        "warmup_steps": (0.1, "SELFEE §5.1: 10% warm-up"),
        "num_train_epochs": (1, "SELFEE §5.1: one epoch per iteration"),
        **_batch(4, 2),  # SELFEE §5.1: batch 32 (selfpref/recipes/selfee/paper.yaml)
    },
    "rm": {
        "learning_rate": (9e-6, "InstructGPT App. C.2"),
        "lr_scheduler_type": ("cosine", "InstructGPT App. C.2: cosine schedule"),
        "num_train_epochs": (1, "InstructGPT App. C.2: a single epoch"),
        **_batch(4, 2),  # InstructGPT App. C.2: batch 64 (selfpref/recipes/rm/instructgpt.yaml)
    },
}
PAPERS = {
    "dpo": "Rafailov et al. 2023, Direct Preference Optimization",
    "ipo": "Azar et al. 2023, A General Theoretical Paradigm to Understand Learning from Human "
           "Preferences; training settings as SSO's IPO (SSO §3.1)",
    "simpo": "Meng et al. 2024, SimPO; as used by SAO (Aligning LLMs via Fully Self-Synthetic Data, "
             "§3.5, Eq. 5-7)",
    "orpo": "Hong et al. 2024, ORPO: Monolithic Preference Optimization without Reference Model; "
            "compared with DPO and SimPO in SAO Table 4",
    "sso": "Aligning Large Language Models via Self-Steering Optimization (SSO)",
    "selfee": "Kim et al., Aligning Large Language Models with Self-generated Preference Data (SELFEE)",
    "rm": "Bradley-Terry reward model (Ouyang et al. 2022)",
}



# The recipe keys that have a `selfpref train` flag of their own.
FLAGS = {"learning_rate": "--learning-rate", "num_train_epochs": "--epochs",
         "per_device_train_batch_size": "--batch-size", "gradient_accumulation_steps": "--grad-accum",
         "beta": "--beta", "selfee_lambda": "--selfee-lambda"}


def _shown(key: str, value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]  # TRL takes loss_type as a list; one loss reads as its name
    if key == "warmup_steps" and isinstance(value, float) and value < 1:
        return f"{value:g} (ratio)"  # TRL reads warmup_steps < 1 as a share of the steps
    return f"{value:g}" if isinstance(value, float) else str(value)


def defaults_table(method: str) -> str:
    """The plain-text table `train METHOD --help` prints: key (flag), default, source."""
    rows = [(f"{key} ({FLAGS[key]})" if key in FLAGS else key, _shown(key, value), source)
            for key, (value, source) in DEFAULTS[method].items()]
    width = [max(len(r[i]) for r in rows) for i in (0, 1)]
    lines = [f"Defaults of `train {method}` ({PAPERS[method]}); a --config recipe overrides them, "
             "a flag overrides both:", ""]
    lines += [f"  {k:<{width[0]}}  {v:<{width[1]}}  {s}" for k, v, s in rows]
    lines += ["", "Without a GPU: bf16/fp16 off. The model card lists every value used and its source."]
    return "\n".join(lines)
