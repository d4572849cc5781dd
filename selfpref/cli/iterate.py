"""`selfpref iterate`: the build -> filter -> card -> push -> train loop (selfpref.loop.iterate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from selfpref.cli.app import app, console, number_list


@app.command()
def iterate(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the loop: iter-1/, iter-2/, ... with data and model each."),
    method: str = typer.Option("sao", help="sao (SimPO), sso (SSO loss) or selfee (refined DPO)."),
    iterations: int = typer.Option(2, help="How many build -> train rounds (T)."),
    model: Optional[str] = typer.Option(None, help="Starting model M0 (pi_init); default: the embedded SmolLM2-135M-Instruct."),
    prompts: Optional[str] = typer.Option(None, help="Prompt set (a 'prompt' column), split into disjoint parts, one per iteration."),
    num_prompts: Optional[int] = typer.Option(None, help="Prompts per iteration (sao without --prompts: personas the model writes)."),
    reference_model: Optional[str] = typer.Option(None, help="selfee: a separate pi_init to label against (Eq. 7)."),
    seed_data: Optional[str] = typer.Option(None, help="selfee: human-labelled seed set; pi_0 = DPO of --model on it (SELFEE Alg. 1)."),
    lambdas: Optional[str] = typer.Option(None, help="selfee: lambda per iteration, e.g. 0.5,0.25 (default 1/2, 1/4, 1/8, ...)."),
    filters: Optional[Path] = typer.Option(None, help="Filter recipe YAML ({filters: [...]}, as `filter --config`); default: the method's (sao: minhash + consistent judge; sso: minhash, length diff, balance; selfee: none)."),
    judge_models: Optional[list[str]] = typer.Option(None, help="sso: judge models for the A.1.4 dispute filter (repeatable)."),
    build_config: Optional[Path] = typer.Option(None, help="Build recipe YAML (as `build --config`) for every iteration."),
    train_config: Optional[Path] = typer.Option(None, help="Training recipe YAML (as `train --config`) for every iteration."),
    seed_train_config: Optional[Path] = typer.Option(None, help="selfee: DPO recipe for the --seed-data stage (pi_0); default: SELFEE §4.1's initial stage, as recipes/dpo/selfee-seed.yaml."),
    backend: Optional[str] = typer.Option(None, help="Build backend: transformers, vllm, openai or scripted."),
    script: Optional[str] = typer.Option(None, help="scripted backend: YAML of step name -> texts."),
    judge_mode: Optional[str] = typer.Option(None, help="sao: text or logits judge."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Most new tokens per generated answer."),
    batch_size: Optional[int] = typer.Option(None, help="Generation batch size."),
    max_steps: Optional[int] = typer.Option(None, help="Optimizer steps per iteration (default: one epoch)."),
    train_batch_size: Optional[int] = typer.Option(None, help="Per-device train batch size."),
    learning_rate: Optional[float] = typer.Option(None, help="Learning rate."),
    max_length: Optional[int] = typer.Option(None, help="Longest prompt+answer in tokens for training."),
    seed: int = typer.Option(0, help="Seed for prompt splits, sampling and training."),
    name: Optional[str] = typer.Option(None, help="Dataset name (default: the output folder's name); iteration t is name@0.t.0."),
    push_to_hub: Optional[str] = typer.Option(None, help="Push each iteration's dataset to this Hub repo, tagged v0.t.0."),
) -> None:
    """Self-alignment loop: for t = 1..T build with pi_{t-1}, filter, card, push, train pi_t. Rerun to resume."""
    from selfpref.filters.apply import load_filter_recipe
    from selfpref.loop.iterate import IterateConfig
    from selfpref.loop.iterate import iterate as run_loop
    from selfpref.pipelines.config import load_build_recipe

    steps, filter_options = load_filter_recipe(filters) if filters else (None, {})
    build = load_build_recipe(build_config) if build_config else {}
    build.update({k: v for k, v in dict(backend=backend, script=script, judge_mode=judge_mode,
                                        max_new_tokens=max_new_tokens, batch_size=batch_size).items()
                  if v is not None})
    train = {k: v for k, v in dict(max_steps=max_steps, per_device_train_batch_size=train_batch_size,
                                   learning_rate=learning_rate, max_length=max_length, seed=seed).items()
             if v is not None}
    cfg = IterateConfig(method=method, iterations=iterations, output=str(output), model=model,
                        prompts=prompts, num_prompts=num_prompts, reference_model=reference_model,
                        seed_data=seed_data, name=name, seed=seed, filters=steps,
                        filter_options=filter_options, judge_models=judge_models,
                        lambdas=number_list(lambdas, "--lambdas", float, "0.5,0.25"), build=build, train=train,
                        train_recipe=str(train_config) if train_config else None,
                        seed_train_recipe=str(seed_train_config) if seed_train_config else None,
                        push_to_hub=push_to_hub)
    rows = run_loop(cfg, notify=console.print)
    console.print(summary_table(rows))
    console.print(f"summary written to {output / 'summary.json'}; final model: {rows[-1]['model']}")


def summary_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="selfpref iterate", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = [("iteration", "iter"), ("dataset", "dataset"), ("rows_kept", "rows\nkept"),
               ("mean_chosen_chars", "chosen\nchars"), ("mean_rejected_chars", "rejected\nchars"),
               ("mean_confidence", "mean\nconfidence"), ("separability", "separa-\nbility"),
               ("train_loss", "train\nloss")]
    longest = max((len(str(r.get("dataset", ""))) for r in rows), default=7)
    for key, title in columns:
        table.add_column(title, justify="left" if key == "dataset" else "right",
                         min_width=longest if key == "dataset" else None)
    for row in rows:
        table.add_row(*["-" if row.get(key) is None else str(row[key]) for key, _ in columns])
    return table
