"""What a pairwise judge is asked: selfpref's ranking prompt, one prompt per AlignEZ aspect, and
SSO's leaderboard template (SSO Table 15, for the A.1.4 dispute filter).

selfpref's two prompts end with the same instruction ("Answer with a single letter, A or B."), so
a text verdict is read by `verdict.parse_verdict` and a forced choice reads the next-token
probabilities of "A" and "B". SSO's template names the answers "m" and "M" (its model
identifiers) and is read with those labels (`TEMPLATE_OPTIONS`). Earlier turns of a multi-turn
prompt are shown above the question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Message = Mapping[str, str]
Chat = list[dict[str, str]]

CRITERIA = ("relevance", "accuracy", "completeness", "clarity")
"""SAO §3.3's four criteria of the ranking prompt; SAO Table 6 ablates each ("w/o Criterion k")."""


def judge_template(criteria: Sequence[str] = CRITERIA) -> str:
    """selfpref's ranking prompt on ``criteria`` (SAO Table 6's "w/o Criterion k" drops one)."""
    named = list(criteria)
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return ("You are an impartial judge. Compare the two responses to the user's question on "
            f"{listed}, and decide which one is better.\n\n"
            "[Question]\n{prompt}\n\n[Response A]\n{first}\n\n[Response B]\n{second}\n\n"
            "Which response is better? Answer with a single letter, A or B.")


def check_criteria(criteria: Sequence[str] | str | None, flag: str = "--judge-criteria") -> tuple[str, ...]:
    """The criteria to ask about, in SAO's order; unknown, repeated or none is one line."""
    from selfpref import SelfprefError

    if criteria is None:
        return CRITERIA
    names = [c.strip().lower() for c in (criteria.split(",") if isinstance(criteria, str) else criteria)
             if c.strip()]
    unknown = [c for c in names if c not in CRITERIA]
    if unknown or not names or len(set(names)) != len(names):
        what = f"unknown criterion {unknown[0]!r}" if unknown else "give each criterion once, at least one"
        raise SelfprefError(f"{flag} {','.join(names) or repr(criteria)}: {what} (the criteria: "
                            f"{', '.join(CRITERIA)}; SAO Table 6 drops one, e.g. "
                            "relevance,accuracy,clarity)")
    return tuple(c for c in CRITERIA if c in names)


JUDGE_TEMPLATE = judge_template(CRITERIA)
"""selfpref's wording, not SAO's. SAO §3.3 names the four criteria (relevance, accuracy,
completeness, clarity); its Table 13 example asks for a ranking ("2 > 1", which `parse_verdict`
reads too). This template asks for one letter so that a forced choice over "A"/"B" works."""

# SSO Table 15 ("The template we use to evaluate signal accuracy"), which A.1.4 step 2 says the
# dispute judges used. The seed text keeps the system turn, the instruction and the two outputs
# ("m", "M") word for word, and is cut after "## Task". The Task paragraph and the closing
# "## Best Model Identifier" below are AlpacaEval's (alpaca_eval_clf_gpt4_turbo), whose
# surviving parts Table 15 matches word for word: a reconstruction, not SSO's text.
SSO_LEADERBOARD_SYSTEM = (
    "You are a highly efficient assistant, who evaluates and selects the best large language "
    "model (LLMs) based on the quality of their responses to a given instruction. This process "
    "will be used to create a leaderboard reflecting the most accurate and human-preferred answers.")
SSO_LEADERBOARD_TEMPLATE = (
    "I require a leaderboard for various large language models. I'll provide you with prompts "
    "given to these models and their corresponding outputs. Your task is to assess these "
    "responses, and select the model that produces the best output from a human perspective.\n\n"
    "## Instruction\n\n{{\n    \"instruction\": \"{prompt}\",\n}}\n\n"
    "## Model Outputs\n\nHere are the unordered outputs from the models. Each output is "
    "associated with a specific model, identified by a unique model identifier.\n\n"
    "{{\n    {{\n        \"model identifier\": \"m\",\n        \"output\": \"{first}\"\n    }},\n"
    "    {{\n        \"model identifier\": \"M\",\n        \"output\": \"{second}\"\n    }}\n}}\n\n"
    "## Task\n\n"
    # --- reconstructed from AlpacaEval (lost from the seed text) ---
    "Evaluate the models based on the quality and relevance of their outputs, and select the "
    "model that generated the best output. Answer by providing the model identifier of the best "
    "model. We will use your output as the name of the best model, so make sure your output only "
    "contains one of the following model identifiers and nothing else (no quotes, no spaces, no "
    "new lines, ...): m or M.\n\n## Best Model Identifier")

TEMPLATES = ("selfpref", "sso")
"""``selfpref``: JUDGE_TEMPLATE (build sao, eval); ``sso``: SSO Table 15 (the dispute filter)."""
TEMPLATE_OPTIONS: dict[str, tuple[str, str]] = {"selfpref": ("A", "B"), "sso": ("m", "M")}

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
               history: Sequence[Message] = (), template: str = "selfpref",
               criteria: Sequence[str] = CRITERIA) -> Chat:
    """One user turn asking which of (first, second) is better, overall or on ``aspect``
    (``template='sso'``: SSO Table 15's system and user turns, overall only)."""
    if template == "sso":
        text = SSO_LEADERBOARD_TEMPLATE.format(prompt=prompt, first=first, second=second)
        return [{"role": "system", "content": SSO_LEADERBOARD_SYSTEM},
                {"role": "user", "content": _history_block(history) + text}]
    if aspect is None:
        text = judge_template(criteria).format(prompt=prompt, first=first, second=second)
    else:
        text = ASPECT_TEMPLATE.format(aspect=aspect, definition=ASPECTS[aspect], prompt=prompt,
                                      first=first, second=second)
    return [{"role": "user", "content": _history_block(history) + text}]
