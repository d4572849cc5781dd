"""`selfpref eval` (model A vs model B through the judges) and `selfpref eval compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from selfpref import SelfprefError
from selfpref.cli.app import app, command_line, console, number_list, out

eval_app = typer.Typer(help="Judge model A against model B on held-out prompts, both orders.")
app.add_typer(eval_app, name="eval")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


@eval_app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder to write: judgments.parquet, eval.json, README.md, answers_a/b.json."),
    model_a: Optional[str] = typer.Option(None, help="Model A (the base when comparing): folder, Hub id or 'default' (the embedded model, used when --answers-a is not given)."),
    model_b: Optional[str] = typer.Option(None, help="Model B: folder, Hub id or 'default'."),
    answers_a: Optional[str] = typer.Option(None, help="A's answers: jsonl/parquet with 'prompt' and 'answer' (or AlpacaEval's instruction/output)."),
    answers_b: Optional[str] = typer.Option(None, help="B's answers, same layout."),
    steer_b: Optional[str] = typer.Option(None, help="B = model A with these AlignEZ directions (`selfpref steer fit`)."),
    steer_layers: Optional[str] = typer.Option(None, help="With --steer-b: edit these layers, e.g. 3,5; default: the fitted choice."),
    prompts: Optional[str] = typer.Option(None, help="Prompt set: any dataset with a prompt column or MT-Bench 'turns' (first turn); default: selfpref's 104 held-out prompts."),
    prompt_column: Optional[str] = typer.Option(None, help="Column of --prompts to read."),
    max_prompts: Optional[int] = typer.Option(None, help="Evaluate only the first N prompts."),
    max_new_tokens: int = typer.Option(256, help="Most new tokens per answer (the same for both models)."),
    temperature: float = typer.Option(0.0, help="0: greedy decoding (the same for both models)."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling when --temperature > 0."),
    batch_size: int = typer.Option(8, help="Sequences per forward pass."),
    judge: str = typer.Option("logits", help="logits (forced choice), text (written verdict), rm (a reward model, --judge-model PATH), length (shorter wins, SAO Table 6), length:longer, random."),
    judge_model: Optional[list[str]] = typer.Option(None, help="Judge model: folder, Hub id, 'default' (the embedded model), or the endpoint's model name. Repeat it for a panel (--judge one kind for all, or one per model: text,logits,rm)."),
    panel: str = typer.Option("mean", help="Several --judge-model: mean (of P), majority (of the judges' verdicts) or unanimous (a verdict only when all agree)."),
    judge_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint for the judge (e.g. http://localhost:8000/v1)."),
    judge_api_key_env: Optional[str] = typer.Option(None, help="NAME of the environment variable that holds the endpoint's key (the key is written nowhere)."),
    judge_backend: Optional[str] = typer.Option(None, help="transformers (default), vllm (GPU), openai (implied by --judge-base-url)."),
    judge_max_new_tokens: int = typer.Option(32, help="--judge text: most new tokens per verdict."),
    aspects: Optional[str] = typer.Option(None, help="Also judge each of these AlignEZ aspects: engagement,helpfulness,factuality,depth,clarity."),
    seed: int = typer.Option(0, help="Seed for sampling, the random judge and the bootstrap."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples over prompts for the 95% intervals (0: none)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Send every judge request to the endpoint again (no request cache read or written)."),
    cache_dir: Optional[str] = typer.Option(None, help="Request cache folder (default: $SELFPREF_CACHE_DIR, else .selfpref-cache beside --output)."),
) -> None:
    """Answer held-out prompts with A and B, judge each pair in both orders, and report win rates."""
    if ctx.invoked_subcommand is not None:
        return
    from selfpref.api import evaluate as api_evaluate
    from selfpref.judges import check_aspects

    if output is None:
        raise SelfprefError("--output DIR: say where to write the evaluation")
    s = api_evaluate(
        output, notify=console.print, command=command_line(), model_a=model_a, model_b=model_b,
        answers_a=answers_a, answers_b=answers_b, steer_b=steer_b,
        steer_layers=number_list(steer_layers, "--steer-layers", int, "3,5"), prompts=prompts,
        prompt_column=prompt_column, max_prompts=max_prompts, max_new_tokens=max_new_tokens,
        temperature=temperature, top_p=top_p, batch_size=batch_size, judge=judge,
        judge_model=judge_model, judge_base_url=judge_base_url,
        judge_api_key_env=judge_api_key_env, judge_backend=judge_backend,
        judge_max_new_tokens=judge_max_new_tokens, aspects=list(check_aspects(aspects)) or None,
        seed=seed, bootstrap=bootstrap, no_cache=no_cache, cache_dir=cache_dir, panel=panel).summary
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
