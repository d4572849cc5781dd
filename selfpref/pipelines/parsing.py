"""Pure parsers for what models write: prompts, feature lists. No model calls here.

Each returns a value or ``None`` plus nothing else; callers turn ``None`` into a counted reason.
"""

from __future__ import annotations

import re

# A label the model put before the prompt: "User prompt:", "**Prompt:**", "Request -",
# "Question 1:". The separator is a colon, or a dash with a space after it: "Query-based
# indexing: ..." is a prompt that starts with a hyphenated word, not a "Query-" label.
_PREFIX = re.compile(
    r"^\s*(?:\*\*)?\s*(?:user\s*(?:prompt|request|query|question)|prompt|request|query|question|"
    r"instruction|task)\s*(?:\d+\s*)?(?:\*\*)?\s*(?::|[-–—](?=\s|$))\s*(?:\*\*)?\s*", re.IGNORECASE)

# A refusal is the model declining the task of writing a prompt, not any first-person sentence:
# SAO asks for the request in the persona's own words, so "I can't sleep at night, ..." and
# "Unfortunately, I lost my passport ..." are prompts. A refusal opens (after an optional
# apology or AI disclaimer) with "I can't / won't / am unable to" followed by the task itself
# ("help with that", "do that", "fulfill this request", "create content ...", "write that"), or
# "I must decline", or an AI disclaimer followed by any "I cannot / I don't ...", or an apology
# about the request itself ("I'm sorry, but this request goes against ...").
_APOLOGY = (r"(?:(?:i'?m|i\s+am)\s+(?:really\s+|very\s+|so\s+|truly\s+)?(?:sorry|afraid)|sorry|"
            r"i\s+apologi[sz]e|unfortunately|regrettably)")
_AI_DISCLAIMER = (r"(?:as\s+an\s+ai(?:\s+(?:language\s+)?(?:model|assistant))?|"
                  r"as\s+a\s+(?:large\s+)?language\s+model|as\s+a\s+(?:helpful|responsible)\s+"
                  r"(?:ai|assistant))\s*,")
_UNABLE = (r"i\s*(?:can'?t|cannot|can\s+not|won'?t|will\s+not|(?:'m|\s+am)\s+(?:unable|not\s+able|"
           r"not\s+allowed|not\s+comfortable|not\s+going)|"
           r"(?:don'?t|do\s+not)\s+feel\s+comfortable)(?:\s+to)?")
_THIS_TASK = r"(?:that|this|it|so|such|your\s+request|this\s+request|the\s+request|these|those)"
_TASK = (
    r"(?:"
    rf"(?:help|assist)(?:\s+you)?(?:\s+with\s+{_THIS_TASK}\b|\s*(?:[.!,]|$))"
    rf"|(?:do|fulfill?|comply\s+with|complete|continue|answer|respond\s+to)\s+{_THIS_TASK}"
    r"(?=\s*(?:[.!,;]|$|for\s+you|request|task))"
    r"|comply(?=\s*(?:[.!,]|$))|(?=[.!]|$)"
    r"|(?:pretend\s+to\s+be|role-?play\s+as|take\s+on|adopt|assume)\s+(?:this|that|the|a)\s+"
    r"(?:\w+\s+)?(?:persona|role|person)\b"
    r"|(?:create|write|generate|produce|provide|share|give|come\s+up\s+with|engage\s+in|"
    r"participate\s+in|assist\s+with)\s+"
    r"(?:that(?=\s*(?:[.!,;]|$|kind|type|sort|content|material|request|prompt))|such\b|"
    r"content\b|material\b|information\b|any\s+content\b|"
    r"(?:a|the|this|that|such\s+a)\s+(?:\w+\s+)?(?:prompt|request)s?\b|prompts?\b|"
    r"requests?\b|explicit\b|harmful\b|inappropriate\b|offensive\b)"
    r")")
_REFUSAL = re.compile(
    rf"^\s*(?:{_APOLOGY}\s*[,.!]?\s*(?:but\s*,?\s*)?)?(?:{_AI_DISCLAIMER}\s*)?"
    r"i\s+must(?:\s+respectfully)?\s+decline\b"
    rf"|^\s*(?:{_APOLOGY}\s*[,.!]?\s*(?:but\s*,?\s*)?)?(?:{_AI_DISCLAIMER}\s*)?{_UNABLE}\s*{_TASK}"
    rf"|^\s*(?:{_APOLOGY}\s*[,.!]?\s*(?:but\s*,?\s*)?)?{_AI_DISCLAIMER}\s*i\s*(?:can'?t|cannot|"
    r"can\s+not|don'?t|do\s+not|am\s+not|'m\s+not|won'?t|will\s+not|am\s+unable|'m\s+unable)\b"
    rf"|^\s*{_APOLOGY}\s*[,.!]?\s*(?:but\s*,?\s*)?(?:this|that|your|the)\s+(?:request|prompt|"
    r"content|topic)\s+(?:is|goes|violates|contains|asks|involves)\b",
    re.IGNORECASE)


def clean_prompt(text: str | None) -> tuple[str | None, str | None]:
    """(prompt, None) or (None, reason): strips "User prompt:"-style prefixes and quotes, and
    drops empty outputs ("empty_prompt") and the model declining to write one ("refusal")."""
    if text is None or not text.strip():
        return None, "empty_prompt"
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    first = _PREFIX.sub("", lines[0]).strip()
    # A prefix on a line of its own ("Prompt:\n<text>") leaves the text on the next lines.
    body = "\n".join([first, *lines[1:]]).strip() if first else "\n".join(lines[1:]).strip()
    body = body.strip().strip('"“”').strip()
    if not body:
        return None, "empty_prompt"
    if _REFUSAL.match(body.replace("’", "'")):
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
