"""``selfpref.train``: a dataset reference -> a TRL trainer -> a model folder with its card."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.api.checks import check_models, prepare_output
from selfpref.api.handles import TrainedModel

METHODS = ("dpo", "ipo", "simpo", "orpo", "sso", "selfee", "rm")
# API keyword -> the trainer config field it sets (the CLI's short flags)
ALIASES = {"epochs": "num_train_epochs", "batch_size": "per_device_train_batch_size",
           "grad_accum": "gradient_accumulation_steps"}


def check_dataset(ref: str, method: str, flag: str = "--dataset") -> None:
    """Before any model loads: the dataset exists (or is on the Hub) and has rows."""
    import pyarrow.parquet as pq

    from selfpref.api.data import refuse_empty
    from selfpref.data.refs import parse_ref, resolve_folder
    from selfpref.data.store import NotSelfprefDataset, is_dataset_folder, read_record

    parsed = parse_ref(ref, flag=flag)
    if parsed.path is not None and not is_dataset_folder(parsed.path):
        return  # a file or folder selfpref did not make: the trainer maps it (and says why not)
    try:
        folder = resolve_folder(ref, flag=flag)
    except NotSelfprefDataset:
        return
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in sorted((folder / "data").glob("*.parquet")))
    refuse_empty(ref, rows, read_record(folder), f"train {method} on")


def train(method: str, dataset: str | None = None, output_dir: str | Path | None = None, *,
          model: str | None = None, reference_model: str | None = None,
          recipe: str | Path | None = None, push_to_hub: str | None = None,
          overwrite: bool = False, notify: Callable[[str], None] | None = print,
          **overrides: Any) -> TrainedModel:
    """Train a model on a preference dataset with DPO, IPO, SimPO, ORPO, SSO, SELFEE or a reward model.

    Without a recipe the defaults are each paper's settings (one epoch, its schedule, warm-up
    and learning rate) with a CPU-sized batch; the model card lists every value and its source.

    Args:
        method: ``dpo``, ``ipo``, ``simpo``, ``orpo``, ``sso``, ``selfee`` or ``rm``.
        dataset: the dataset (folder, Hub id or ``id@version``), or ``dataset:`` in the recipe.
        output_dir: where the trained model and its card go.
        model: the model to train (default: the embedded SmolLM2-135M-Instruct).
        reference_model: the reference for dpo/ipo/sso/selfee (default: a copy of ``model``).
        recipe: a training recipe (fields of the method's TRL config): a YAML file, or a
            shipped recipe's name (``paper`` is ``selfpref/recipes/<method>/paper.yaml``).
        push_to_hub: push the model to this Hub repo.
        overwrite: replace what is at ``output_dir`` (a trained model, or any folder: its
            contents are deleted).
        notify: where the summary lines go (``None``: nowhere).
        **overrides: fields of the method's config, e.g. ``learning_rate``, ``max_steps``,
            ``beta``, ``max_length``, ``seed``, ``selfee_lambda``; ``epochs``, ``batch_size`` and
            ``grad_accum`` are short for ``num_train_epochs``, ``per_device_train_batch_size``
            and ``gradient_accumulation_steps``.
    """
    from selfpref.trainers.configs import load_recipe, recipe_run_keys
    from selfpref.trainers.run import train as run_train

    if method not in METHODS:
        raise SelfprefError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if output_dir is None:
        raise SelfprefError("--output-dir DIR: say where the trained model goes")
    if recipe:
        from selfpref.data.recipes import find_recipe

        recipe = find_recipe(recipe, method)
    keys = recipe_run_keys(recipe) if recipe else {}
    if recipe:
        load_recipe(recipe, method)  # unknown keys, wrong method: before any work
    dataset = dataset or keys.get("dataset")
    if not dataset:
        raise SelfprefError("no dataset: pass --dataset REF or set `dataset:` in the recipe")
    model = model or keys.get("model")
    out = prepare_output(output_dir, overwrite, flag="--output-dir")
    check_models([("--model", model), ("--reference-model", reference_model)])
    check_dataset(dataset, method)
    fields = {ALIASES.get(k, k): v for k, v in overrides.items() if v is not None}
    summary = run_train(method, dataset, out, model=model, reference_model=reference_model,
                        recipe=recipe, push_to_hub=push_to_hub, **fields)
    if notify:
        for reason, count in sorted((summary.get("dropped") or {}).items()):
            notify(f"  dropped {count} rows before training: {reason}")
        notify(f"trained {method} for {summary['steps']} steps in {summary['seconds']} s; "
               f"final loss {summary['train_loss']:.4f}; model in {out}")
    return TrainedModel(path=out, summary=summary)
