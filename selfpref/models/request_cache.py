"""A response cache for endpoint requests: no request is paid for twice.

An endpoint request is keyed by the request itself: the endpoint's URL (any ``user:password@``
dropped), and the whole body sent (model, messages, every sampling field, the seed, ``n``,
log-prob options). Another server, another model, another temperature or seed: another key. No
header is part of the key and none is written: the file holds only the keys' digests and the
responses.

The file is append-only JSONL (``{"key": ..., "response": {...}}`` per line), written as each
response arrives with one ``write`` per line, so a build killed at any point keeps every response
that came back before the kill. A torn last line (the kill hit mid-write) is skipped when the file
is read, never fatal, and a newline is written before the next append so the torn bytes cannot
swallow the next entry. The whole file is read once, before the first request is sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

REQUESTS_FILE = "requests.jsonl"
CACHE_FORMAT = 1  # in every key: a change of what a response holds never reads an older file


def _server(url: str) -> str:
    # the URL without any user:password@ (the same server whoever logs in) or trailing slash
    return re.sub(r"://[^/@\s]+@", "://", url).rstrip("/")


def request_key(url: str, request: dict[str, Any]) -> str:
    """The digest a request is cached under: the endpoint's URL (credentials and a trailing ``/``
    dropped) and the request body, with its keys sorted."""
    blob = json.dumps({"format": CACHE_FORMAT, "url": _server(url), "request": request},
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def read_jsonl_index(path: Path) -> tuple[dict[str, str], int]:
    """(key -> that line's raw JSON, number of unreadable lines) of an append-only cache file.

    A torn line, a kill's last half-written entry, is skipped, as is any other line that does
    not parse; the last entry for a key wins."""
    entries: dict[str, str] = {}
    bad = 0
    if not path.is_file():
        return entries, 0
    with path.open("rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                key = json.loads(line)["key"]
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            entries[str(key)] = line
    return entries, bad


class AppendLog:
    """An append-only JSONL file shared by threads (and processes): one ``os.write`` per line
    under ``O_APPEND``, so concurrent writers never interleave inside a line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fd: int | None = None

    def append(self, entry: dict[str, Any]) -> None:
        data = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                if os.fstat(self._fd).st_size and not _ends_with_newline(self.path):
                    os.write(self._fd, b"\n")  # seal a torn last line off from this entry
            os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


class RequestCache:
    """Responses by request, in ``folder/requests.jsonl``; ``sent`` and ``cached`` count this
    process's requests (``counts()`` for a snapshot, so a build can say how many per step)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / REQUESTS_FILE
        self._entries, self.unreadable = read_jsonl_index(self.path)  # before any request goes out
        self._log = AppendLog(self.path)
        self._lock = threading.Lock()
        self.sent = self.cached = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"RequestCache({str(self.folder)!r}, entries={len(self)})"

    def get(self, url: str, request: dict[str, Any]) -> dict[str, Any] | None:
        line = self._entries.get(request_key(url, request))
        return json.loads(line)["response"] if line is not None else None

    def put(self, url: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        key = request_key(url, request)
        entry = {"key": key, "response": response}
        self._log.append(entry)
        with self._lock:
            self._entries[key] = json.dumps(entry, ensure_ascii=False, sort_keys=True)

    def fetch(self, url: str, request: dict[str, Any],
              send: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """The cached response to ``request`` at ``url``, else ``send(request)``'s, appended to the
        file before it is returned. A request that fails (``send`` raises) is not cached."""
        cached = self.get(url, request)
        if cached is not None:
            with self._lock:
                self.cached += 1
            return cached
        response = send(request)
        self.put(url, request, response)
        with self._lock:
            self.sent += 1
        return response

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"sent": self.sent, "cached": self.cached}

    def close(self) -> None:
        self._log.close()


def attach(model: Any, folder: str | os.PathLike) -> RequestCache | None:
    """Give an endpoint client (an object with a ``cache`` attribute left unset, as
    ``OpenAICompatModel``) the cache in ``folder``; None, touching nothing, for any other model."""
    if model is None or getattr(model, "cache", False) is not None:
        return None
    model.cache = RequestCache(folder)
    return model.cache
