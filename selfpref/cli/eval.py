"""`selfpref eval` (model A vs model B through the judges) and `selfpref eval compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from selfpref.api.help import field_help
from selfpref.cli.app import app, command_line, console, number_list, out
from selfpref.eval.run import EvalConfig

eval_app = typer.Typer(help="Judge model A against model B on held-out prompts, both orders.")
app.add_typer(eval_app, name="eval")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


@eval_app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help=field_help(EvalConfig, "output")),
    model_a: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "model_a")),
    model_b: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "model_b")),
    answers_a: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "answers_a")),
    answers_b: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "answers_b")),
    steer_b: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "steer_b")),
    steer_layers: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "steer_layers")),
    prompts: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "prompts")),
    prompt_column: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "prompt_column")),
    max_prompts: Optional[int] = typer.Option(None, help=field_help(EvalConfig, "max_prompts")),
    max_new_tokens: int = typer.Option(256, help=field_help(EvalConfig, "max_new_tokens")),
    temperature: float = typer.Option(0.0, help=field_help(EvalConfig, "temperature")),
    top_p: float = typer.Option(1.0, help=field_help(EvalConfig, "top_p")),
    batch_size: int = typer.Option(8, help=field_help(EvalConfig, "batch_size")),
    judge: str = typer.Option("logits", help=field_help(EvalConfig, "judge")),
    judge_model: Optional[list[str]] = typer.Option(None, help=field_help(EvalConfig, "judge_model")),
    panel: str = typer.Option("mean", help=field_help(EvalConfig, "panel")),
    judge_base_url: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "judge_base_url")),
    judge_api_key_env: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "judge_api_key_env")),
    judge_backend: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "judge_backend")),
    judge_max_new_tokens: int = typer.Option(32, help=field_help(EvalConfig, "judge_max_new_tokens")),
    aspects: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "aspects")),
    seed: int = typer.Option(0, help=field_help(EvalConfig, "seed")),
    bootstrap: int = typer.Option(1000, help=field_help(EvalConfig, "bootstrap")),
    no_cache: bool = typer.Option(False, "--no-cache", help=field_help(EvalConfig, "no_cache")),
    cache_dir: Optional[str] = typer.Option(None, help=field_help(EvalConfig, "cache_dir")),
    max_concurrency: int = typer.Option(16, help=field_help(EvalConfig, "max_concurrency")),
    max_retries: int = typer.Option(8, help=field_help(EvalConfig, "max_retries")),
    request_timeout: float = typer.Option(120.0, help=field_help(EvalConfig, "request_timeout")),
) -> None:
    """Answer held-out prompts with A and B, judge each pair in both orders, and report win rates."""
    if ctx.invoked_subcommand is not None:
        return
    from selfpref.api import evaluate as api_evaluate

    s = api_evaluate(
        output, notify=console.print, command=command_line(), model_a=model_a, model_b=model_b,
        answers_a=answers_a, answers_b=answers_b, steer_b=steer_b,
        steer_layers=number_list(steer_layers, "--steer-layers", int, "3,5"), prompts=prompts,
        prompt_column=prompt_column, max_prompts=max_prompts, max_new_tokens=max_new_tokens,
        temperature=temperature, top_p=top_p, batch_size=batch_size, judge=judge,
        judge_model=judge_model, judge_base_url=judge_base_url,
        judge_api_key_env=judge_api_key_env, judge_backend=judge_backend,
        judge_max_new_tokens=judge_max_new_tokens, aspects=aspects,
        seed=seed, bootstrap=bootstrap, no_cache=no_cache, cache_dir=cache_dir, panel=panel,
        max_concurrency=max_concurrency, max_retries=max_retries,
        request_timeout=request_timeout).summary
    ci = s.get("ci95") or {}

    def interval(key: str) -> str:
        return f" (95% CI {ci[key][0]:.1f} to {ci[key][1]:.1f})" if key in ci else ""

    console.print(f"{s['models']['a']['label']} (A) vs {s['models']['b']['label']} (B), "
                  f"{s['n']} prompts, judge {s['judge']['label']}", markup=False)
    console.print(f"A: win {_pct(s['win_rate'])}%{interval('win_rate')}, lose {_pct(s['lose_rate'])}%, "
                  f"tie {_pct(s['tie_rate'])}%, net win {_pct(s['net_win'])}%, "
                  f"LC win {_pct(s['lc_win_rate'])}%{interval('lc_win_rate')}; judge consistency "
                  f"{_pct(s['judge_consistency'])}%; mean length A {s['mean_len_a']:.0f} / "
                  f"B {s['mean_len_b']:.0f} chars", markup=False)
    for name, a in (s.get("aspects") or {}).items():
        console.print(f"  {name}: win {_pct(a['win_rate'])}%, lose {_pct(a['lose_rate'])}%, "
                      f"net win {_pct(a['net_win'])}%", markup=False)
    console.print(f"wrote {output}", markup=False)


@eval_app.command("compare")
def compare(
    ours: Path = typer.Argument(..., help="Eval folder: base as A, our model as B."),
    aligned: Path = typer.Argument(..., help="Eval folder: the same base as A, the aligned model as B."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """AlignEZ's Relative Improvement% = NetWin(ours vs base) / NetWin(aligned vs base) x 100."""
    from selfpref.api import compare as compare_folders

    result = compare_folders(ours, aligned)
    if as_json:
        out(json.dumps(result, indent=2))  # stdout is the log while a command runs: not print()
        return
    table = Table(title=f"vs base {result['base']} ({result['n']} prompts, judge {result['judge']})")
    for column in ("", "Net Win% ours", "Net Win% aligned", "Relative Improvement%"):
        table.add_column(column, justify="right" if column else "left")
    rows = [("overall", result)] + list((result.get("aspects") or {}).items())
    if "aspect_mean" in result:
        rows.append(("mean of the aspects", result["aspect_mean"]))
    for name, r in rows:
        table.add_row(name, _pct(r["net_win_ours"]), _pct(r["net_win_aligned"]),
                      _pct(r["relative_improvement"]))
    console.print(table)
    console.print(f"Relative Improvement%: {_pct(result['headline_relative_improvement'])} "
                  f"({result['headline']})", markup=False)
    console.print(f"ours = {result['ours']}, aligned = {result['aligned']}; net wins are B's over "
                  "the base A", markup=False)
