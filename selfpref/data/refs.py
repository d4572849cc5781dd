"""References to datasets and models: a local path, a Hub id, or ``id@revision``; one parser.

Every command that takes a dataset or a model reads it through here, so "is this a path or a Hub
id?" has one answer: an existing path is a path; text that looks like a path (``./``, ``../``,
``/``, ``~``, or a folder whose parent exists, as ``out/pi1`` when ``out/`` does) but does not
exist is a missing path, answered at once instead of being sent to the Hub; ``org/name`` with
an optional ``@revision`` is a Hub id. Resolving a dataset reference sits here, above both the
folder layout (``store``) and the Hub client (``hub``), which therefore never import each other
in a circle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from selfpref import SelfprefError
from selfpref.data.hub import REPO_ID as _HUB_ID
from selfpref.data.hub import is_repo_id  # noqa: F401  (part of this module's interface)


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``path`` for a local one, else ``repo`` and ``revision``."""

    text: str
    path: Path | None = None
    repo: str | None = None
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        return self.path is not None


def split_ref(ref: str) -> tuple[str, str | None]:
    """``org/name@v1.2.0`` -> (``org/name``, ``v1.2.0``); a ref without ``@`` has no revision."""
    if "@" in ref:
        repo, revision = ref.rsplit("@", 1)
        return repo, revision or None
    return ref, None


def looks_like_path(text: str) -> bool:
    """True for text meant as a local path even when nothing exists there."""
    if text.startswith(("/", "./", "../", "~", ".\\")) or text in (".", ".."):
        return True
    parent = Path(text).expanduser().parent
    # "out/pi1" with out/ present is a path; "org/name" with no org/ folder is a Hub id.
    return str(parent) not in ("", ".") and parent.is_dir()


def is_hub_id(text: str) -> bool:
    """``org/name`` (an optional ``@revision`` is split off first)."""
    return bool(_HUB_ID.match(split_ref(text)[0])) and not looks_like_path(text)


def parse_ref(ref: str | os.PathLike, *, what: str = "dataset", flag: str | None = None) -> Ref:
    """A local path or a Hub id; anything else is a one-line error naming ``flag``."""
    text = str(ref)
    path = Path(text).expanduser()
    where = f"{flag} {text}" if flag else text
    if path.exists():
        return Ref(text, path=path)
    if looks_like_path(text):
        raise SelfprefError(f"{where}: no such {what} folder; check the path (a Hub id has the "
                            "form org/name)")
    if is_hub_id(text):
        repo, revision = split_ref(text)
        return Ref(text, repo=repo, revision=revision)
    raise SelfprefError(f"{where}: no such folder, and not a Hub id (org/name[@version])")


def resolve_folder(ref: str | os.PathLike, *, flag: str | None = None) -> Path:
    """The local folder of a dataset ref: the folder itself, or a snapshot of a Hub id@revision."""
    parsed = parse_ref(ref, flag=flag)
    if parsed.path is not None:
        return parsed.path
    from selfpref.data.hub import download_dataset

    return download_dataset(parsed.repo or "", parsed.revision)


def read_dataset(ref: str | os.PathLike, *, flag: str | None = None):
    """(rows, build record) from a local folder, a Hub id, or ``id@revision``."""
    from selfpref.data.store import read_folder

    return read_folder(resolve_folder(ref, flag=flag))

