"""`selfpref iterate`: the build -> filter -> card -> push -> train loop (selfpref.loop.iterate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from selfpref import SelfprefError
from selfpref.api.help import field_help
from selfpref.cli.app import app, bounded, console, number_list
from selfpref.loop.iterate import IterateConfig


@app.command()
def iterate(
    output: Path = typer.Option(..., "--output", "-o", help=field_help(IterateConfig, "output")),
    method: str = typer.Option("sao", help=field_help(IterateConfig, "method")),
    iterations: int = typer.Option(2, help=field_help(IterateConfig, "iterations")),
    model: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "model")),
    prompts: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "prompts")),
    prompt_column: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "prompt_column")),
    num_prompts: Optional[int] = typer.Option(None, callback=bounded(1), help=field_help(IterateConfig, "num_prompts")),
    prompts_per_iteration: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "prompts_per_iteration")),
    reference_model: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "reference_model")),
    selfee_reference: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "selfee_reference")),
    seed_data: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "seed_data")),
    lambdas: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "lambdas")),
    filters: Optional[Path] = typer.Option(None, help=field_help(IterateConfig, "filters")),
    judge_models: Optional[list[str]] = typer.Option(None, help=field_help(IterateConfig, "judge_models")),
    build_config: Optional[Path] = typer.Option(None, help="Build recipe YAML (as `build --config`) for every iteration."),
    train_config: Optional[Path] = typer.Option(None, help=field_help(IterateConfig, "train_recipe")),
    seed_train_config: Optional[Path] = typer.Option(None, help=field_help(IterateConfig, "seed_train_recipe")),
    backend: Optional[str] = typer.Option(None, help="Build backend: transformers, vllm, openai or scripted."),
    script: Optional[str] = typer.Option(None, help="scripted backend: YAML of step name -> texts."),
    judge_mode: Optional[str] = typer.Option(None, help="sao: text or logits judge."),
    max_new_tokens: Optional[int] = typer.Option(None, callback=bounded(1), help="Most new tokens per generated answer."),
    batch_size: Optional[int] = typer.Option(None, callback=bounded(1), help="Generation batch size."),
    max_concurrency: Optional[int] = typer.Option(None, help="openai backend: most requests in flight per endpoint (default 16)."),
    max_retries: Optional[int] = typer.Option(None, help="openai backend: retries after a 429, 408, 5xx, reset or timeout (default 8)."),
    request_timeout: Optional[float] = typer.Option(None, help="openai backend: seconds one attempt may take (default 120)."),
    max_steps: Optional[int] = typer.Option(None, callback=bounded(1), help="Optimizer steps per iteration (default: one epoch)."),
    train_batch_size: Optional[int] = typer.Option(None, callback=bounded(1), help="Per-device train batch size."),
    learning_rate: Optional[float] = typer.Option(None, callback=bounded(0, low_open=True), help="Learning rate."),
    max_length: Optional[int] = typer.Option(None, callback=bounded(8), help="Longest prompt+answer in tokens for training."),
    seed: int = typer.Option(0, help=field_help(IterateConfig, "seed")),
    name: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "name")),
    push_to_hub: Optional[str] = typer.Option(None, help=field_help(IterateConfig, "push_to_hub")),
    eval_prompts: Optional[str] = typer.Option(None, help="After each iteration, judge pi_t against pi_0 on these prompts ('default' or 'shipped': selfpref's 104 held-out prompts; or any prompt set). Not part of the loop's arguments: rerun a finished loop with it to evaluate it."),
    eval_num_prompts: Optional[int] = typer.Option(None, callback=bounded(1), help="Evaluate on at most N of --eval-prompts (taken in turn from each category when the set has them)."),
    eval_judge: Optional[str] = typer.Option(None, help="Judge of the evaluation: logits (default: forced choice), text, length, length:longer or random."),
    eval_judge_model: Optional[str] = typer.Option(None, help="Judge model: folder, Hub id or 'default' (the embedded model, the default), or the endpoint's model name."),
    eval_judge_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint for the evaluation's judge (…/v1)."),
    eval_judge_api_key_env: Optional[str] = typer.Option(None, help="NAME of the environment variable holding the endpoint's key."),
    eval_max_new_tokens: Optional[int] = typer.Option(None, callback=bounded(1), help="Most new tokens per evaluation answer, pi_0 and pi_t alike (default 256)."),
    eval_temperature: Optional[float] = typer.Option(None, callback=bounded(0), help="Evaluation decoding, pi_0 and pi_t alike: 0 (default) is greedy; above 0 samples with --seed."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Builds read and write no request or step cache (build recipe key no_cache); not part of the loop's arguments."),
) -> None:
    """Self-alignment loop: for t = 1..T build with pi_{t-1}, filter, card, push, train pi_t. Rerun to resume."""
    from selfpref.api.iterate import loop_config, preflight
    from selfpref.loop.iterate import iterate as run_loop

    evaluation = loop_eval(eval_prompts, num_prompts=eval_num_prompts, judge=eval_judge,
                           judge_model=eval_judge_model, judge_base_url=eval_judge_base_url,
                           judge_api_key_env=eval_judge_api_key_env, max_new_tokens=eval_max_new_tokens,
                           temperature=eval_temperature, batch_size=batch_size, seed=seed)
    cfg = loop_config(
        output, filters=filters, build_recipe=build_config, train_recipe=train_config,
        seed_train_recipe=seed_train_config, evaluation=evaluation,
        build=dict(backend=backend, script=script, judge_mode=judge_mode,
                   max_new_tokens=max_new_tokens, batch_size=batch_size, no_cache=no_cache or None,
                   max_concurrency=max_concurrency, max_retries=max_retries,
                   request_timeout=request_timeout),
        train=dict(max_steps=max_steps, per_device_train_batch_size=train_batch_size,
                   learning_rate=learning_rate, max_length=max_length, seed=seed),
        method=method, iterations=iterations, model=model, prompts=prompts,
        num_prompts=num_prompts, reference_model=reference_model, selfee_reference=selfee_reference,
        seed_data=seed_data, name=name, seed=seed, judge_models=judge_models,
        lambdas=number_list(lambdas, "--lambdas", float, "0.5,0.25"), push_to_hub=push_to_hub,
        prompt_column=prompt_column,
        prompts_per_iteration=number_list(prompts_per_iteration, "--prompts-per-iteration", int,
                                          "8000,20000,30000"))
    preflight(cfg)  # every check that can be made before the first build
    rows = run_loop(cfg, notify=console.print)
    console.print(summary_table(rows), markup=False, highlight=False, soft_wrap=True)
    note = eval_note(rows)
    if note:
        console.print(note, markup=False, highlight=False)
    console.print(f"summary written to {output / 'summary.json'}; final model: {rows[-1]['model']}",
                  markup=False, highlight=False)


def loop_eval(prompts: str | None, **options: Any) -> Any:
    """The loop's evaluation options, or None; an --eval-* flag without --eval-prompts is refused."""
    from selfpref.loop.evaluate import LoopEval

    given = {k: v for k, v in options.items() if v is not None}
    if prompts is None:
        stray = [f"--eval-{k.replace('_', '-')}" for k in given if k not in ("batch_size", "seed")]
        if stray:
            raise SelfprefError(f"{stray[0]}: evaluates the loop, which needs --eval-prompts REF "
                                "('default' for selfpref's held-out prompts)")
        return None
    return LoopEval(prompts=prompts, **given)


def eval_note(rows: list[dict[str, Any]]) -> str | None:
    """Under the table: what the eval columns are, and what the judge's verdicts are worth."""
    from selfpref.eval.report import consistency_note

    evaluated = [r for r in rows if r.get("eval_win_rate") is not None]
    if not evaluated:
        return None
    n = evaluated[-1]["eval_n"]
    consistency = sum(r["eval_judge_consistency"] for r in evaluated) / len(evaluated)
    return (f"eval: pi_t against pi_0 on {n} prompts, judge {evaluated[-1]['eval_judge']}; win and "
            f"LC win are pi_t's (LC 50 = no change; ties count for neither side in win). "
            + consistency_note(consistency, n, fix="--eval-judge-model",
                               scope=" (mean over iterations)" if len(evaluated) > 1 else ""))


def _ci(row: dict[str, Any]) -> str | None:
    ci = (row.get("eval_ci95") or {}).get("win_rate")
    return f"{ci[0]:.1f}-{ci[1]:.1f}" if ci else None


# selfee loops: the model each iteration's labels were judged against (Eq. 7, Table 5)
REFERENCE_COLUMN = ("reference", "Eq. 7", "reference")
SUMMARY_COLUMNS = [("iteration", "", "iter"), ("dataset", "", "dataset"), ("rows_kept", "rows", "kept"),
                   ("mean_chosen_chars", "chosen", "chars"), ("mean_rejected_chars", "rejected", "chars"),
                   ("mean_confidence", "mean", "confidence"), ("separability", "separa-", "bility"),
                   ("train_loss", "train", "loss")]


# Shown when any iteration was evaluated: pi_t's figures over pi_0 (cell text from the row).
EVAL_COLUMNS = [("eval_win_rate", "win %", "vs pi0"), ("eval_ci95", "win", "95% CI"),
                ("eval_lc_win_rate", "LC win", "%"), ("eval_judge_consistency", "judge", "consist. %"),
                ("eval_mean_len_b", "answer", "chars")]


def _cell(row: dict[str, Any], key: str) -> str:
    value = _ci(row) if key == "eval_ci95" else row.get(key)
    if value is None:
        return "-"
    if key.startswith("eval_") and isinstance(value, float):
        return f"{value:.0f}" if key == "eval_mean_len_b" else f"{value:.1f}"
    return str(value)


def summary_table(rows: list[dict[str, Any]]) -> str:
    """One line per iteration, every column as wide as its longest cell: never clipped or wrapped,
    whatever the terminal's width or the dataset names' length."""
    columns = SUMMARY_COLUMNS + ([REFERENCE_COLUMN] if any("reference" in r for r in rows) else [])
    columns += (EVAL_COLUMNS if any(r.get("eval_win_rate") is not None for r in rows) else [])
    cells = [[_cell(row, key) for key, _, _ in columns] for row in rows]
    widths = [max([len(top), len(bottom), *(len(r[i]) for r in cells)])
              for i, (_, top, bottom) in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) if key == "dataset" else v.rjust(w)
                         for (key, _, _), v, w in zip(columns, values, widths)).rstrip()

    out = [line([top for _, top, _ in columns]), line([b for _, _, b in columns]),
           "-" * (sum(widths) + 2 * (len(widths) - 1))]
    return "\n".join(["selfpref iterate", *out, *(line(r) for r in cells)])
