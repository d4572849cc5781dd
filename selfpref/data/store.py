"""The dataset folder (docs/design.md): layout, build record, versions, atomic writes, reading refs.

    <name>/README.md  data/train-00000-of-00001.parquet  selfpref.json  pipeline.yaml  plots/*.png

A write goes into a temporary sibling folder that is renamed into place only when complete
(``data.atomic.atomic_folder``), so an exception or a kill never leaves a folder that looks
whole, and an existing folder is replaced only by a finished one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from selfpref import SelfprefError, __version__
from selfpref.data.atomic import atomic_folder, replace_folder, user_mode, write_json_atomic
from selfpref.data.schema import to_polars, validate

# atomic_folder, replace_folder, user_mode, write_json_atomic: data.atomic's, re-exported.
__all__ = ["DATA_FILE", "RECORD_FILE", "BuildRecord", "CardWriter", "NotSelfprefDataset",
           "atomic_folder", "bump_minor", "check_dataset_folder", "check_output", "derived_record",
           "is_dataset_folder",
           "parse_version", "read_folder", "read_record", "replace_folder", "user_mode",
           "write_dataset", "write_json_atomic", "write_minimal_card"]

DATA_FILE = "data/train-00000-of-00001.parquet"
RECORD_FILE = "selfpref.json"
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class NotSelfprefDataset(SelfprefError):
    """A dataset without selfpref's build record: map it with `selfpref import` first."""


@dataclasses.dataclass
class BuildRecord:
    """What made a dataset: written as ``selfpref.json`` beside the data."""

    name: str
    method: str
    version: str = "0.1.0"
    fingerprint: str = ""
    created_at: str = ""
    selfpref_version: str = __version__
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    parent: dict[str, str] | None = None
    funnel: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    command: str | None = None
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def parse_version(version: str) -> tuple[int, int, int]:
    match = _SEMVER.match(version.strip())
    if not match:
        raise SelfprefError(f"version {version!r} is not semver: use MAJOR.MINOR.PATCH, e.g. 0.2.0")
    return tuple(int(x) for x in match.groups())  # type: ignore[return-value]


def bump_minor(version: str) -> str:
    major, minor, _ = parse_version(version)
    return f"{major}.{minor + 1}.0"


def derived_record(parent: BuildRecord, parent_id: str, **changes: Any) -> BuildRecord:
    """A record for a dataset made from ``parent`` (filtered, merged): minor bump, parent named."""
    record = BuildRecord.from_dict(parent.to_dict())
    record.version = bump_minor(parent.version)
    record.parent = {"id": parent_id, "version": parent.version,
                     "fingerprint": parent.fingerprint}
    record.funnel = list(parent.funnel)
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def check_output(folder: str | os.PathLike, *, overwrite: bool = False, flag: str = "--output",
                 allow_dataset: bool = False) -> Path:
    """Refuse to write over something at ``folder`` before any work starts.

    An empty folder or nothing is fine. A finished dataset folder is replaced only with
    ``overwrite`` (or ``allow_dataset``, for commands that rewrite their own output); any other
    file or folder (the user's) only with ``overwrite``.
    """
    path = Path(folder).expanduser()
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == Path.home().resolve():
        raise SelfprefError(f"{flag} {folder}: that is the current folder, one above it or the home "
                            f"folder; name a new folder inside it, e.g. {flag} out/name")
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    if overwrite:
        return path
    if (path / "selfpref_train.json").is_file():
        raise SelfprefError(f"{flag} {folder}: a trained model is already there; pass --overwrite "
                            "to replace it, or choose a new folder")
    if is_dataset_folder(path):
        if allow_dataset:
            return path
        raise SelfprefError(f"{flag} {folder}: a dataset folder is already there; pass --overwrite "
                            "to replace it, or choose a new folder")
    what = "a file" if path.is_file() else "a folder that is not a selfpref dataset"
    raise SelfprefError(f"{flag} {folder}: {what} is already there; choose a new path, or pass "
                        "--overwrite to replace it (its contents are deleted)")


CardWriter = Callable[[pl.LazyFrame, BuildRecord, Path], None]


def write_dataset(dataset: Any, folder: str | os.PathLike, record: BuildRecord, *,
                  extra_files: dict[str, str | bytes] | None = None,
                  card: CardWriter | None = None, overwrite: bool = False) -> BuildRecord:
    """Validate and write a dataset folder atomically; returns the record as written.

    An existing dataset folder at ``folder`` is replaced once the new one is complete; anything
    else there (a folder of the user's, a file) is refused unless ``overwrite``: a write never
    deletes what selfpref did not make. The folder gets the mode the user's umask gives.

    ``dataset`` is a table (polars, pyarrow, datasets, list of dicts) or an iterator of polars
    frames, which is written batch by batch so a large filtered dataset never sits in memory.
    ``card(rows, record, tmp_folder)`` writes README.md and plots into the unfinished folder
    after the data and the record exist; the default writes a short card.
    """
    import pyarrow.parquet as pq

    frames = dataset if isinstance(dataset, Iterator) else iter([to_polars(dataset)])
    folder = Path(folder)
    check_output(folder, overwrite=overwrite, allow_dataset=True)
    with atomic_folder(folder) as tmp:
        (tmp / "data").mkdir()
        writer, offset = None, 0
        try:
            for df in frames:
                validate(df, row_offset=offset)
                table = df.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(tmp / DATA_FILE, table.schema, compression="zstd")
                writer.write_table(table.cast(writer.schema))
                offset += df.height
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise SelfprefError("no rows to write: the dataset is empty")
        record = BuildRecord.from_dict(record.to_dict())
        record.fingerprint = _sha256_file(tmp / DATA_FILE)
        record.created_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        record.selfpref_version = __version__
        record.stats = {**record.stats, "rows": offset}
        (tmp / RECORD_FILE).write_text(json.dumps(record.to_dict(), indent=2, default=str) + "\n")
        for rel, content in (extra_files or {}).items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        (card or write_minimal_card)(pl.scan_parquet(tmp / DATA_FILE), record, tmp)
    return record


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_minimal_card(rows: pl.LazyFrame, record: BuildRecord, folder: Path) -> None:
    """A short card (YAML header the Hub accepts + provenance) when no richer card is asked for."""
    header = (
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        f"    path: {DATA_FILE}\nlicense: other\ntags:\n- synthetic\n- preference\n- selfpref\n"
        f"- {record.method}\n---\n"
    )
    body = (f"# {record.name}\n\nA preference dataset written by selfpref {__version__} "
            f"(method `{record.method}`, version {record.version}, {record.stats['rows']} rows).\n")
    (folder / "README.md").write_text(header + "\n" + body)


def is_dataset_folder(path: Path) -> bool:
    return (path / RECORD_FILE).is_file() and (path / DATA_FILE).is_file()


def read_folder(folder: str | os.PathLike) -> tuple[pl.DataFrame, BuildRecord]:
    files = check_dataset_folder(folder)
    record = read_record(Path(folder))
    df = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    return df, record


def check_dataset_folder(folder: str | os.PathLike) -> list[Path]:
    """The folder's parquet files; a folder that is not a whole dataset is one line saying why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SelfprefError(f"{folder} is not a folder: pass a dataset folder, a Hub id or id@version")
    if not (folder / RECORD_FILE).is_file():
        raise NotSelfprefDataset(f"{folder} has no {RECORD_FILE}: it was not written by selfpref; "
                            f"run `selfpref import {folder} --output NEW_FOLDER` first")
    files = sorted((folder / "data").glob("*.parquet"))
    if not files:
        raise SelfprefError(f"{folder}/data has no parquet file: the folder is incomplete, rebuild it")
    return files


def read_record(folder: Path) -> BuildRecord:
    try:
        return BuildRecord.from_dict(json.loads((folder / RECORD_FILE).read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise SelfprefError(f"{folder}/{RECORD_FILE} is not a valid build record ({exc}); "
                            f"run `selfpref import {folder} --output NEW_FOLDER`") from None

