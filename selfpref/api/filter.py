"""``selfpref.filter``: counted filters into a derived, versioned dataset folder."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.api.checks import check_models, check_push_target, prepare_output
from selfpref.api.handles import Dataset
from selfpref.data.funnel import funnel_text


def filter_steps(steps: Iterable[Any] | None) -> list[tuple[str, Any]]:
    """Steps as ``[("dedup", "minhash"), ...]`` from pairs or one-key mappings (as in a recipe)."""
    out: list[tuple[str, Any]] = []
    for step in steps or []:
        if isinstance(step, Mapping) and len(step) == 1:
            out.append(next(iter(step.items())))
        elif isinstance(step, (tuple, list)) and len(step) == 2 and isinstance(step[0], str):
            out.append((step[0], step[1]))
        else:
            raise SelfprefError(f"filter step {step!r}: give (name, value) or {{name: value}}, e.g. "
                                "('dedup', 'minhash') or {'max_length_diff': 3000}")
    return out


def filter_models(steps: list[tuple[str, Any]], options: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(flag, model reference) of every model the steps will load, for checking up front."""
    models: list[tuple[str, str | None]] = [
        ("--judge-models", m) for k, v in steps if k == "judge_models"
        for m in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(m, str)]
    if any(k == "sso_onpolicy" for k, _ in steps):
        models.append(("--onpolicy-model", options.get("onpolicy_model")))
    return models


def filter(ref: str | Path, output: str | Path, steps: Iterable[Any] | None = None, *,
           recipe: str | Path | None = None, against: list[str] | None = None,
           name: str | None = None, license: str | None = None, separability: bool = True,
           exclusions: str | Path | None = None, allow_empty: bool = False,
           push_to_hub: str | None = None, private: bool = False, overwrite: bool = False,
           notify: Callable[[str], None] | None = print, **options: Any) -> Dataset:
    """Clean a dataset with counted filters, applied in order, into a derived folder.

    Args:
        ref: the dataset (folder, Hub id or ``id@version``).
        output: the derived dataset folder to write.
        steps: the filters in order, e.g. ``[("dedup", "minhash"), ("max_length_diff", 3000),
            ("balance_length", True)]``; names are those of `selfpref filter`'s flags.
        recipe: a filter recipe YAML (``{filters: [...], threshold: ...}``) instead of ``steps``;
            ``options`` override its options.
        against: also drop rows near-duplicating these datasets (minhash).
        name: the derived dataset's name (default: the folder's name).
        license: the data card's license.
        separability: run the data card's separability probe.
        exclusions: write the dropped rows, with a ``filter_reason`` column, here.
        allow_empty: write the dataset even when no row is kept (default: refuse with the funnel).
        push_to_hub: also push the result to this Hub dataset repo.
        private: create that repo private.
        overwrite: replace what is at ``output`` (a dataset, or any file or folder: its
            contents are deleted).
        notify: where the funnel lines go (``None``: nowhere).
        **options: the filters' shared options: ``dedup_field`` (prompt|pair), ``threshold``,
            ``ngram``, ``seed``, ``onpolicy_model``, ``judge`` (logits|text).
    """
    from selfpref.datacards import card_writer
    from selfpref.filters.apply import FILTER_OPTIONS, filter_dataset, load_filter_recipe

    given = filter_steps(steps)
    unknown = sorted(set(options) - set(FILTER_OPTIONS))
    if unknown:
        raise SelfprefError(f"unknown filter option '{unknown[0]}' (options: {', '.join(FILTER_OPTIONS)})")
    opts: dict[str, Any] = {}  # unset options take make_filter's defaults
    if recipe:
        if given:
            raise SelfprefError(f"--config {recipe} lists the filters: give them there or as flags "
                                f"(--{given[0][0].replace('_', '-')}), not both")
        from selfpref.data.recipes import find_recipe

        recipe = find_recipe(recipe, "filter")
        given, recipe_options = load_filter_recipe(recipe)
        opts.update(recipe_options)
    opts.update({k: v for k, v in options.items() if v is not None})
    check_models(filter_models(given, opts))
    check_push_target(push_to_hub)
    prepare_output(output, overwrite)
    record, reports, kept, total = filter_dataset(
        ref, output, given, opts, against=against, name=name,
        card=card_writer(license=license, separability=separability), exclusions=exclusions,
        allow_empty=allow_empty, overwrite=overwrite)
    if notify:
        notify(f"wrote {output} ({kept} of {total} rows, version {record.version})")
        for r in reports:
            notify(f"  {funnel_text([r])}")
    url = None
    if push_to_hub:
        from selfpref.data.hub import push_folder

        url = push_folder(Path(output), push_to_hub, version=record.version, private=private)
        if notify:
            notify(f"pushed {output} as {push_to_hub}@v{record.version}: {url}")
    return Dataset(path=Path(output), ref=str(output), record=record, url=url)
