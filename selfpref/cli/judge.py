"""`selfpref judge check`: a judge (or reward model) against human-labelled pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from selfpref.cli.app import app, bounded, console

judge_app = typer.Typer(help="Check a judge before it labels anything.", no_args_is_help=True)
app.add_typer(judge_app, name="judge")


@judge_app.command("check")
def check(
    data: str = typer.Argument(..., help="Human-labelled pairs: file, folder or Hub id in any layout `selfpref import` reads (TRL, hh-rlhf, UltraFeedback, ...)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write: judge_check.json, judgments.parquet, accuracy.png."),
    judge: str = typer.Option("logits", help="logits (forced choice), text (written verdict), rm (reward model), implicit (SELFEE's implicit reward of --judge-model against --judge-reference), length (shorter wins), length:longer, random."),
    judge_model: Optional[list[str]] = typer.Option(None, help="Judge model: folder, Hub id, 'default' (the embedded model), a reward model for --judge rm, or the endpoint's model name. Repeat it for a panel (--judge one kind for all, or one per model: text,logits,rm)."),
    panel: str = typer.Option("mean", help="Several --judge-model: mean (of P), majority (of verdicts) or unanimous."),
    judge_reference: Optional[str] = typer.Option(None, help="--judge implicit: the reference model of SELFEE's implicit reward (unset: reference-free, SELFEE Table 5)."),
    beta: float = typer.Option(0.1, help="--judge implicit: beta of SELFEE Eq. 7."),
    judge_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint of the judge (…/v1)."),
    judge_api_key_env: Optional[str] = typer.Option(None, help="NAME of the environment variable holding the endpoint's key."),
    judge_backend: Optional[str] = typer.Option(None, help="transformers (default), vllm, openai."),
    judge_orders: int = typer.Option(2, help="2: each pair in both orders (default); 1: chosen shown first only."),
    judge_max_new_tokens: int = typer.Option(32, callback=bounded(1), help="--judge text: most new tokens per verdict."),
    layout: Optional[str] = typer.Option(None, help="Source layout (default: detected, as `import`)."),
    split: Optional[str] = typer.Option(None, help="Split of a Hub dataset, or files of a folder whose names contain it."),
    max_pairs: Optional[int] = typer.Option(None, help="Judge only the first N pairs: a quick look."),
    batch_size: int = typer.Option(8, callback=bounded(1), help="Sequences per forward pass."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the accuracy's 95% interval (0: none)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap, the random judge and binarized layouts."),
) -> None:
    """Accuracy of a judge against human labels (95% CI), per order, consistency, ties, and by length."""
    from selfpref.api import judge_check
    from selfpref.eval.judge_check import format_table

    summary = judge_check(data, output, notify=console.print, judge=judge, judge_model=judge_model,
                          panel=panel, judge_reference=judge_reference, beta=beta,
                          judge_base_url=judge_base_url, judge_api_key_env=judge_api_key_env,
                          judge_backend=judge_backend, judge_orders=judge_orders,
                          judge_max_new_tokens=judge_max_new_tokens, layout=layout, split=split,
                          max_pairs=max_pairs, batch_size=batch_size, bootstrap=bootstrap,
                          seed=seed).summary
    table = Table(title=f"{summary['judge']['label']} vs human labels ({summary['n']} pairs)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in format_table(summary):
        table.add_row(name, value)
    console.print(table)
    console.print(f"wrote {output}", markup=False)
