"""`selfpref build METHOD`: the command over the build runner (``selfpref.pipelines.run``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

from selfpref.api.help import field_help
from selfpref.cli.app import OVERWRITE_HELP, app, command_line, console
from selfpref.pipelines.config import BuildConfig


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class _Lines:
    """Progress as plain lines (logs, pipes): at most one every ``every`` seconds, and one per chunk."""

    def __init__(self, method: str, every: float = 10.0) -> None:
        self.method, self.every, self.last, self.chunks_seen = method, every, 0.0, -1

    def __call__(self, state: Any) -> None:
        now = time.monotonic()
        if state.chunks_done == self.chunks_seen and now - self.last < self.every:
            return
        self.last, self.chunks_seen = now, state.chunks_done
        console.print(f"build {self.method}: chunk {state.chunks_done}/{state.chunks} · {state.line()} "
                      f"· {_clock(now - state.started)} elapsed, ~{_clock(state.eta())} left",
                      markup=False, highlight=False, soft_wrap=True)


def _progress(method: str) -> tuple[Any, Callable[[Any], None]]:
    """(context, callback): a live line with every step's count and an ETA on a terminal,
    plain lines elsewhere."""
    import contextlib

    if not console.is_terminal:
        return contextlib.nullcontext(), _Lines(method)
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn(f"[bold]build {method}[/bold]"), BarColumn(bar_width=24),
                   TextColumn("{task.description}"), TimeElapsedColumn(), TextColumn("eta"),
                   TimeRemainingColumn(), console=console)
    task: list[Any] = []

    def update(state: Any) -> None:
        text = f"chunk {state.chunks_done}/{state.chunks} · {state.line()}"
        if not task:  # rows finished by an earlier run start the bar, not its speed
            task.append(bar.add_task(text, total=state.work, completed=state.work_done))
        bar.update(task[0], description=text, completed=state.work_done, total=state.work)

    return bar, update


@app.command()
def build(
    method: str = typer.Argument(..., help=field_help(BuildConfig, "method")),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset folder to write (atomically)."),
    model: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "model")),
    reference_model: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "reference_model")),
    backend: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "backend")),
    base_url: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "base_url")),
    api_key_env: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "api_key_env")),
    prompts: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "prompts")),
    personas: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "personas")),
    prompt_source: Optional[str] = typer.Option(None, "--prompt-source", help=field_help(BuildConfig, "prompt_mode")),
    num_prompts: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "num_prompts")),
    seed: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "seed")),
    batch_size: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "batch_size")),
    temperature: Optional[float] = typer.Option(None, help=field_help(BuildConfig, "temperature")),
    top_p: Optional[float] = typer.Option(None, help=field_help(BuildConfig, "top_p")),
    max_new_tokens: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "max_new_tokens")),
    prompt_max_new_tokens: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "prompt_max_new_tokens")),
    truncated_prompts: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "truncated_prompts")),
    judge: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "judge")),
    judge_orders: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "judge_orders")),
    judge_criteria: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "judge_criteria")),
    judge_mode: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "judge_mode")),
    judge_model: Optional[list[str]] = typer.Option(None, help=field_help(BuildConfig, "judge_model")),
    panel: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "panel")),
    judge_base_url: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "judge_base_url")),
    judge_api_key_env: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "judge_api_key_env")),
    principles: Optional[str] = typer.Option(None, "--principles", help=field_help(BuildConfig, "principles")),
    chunk_size: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "chunk_size")),
    max_concurrency: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "max_concurrency")),
    max_retries: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "max_retries")),
    request_timeout: Optional[float] = typer.Option(None, help=field_help(BuildConfig, "request_timeout")),
    price: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "price")),
    script: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "script")),
    config: Optional[Path] = typer.Option(None, "--config", help="Build recipe YAML (unknown keys are errors); flags override it."),
    ray: bool = typer.Option(False, "--ray", help=field_help(BuildConfig, "ray")),
    ray_address: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "ray_address")),
    ray_workers: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "ray_workers")),
    ray_gpus_per_worker: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "ray_gpus_per_worker")),
    ray_reference_gpus: Optional[int] = typer.Option(None, help=field_help(BuildConfig, "ray_reference_gpus")),
    name: Optional[str] = typer.Option(None, help="Dataset name (default: the output folder's name)."),
    dataset_version: str = typer.Option("0.1.0", "--version", help="Version of the new dataset."),
    license: Optional[str] = typer.Option(None, help="License for the data card (unset: 'other')."),
    push_to_hub: Optional[str] = typer.Option(None, help="Also push the folder to this Hub dataset repo."),
    private: bool = typer.Option(False, help="With --push-to-hub: create the repo private."),
    prompt_format: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "prompt_format")),
    prompt_column: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "prompt_column")),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    no_cache: bool = typer.Option(False, "--no-cache", help=field_help(BuildConfig, "no_cache")),
    cache_dir: Optional[str] = typer.Option(None, help=field_help(BuildConfig, "cache_dir")),
) -> None:
    """Generate a preference dataset with a seed paper's method on a model (default: the embedded one)."""
    from selfpref.api import build as api_build

    flags: dict[str, Any]  # **-unpacked into build(): its fields are of several types
    flags = dict(model=model, reference_model=reference_model, backend=backend, base_url=base_url,
                 api_key_env=api_key_env, prompts=prompts, personas=personas,
                 num_prompts=num_prompts, seed=seed, batch_size=batch_size,
                 temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                 judge=judge, judge_mode=judge_mode, judge_orders=judge_orders, panel=panel, judge_criteria=judge_criteria,
                 judge_model=judge_model[0] if judge_model and len(judge_model) == 1 else None,
                 judge_models=judge_model if judge_model and len(judge_model) > 1 else None,
                 judge_base_url=judge_base_url, judge_api_key_env=judge_api_key_env,
                 principles=principles, chunk_size=chunk_size, script=script,
                 max_concurrency=max_concurrency, max_retries=max_retries,
                 request_timeout=request_timeout, price=price,
                 ray=ray or None, ray_address=ray_address, ray_workers=ray_workers,
                 ray_gpus_per_worker=ray_gpus_per_worker, ray_reference_gpus=ray_reference_gpus,
                 prompt_column=prompt_column, prompt_mode=prompt_source,
                 prompt_max_new_tokens=prompt_max_new_tokens, truncated_prompts=truncated_prompts,
                 prompt_format=prompt_format, no_cache=no_cache or None, cache_dir=cache_dir)
    display, progress = _progress(method)
    with display:
        api_build(method, output, recipe=config, name=name, version=dataset_version,
                  license=license, push_to_hub=push_to_hub, private=private, overwrite=overwrite,
                  notify=console.print, progress=progress, command=command_line(), **flags)
