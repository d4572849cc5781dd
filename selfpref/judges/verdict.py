"""Reading a written verdict: 'A', 'B', 'tie', or None when no verdict can be read."""

from __future__ import annotations

import re

_VERDICT_PATTERNS = [
    (re.compile(r"\b(?:tie|equal(?:ly)?|both (?:are )?(?:equally )?(?:good|bad)|neither)\b", re.I), "tie"),
    (re.compile(r"\b(?:response|answer|option|assistant|output)\s*[\(\[]?\s*(A|B|1|2)\b", re.I), None),
    (re.compile(r"\[\[\s*(A|B|1|2)\s*\]\]", re.I), None),
    (re.compile(r"^\s*[\(\[]?\s*(A|B|1|2)\s*[\)\]]?(?:[\s\.:,!]|$)", re.I), None),
    (re.compile(r"\b(?:better|best|winner|prefer(?:red)?|choose|choice|verdict)\b[^A-Za-z0-9]{0,20}"
                r"(?:(?:response|answer|option|one|is|would be)\s+)*[\(\[]?(A|B|1|2)\b", re.I), None),
]


def parse_verdict(text: str | None) -> str | None:
    """'A', 'B', 'tie', or None when no verdict can be read (garbage, empty, contradictory)."""
    if text is None or not text.strip():
        return None
    found: set[str] = set()
    for pattern, fixed in _VERDICT_PATTERNS:
        for match in pattern.finditer(text):
            value = fixed or match.group(1).upper()
            found.add({"1": "A", "2": "B"}.get(value, value))
        if found:
            break  # earlier patterns are more specific; stop at the first that speaks
    if len(found) == 1:
        return found.pop()
    return None  # nothing, or both A and B named with nothing to choose between them
