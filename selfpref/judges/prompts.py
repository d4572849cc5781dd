"""What a pairwise judge is asked: SAO's ranking prompt and one prompt per AlignEZ aspect.

Both end with the same instruction ("Answer with a single letter, A or B."), so a text verdict is
read by `verdict.parse_verdict` and a forced choice reads the next-token probabilities of "A"
and "B". Earlier turns of a multi-turn prompt are shown above the question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Message = Mapping[str, str]
Chat = list[dict[str, str]]

JUDGE_TEMPLATE = (
    "You are an impartial judge. Compare the two responses to the user's question on relevance, "
    "accuracy, completeness and clarity, and decide which one is better.\n\n"
    "[Question]\n{prompt}\n\n[Response A]\n{first}\n\n[Response B]\n{second}\n\n"
    "Which response is better? Answer with a single letter, A or B.")
"""SAO §3.3 / Figure 5: rank two responses on relevance, accuracy, completeness and clarity."""

ASPECT_TEMPLATE = (
    "You are an impartial judge. Compare the two responses to the user's question on one aspect "
    "only, {aspect}: {definition} Leave every other quality aside.\n\n"
    "[Question]\n{prompt}\n\n[Response A]\n{first}\n\n[Response B]\n{second}\n\n"
    "Which response is better on {aspect}? Answer with a single letter, A or B.")

# AlignEZ §3 judges five aspects separately (after Lin et al.'s multi-aspect evaluation); the
# definitions are selfpref's own words.
ASPECTS: dict[str, str] = {
    "engagement": ("does the response speak to this person and hold their interest, in a natural, "
                   "inviting voice, rather than sounding flat and detached?"),
    "helpfulness": ("does the response address what the user actually asked and give them "
                    "something they can use or act on?"),
    "factuality": ("are the response's statements true, with no invented facts, wrong numbers "
                   "or false claims?"),
    "depth": ("does the response explain the reasons and details behind its points and cover the "
              "parts of the question that matter, rather than staying on the surface?"),
    "clarity": "is the response well organised, easy to follow and free of confusing or needless wording?",
}


def _history_block(history: Sequence[Message]) -> str:
    turns = "\n".join(f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in history)
    return f"[Conversation so far]\n{turns}\n\n" if turns else ""


def judge_chat(prompt: str, first: str, second: str, *, aspect: str | None = None,
               history: Sequence[Message] = ()) -> Chat:
    """One user turn asking which of (first, second) is better, overall or on ``aspect``."""
    if aspect is None:
        text = JUDGE_TEMPLATE.format(prompt=prompt, first=first, second=second)
    else:
        text = ASPECT_TEMPLATE.format(aspect=aspect, definition=ASPECTS[aspect], prompt=prompt,
                                      first=first, second=second)
    return [{"role": "user", "content": _history_block(history) + text}]
