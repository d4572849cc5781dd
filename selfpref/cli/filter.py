"""`selfpref filter`: the SSO A.1.4 cleaning steps as flags, applied in the order given."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from selfpref.cli.app import OVERWRITE_HELP, app, bounded, console


def _remember_order(ctx: typer.Context, param: Any, value: Any) -> Any:
    # click processes parameters in the order they were typed, so this records the filter order.
    if value not in (None, False, [], ()):
        ctx.meta.setdefault("selfpref_filter_order", []).append(param.name)
    return value


def ordered_filters(ctx: typer.Context, values: dict[str, Any]) -> list[tuple[str, Any]]:
    """(key, value) for each filter flag that was given, in command-line order."""
    return [(key, values[key]) for key in ctx.meta.get("selfpref_filter_order", [])]


class Dedup(str, Enum):
    exact = "exact"
    minhash = "minhash"


class DedupField(str, Enum):
    prompt = "prompt"
    pair = "pair"


@app.command("filter")
def filter_(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Dataset folder, Hub id or id@version."),
    output: Path = typer.Option(..., "--output", "-o", help="Derived dataset folder to write."),
    dedup: Optional[Dedup] = typer.Option(None, callback=_remember_order, help="exact or minhash."),
    dedup_field: DedupField = typer.Option(DedupField.prompt, help="Dedup on the prompt or on the whole pair."),
    threshold: float = typer.Option(0.8, callback=bounded(0, 1, low_open=True), help="minhash: Jaccard threshold, in (0, 1]."),
    ngram: int = typer.Option(5, callback=bounded(1), help="minhash: words per shingle (>= 1)."),
    against: Optional[list[str]] = typer.Option(None, help="minhash: also drop rows near-duplicating these datasets (repeatable)."),
    max_length_diff: Optional[int] = typer.Option(None, callback=bounded(0, then=_remember_order), help="Drop pairs whose lengths differ by more characters (SSO: 3000)."),
    balance_length: bool = typer.Option(False, "--balance-length", callback=_remember_order, help="Equal chosen-longer and chosen-shorter, then one pair per prompt."),
    one_per_prompt: bool = typer.Option(False, "--one-per-prompt", callback=_remember_order, help="Keep the first pair of each prompt."),
    require_consistent_judge: bool = typer.Option(False, "--require-consistent-judge", callback=_remember_order, help="Keep pairs judged the same in both orders."),
    min_confidence: Optional[float] = typer.Option(None, callback=bounded(0, 1, then=_remember_order), help="Drop pairs with lower (or null) confidence; in [0, 1]."),
    judge_models: Optional[list[str]] = typer.Option(None, callback=_remember_order, help="Judge models; drop pairs any of them disputes (repeatable)."),
    judge: str = typer.Option("logits", help="--judge-models: logits (forced choice), text (a written verdict), both orders; or rm (reward models)."),
    dispute_rule: str = typer.Option("any", help="--judge-models: any (SSO A.1.4: a pair goes if any judge prefers the rejected answer, each judge's two orders averaged) or mean (the judges' mean P below 0.5)."),
    judge_template: str = typer.Option("sso", help="--judge-models: sso (SSO Table 15's leaderboard template, its lost Task paragraph from AlpacaEval) or selfpref (selfpref's judge prompt)."),
    sso_onpolicy: bool = typer.Option(False, "--sso-onpolicy", callback=_remember_order, help="SSO's on-policy filter (needs SSO columns and the model)."),
    onpolicy_model: Optional[str] = typer.Option(None, help="Model for --sso-onpolicy; default: the embedded one."),
    seed: int = typer.Option(0, help="Seed for length balance."),
    config: Optional[Path] = typer.Option(None, "--config", help="Recipe YAML: {filters: [{dedup: minhash}, {max_length_diff: 3000}, ...]} in order."),
    exclusions: Optional[Path] = typer.Option(None, help="Write dropped rows with a filter_reason column here."),
    name: Optional[str] = typer.Option(None, help="Name of the derived dataset (default: the output folder's name)."),
    license: Optional[str] = typer.Option(None, help="License for the data card."),
    no_separability: bool = typer.Option(False, "--no-separability", help="Skip the card's separability probe (the card says so)."),
    push_to_hub: Optional[str] = typer.Option(None, help="Also push the result to this Hub dataset repo."),
    private: bool = typer.Option(False, help="With --push-to-hub: create the repo private."),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Write the dataset even when the filters keep no row (default: refuse and print the funnel)."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Clean a dataset with counted filters into a derived, versioned folder."""
    from selfpref.api import filter as api_filter

    values = dict(dedup=dedup.value if dedup else None, max_length_diff=max_length_diff,
                  balance_length=balance_length, one_per_prompt=one_per_prompt,
                  require_consistent_judge=require_consistent_judge, min_confidence=min_confidence,
                  judge_models=judge_models, sso_onpolicy=sso_onpolicy)
    opts: dict[str, Any] = {"dedup_field": dedup_field.value, "threshold": threshold, "ngram": ngram,
                            "seed": seed, "onpolicy_model": onpolicy_model, "judge": judge,
                            "dispute_rule": dispute_rule, "judge_template": judge_template}
    if config:  # with a recipe, only the options typed on the command line override it
        opts = {k: v for k, v in opts.items()
                if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
    api_filter(ref, output, ordered_filters(ctx, values), recipe=config, against=against, name=name,
               license=license, separability=not no_separability, exclusions=exclusions,
               allow_empty=allow_empty, push_to_hub=push_to_hub, private=private,
               overwrite=overwrite, notify=lambda line: console.print(line, markup=False, highlight=False),
               **opts)
