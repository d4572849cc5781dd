"""The Hugging Face Hub side of the dataset folder: push as a tagged version, resolve refs.

The token is whatever huggingface_hub finds (``HF_TOKEN`` or ``huggingface-cli login``); selfpref
never reads it itself, so it cannot end up in a file, a card, a log line or an error message.
"""

from __future__ import annotations

import os
from pathlib import Path

from selfpref import SelfprefError
from selfpref.store import RECORD_FILE, NotSelfprefDataset, is_dataset_folder, parse_version


def _api():
    from huggingface_hub import HfApi

    return HfApi()


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def latest_version(repo: str) -> str | None:
    """The highest semver tag of a dataset repo, or None when it has no version tags."""
    from huggingface_hub.utils import RepositoryNotFoundError

    try:
        refs = _api().list_repo_refs(repo, repo_type="dataset")
    except RepositoryNotFoundError:
        raise SelfprefError(f"dataset {repo!r} not found on the Hub (check the id, or log in "
                            "with `huggingface-cli login` if it is private)") from None
    versions = []
    for tag in refs.tags:
        try:
            versions.append((parse_version(tag.name), tag.name))
        except SelfprefError:
            continue
    return max(versions)[1] if versions else None


def download_dataset(repo: str, revision: str | None = None) -> Path:
    """A local snapshot of ``repo`` at ``revision`` (default: its latest version tag)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import (
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if revision is None:
        revision = latest_version(repo) or "main"
    try:
        path = Path(snapshot_download(repo, repo_type="dataset", revision=revision))
    except RevisionNotFoundError:
        raise SelfprefError(f"dataset {repo!r} has no revision {revision!r}: list its versions "
                            "with `huggingface-cli tag -l --repo-type dataset " + repo + "`") from None
    except RepositoryNotFoundError:
        raise SelfprefError(f"dataset {repo!r} not found on the Hub (check the id, or log in "
                            "if it is private)") from None
    except LocalEntryNotFoundError:
        raise SelfprefError(f"dataset {repo}@{revision} is not cached and the Hub cannot be reached "
                            "(HF_HUB_OFFLINE is set or there is no network): pass a local folder") from None
    if not is_dataset_folder(path):
        raise NotSelfprefDataset(f"{repo}@{revision} has no {RECORD_FILE}: it was not made by selfpref; "
                            f"run `selfpref import {repo} --output FOLDER` to map it first")
    return path


def push_folder(folder: str | os.PathLike, repo: str, *, version: str, private: bool = False,
                message: str | None = None) -> str:
    """Validate a dataset folder, upload it in one commit and tag that commit ``v{version}``.

    Returns the URL. A folder that breaks the record contract is refused before any request.
    """
    from huggingface_hub.utils import HfHubHTTPError

    from selfpref.schema import validate
    from selfpref.store import read_folder

    validate(read_folder(folder)[0])
    api = _api()
    tag = f"v{'.'.join(str(x) for x in parse_version(version))}"
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset",
                                 commit_message=message or f"selfpref: {tag}")
        api.create_tag(repo, tag=tag, revision=info.oid, repo_type="dataset",
                       tag_message=f"selfpref dataset {tag}")
    except (HfHubHTTPError, ValueError) as exc:  # ValueError: the Hub rejected the card's YAML
        raise SelfprefError(f"push to {repo} failed: {_one_line(exc)}") from None
    return f"{api.endpoint}/datasets/{repo}/tree/{tag}"


def read_remote(repo: str, revision: str | None = None):
    """(rows, record) read in place through ``HfFileSystem`` file objects, without a snapshot."""
    import json

    import polars as pl
    from huggingface_hub import HfFileSystem

    from selfpref.store import BuildRecord

    revision = revision or latest_version(repo) or "main"
    fs = HfFileSystem()
    base = f"datasets/{repo}@{revision}"
    try:
        with fs.open(f"{base}/{RECORD_FILE}", "rb") as fh:
            record = BuildRecord.from_dict(json.load(fh))
        files = sorted(fs.glob(f"{base}/data/*.parquet"))
    except FileNotFoundError:
        raise SelfprefError(f"{repo}@{revision}: not found, or not a selfpref dataset (no "
                            f"{RECORD_FILE}); check the id and version") from None
    if not files:
        raise SelfprefError(f"{repo}@{revision} has no data/*.parquet")
    frames = []
    for path in files:
        with fs.open(path, "rb") as fh:
            frames.append(pl.read_parquet(fh))
    return pl.concat(frames, how="diagonal_relaxed"), record
