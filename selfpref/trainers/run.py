"""`selfpref train METHOD`: dataset ref -> TRL trainer -> model folder with a model card.

Sections as in alignment-handbook's scripts/dpo.py: config, data, model, trainer, save.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.trainers.configs import PAPERS, build_config, load_recipe
from selfpref.trainers.data import load_preference_data, require_columns, to_conversational


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

    cls = {"dpo": DPOTrainer, "ipo": DPOTrainer, "sso": SSOTrainer, "selfee": SelfeeTrainer}[method]
    # A separate copy as reference: a model built from a config has no name to reload it by.
    ref = _load_causal(reference_model or model_ref)
    return cls(_load_causal(model_ref), ref, args=config, train_dataset=train_dataset,
               processing_class=tokenizer)


def train(method: str, dataset: str, output_dir: str | Path, *, model: str | None = None,
          reference_model: str | None = None, recipe: str | Path | None = None,
          push_to_hub: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` with ``method``; returns the run summary written beside it."""
    from datasets import Dataset

    from selfpref.models import quiet_transformers, resolve_model

    # --- config
    output_dir = Path(output_dir)
    config = build_config(method, str(output_dir), load_recipe(recipe, method) if recipe else None,
                          **overrides)
    # --- data
    df, record, dataset_id = load_preference_data(dataset)
    require_columns(df, method)
    train_dataset = Dataset.from_list(to_conversational(df, method))
    # --- model and tokenizer
    quiet_transformers()
    model_ref = resolve_model(model)
    tokenizer = load_tokenizer(model_ref)
    # --- trainer
    start = time.perf_counter()
    ref_path = resolve_model(reference_model) if reference_model else None
    trainer = make_trainer(method, config, train_dataset, model_ref, tokenizer, ref_path)
    result = trainer.train()
    elapsed = time.perf_counter() - start
    # --- save
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {"method": method, "paper": PAPERS[method], "model": model_ref,
               "reference_model": reference_model, "dataset": {
                   "id": dataset_id, "name": record.name, "version": record.version,
                   "fingerprint": record.fingerprint, "rows": df.height},
               "steps": trainer.state.global_step, "train_loss": result.training_loss,
               "losses": losses, "seconds": round(elapsed, 2),
               "hyperparameters": _hyperparameters(config, method)}
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    (output_dir / "selfpref_train.json").write_text(json.dumps(summary, indent=2, default=str))
    (output_dir / "README.md").write_text(render_model_card(summary))
    if push_to_hub:
        summary["url"] = push_model(output_dir, push_to_hub)
    return summary


def _hyperparameters(config: Any, method: str) -> dict[str, Any]:
    keys = ["learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "gradient_accumulation_steps", "beta", "max_length", "seed", "loss_type",
            "cpo_alpha", "simpo_gamma"]
    keys += [k for k in vars(config) if k.startswith(("sso_", "selfee_"))]
    return {k: getattr(config, k) for k in keys if hasattr(config, k)}


def render_model_card(s: dict[str, Any]) -> str:
    d = s["dataset"]
    rows = "\n".join(f"| {k} | {v} |" for k, v in s["hyperparameters"].items())
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
- steps: {s['steps']}, final training loss {s['train_loss']:.4f}, {s['seconds']} s

| hyperparameter | value |
|---|---|
{rows}

Reproduce: `selfpref train {s['method']} --dataset {d['id']} --model {s['model']}`
"""


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
