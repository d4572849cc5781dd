"""`selfpref build METHOD`: the command over the build runner (``selfpref.pipelines.run``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from selfpref.cli.app import OVERWRITE_HELP, app, command_line, console


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
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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
    method: str = typer.Argument(..., help="sao, sso, alignez or selfee."),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset folder to write (atomically)."),
    model: Optional[str] = typer.Option(None, help="Generator model (folder or Hub id); default: embedded SmolLM2-135M-Instruct."),
    reference_model: Optional[str] = typer.Option(None, help="selfee: Eq. 7's reference, one of SELFEE Table 5's variants: the initial SFT model pi_init (the paper's), the model before --model (Table 5's 'previous model'), or omit it for the judgment without reference model (per-token policy log-likelihood)."),
    backend: Optional[str] = typer.Option(None, help="transformers (CPU/GPU), vllm (GPU), openai (any compatible endpoint) or scripted."),
    base_url: Optional[str] = typer.Option(None, help="openai backend: the endpoint's /v1 URL."),
    api_key_env: Optional[str] = typer.Option(None, help="openai backend: NAME of the env variable holding the key."),
    prompts: Optional[str] = typer.Option(None, help="Use this prompt set (dataset with a 'prompt' column); default: the model writes its own (persona -> prompt)."),
    personas: Optional[str] = typer.Option(None, help="Persona dataset (a 'persona' column, as Persona Hub) the model writes prompts from."),
    prompt_source: Optional[str] = typer.Option(None, "--prompt-source", help="Without --prompts: 'persona' (default; SAO sec. 3.1) or 'random' (SAO Table 5: no persona, the model writes prompts unprompted). Recipe key: prompt_mode."),
    num_prompts: Optional[int] = typer.Option(None, help="How many prompts/personas (default 8)."),
    seed: Optional[int] = typer.Option(None, help="Random seed (default 0)."),
    batch_size: Optional[int] = typer.Option(None, help="Generation batch size (default 8)."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (method default)."),
    top_p: Optional[float] = typer.Option(None, help="Nucleus top_p (method default)."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Most new tokens per answer."),
    prompt_max_new_tokens: Optional[int] = typer.Option(None, help="Most new tokens per persona and prompt (default 64, for a CPU; SAO's prompts run to 200 words, Fig. 3: its paper recipe allows 512)."),
    truncated_prompts: Optional[str] = typer.Option(None, help="A persona or prompt that reached --prompt-max-new-tokens is cut mid-sentence: drop (default; counted as persona_truncated / prompt_truncated in the funnel) or keep."),
    judge: Optional[str] = typer.Option(None, help="sao: text (a written verdict, the default) or logits (forced choice) by a model; rm (a reward model, --judge-model PATH; P = sigmoid(r_A - r_B)); or SAO Table 6's baselines: length (shorter wins), length:longer, random (seeded by --seed)."),
    judge_orders: Optional[int] = typer.Option(None, help="sao: 2 (default, selfpref's choice) asks the judge in both orders; 1 makes SAO Alg. 1 / Eq. 3's single call R(y1, y2 | x) (judge_consistent is then null)."),
    judge_mode: Optional[str] = typer.Option(None, help="sao: older name of --judge text|logits."),
    judge_model: Optional[list[str]] = typer.Option(None, help="sao: judge with this model instead of the generator (SAO Table 8): folder, Hub id, 'default', or the endpoint's model name. Repeat it for a panel of judges (--judge one kind for all, or one per model: text,logits,rm)."),
    panel: Optional[str] = typer.Option(None, help="sao, several --judge-model: mean (of P, default), majority (of the judges' verdicts) or unanimous (a label only when all agree)."),
    judge_base_url: Optional[str] = typer.Option(None, help="sao: the judge's own OpenAI-compatible endpoint (…/v1), with --judge-model naming its model."),
    judge_api_key_env: Optional[str] = typer.Option(None, help="sao, with --judge-base-url: NAME of the env variable holding that endpoint's key (written nowhere)."),
    principles: Optional[str] = typer.Option(None, "--principles", help="sso: YAML replacing SSO's feature/principle table (features: [{name, good, bad, meaning, good_principle, bad_principle}, ...], optional concision); recipe key: principles."),
    chunk_size: Optional[int] = typer.Option(None, help="Prompts per resumable chunk (default 16)."),
    script: Optional[str] = typer.Option(None, help="scripted backend: YAML of step name -> texts."),
    config: Optional[Path] = typer.Option(None, "--config", help="Build recipe YAML (unknown keys are errors); flags override it."),
    ray: bool = typer.Option(False, "--ray", help="Spread chunks over Ray workers that each load their models once (local runtime or --ray-address)."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster address, e.g. ray://head:10001 or head:6379."),
    ray_workers: Optional[int] = typer.Option(None, help="--ray: workers (default: one per GPU for vllm, else one per node)."),
    ray_gpus_per_worker: Optional[int] = typer.Option(None, help="--ray --backend vllm: GPUs per worker = its engines' tensor_parallel_size (default 1)."),
    ray_reference_gpus: Optional[int] = typer.Option(None, help="--ray, selfee on vllm: GPUs for --reference-model; more than --ray-gpus-per-worker puts it on its own worker (default: beside the policy)."),
    name: Optional[str] = typer.Option(None, help="Dataset name (default: the output folder's name)."),
    dataset_version: str = typer.Option("0.1.0", "--version", help="Version of the new dataset."),
    license: Optional[str] = typer.Option(None, help="License for the data card (unset: 'other')."),
    push_to_hub: Optional[str] = typer.Option(None, help="Also push the folder to this Hub dataset repo."),
    private: bool = typer.Option(False, help="With --push-to-hub: create the repo private."),
    prompt_format: Optional[str] = typer.Option(None, help="alignez: chat (the chat template), completion (plain text, for a base model: AlignEZ §2.1, A.5) or auto (default: completion when the tokenizer has no chat template)."),
    prompt_column: Optional[str] = typer.Option(None, help="Column of --prompts to read (default: the first of prompt, instruction, turns, messages, conversations)."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    no_cache: bool = typer.Option(False, "--no-cache", help="Read and write no request or step cache: send every request, run every step (see `selfpref cache`)."),
    cache_dir: Optional[str] = typer.Option(None, help="Request and step cache folder (default: $SELFPREF_CACHE_DIR, else .selfpref-cache beside --output)."),
) -> None:
    """Generate a preference dataset with a seed paper's method on a model (default: the embedded one)."""
    from selfpref.api import build as api_build

    flags = dict(model=model, reference_model=reference_model, backend=backend, base_url=base_url,
                 api_key_env=api_key_env, prompts=prompts, personas=personas,
                 num_prompts=num_prompts, seed=seed, batch_size=batch_size,
                 temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                 judge=judge, judge_mode=judge_mode, judge_orders=judge_orders, panel=panel,
                 judge_model=judge_model[0] if judge_model and len(judge_model) == 1 else None,
                 judge_models=judge_model if judge_model and len(judge_model) > 1 else None,
                 judge_base_url=judge_base_url, judge_api_key_env=judge_api_key_env,
                 principles=principles, chunk_size=chunk_size, script=script,
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
