"""Pure parsers for what models write: prompts, verdicts, feature lists. No model calls here.

Each returns a value or ``None`` plus nothing else; callers turn ``None`` into a counted reason.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(
    r"^\s*(?:\*\*)?\s*(?:user\s*(?:prompt|request|query|question)|prompt|request|query|question|"
    r"instruction|task)\s*(?:\d+\s*)?(?:\*\*)?\s*[:\-–]\s*(?:\*\*)?\s*", re.IGNORECASE)
_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry|i am sorry|sorry,|i cannot|i can't|i can not|i'm unable|i am unable|"
    r"as an ai|i won't|i will not|unfortunately,? i)", re.IGNORECASE)


def clean_prompt(text: str | None) -> tuple[str | None, str | None]:
    """(prompt, None) or (None, reason): strips "User prompt:"-style prefixes and quotes."""
    if text is None or not text.strip():
        return None, "empty_prompt"
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    first = _PREFIX.sub("", lines[0]).strip()
    # A prefix on a line of its own ("Prompt:\n<text>") leaves the text on the next lines.
    body = "\n".join([first, *lines[1:]]).strip() if first else "\n".join(lines[1:]).strip()
    body = body.strip().strip('"“”').strip()
    if not body:
        return None, "empty_prompt"
    if _REFUSAL.match(body):
        return None, "refusal"
    return body, None


def parse_features(text: str | None, valid: list[str]) -> list[str]:
    """Valid feature names in the order written, deduplicated, case-insensitive."""
    if not text:
        return []
    lookup = {v.lower(): v for v in valid}
    out: list[str] = []
    for token in re.split(r"[,;\n/|]+|\band\b", text):
        name = lookup.get(token.strip().strip(".*-:0123456789 ").lower())
        if name and name not in out:
            out.append(name)
    return out


def normalize_text(text: str) -> str:
    """Whitespace- and case-folded text, for exact duplicate checks."""
    return " ".join(text.lower().split())
