"""Checks every command makes before any work: model references, the push target, the output.

They live here, below the CLI, so that ``selfpref.build(...)`` from a notebook refuses a bad
option with the same one line as ``selfpref build`` does, before a model loads.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path


def check_models(refs: Iterable[tuple[str, str | None]]) -> None:
    """Refuse a model reference that cannot be used, given as (flag, reference) pairs.

    A path that does not exist (or has no config.json) is one line naming the flag; a Hub id must
    be in the cache or, online, exist on the Hub. Nothing is downloaded or converted here.
    """
    from selfpref.data.hub import check_model_available
    from selfpref.models.resolve import is_default, resolve_model

    for flag, ref in refs:
        if ref is None or is_default(ref):
            continue
        resolved = resolve_model(ref, flag=flag)
        if not Path(resolved).exists():
            check_model_available(resolved, flag)


def check_push_target(repo: str | None, flag: str = "--push-to-hub") -> None:
    """Before a long run: the repo id's form, offline mode and the token (nothing is sent)."""
    if repo:
        from selfpref.data.hub import check_push_ready

        check_push_ready(repo, flag)


def prepare_output(folder: str | Path, overwrite: bool, flag: str = "--output") -> Path:
    """An existing dataset, or a file or folder of the user's, at ``folder`` needs ``overwrite``.

    With ``overwrite``, something there that is not a dataset folder is removed now; a dataset
    folder is replaced only once the new one is complete (a crash keeps the old one).
    """
    from selfpref.data.store import check_output, is_dataset_folder

    path = check_output(Path(folder), overwrite=overwrite, flag=flag)
    if overwrite and (path.exists() or path.is_symlink()) and not is_dataset_folder(path):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return path


def local_backend(backend: str | None) -> bool:
    """Local weights (a bad path can be refused before any work), as opposed to an endpoint."""
    return backend in (None, "transformers", "vllm")
