"""The step cache: a step's output row, keyed by that step's own inputs, model and settings.

A build's parts are keyed by the whole build fingerprint, so changing only the judge (``--judge
logits`` instead of text, another ``--judge-model``) used to redo every step. Here each step of a
local backend (transformers, vllm, scripted) and each rule step keys its output per row by

- the step itself: its distilabel definition (name, class, the LLM's backend, model, generation
  settings and seed, the step's own fields), minus what does not change the output (batch size,
  resources);
- the model's weights where they are a local folder (a model retrained into the same folder is
  another model), and for a scripted model that step's script texts;
- the row as it enters the step (every column: prompt, persona, answers, draw ...).

So the answer step's rows hit when only the judge changed, and the judge step runs. Steps that
send requests to an endpoint are not cached here: the request cache (``models.request_cache``)
keys each request and keeps responses of a step that was killed halfway, too.

Scripted models hand out their texts in order from the start of each chunk, so a scripted row's
output depends on the rows before it in its chunk: their keys also hold the whole chunk's rows.

Files: ``<cache>/steps/<step>.jsonl``, append-only like the request cache (a torn last line after
a kill is skipped); a step's rows are appended when the step finishes them.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from selfpref.models.request_cache import AppendLog, read_jsonl_index

STEPS_FOLDER = "steps"
STEP_CACHE_FORMAT = 1
LOCAL_BACKENDS = ("transformers", "vllm", "scripted")
# distilabel fields that set how a step runs, not what it writes
_VOLATILE = ("resources", "input_batch_size", "runtime_parameters_info", "use_cache")
_MODEL_FIELDS = ("model", "policy_model", "reference_model")


def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def step_backend(step: Any) -> str | None:
    """The backend a step's model runs on (its LLM face's, or the step's own field); None for a
    rule step with no model."""
    llm = getattr(step, "llm", None)
    return getattr(llm, "backend", None) if llm is not None else getattr(step, "backend", None)


def cacheable(step: Any) -> bool:
    """Local models and rule steps: yes; an endpoint's step: no (its requests are cached)."""
    backend = step_backend(step)
    return backend is None or backend in LOCAL_BACKENDS


def step_identity(step: Any, script: dict[str, Any] | None = None, engine_version: int = 0) -> dict:
    """What a step's output depends on besides its input row (see the module docstring)."""
    from selfpref.models.resolve import weights_signature

    definition = {k: v for k, v in step.dump().items() if k not in _VOLATILE}
    backend = step_backend(step)
    holders = [getattr(step, "llm", None), step]
    weights = {}
    if backend in ("transformers", "vllm"):
        for holder in holders:
            for name in _MODEL_FIELDS:
                ref = getattr(holder, name, None) if holder is not None else None
                if isinstance(ref, str) and ref:
                    weights[ref] = weights_signature(ref)
    identity: dict[str, Any] = {"format": STEP_CACHE_FORMAT, "engine": engine_version,
                                "definition": definition, "weights": weights}
    if backend == "scripted":
        # what a scripted model returns: its step's texts and option probabilities (delay, kill
        # and raise change whether a call returns, not what it returns)
        name = getattr(getattr(step, "llm", None), "step", "") or step.name
        script = script or {}
        identity["script"] = [script.get(name), (script.get("option_probs") or {}).get(name)]
    return identity


def _file_name(step: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", step) + ".jsonl"


class StepCache:
    """Output rows of a build's steps in ``folder/steps/``; counts what was computed and what
    came from the cache, per step."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder) / STEPS_FOLDER
        self._index: dict[str, dict[str, str]] = {}
        self._logs: dict[str, AppendLog] = {}
        self.rows: dict[str, dict[str, int]] = {}  # step -> {"computed": n, "cached": m}

    def _entries(self, step: str) -> dict[str, str]:
        if step not in self._index:  # read once, before the step's first row runs
            self._index[step] = read_jsonl_index(self.folder / _file_name(step))[0]
        return self._index[step]

    def keys(self, identity: dict[str, Any], rows: list[dict[str, Any]], *,
             whole_chunk: bool = False) -> list[str]:
        """One key per row; ``whole_chunk``: each key also holds every row of the group and the
        row's position (scripted models, whose output depends on the rows before)."""
        base = _digest(identity)
        group = _digest(rows) if whole_chunk else ""
        return [_digest([base, group, i if whole_chunk else 0, row]) for i, row in enumerate(rows)]

    def lookup(self, step: str, keys: list[str]) -> list[dict[str, Any] | None]:
        entries = self._entries(step)
        found = [json.loads(entries[k])["row"] if k in entries else None for k in keys]
        counts = self.rows.setdefault(step, {"computed": 0, "cached": 0})
        counts["cached"] += sum(r is not None for r in found)
        counts["computed"] += sum(r is None for r in found)
        return found

    def store(self, step: str, keys: list[str], rows: list[dict[str, Any]]) -> None:
        entries = self._entries(step)
        log = self._logs.setdefault(step, AppendLog(self.folder / _file_name(step)))
        for key, row in zip(keys, rows):
            entry = {"key": key, "row": row}
            log.append(entry)
            entries[key] = json.dumps(entry, ensure_ascii=False, sort_keys=True)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()


def open_caches(config: Any) -> tuple[Any, StepCache | None]:
    """(request cache, step cache) of a build: both in ``config.cache_dir`` (the build resolves
    it), neither with ``no_cache`` or without a folder."""
    folder = getattr(config, "cache_dir", None)
    if getattr(config, "no_cache", False) or not folder:
        return None, None
    from selfpref.models.request_cache import RequestCache

    return RequestCache(folder), StepCache(folder)


CACHE_FOLDER = ".selfpref-cache"
CACHE_ENV = "SELFPREF_CACHE_DIR"


def default_cache_dir(workdir: str | Path, explicit: str | None = None) -> Path:
    """The cache folder a build in ``workdir`` (its output's parent) uses: ``explicit``
    (--cache-dir), else $SELFPREF_CACHE_DIR, else ``workdir/.selfpref-cache``, beside the parts."""
    import os

    chosen = explicit or os.environ.get(CACHE_ENV)
    return Path(chosen).expanduser() if chosen else Path(workdir) / CACHE_FOLDER


def cache_files(folder: Path) -> list[Path]:
    """The files a cache folder holds: ``requests.jsonl`` and ``steps/*.jsonl`` (nothing else
    there is selfpref's, so nothing else is counted or cleared)."""
    from selfpref.models.request_cache import REQUESTS_FILE

    files = [folder / REQUESTS_FILE] if (folder / REQUESTS_FILE).is_file() else []
    return files + sorted((folder / STEPS_FOLDER).glob("*.jsonl"))


def cache_info(folder: str | Path) -> dict[str, Any]:
    """Location, size and entries of a cache folder, per file (``selfpref cache info``)."""
    folder = Path(folder)
    files = {}
    for path in cache_files(folder):
        entries, bad = read_jsonl_index(path)
        files[str(path.relative_to(folder))] = {"entries": len(entries), "bytes": path.stat().st_size,
                                                "unreadable_lines": bad}
    return {"location": str(folder.resolve()), "files": files,
            "entries": sum(f["entries"] for f in files.values()),
            "bytes": sum(f["bytes"] for f in files.values())}


def clear_cache(folder: str | Path) -> dict[str, Any]:
    """Remove a cache folder's files (``selfpref cache clear``); returns what they held."""
    folder = Path(folder)
    info = cache_info(folder)
    for path in cache_files(folder):
        path.unlink()
    for empty in (folder / STEPS_FOLDER, folder):
        if empty.is_dir() and not any(empty.iterdir()):
            empty.rmdir()
    return info
