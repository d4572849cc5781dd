"""Dataset in: a ref -> validated records -> TRL's conversational preference format."""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset
from selfpref.data.schema import validate
from selfpref.data.store import BuildRecord, NotSelfprefDataset
from selfpref.models.generation import chat_ids
from selfpref.models.scoring import answer_token_ids

# What each method needs beyond the contract, and the build command that makes it.
REQUIRED_BY_METHOD = {
    "sso": (("original", "principle_chosen", "principle_rejected"),
            "selfpref build sso --output OUT"),
}


def load_preference_data(ref: str) -> tuple[pl.DataFrame, BuildRecord, str]:
    """(rows, record, id) for a folder, Hub id or id@version; data selfpref did not make is mapped."""
    try:
        df, record = read_dataset(ref)
    except NotSelfprefDataset:
        from selfpref.data.importer import import_rows, read_source

        df, _ = import_rows(read_source(ref))
        record = BuildRecord(name=str(ref).rstrip("/").split("/")[-1], method="import")
    return validate(df), record, str(ref)


def require_columns(df: pl.DataFrame, method: str) -> None:
    columns, command = REQUIRED_BY_METHOD.get(method, ((), ""))
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SelfprefError(f"`selfpref train {method}` needs column '{missing[0]}' "
                            f"(and {', '.join(columns)}); make such a dataset with `{command}`")
    for col in columns:
        nulls = df[col].is_null().arg_true()
        if len(nulls):
            raise SelfprefError(f"column '{col}', row {int(nulls[0])}: is null; "
                                f"`selfpref train {method}` needs it on every row")


def _prompt_messages(row: dict[str, Any], system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [{"role": m["role"], "content": m["content"]} for m in (row.get("history") or [])]
    msgs.append({"role": "user", "content": row["prompt"]})
    return msgs


def to_conversational(df: pl.DataFrame, method: str = "dpo") -> list[dict[str, Any]]:
    """TRL conversational rows; SSO rows also carry the x+/x- prompts and y° (``original``)."""
    out = []
    for row in df.iter_rows(named=True):
        example = {"prompt": _prompt_messages(row),
                   "chosen": [{"role": "assistant", "content": row["chosen"]}],
                   "rejected": [{"role": "assistant", "content": row["rejected"]}]}
        if method == "sso":
            example["pos_prompt"] = _prompt_messages(row, row["principle_chosen"])
            example["neg_prompt"] = _prompt_messages(row, row["principle_rejected"])
            example["original"] = [{"role": "assistant", "content": row["original"]}]
        out.append(example)
    return out


# --- tokens (as TRL's DPOTrainer tokenizes conversations)

def completion_ids(tokenizer: Any, prompt: list[dict[str, str]], answer: list[dict[str, str]]) -> list[int]:
    """The answer's tokens as the template renders its turn after ``prompt`` (end-of-turn included).

    Like TRL's DPOTrainer: the completion starts where prompt-with-generation-prompt and
    prompt+answer stop sharing tokens, and nothing is appended (the template ends the turn).
    """
    full, n_prompt = answer_token_ids(tokenizer, prompt, answer[-1]["content"])
    return full[n_prompt:]


# --- rows no trainer can learn from, dropped with a counted reason before training

NO_ANSWER = "no_answer_tokens_after_truncation"
TOO_LONG = "longer_than_max_length"


def drop_untrainable(examples: list[dict[str, Any]], tokenizer: Any, method: str, config: Any
                     ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(rows kept, {reason: rows dropped}) for ``to_conversational`` rows and the method's config.

    A prompt that fills ``max_length`` (for SSO also x+ or x-) leaves its answers no tokens after
    truncation: a log-prob of exactly 0 (SSO's average, SimPO's) or an empty completion. Such rows
    are dropped here, counted, instead of training on zeros; TRL's DPOTrainer would drop them
    without a count. A reward model drops pairs longer than ``max_length`` (TRL's RewardTrainer
    filters them silently), counted too. DPO-family runs with ``truncation_mode: keep_end`` keep
    the end of every sequence, so nothing is dropped there.
    """
    max_length = getattr(config, "max_length", None)
    if max_length is None:
        return examples, {}
    if method in ("dpo", "ipo", "selfee", "simpo", "orpo") and getattr(config, "truncation_mode", "keep_start") == "keep_end":
        return examples, {}
    contexts = ("prompt", "pos_prompt", "neg_prompt") if method == "sso" else ("prompt",)
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for ex in examples:
        if method == "rm":
            if any(len(chat_ids(tokenizer, ex["prompt"] + ex[side])) > max_length
                   for side in ("chosen", "rejected")):
                dropped[TOO_LONG] += 1
                continue
        elif any(len(chat_ids(tokenizer, ex[c], generation_prompt=True)) >= max_length for c in contexts):
            dropped[NO_ANSWER] += 1
            continue
        kept.append(ex)
    return kept, dict(dropped)
