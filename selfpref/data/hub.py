"""The Hugging Face Hub side of the dataset folder: push as a tagged version, download a version.

The token is whatever huggingface_hub finds (``HF_TOKEN`` or ``huggingface-cli login``); selfpref
never reads it itself, so it cannot end up in a file, a card, a log line or an error message.
Every Hub call goes through ``hub_errors``, so offline mode, a missing repo or revision, and a
refused request are each one line that says what to do, whichever command made the call.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from selfpref import SelfprefError
from selfpref.data.store import RECORD_FILE, NotSelfprefDataset, is_dataset_folder, parse_version

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")


def is_repo_id(text: str) -> bool:
    """``org/name`` exactly (no revision), whatever exists on disk."""
    return bool(REPO_ID.match(text))


def _api():
    from huggingface_hub import HfApi

    return HfApi()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The network errors of the HTTP clients huggingface_hub may use (no connection, reset, timeout)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import httpx

        errors.append(httpx.TransportError)
    except ImportError:
        pass
    try:
        import requests

        errors += [requests.ConnectionError, requests.Timeout]
    except ImportError:
        pass
    return tuple(errors)


# The HTTP stacks huggingface_hub has used (it moved from requests to httpx, then httpx2).
_NETWORK_MODULES = ("httpx", "httpcore", "h11", "urllib3", "requests", "aiohttp")


def is_network_error(exc: BaseException) -> bool:
    """A failure of the connection itself (refused, reset, dropped, timed out), from any client."""
    return (isinstance(exc, _transport_errors())
            or type(exc).__module__.split(".")[0].startswith(_NETWORK_MODULES))


def hub_offline() -> bool:
    """True when huggingface_hub is in offline mode (HF_HUB_OFFLINE, which `make` sets)."""
    try:
        from huggingface_hub import is_offline_mode

        return bool(is_offline_mode())
    except ImportError:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)


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
    except Exception as exc:
        if not is_network_error(exc):
            raise
        if hub_offline():
            raise SelfprefError(f"{what} {at} is not cached and the Hub cannot be reached "
                                "(HF_HUB_OFFLINE is set, as `make` sets it): pass a local folder, "
                                "or run with HF_HUB_OFFLINE=0") from None
        raise SelfprefError(f"{what} {at}: the connection to the Hub failed ({type(exc).__name__}: "
                            f"{one_line(exc)}); check the network and retry") from None


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


def check_model_available(repo: str, flag: str = "--model") -> None:
    """Refuse a Hub model id that cannot be used, before any work starts; never downloads weights.

    Cached (its config.json is in the Hugging Face cache): fine, even offline. Offline and not
    cached, not found, gated, or unreachable: one line naming the flag.
    """
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo, "config.json"), str):
        return
    if hub_offline():
        raise SelfprefError(f"{flag} {repo}: not in the local Hugging Face cache and HF_HUB_OFFLINE "
                            f"is set (`make` sets it): download it once with `HF_HUB_OFFLINE=0 "
                            f"huggingface-cli download {repo}`, or pass a local model folder")
    with hub_errors(flag, repo):
        _api().model_info(repo)


def check_push_ready(repo: str, flag: str = "--push-to-hub") -> None:
    """Refuse a push that cannot work, before any work or request: the id's form, offline, no token."""
    if not is_repo_id(repo):
        raise SelfprefError(f"{flag} {repo!r}: a Hub dataset repo is org/name (the version comes from "
                            "the dataset, e.g. --version 0.2.0)")
    if hub_offline():
        raise SelfprefError(f"{flag} {repo}: pushing needs the Hub, and HF_HUB_OFFLINE is set (`make` "
                            "sets it): run with HF_HUB_OFFLINE=0")
    from huggingface_hub import get_token

    if not get_token():
        raise SelfprefError(f"{flag} {repo}: no Hugging Face token: set HF_TOKEN or run "
                            "`huggingface-cli login`")


def _repo_state(api, repo: str) -> tuple[bool, bool, dict[str, str], dict[str, str]]:
    """(exists, private, branches, tags) of a dataset repo; branches and tags map name -> commit."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        info = api.dataset_info(repo)
    except RepositoryNotFoundError:
        return False, False, {}, {}
    refs = api.list_repo_refs(repo, repo_type="dataset")
    return (True, bool(getattr(info, "private", False)),
            {b.name: b.target_commit for b in refs.branches},
            {t.name: t.target_commit for t in refs.tags})


def _committed_earlier(api, repo: str, head: str | None, folder: Path) -> bool:
    """True when main's head already holds this very dataset (a push that failed at the tag)."""
    if not head:
        return False
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo, RECORD_FILE, repo_type="dataset", revision=head)
        return Path(path).read_bytes() == (folder / RECORD_FILE).read_bytes()
    except Exception:  # noqa: BLE001  (no record there, or unreadable: not this dataset)
        return False


def push_folder(folder: str | os.PathLike, repo: str, *, version: str, private: bool = False,
                message: str | None = None, tag_retries: int = 3) -> str:
    """Validate a dataset folder, upload it in one commit and tag that commit ``v{version}``.

    Returns the URL. Everything that can be checked is checked before the first change: the
    folder against the record contract, the tag (a version that exists is never replaced), and
    ``private`` against an existing repo's visibility (which a push never changes). The commit
    names main's head as its parent, so a concurrent change fails it rather than mixing in. A
    failure before the commit leaves the repo's branches and tags as they were (a repo this push
    created is deleted again). The tag is the only step after the commit: it is retried, and if
    it still fails, rerunning the same push finds the commit on main and only tags it.
    """
    from selfpref.data.schema import validate
    from selfpref.data.store import read_folder

    check_push_ready(repo, "push to")
    validate(read_folder(folder)[0])
    api = _api()
    tag = f"v{'.'.join(str(x) for x in parse_version(version))}"
    from huggingface_hub.errors import HfHubHTTPError

    with hub_errors("dataset", repo):  # offline mode, connection and the like: one line
        exists, is_private, branches, tags = _repo_state(api, repo)
        if tag in tags:
            raise SelfprefError(f"{repo}@{tag} already exists on the Hub and a version is never "
                                "replaced: push it as a new version (`selfpref push --version "
                                "X.Y.Z`)")
        if exists and private and not is_private:
            raise SelfprefError(f"--private: {repo} already exists and is public, and a push does not "
                                "change a repo's visibility: make it private in its settings on the "
                                "Hub first, or push without --private")
        head = branches.get("main")
        created = False
        try:
            if not exists:
                api.create_repo(repo, repo_type="dataset", private=private)
                created = True
                head = {b.name: b.target_commit
                        for b in api.list_repo_refs(repo, repo_type="dataset").branches}.get("main")
            if head is not None and _committed_earlier(api, repo, head if exists else None, Path(folder)):
                oid = head
            else:
                info = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset",
                                         commit_message=message or f"selfpref: {tag}",
                                         parent_commit=head)
                oid = info.oid
        except Exception as exc:
            if not isinstance(exc, (HfHubHTTPError, ValueError)) and not is_network_error(exc):
                raise  # ValueError: the Hub rejected the card's YAML
            if created:
                _delete_quietly(api, repo)
            raise SelfprefError(f"push to {repo} failed before anything changed on the Hub "
                                f"({type(exc).__name__}: {one_line(exc)}); fix that and rerun") from None
        _tag(api, repo, tag, oid, tag_retries)
    return f"{api.endpoint}/datasets/{repo}/tree/{tag}"


def _delete_quietly(api, repo: str) -> None:
    try:
        api.delete_repo(repo, repo_type="dataset")
    except Exception:  # noqa: BLE001  (best effort: the error the user sees is the push's)
        pass


def _tag(api, repo: str, tag: str, oid: str, retries: int) -> None:
    import time

    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(retries):
        try:
            api.create_tag(repo, tag=tag, revision=oid, repo_type="dataset",
                           tag_message=f"selfpref dataset {tag}")
            return
        except Exception as exc:
            if not isinstance(exc, HfHubHTTPError) and not is_network_error(exc):
                raise
            if attempt + 1 == retries:
                raise SelfprefError(
                    f"push to {repo}: the files are committed to main ({oid[:10]}) but the tag {tag} "
                    f"could not be created ({type(exc).__name__}: {one_line(exc)}); rerun the same "
                    "`selfpref push` to tag that commit (nothing is uploaded twice)") from None
            time.sleep(0.5 * 2 ** attempt)
