"""Layouts of preference data and prompt sets, mapped onto the record contract's text columns.

A pure mapping layer: one source row in, ``(prompt, history, chosen, rejected)`` out, or
``Unmappable(reason)`` that the importer counts. ``history`` is the list of earlier ``{role,
content}`` turns, None when the prompt has none. Roles become user/assistant/system (ShareGPT's
human -> user; gpt, chatgpt, bing, bard -> assistant; OpenAI's developer -> system).

Layouts (``detect_layout`` names them):

- ``hh``: Anthropic/hh-rlhf. ``chosen`` and ``rejected`` are whole transcripts whose turns start
  with ``"\\n\\nHuman:"`` / ``"\\n\\nAssistant:"`` (assistant turns may hold blank lines). Each
  transcript's final assistant turn is its answer; the turns before it must be the same in both
  (compared with the whitespace around each turn stripped), else the pair is counted
  (``hh_transcripts_differ_before_last_turn``), never guessed. The last human turn is the prompt.
- ``sharegpt``: ``conversations`` (``from``/``value``) holds the prompt turns and ``chosen`` /
  ``rejected`` the answers: one ``{from: gpt, value}`` message as in LLaMA-Factory's preference
  format, a message list (the prompt turns may be repeated) or a string. A ``system`` column
  becomes the first history turn.
- ``openai``: ``messages`` (``role``/``content``) with ``chosen``/``rejected`` as above, or
  OpenAI's preference fine-tuning file: ``input.messages``, ``preferred_output``,
  ``non_preferred_output``.
- ``ultrafeedback_raw``: openbmb/UltraFeedback, ``instruction`` and ``completions`` (``response``,
  ``overall_score``, ...), binarized as HuggingFaceH4/ultrafeedback_binarized (``binarize``).
- ``distilabel``: the output of distilabel's UltraFeedback task: ``instruction``, ``generations``,
  ``ratings`` (None where the judge's output did not parse), optional ``system_prompt``.
- ``trl``: ``prompt``/``chosen``/``rejected``, TRL's standard (strings) or conversational
  (message lists) layout, UltraFeedback-binarized (the user turn repeated at the start of each
  answer), and chosen/rejected conversations without a prompt column, whose shared leading
  turns are the prompt (TRL's implicit prompt).

Prompt sets (``prompt_texts``) take one text per row from a named column or the first of
``PROMPT_COLUMNS`` present.
"""

from __future__ import annotations

import collections
import math
import random
import re
from typing import Any

import polars as pl

from selfpref import SelfprefError

LAYOUTS = ("hh", "sharegpt", "openai", "ultrafeedback_raw", "distilabel", "trl")
PROMPT_COLUMNS = ("prompt", "instruction", "turns", "messages", "conversations")
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
         "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "system": "system",
         "developer": "system"}

Message = dict[str, str]
Mapped = tuple[str, list[Message] | None, str, str]

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


class Unmappable(Exception):
    """A row that cannot be mapped; the message is the reason counted in the report (snake_case)."""


def detect_layout(frame: pl.DataFrame) -> str:
    """The layout of a source table (one of ``LAYOUTS``), from its columns and first ``chosen``.

    Explicit prompt/chosen/rejected columns win ("trl"): they are pairs someone already made.
    """
    cols = set(frame.columns)
    pair = {"chosen", "rejected"} <= cols
    if pair and "prompt" in cols:
        return "trl"
    if {"instruction", "completions"} <= cols:
        return "ultrafeedback_raw"
    if {"instruction", "generations", "ratings"} <= cols:
        return "distilabel"
    if {"input", "preferred_output", "non_preferred_output"} <= cols:
        return "openai"
    if pair:
        if "conversations" in cols:
            return "sharegpt"
        if "messages" in cols:
            return "openai"
        first = frame["chosen"].drop_nulls().head(1).to_list()
        if first and isinstance(first[0], str) and _is_hh(first[0]):
            return "hh"
        return "trl"
    missing = min({"chosen", "rejected"} - cols)
    chats = [c for c in ("conversations", "messages") if c in cols]
    hint = (f"; '{chats[0]}' without chosen/rejected is a chat set, not preference pairs: use it "
            "as a prompt set (--prompts)" if chats else "")
    raise SelfprefError(
        f"cannot import: no column {missing!r}, and the columns ({', '.join(frame.columns)}) match "
        "no other layout; selfpref imports prompt/chosen/rejected (TRL, UltraFeedback-binarized), "
        "Anthropic HH transcripts, ShareGPT conversations or OpenAI messages with chosen/rejected, "
        "OpenAI preference files (input/preferred_output/non_preferred_output), raw UltraFeedback "
        f"(instruction/completions) and distilabel (instruction/generations/ratings){hint}")


def map_layout_row(row: dict[str, Any], layout: str, rng: random.Random) -> Mapped:
    """(prompt, history or None, chosen, rejected) for one row, or Unmappable with the reason.

    ``rng`` is drawn from only by the layouts that binarize ratings (one draw per row).
    """
    mapper = _MAPPERS.get(layout)
    if mapper is None:
        raise ValueError(f"layout {layout!r} is not mapped here (layouts: {', '.join(_MAPPERS)})")
    prompt, history, chosen, rejected = mapper(row, rng)
    if not prompt.strip():
        raise Unmappable("empty_prompt")
    if not chosen.strip() or not rejected.strip():
        raise Unmappable("empty_answer")
    if chosen == rejected:
        raise Unmappable("chosen_equals_rejected")
    return prompt, history or None, chosen, rejected


def map_layout_rows(frame: pl.DataFrame, layout: str,
                    rng: random.Random) -> tuple[list[Mapped], dict[str, int]]:
    """Every row of ``frame`` mapped, and the count of unmappable rows per reason."""
    mapped: list[Mapped] = []
    dropped: collections.Counter[str] = collections.Counter()
    for row in frame.iter_rows(named=True):
        try:
            mapped.append(map_layout_row(row, layout, rng))
        except Unmappable as why:
            dropped[str(why)] += 1
    return mapped, dict(dropped)


def binarize(scores: list[Any], rng: random.Random, *,
             rejected_from: str = "others") -> tuple[int, int]:
    """(chosen index, rejected index) from per-answer scores (None or NaN: unrated), or Unmappable.

    Chosen is the highest score, the first one when several share the top (as Python's ``max``).
    ``rejected_from="others"`` is HuggingFaceH4/ultrafeedback_binarized's rule ("we picked the
    highest overall_score as the chosen completion, and one of the remaining 3 at random as the
    rejected one", its dataset card; its create_dataset.py then drops pairs whose two scores are
    equal): one ``rng.choice`` among the other rated answers, and a pick that scores the same as
    chosen is counted as ``ratings_tie``. So [8, 8, 5, 3] gives a pair two times in three.
    ``rejected_from="lower"`` picks among the answers scoring strictly lower: only a row whose
    rated answers all tie is counted.
    """
    rated = [(i, float(s)) for i, s in enumerate(scores)
             if isinstance(s, (int, float)) and not isinstance(s, bool) and not math.isnan(s)]
    if scores and not rated:
        raise Unmappable("missing_ratings")
    if len(rated) < 2:
        raise Unmappable("fewer_than_two_rated_completions")
    best, top = max(rated, key=lambda item: item[1])
    if rejected_from == "others":
        pick, score = rng.choice([item for item in rated if item[0] != best])
        if score == top:
            raise Unmappable("ratings_tie")
        return best, pick
    if rejected_from == "lower":
        lower = [item for item in rated if item[1] < top]
        if not lower:
            raise Unmappable("ratings_tie")
        return best, rng.choice(lower)[0]
    raise ValueError(f"rejected_from must be 'others' or 'lower', not {rejected_from!r}")


def prompt_texts(frame: pl.DataFrame,
                 column: str | None = None) -> tuple[list[str], dict[str, int]]:
    """One prompt per row, and the count of skipped rows per reason (``empty``, ``no_user_turn``,
    ``not_text``). Raises SelfprefError when the column is missing or gives no text at all.

    Without ``column`` the first of ``PROMPT_COLUMNS`` present is read. A value may be a string; a
    list of turns without roles (MT-Bench's ``turns`` strings, Arena-Hard's ``{content}``), which
    gives its first turn, since later turns follow up on an answer the model has not written yet;
    or a message list (``role``/``content`` or ``from``/``value``), which gives its last user turn,
    since a message list is a request that ends where the model is to answer: system turns and
    few-shot examples before it are context a plain-text prompt set does not carry.
    """
    if column is not None and column not in frame.columns:
        raise SelfprefError(f"no '{column}' column (columns: {', '.join(frame.columns)})")
    if column is None:
        column = next((c for c in PROMPT_COLUMNS if c in frame.columns), None)
        if column is None:
            raise SelfprefError(f"no prompt column: looked for {', '.join(PROMPT_COLUMNS)} "
                                f"(columns: {', '.join(frame.columns)}); name one with "
                                "--prompt-column")
    texts: list[str] = []
    skipped: collections.Counter[str] = collections.Counter()
    for value in frame[column].to_list():
        try:
            texts.append(_prompt_text(value))
        except Unmappable as why:
            skipped[str(why)] += 1
    if not texts:
        reasons = ", ".join(f"{k}: {v}" for k, v in skipped.most_common())
        raise SelfprefError(f"column '{column}' has no prompt text ({reasons or 'no rows'})")
    return texts, dict(skipped)


# --- prompt sets -----------------------------------------------------------------------------

def _prompt_text(value: Any) -> str:
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if any(_get(v, "role", "from") is not None for v in value):
            users = [_get(v, "content", "value") for v in value
                     if str(_get(v, "role", "from")).lower() in ("user", "human")]
            if not users:
                raise Unmappable("no_user_turn")
            value = users[-1]
        else:
            value = _get(value[0], "content", "value")
    elif isinstance(value, list):
        value = value[0] if value else None
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Unmappable("empty")
    if not isinstance(value, str):
        raise Unmappable("not_text")
    return value


def _get(message: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` with a value (polars sets a struct's absent keys to None)."""
    return next((message[k] for k in keys if message.get(k) is not None), None)


# --- Anthropic HH ----------------------------------------------------------------------------

def _is_hh(text: str) -> bool:
    return "\n\nAssistant:" in text and ("\n\nHuman:" in text or text.lstrip().startswith("Human:"))


def _hh_turns(text: Any) -> list[Message]:
    if text is None:
        raise Unmappable("missing_chosen_or_rejected")
    if not isinstance(text, str):
        raise Unmappable("hh_transcript_not_text")
    parts = _HH_TURN.split("\n\n" + text.lstrip())
    if len(parts) == 1:
        raise Unmappable("hh_no_human_turn")
    if parts[0].strip():
        raise Unmappable("hh_text_before_first_turn")
    turns = [{"role": "user" if who == "Human" else "assistant", "content": body.strip()}
             for who, body in zip(parts[1::2], parts[2::2])]
    if not any(t["role"] == "user" for t in turns):
        raise Unmappable("hh_no_human_turn")
    if turns[-1]["role"] != "assistant":
        raise Unmappable("hh_no_final_assistant_turn")
    if any(t["role"] != ("user" if i % 2 == 0 else "assistant") for i, t in enumerate(turns)):
        raise Unmappable("hh_turns_do_not_alternate")
    return turns


def _hh(row: dict[str, Any], rng: random.Random) -> Mapped:
    chosen, rejected = _hh_turns(row.get("chosen")), _hh_turns(row.get("rejected"))
    if chosen[:-1] != rejected[:-1]:
        raise Unmappable("hh_transcripts_differ_before_last_turn")
    context = chosen[:-1]
    return context[-1]["content"], context[:-1], chosen[-1]["content"], rejected[-1]["content"]


# --- message lists: ShareGPT and OpenAI ------------------------------------------------------

def _messages(value: Any, layout: str, column: str) -> list[Message]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise Unmappable(f"{column}_not_a_message_list")
    out = []
    for m in value:
        role, content = _get(m, "from", "role"), _get(m, "value", "content")
        if role is None:
            raise Unmappable(f"{layout}_message_without_role")
        if str(role).lower() not in ROLES:
            raise Unmappable(f"{layout}_unknown_role")
        if not isinstance(content, str):
            raise Unmappable(f"{layout}_message_content_not_text")
        out.append({"role": ROLES[str(role).lower()], "content": content})
    return out


def _answer(value: Any, prompt_turns: list[Message], column: str, layout: str) -> str:
    if value is None:
        raise Unmappable("missing_chosen_or_rejected")
    if isinstance(value, str):
        return value
    turns = _messages(value, layout, column)
    if turns[: len(prompt_turns)] == prompt_turns:
        turns = turns[len(prompt_turns):]
    if not turns or turns[-1]["role"] != "assistant":
        raise Unmappable(f"{column}_does_not_end_with_assistant")
    if len(turns) > 1:
        raise Unmappable(f"{column}_has_several_turns_after_the_prompt")
    return turns[0]["content"]


def _chat(turns: list[Message], chosen: Any, rejected: Any, layout: str,
          system: Any = None) -> Mapped:
    if not turns or turns[-1]["role"] != "user":
        raise Unmappable(f"{layout}_prompt_does_not_end_with_user_turn")
    history = turns[:-1]
    if isinstance(system, str) and system.strip():
        history = [{"role": "system", "content": system}, *history]
    return (turns[-1]["content"], history, _answer(chosen, turns, "chosen", layout),
            _answer(rejected, turns, "rejected", layout))


def _sharegpt(row: dict[str, Any], rng: random.Random) -> Mapped:
    turns = _messages(row.get("conversations"), "sharegpt", "conversations")
    return _chat(turns, row.get("chosen"), row.get("rejected"), "sharegpt", row.get("system"))


def _openai(row: dict[str, Any], rng: random.Random) -> Mapped:
    if "preferred_output" in row:  # OpenAI's preference fine-tuning file
        request = row.get("input")
        messages = request.get("messages") if isinstance(request, dict) else None
        turns = _messages(messages, "openai", "input_messages")
        return _chat(turns, row.get("preferred_output"), row.get("non_preferred_output"), "openai")
    turns = _messages(row.get("messages"), "openai", "messages")
    return _chat(turns, row.get("chosen"), row.get("rejected"), "openai")


def _shared_turns(chosen: Any, rejected: Any) -> list[Message]:
    """TRL's implicit prompt: the turns both conversations open with, up to each one's answer."""
    c, r = _messages(chosen, "trl", "chosen"), _messages(rejected, "trl", "rejected")
    n = 0
    while n < min(len(c), len(r)) - 1 and c[n] == r[n]:
        n += 1
    if n == 0:
        raise Unmappable("no_prompt_column_and_no_shared_prompt_turns")
    return c[:n]


def _trl(row: dict[str, Any], rng: random.Random) -> Mapped:
    chosen, rejected, prompt = row.get("chosen"), row.get("rejected"), row.get("prompt")
    if chosen is None or rejected is None:
        raise Unmappable("missing_chosen_or_rejected")
    if isinstance(prompt, str):
        turns = [{"role": "user", "content": prompt}]
    elif prompt is not None:
        turns = _messages(prompt, "trl", "prompt")
    elif not isinstance(chosen, str):
        turns = _shared_turns(chosen, rejected)
    else:
        raise Unmappable("missing_prompt")
    return _chat(turns, chosen, rejected, "trl")


# --- rated completions: UltraFeedback and distilabel -----------------------------------------

def _instruction(row: dict[str, Any]) -> str:
    instruction = row.get("instruction")
    if not isinstance(instruction, str):
        raise Unmappable("missing_prompt")
    return instruction


def _ultrafeedback_raw(row: dict[str, Any], rng: random.Random) -> Mapped:
    completions = row.get("completions")
    if not isinstance(completions, list) or not all(isinstance(c, dict) for c in completions):
        raise Unmappable("completions_not_a_list")
    responses = [c.get("response") for c in completions]
    scores = [c.get("overall_score") if isinstance(r, str) else None
              for c, r in zip(completions, responses)]
    best, pick = binarize(scores, rng, rejected_from="others")
    return _instruction(row), None, responses[best], responses[pick]


def _distilabel(row: dict[str, Any], rng: random.Random) -> Mapped:
    generations, ratings = row.get("generations"), row.get("ratings")
    if not isinstance(generations, list):
        raise Unmappable("generations_not_a_list")
    if ratings is None:
        raise Unmappable("missing_ratings")
    if not isinstance(ratings, list) or len(ratings) != len(generations):
        raise Unmappable("ratings_do_not_match_generations")
    scores = [r if isinstance(g, str) else None for g, r in zip(generations, ratings)]
    best, pick = binarize(scores, rng, rejected_from="lower")
    system = row.get("system_prompt")
    history = None
    if isinstance(system, str) and system.strip():  # FormatTextGenerationDPO's rule
        history = [{"role": "system", "content": system}]
    return _instruction(row), history, generations[best], generations[pick]


_MAPPERS = {"hh": _hh, "sharegpt": _sharegpt, "openai": _openai, "trl": _trl,
            "ultrafeedback_raw": _ultrafeedback_raw, "distilabel": _distilabel}
