"""Which model a reference names: the embedded default (by alias), a local folder, or a Hub id.

One alias table for the whole package. A reference that looks like a path but does not exist,
or a folder without ``config.json``, is refused here, before any work starts: a missing
``out/pi1`` is never sent to the Hub as if it were an id (five HTTP retries and a minute later).
"""

from __future__ import annotations

import os

from selfpref import SelfprefError
from selfpref.data.refs import parse_ref
from selfpref.models.embedded import DEFAULT_MODEL_ID, default_model

DEFAULT_MODEL_ALIASES = frozenset({"default", "smollm2", DEFAULT_MODEL_ID})


def is_default(name_or_path: str | os.PathLike | None) -> bool:
    return name_or_path is None or str(name_or_path) in DEFAULT_MODEL_ALIASES


def model_label(name_or_path: str | os.PathLike | None) -> str:
    """The name recorded for a model in datasets and cards: the Hub id of the default."""
    return DEFAULT_MODEL_ID if is_default(name_or_path) else str(name_or_path)


def resolve_model(name_or_path: str | os.PathLike | None, *, flag: str = "--model") -> str:
    """A local folder (as a string path) or a Hub id; ``None``/"default" gives the embedded model."""
    if is_default(name_or_path):
        return str(default_model())
    ref = parse_ref(str(name_or_path), what="model", flag=flag)
    if ref.path is not None:
        if not (ref.path / "config.json").is_file():
            raise SelfprefError(
                f"{flag} {ref.path}: the folder has no config.json; pass a folder written by "
                "save_pretrained, a Hub id, or omit the flag for the embedded default")
        return str(ref.path)
    if ref.revision:
        raise SelfprefError(f"{flag} {ref.text}: model references take no @revision; pass org/name")
    return ref.text


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json")


def weights_signature(name_or_path: str | os.PathLike | None) -> str | None:
    """For a local model folder: a digest of its weight and config files' names, sizes and
    modification times, so work keyed on the folder's path notices a model retrained into the
    same place. None for the embedded default and Hub ids (a Hub id names fixed weights)."""
    import hashlib

    if is_default(name_or_path):
        return None
    from pathlib import Path

    path = Path(str(name_or_path)).expanduser()
    if not path.is_dir():
        return None
    stats = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir()
                   if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES))
    return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]
