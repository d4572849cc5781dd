"""The Hugging Face Hub side of the dataset folder: push as a tagged version, download a version.

The token is whatever huggingface_hub finds (``HF_TOKEN`` or ``huggingface-cli login``); selfpref
never reads it itself, so it cannot end up in a file, a card, a log line or an error message.
Every Hub call goes through ``hub_errors``, so offline mode, a missing repo or revision, and a
refused request are each one line that says what to do, whichever command made the call.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from selfpref import SelfprefError
from selfpref.data.store import RECORD_FILE, NotSelfprefDataset, is_dataset_folder, parse_version


def _api():
    from huggingface_hub import HfApi

    return HfApi()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def hub_errors(what: str, repo: str, revision: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub's exceptions into one SelfprefError line about ``repo``."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f"{repo}@{revision}" if revision else repo
    try:
        yield
    except RevisionNotFoundError:
        raise SelfprefError(f"{what} {repo!r} has no revision {revision!r}: list its versions with "
                            f"`huggingface-cli tag -l --repo-type dataset {repo}`") from None
    except GatedRepoError:
        raise SelfprefError(f"{what} {repo!r} is gated: accept its terms on the Hub and log in "
                            "with `huggingface-cli login`") from None
    except RepositoryNotFoundError:
        raise SelfprefError(f"{what} {repo!r} not found on the Hub (check the id, or log in with "
                            "`huggingface-cli login` if it is private)") from None
    except (OfflineModeIsEnabled, LocalEntryNotFoundError):
        raise SelfprefError(f"{what} {at} is not cached and the Hub cannot be reached "
                            "(HF_HUB_OFFLINE is set, as `make` sets it, or there is no network): "
                            "pass a local folder") from None
    except HfHubHTTPError as exc:
        raise SelfprefError(f"{what} {at}: the Hub refused the request ({one_line(exc)})") from None


def latest_version(repo: str) -> str | None:
    """The highest semver tag of a dataset repo, or None when it has no version tags."""
    with hub_errors("dataset", repo):
        refs = _api().list_repo_refs(repo, repo_type="dataset")
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

    if revision is None:
        revision = latest_version(repo) or "main"
    with hub_errors("dataset", repo, revision):
        path = Path(snapshot_download(repo, repo_type="dataset", revision=revision))
    if not is_dataset_folder(path):
        raise NotSelfprefDataset(f"{repo}@{revision} has no {RECORD_FILE}: it was not made by "
                                 f"selfpref; run `selfpref import {repo} --output FOLDER` to map it first")
    return path


def push_folder(folder: str | os.PathLike, repo: str, *, version: str, private: bool = False,
                message: str | None = None) -> str:
    """Validate a dataset folder, upload it in one commit and tag that commit ``v{version}``.

    Returns the URL. A folder that breaks the record contract is refused before any request.
    """
    from selfpref.data.schema import validate
    from selfpref.data.store import read_folder

    validate(read_folder(folder)[0])
    api = _api()
    tag = f"v{'.'.join(str(x) for x in parse_version(version))}"
    from huggingface_hub.errors import HfHubHTTPError

    with hub_errors("dataset", repo):  # offline mode and the like: one line
        try:
            api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
            info = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset",
                                     commit_message=message or f"selfpref: {tag}")
            api.create_tag(repo, tag=tag, revision=info.oid, repo_type="dataset",
                           tag_message=f"selfpref dataset {tag}")
        except (HfHubHTTPError, ValueError) as exc:  # ValueError: the Hub rejected the card's YAML
            raise SelfprefError(f"push to {repo} failed: {one_line(exc)}") from None
    return f"{api.endpoint}/datasets/{repo}/tree/{tag}"
