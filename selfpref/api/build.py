"""``selfpref.build``: a method's build, with every check of `selfpref build` made first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref.api.checks import check_models, check_push_target, local_backend, prepare_output
from selfpref.api.handles import Dataset
from selfpref.api.text import call_text, kept_line


def build_config(method: str, recipe: str | Path | None = None, **options: Any) -> Any:
    """The build's :class:`~selfpref.pipelines.config.BuildConfig`: the recipe's keys, then
    ``options`` (its fields; ``None`` values are ignored), validated."""
    from selfpref.data.recipes import find_recipe
    from selfpref.pipelines.config import BuildConfig, load_build_recipe

    fields = load_build_recipe(find_recipe(recipe, "build")) if recipe else {}
    fields.update({k: v for k, v in options.items() if v is not None})
    fields["method"] = method
    return BuildConfig(**fields)


def build(method: str, output: str | Path, *, recipe: str | Path | None = None,
          name: str | None = None, version: str = "0.1.0", license: str | None = None,
          separability: bool = True, push_to_hub: str | None = None, private: bool = False,
          overwrite: bool = False, notify: Callable[[str], None] | None = print,
          progress: Callable[[Any], None] | None = None, command: str | None = None,
          **options: Any) -> Dataset:
    """Build a preference dataset folder at ``output`` with a seed paper's method.

    Args:
        method: ``sao``, ``sso``, ``alignez`` or ``selfee``.
        output: the dataset folder to write (atomically); an unfinished build there resumes.
        recipe: a build recipe: a YAML file, or a shipped recipe's name (``sao-paper``);
            ``options`` override its keys.
        name: the dataset's name (default: the folder's name).
        version: the dataset's version (semver).
        license: the data card's license (unset: ``other``).
        separability: run the data card's separability probe.
        push_to_hub: also push the folder to this Hub dataset repo, tagged ``v<version>``.
        private: create that repo private.
        overwrite: replace what is at ``output`` (a dataset, or any file or folder: its
            contents are deleted).
        notify: where progress lines go (``None``: nowhere).
        progress: called with the build's progress state after each step of each chunk.
        command: the command line recorded in the build record (default: this call).
        **options: any field of :class:`~selfpref.pipelines.config.BuildConfig` (``model``,
            ``backend``, ``prompts``, ``num_prompts``, ``judge``, ``max_new_tokens``, ...).

    Returns:
        The written :class:`~selfpref.api.handles.Dataset`.

    Raises:
        SelfprefError: a bad option, model reference, output or push target, before any work.
    """
    from selfpref.datacards import card_writer
    from selfpref.pipelines.run import build as run_build

    config = build_config(method, recipe, **options)
    out = prepare_output(output, overwrite)  # a finished dataset is refused; parts still resume
    if local_backend(config.backend):
        check_models([("--model", config.model), ("--reference-model", config.reference_model),
                      ("--judge-model", None if config.judge_base_url else config.judge_model),
                      *(("--judge-model", m) for m in config.judge_models or [])])
    check_push_target(push_to_hub)
    record = run_build(config, out, name=name, version=version,
                       command=command or call_text("build", method, output, **options),
                       card=card_writer(license=license, separability=separability),
                       notify=notify, progress=progress)
    if notify:
        notify(kept_line(f"wrote {out}", record.funnel[-1], record.version))
    url = None
    if push_to_hub:
        from selfpref.data.hub import push_folder

        url = push_folder(out, push_to_hub, version=record.version, private=private)
        if notify:
            notify(f"pushed {out} as {push_to_hub}@v{record.version}: {url}")
    return Dataset(path=out, ref=str(out), record=record, url=url)
