"""``selfpref.iterate``: the self-alignment loop, with every check made before the first build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref.api.checks import check_models, check_push_target
from selfpref.api.handles import LoopResult


def loop_config(output: str | Path, *, filters: str | Path | list[Any] | None = None,
                build_recipe: str | Path | None = None, train_recipe: str | Path | None = None,
                seed_train_recipe: str | Path | None = None, build: dict[str, Any] | None = None,
                train: dict[str, Any] | None = None, evaluation: Any = None,
                **fields: Any) -> Any:
    """The loop's :class:`~selfpref.loop.iterate.IterateConfig` from recipes and fields."""
    from selfpref.api.filter import filter_steps
    from selfpref.data.recipes import find_recipe
    from selfpref.filters.apply import load_filter_recipe
    from selfpref.loop.evaluate import LoopEval
    from selfpref.loop.iterate import TRAINER, IterateConfig
    from selfpref.pipelines.config import load_build_recipe

    steps, filter_options = None, dict(fields.pop("filter_options", None) or {})
    if isinstance(filters, (str, Path)):
        filters = find_recipe(filters, "filter", flag="--filters")
        steps, recipe_options = load_filter_recipe(filters, flag="--filters")
        filter_options = {**recipe_options, **filter_options}
    elif filters is not None:
        steps = filter_steps(filters)
    if build_recipe:
        build_recipe = find_recipe(build_recipe, "build", flag="--build-config")
    build_fields = load_build_recipe(build_recipe, flag="--build-config") if build_recipe else {}
    if train_recipe and fields.get("method", "sao") in TRAINER:
        train_recipe = find_recipe(train_recipe, TRAINER[fields.get("method", "sao")], flag="--train-config")
    if seed_train_recipe:
        seed_train_recipe = find_recipe(seed_train_recipe, "dpo", flag="--seed-train-config")
    build_fields.update({k: v for k, v in (build or {}).items() if v is not None})
    if isinstance(evaluation, dict):
        evaluation = LoopEval(**evaluation)
    return IterateConfig(output=str(output), filters=steps, filter_options=filter_options,
                         build=build_fields, train={k: v for k, v in (train or {}).items() if v is not None},
                         train_recipe=str(train_recipe) if train_recipe else None,
                         seed_train_recipe=str(seed_train_recipe) if seed_train_recipe else None,
                         evaluation=evaluation, **fields)


def preflight(cfg: Any) -> None:
    """Everything that can be checked before the first build: filters, the build options, the
    training recipe, models, the seed data, the push target, the evaluation, the output and the
    prompt plan. Each failure is one line naming the option."""
    from selfpref.filters.apply import make_filter
    from selfpref.judges import local_judge_backend
    from selfpref.loop.iterate import TRAINER, check_output_folder, plan_splits
    from selfpref.pipelines.config import BuildConfig

    for key, value in cfg.filters or []:
        make_filter(key, value, cfg.filter_options)
    BuildConfig(**{**cfg.build, "method": cfg.method, **({"prompts": cfg.prompts} if cfg.prompts else {})})
    if cfg.train_recipe:
        from selfpref.data.recipes import load_yaml_mapping
        from selfpref.trainers.configs import load_recipe

        load_yaml_mapping(cfg.train_recipe, what="training recipe", flag="--train-config")
        load_recipe(cfg.train_recipe, TRAINER[cfg.method])
    check_models([("--model", cfg.model), ("--reference-model", cfg.reference_model),
                  *(("--judge-models", m) for m in cfg.judge_models or [])])
    if cfg.seed_data:
        from selfpref.data.refs import parse_ref

        parse_ref(cfg.seed_data, flag="--seed-data")
    check_push_target(cfg.push_to_hub)
    evaluation = cfg.evaluation
    if evaluation is not None:
        if local_judge_backend(evaluation.judge, base_url=evaluation.judge_base_url):
            check_models([("--eval-judge-model", evaluation.judge_model)])
        evaluation.check()  # the prompts load, the judge's spec holds (nothing is loaded)
    out = Path(cfg.output)
    check_output_folder(out)
    if not (out / "iterate.json").is_file():
        plan_splits(cfg)  # enough prompts for every iteration (a resumed loop has its plan)


def iterate(output: str | Path | None = None, *, config: Any = None,
            notify: Callable[[str], None] | None = print, **options: Any) -> LoopResult:
    """Self-alignment loop: for t = 1..T build with pi_{t-1}, filter, card, push, train pi_t.

    Rerunning the same call resumes: finished iterations are skipped, a half-trained one
    restarts its training, nothing finished is rebuilt.

    Args:
        output: the loop folder (``iter-1/``, ``iter-2/``, ... with data and model each).
        config: a ready :class:`~selfpref.loop.iterate.IterateConfig` (instead of ``options``).
        notify: where progress lines go (``None``: nowhere).
        **options: ``method`` (sao|sso|selfee), ``iterations``, ``model``, ``prompts``,
            ``num_prompts``, ``filters`` (a recipe path or a list of steps), ``build`` (BuildConfig
            fields for every build), ``build_recipe``, ``train`` (trainer overrides),
            ``train_recipe``, ``evaluation`` (a dict of LoopEval fields: ``prompts``, ``judge``,
            ...), and every other :class:`~selfpref.loop.iterate.IterateConfig` field.
    """
    from selfpref.loop.iterate import iterate as run_loop

    if config is None:
        options.setdefault("method", "sao")
        options.setdefault("iterations", 2)
        config = loop_config(output if output is not None else options.pop("output"), **options)
    preflight(config)
    rows = run_loop(config, notify=notify or (lambda _line: None))
    return LoopResult(path=Path(config.output), rows=rows)
