"""`selfpref train METHOD`: dataset ref -> TRL trainer -> model folder with a model card.

Sections as in alignment-handbook's scripts/dpo.py: config, data, model, trainer, save.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.data.atomic import write_atomic, write_json_atomic
from selfpref.trainers.configs import build_config, config_sources, load_recipe
from selfpref.trainers.data import (
    drop_untrainable,
    load_preference_data,
    require_columns,
    to_conversational,
)
from selfpref.trainers.defaults import PAPERS

REFERENCE_FREE = ("simpo", "orpo", "rm")


def _load_causal(ref: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(ref, dtype=torch.float32)


def load_tokenizer(model_ref: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_ref)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def make_trainer(method: str, config: Any, train_dataset: Any, model_ref: str, tokenizer: Any,
                 reference_model: str | None = None) -> Any:
    """The method's trainer over ``train_dataset`` (TRL conversational rows), models loaded here."""
    if method == "rm":
        from transformers import AutoModelForSequenceClassification
        from trl import RewardTrainer

        policy = AutoModelForSequenceClassification.from_pretrained(model_ref, num_labels=1)
        policy.config.pad_token_id = tokenizer.pad_token_id
        return RewardTrainer(model=policy, args=config, train_dataset=train_dataset,
                             processing_class=tokenizer)
    if method in ("simpo", "orpo"):
        from selfpref.trainers.reference_free import ORPOTrainer, SimPOTrainer

        cls = SimPOTrainer if method == "simpo" else ORPOTrainer
        return cls(model=_load_causal(model_ref), args=config, train_dataset=train_dataset,
                   processing_class=tokenizer)
    from trl import DPOTrainer

    from selfpref.trainers.selfee import SelfeeTrainer
    from selfpref.trainers.sso import SSOTrainer

    trainer_cls: type[DPOTrainer] = {"dpo": DPOTrainer, "ipo": DPOTrainer, "sso": SSOTrainer,
                                     "selfee": SelfeeTrainer}[method]
    # A separate copy as reference: a model built from a config has no name to reload it by.
    ref = _load_causal(reference_model or model_ref)
    return trainer_cls(_load_causal(model_ref), ref, args=config, train_dataset=train_dataset,
               processing_class=tokenizer)


def train(method: str, dataset: str, output_dir: str | Path, *, model: str | None = None,
          reference_model: str | None = None, recipe: str | Path | None = None,
          push_to_hub: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` with ``method``; returns the run summary written beside it."""
    from datasets import Dataset

    from selfpref.models import quiet_transformers, resolve_model

    # --- config
    if reference_model and method in REFERENCE_FREE:
        raise SelfprefError(f"--reference-model {reference_model}: `train {method}` uses no reference "
                            "model; drop the flag (it is for dpo, ipo, sso and selfee)")
    output_dir = Path(output_dir)
    recipe_keys = load_recipe(recipe, method) if recipe else None
    config = build_config(method, str(output_dir), recipe_keys, **overrides)
    sources = config_sources(method, recipe_keys, **overrides)
    # --- model and tokenizer
    quiet_transformers()
    model_ref = resolve_model(model)
    tokenizer = load_tokenizer(model_ref)
    # --- data: rows no trainer can learn from are dropped here, counted by reason
    df, record, dataset_id = load_preference_data(dataset)
    require_columns(df, method)
    examples, dropped = drop_untrainable(to_conversational(df, method), tokenizer, method, config)
    if not examples:
        raise SelfprefError(f"no rows left to train on: all {df.height} dropped ({dropped}); "
                            f"raise --max-length (now {config.max_length})")
    # --- trainer
    start = time.perf_counter()
    ref_path = resolve_model(reference_model) if reference_model else None
    trainer = make_trainer(method, config, Dataset.from_list(examples), model_ref, tokenizer, ref_path)
    result = trainer.train()
    elapsed = time.perf_counter() - start
    # --- save
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    values, value_sources = hyperparameters(config, sources, trainer.state.max_steps)
    summary = {"method": method, "paper": PAPERS[method], "model": model_ref,
               "reference_model": reference_model, "dataset": {
                   "id": dataset_id, "name": record.name, "version": record.version,
                   "fingerprint": record.fingerprint, "rows": df.height},
               "rows_trained": len(examples), "dropped": dropped,
               "steps": trainer.state.global_step, "train_loss": result.training_loss,
               "losses": losses, "seconds": round(elapsed, 2),
               "recipe": str(recipe) if recipe else None,
               "hyperparameters": values, "hyperparameter_sources": value_sources}
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    write_atomic(output_dir / "README.md", render_model_card(summary))
    write_json_atomic(output_dir / "selfpref_train.json", summary, indent=2)  # last: marks it done
    if push_to_hub:
        summary["url"] = push_model(output_dir, push_to_hub)
    return summary


# What every card states, whether selfpref, a recipe, a flag or TRL set it.
CORE = ("learning_rate", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "num_train_epochs",
        "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "optim",
        "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "seed", "bf16",
        "fp16", "max_length", "truncation_mode", "beta", "loss_type", "label_smoothing", "simpo_gamma",
        "orpo_prompt_loss", "precompute_ref_log_probs")
_BOOKKEEPING = {"report_to", "logging_steps", "save_strategy", "use_cpu"}


def hyperparameters(config: Any, sources: dict[str, str], total_steps: int | None = None
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """(every training hyperparameter's value, where it came from) for the card and the JSON."""
    hidden = set(getattr(config, "not_on_card", ()))  # fields the method does not use (SimPO, ORPO)
    keys = [k for k in CORE if hasattr(config, k) and k not in hidden]
    keys += [k for k in vars(config) if k.startswith(("sso_", "selfee_")) and k not in keys]
    keys += [k for k in sources if k not in keys and k not in _BOOKKEEPING and hasattr(config, k)
             and k not in hidden]
    values = {k: _plain(getattr(config, k)) for k in keys}
    out_sources = {k: sources.get(k, "TRL/transformers default") for k in keys}
    values["processes"] = config.world_size
    values["effective_batch_size"] = (config.per_device_train_batch_size
                                      * config.gradient_accumulation_steps * config.world_size)
    out_sources["processes"] = "this run"
    out_sources["effective_batch_size"] = "per-device batch x gradient accumulation x processes"
    if total_steps:
        values["total_steps"] = total_steps
        values["warmup_steps_resolved"] = config.get_warmup_steps(total_steps)
        out_sources["total_steps"] = out_sources["warmup_steps_resolved"] = "this run"
    return values, out_sources


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def render_model_card(s: dict[str, Any]) -> str:
    d = s["dataset"]
    sources = s.get("hyperparameter_sources", {})
    rows = "\n".join(f"| {k} | {v} | {sources.get(k, '')} |" for k, v in s["hyperparameters"].items())
    dropped = ", ".join(f"{k}: {v}" for k, v in s.get("dropped", {}).items()) or "none"
    reproduce = f"selfpref train {s['method']} --dataset {d['id']} --model {s['model']}"
    if s.get("recipe"):
        reproduce += f" --config {s['recipe']}"
    if "flag" in sources.values():
        reproduce += "`, with the values whose source is 'flag' passed as flags"
    else:
        reproduce += "`"
    return f"""---
library_name: transformers
tags:
- selfpref
- {s['method']}
- trl
datasets:
- {d['id']}
---

# {s['method'].upper()} model trained with selfpref

- method: `{s['method']}` ({s['paper']})
- base model: `{s['model']}`
- dataset: `{d['id']}` (name {d['name']}, version {d['version']}, fingerprint `{d['fingerprint']}`, {d['rows']} rows)
- rows trained on: {s.get('rows_trained', d['rows'])}; dropped before training: {dropped}
- steps: {s['steps']}, final training loss {s['train_loss']:.4f}, {s['seconds']} s

| hyperparameter | value | source |
|---|---|---|
{rows}

Reproduce: `{reproduce}
"""


CARD_EVAL_START, CARD_EVAL_END = "<!-- selfpref:evaluation -->", "<!-- /selfpref:evaluation -->"


def render_evaluation(e: dict[str, Any]) -> str:
    """The card's Evaluation section from this model's figures against a baseline (percent, 0-100).

    ``e``: baseline, judge, prompts, n, win_rate, lose_rate, tie_rate, lc_win_rate, ci95
    ({win_rate, lc_win_rate: [lo, hi]} or None), judge_consistency, mean_len, mean_len_baseline,
    and optionally folder (where the judgments are) and note (a sentence on the judge).
    """
    ci = e.get("ci95") or {}

    def interval(key: str) -> str:
        return f"{ci[key][0]:.1f} to {ci[key][1]:.1f}" if key in ci else ""

    lines = [CARD_EVAL_START, "## Evaluation", "",
             f"This model (B) against `{e['baseline']}` (A) on {e['n']} prompts (`{e['prompts']}`), "
             f"each pair judged in both orders by `{e['judge']}`; the rates are this model's.", "",
             "| figure | value | 95% CI |", "|---|---:|---:|",
             f"| win rate % | {e['win_rate']:.1f} | {interval('win_rate')} |",
             f"| length-controlled win rate % | {e['lc_win_rate']:.1f} | {interval('lc_win_rate')} |",
             f"| lose / tie % | {e['lose_rate']:.1f} / {e['tie_rate']:.1f} | |",
             f"| judge consistency % (same side in both orders) | {e['judge_consistency']:.1f} | |",
             f"| mean answer length, this model / baseline (characters) | {e['mean_len']:.0f} / "
             f"{e['mean_len_baseline']:.0f} | |", ""]
    if e.get("note"):
        lines += [e["note"], ""]
    if e.get("folder"):
        lines += [f"Answers and judgments: `{e['folder']}` (eval.json, judgments.parquet).", ""]
    return "\n".join(lines + [CARD_EVAL_END, ""])


def record_evaluation(model_dir: str | Path, evaluation: dict[str, Any]) -> bool:
    """Add the Evaluation section (`render_evaluation`) to the model card in ``model_dir``, or
    replace the one there; atomic. Returns whether the card changed."""
    card = Path(model_dir) / "README.md"
    text = card.read_text() if card.is_file() else ""
    section = render_evaluation(evaluation)
    if CARD_EVAL_START in text and CARD_EVAL_END in text:
        head, rest = text.split(CARD_EVAL_START, 1)
        new = head + section + rest.split(CARD_EVAL_END, 1)[1].lstrip("\n")
    else:
        new = text.rstrip("\n") + ("\n\n" if text else "") + section
    if new == text:
        return False
    write_atomic(card, new)
    return True


def push_model(folder: Path, repo: str) -> str:
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message="selfpref train")
    except HfHubHTTPError as exc:
        raise SelfprefError(f"push of the model to {repo} failed: {str(exc).splitlines()[0]}") from None
    return f"{api.endpoint}/{repo}"
