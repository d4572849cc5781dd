"""What an evaluation compares: the prompt set, and answers read from files.

- `load_prompts(ref)`: any dataset with a prompt column (``prompt``, ``instruction``, MT-Bench's
  ``turns``: the first turn, ...), or with no ref the held-out set selfpref ships
  (``prompts.jsonl`` beside this module: 104 prompts written for selfpref in eight categories,
  13 each: writing, roleplay, reasoning, math, coding, extraction, stem, humanities). Exact
  duplicates are dropped and counted.
- `spread(prompts, n)`: at most n prompts, in turn from each category when the set names them;
  `write_prompts` writes a set back as jsonl (what a loop or the demo evaluates, kept beside it).
- `read_answers(ref, flag)`: jsonl / json / parquet / csv with ``prompt`` and ``answer`` columns,
  or AlpacaEval's model-output layout (``instruction``, ``output``, optional ``generator``).

A prompt set is named by an id (the reference, or ``selfpref-heldout-v1``) and a fingerprint:
sha256 of its distinct prompt texts in sorted order, so two runs on the same prompts in another
order or file format match, and any edited prompt does not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.data.atomic import write_atomic

HELDOUT = Path(__file__).with_name("prompts.jsonl")
HELDOUT_ID = "selfpref-heldout-v1"


@dataclass(frozen=True)
class PromptSet:
    prompts: list[str]
    id: str
    fingerprint: str
    skipped: dict[str, int] = field(default_factory=dict)
    categories: list[str] | None = None  # one per prompt when the set names them

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"id": self.id, "fingerprint": self.fingerprint, "n": len(self.prompts),
                                "skipped": self.skipped}
        if self.categories:
            info["categories"] = {c: self.categories.count(c) for c in dict.fromkeys(self.categories)}
        return info


def fingerprint(prompts: list[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(set(prompts)), ensure_ascii=False).encode()).hexdigest()


def _dedupe(prompts: list[str], categories: list[str] | None) -> tuple[list[str], list[str] | None, int]:
    seen: set[str] = set()
    keep: list[int] = []
    for i, p in enumerate(prompts):
        if p not in seen:
            seen.add(p)
            keep.append(i)
    cats = [categories[i] for i in keep] if categories else None
    return [prompts[i] for i in keep], cats, len(prompts) - len(keep)


def load_prompts(ref: str | None = None, *, column: str | None = None) -> PromptSet:
    """The prompts to evaluate on (see the module docstring)."""
    import polars as pl

    from selfpref.data.layouts import prompt_texts

    categories: list[str] | None
    skipped: dict[str, int]
    if ref is None:
        frame = pl.read_ndjson(HELDOUT)
        texts, categories, skipped = frame["prompt"].to_list(), frame["category"].to_list(), {}
        name = HELDOUT_ID
    else:
        from selfpref.data.importer import read_source

        frame = read_source(str(ref))
        try:
            texts, skipped = prompt_texts(frame, column)
        except SelfprefError as exc:
            named = f" --prompt-column {column}" if column else ""
            raise SelfprefError(f"--prompts {ref}{named}: {exc}") from None
        categories = (frame["category"].cast(pl.Utf8).to_list()
                      if "category" in frame.columns and not skipped else None)
        name = str(ref)
    texts, categories, duplicates = _dedupe([t.strip() for t in texts], categories)
    if duplicates:
        skipped = {**skipped, "duplicate": duplicates}
    return PromptSet(texts, name, fingerprint(texts), dict(skipped), categories)


def spread(prompts: PromptSet, n: int) -> PromptSet:
    """At most ``n`` prompts: with categories, taken in turn from each category (in file order within
    it), so 8 of the shipped set are one per category; without, the first ``n``."""
    if n >= len(prompts.prompts):
        return prompts
    if prompts.categories:
        queues: dict[str, list[int]] = {}
        for i, c in enumerate(prompts.categories):
            queues.setdefault(c, []).append(i)
        order = [q[r] for r in range(max(map(len, queues.values()))) for q in queues.values() if r < len(q)]
        keep = sorted(order[:n])
    else:
        keep = list(range(n))
    texts = [prompts.prompts[i] for i in keep]
    cats = [prompts.categories[i] for i in keep] if prompts.categories else None
    return PromptSet(texts, f"{prompts.id}[spread:{n}]" if cats else f"{prompts.id}[:{n}]",
                     fingerprint(texts), prompts.skipped, cats)


def write_prompts(prompts: PromptSet, path: str | Path) -> Path:
    """The prompt set as a jsonl file `load_prompts` reads back (``prompt``, and ``category``)."""
    path = Path(path)
    rows = [{"prompt": p, **({"category": prompts.categories[i]} if prompts.categories else {})}
            for i, p in enumerate(prompts.prompts)]
    return write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_answers(ref: str | Path, flag: str) -> tuple[dict[str, str], str | None]:
    """({prompt: answer}, generator name if the file gives one) from an answer file."""
    from selfpref.data.importer import read_source

    path = Path(ref)
    if not path.exists():
        raise SelfprefError(f"{flag} {ref}: no such file; give a jsonl or parquet file with "
                            "'prompt' and 'answer' columns")
    frame = read_source(str(path))
    if "prompt" not in frame.columns and "instruction" in frame.columns:  # AlpacaEval's layout
        frame = frame.rename({"instruction": "prompt", **({"output": "answer"} if "output" in frame.columns else {})})
    for column in ("prompt", "answer"):
        if column not in frame.columns:
            raise SelfprefError(f"{flag} {ref}: missing column '{column}' (columns: "
                                f"{', '.join(frame.columns)}); give 'prompt' and 'answer' (or "
                                "AlpacaEval's 'instruction' and 'output')")
    answers: dict[str, str] = {}
    for prompt, answer in frame.select("prompt", "answer").iter_rows():
        if not isinstance(prompt, str) or not prompt.strip():
            raise SelfprefError(f"{flag} {ref}: a row has an empty or non-text 'prompt'")
        prompt = prompt.strip()
        if prompt in answers:
            raise SelfprefError(f"{flag} {ref}: the prompt {prompt[:60]!r} appears twice; give one "
                                "answer per prompt")
        answers[prompt] = "" if answer is None else str(answer)
    if not answers:
        raise SelfprefError(f"{flag} {ref}: no rows")
    generator = None
    if "generator" in frame.columns:
        names = [g for g in frame["generator"].unique().to_list() if g]
        generator = str(names[0]) if len(names) == 1 else None
    return answers, generator
