"""`selfpref train METHOD`: a dataset reference -> a TRL trainer -> a model folder with its card."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selfpref import SelfprefError
from selfpref.cli.app import app, console


@app.command()
def train(
    method: str = typer.Argument(..., help="dpo, ipo, simpo, orpo, sso, selfee or rm."),
    dataset: Optional[str] = typer.Option(None, help="Dataset folder, Hub id or id@version (or set `dataset:` in --config)."),
    model: Optional[str] = typer.Option(None, help="Model folder or Hub id; default: the embedded SmolLM2-135M-Instruct."),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Where the trained model and its card go."),
    config: Optional[Path] = typer.Option(None, "--config", help="Recipe YAML (fields of the method's config; unknown keys are errors)."),
    reference_model: Optional[str] = typer.Option(None, help="Reference model for dpo/ipo/sso/selfee; default: a copy of --model."),
    learning_rate: Optional[float] = typer.Option(None, help="Learning rate."),
    epochs: Optional[float] = typer.Option(None, help="Number of training epochs."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Per-device train batch size."),
    grad_accum: Optional[int] = typer.Option(None, help="Gradient accumulation steps."),
    beta: Optional[float] = typer.Option(None, help="beta of the loss (defaults: dpo 0.1, ipo 0.2, simpo 10, orpo 0.1 (lambda), sso 0.2, selfee 0.1)."),
    max_length: Optional[int] = typer.Option(None, help="Longest prompt+answer in tokens."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    selfee_lambda: Optional[float] = typer.Option(None, help="selfee: lambda of the extrapolated policy (Eq. 12)."),
    push_to_hub: Optional[str] = typer.Option(None, help="Push the model to this Hub repo (org/name)."),
) -> None:
    """Train a model on a preference dataset with DPO, IPO, SimPO, ORPO, SSO, SELFEE or a reward model.

    Without a recipe the defaults are each paper's settings (one epoch, its schedule, warm-up and
    learning rate), with a CPU-sized batch; the model card lists every value and its source.
    """
    from selfpref.trainers.configs import recipe_run_keys
    from selfpref.trainers.run import train as run_train

    keys = recipe_run_keys(config) if config else {}
    dataset = dataset or keys.get("dataset")
    if not dataset:
        raise SelfprefError("no dataset: pass --dataset REF or set `dataset:` in the recipe")
    summary = run_train(method, dataset, output_dir, model=model or keys.get("model"),
                        reference_model=reference_model, recipe=config, push_to_hub=push_to_hub,
                        learning_rate=learning_rate, num_train_epochs=epochs, max_steps=max_steps,
                        per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
                        beta=beta, max_length=max_length, seed=seed, selfee_lambda=selfee_lambda)
    for reason, count in sorted((summary.get("dropped") or {}).items()):
        console.print(f"  dropped {count} rows before training: {reason}")
    console.print(f"trained {method} for {summary['steps']} steps in {summary['seconds']} s; "
                  f"final loss {summary['train_loss']:.4f}; model in {output_dir}")
