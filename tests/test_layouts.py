"""Layouts people have (HH, ShareGPT, OpenAI, TRL, UltraFeedback raw, distilabel) and prompt sets."""

import ast
import json
import random
from pathlib import Path

import polars as pl
import pytest

from selfpref import SelfprefError
from selfpref.data.layouts import (
    Unmappable,
    binarize,
    detect_layout,
    map_layout_row,
    map_layout_rows,
    prompt_texts,
)

RNG = random.Random(0)


def _jsonl(tmp_path: Path, rows: list[dict]) -> pl.DataFrame:
    """The rows as `selfpref import` reads them: written as JSONL, read back with polars."""
    path = tmp_path / "src.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return pl.read_ndjson(path)


def _reason(row: dict, layout: str, rng: random.Random = RNG) -> str:
    with pytest.raises(Unmappable) as caught:
        map_layout_row(row, layout, rng)
    return str(caught.value)


# --- Anthropic HH ----------------------------------------------------------------------------

HH_2TURN = (
    "\n\nHuman: What are some good indoor plants for a beginner?"
    "\n\nAssistant: Pothos, snake plants and ZZ plants are hard to kill."
    "\n\nHuman: Which of those needs the least light?  "
    "\n\nAssistant:")
HH_2TURN_CHOSEN = HH_2TURN + (" The ZZ plant. It grows in a dim corner.\n\n"
                              "Water it every two to three weeks.")
# The same context with stray whitespace, as real hh-rlhf rows have.
HH_2TURN_REJECTED = HH_2TURN.replace("least light?  ", "least light? ") + " Cacti. "
HH_1TURN = "\n\nHuman: How do I boil an egg?\n\nAssistant:"


def test_hh_two_turns_prompt_history_and_answers():
    row = {"chosen": HH_2TURN_CHOSEN, "rejected": HH_2TURN_REJECTED}
    prompt, history, chosen, rejected = map_layout_row(row, "hh", RNG)
    assert prompt == "Which of those needs the least light?"
    assert history == [
        {"role": "user", "content": "What are some good indoor plants for a beginner?"},
        {"role": "assistant", "content": "Pothos, snake plants and ZZ plants are hard to kill."}]
    # A blank line inside an answer is not a turn boundary.
    assert chosen == "The ZZ plant. It grows in a dim corner.\n\nWater it every two to three weeks."
    assert rejected == "Cacti."


def test_hh_one_turn_has_no_history():
    row = {"chosen": HH_1TURN + " Put it in boiling water for nine minutes.",
           "rejected": HH_1TURN + " I don't know."}
    assert map_layout_row(row, "hh", RNG) == (
        "How do I boil an egg?", None, "Put it in boiling water for nine minutes.", "I don't know.")


def test_hh_transcript_without_leading_newlines():
    row = {"chosen": "Human: Hi\n\nAssistant: Hello!",
           "rejected": "Human: Hi\n\nAssistant: Go away."}
    assert map_layout_row(row, "hh", RNG) == ("Hi", None, "Hello!", "Go away.")


def test_hh_rows_counted_per_reason():
    rows = [
        {"chosen": HH_2TURN_CHOSEN, "rejected": HH_2TURN_REJECTED},
        {"chosen": HH_1TURN + " Nine minutes.", "rejected": HH_1TURN + " No idea."},
        # the transcripts differ before the last turn: counted, not guessed
        {"chosen": HH_2TURN_CHOSEN,
         "rejected": HH_2TURN.replace("Pothos, snake", "Cacti, snake") + " Cacti."},
        # an empty final assistant turn
        {"chosen": HH_1TURN + " Nine minutes.", "rejected": HH_1TURN},
        # ends with a human turn
        {"chosen": HH_1TURN + " Nine minutes.\n\nHuman: Thanks",
         "rejected": HH_1TURN + " Ten.\n\nHuman: Thanks"},
        # two human turns in a row
        {"chosen": "\n\nHuman: Hi\n\nHuman: Hello?\n\nAssistant: Yes?",
         "rejected": "\n\nHuman: Hi\n\nHuman: Hello?\n\nAssistant: No."},
        # text before the first turn
        {"chosen": "Transcript 12" + HH_1TURN + " A.",
         "rejected": "Transcript 12" + HH_1TURN + " B."},
        # no transcript at all
        {"chosen": "plain text", "rejected": "other text"},
    ]
    frame = pl.DataFrame(rows)
    assert detect_layout(frame) == "hh"
    mapped, dropped = map_layout_rows(frame, "hh", RNG)
    assert [m[0] for m in mapped] == ["Which of those needs the least light?",
                                      "How do I boil an egg?"]
    assert dropped == {"hh_transcripts_differ_before_last_turn": 1, "empty_answer": 1,
                       "hh_no_final_assistant_turn": 1, "hh_turns_do_not_alternate": 1,
                       "hh_text_before_first_turn": 1, "hh_no_human_turn": 1}


# --- ShareGPT --------------------------------------------------------------------------------

SHAREGPT_ROWS = [
    {"conversations": [
        {"from": "human", "value": "I want to learn Python."},
        {"from": "gpt", "value": "Great choice! What do you already know?"},
        {"from": "human", "value": "Some Excel. Where should I start?"}],
     "chosen": {"from": "gpt", "value": "Start with variables, lists and loops, then pandas."},
     "rejected": {"from": "gpt", "value": "Read the CPython source code."},
     "system": "You are a patient tutor."},
    {"conversations": [{"from": "user", "value": "Name a prime number."}],
     "chosen": {"from": "chatgpt", "value": "7"},
     "rejected": {"from": "gpt", "value": "9"},
     "system": None},
    {"conversations": [{"from": "human", "value": "Weather?"},
                       {"from": "observation", "value": "{}"},
                       {"from": "human", "value": "So?"}],
     "chosen": {"from": "gpt", "value": "Sunny."}, "rejected": {"from": "gpt", "value": "Rain."},
     "system": None},
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
     "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"},
     "system": None},
]


def test_sharegpt_llamafactory_preference_layout(tmp_path):
    frame = _jsonl(tmp_path, SHAREGPT_ROWS)
    assert detect_layout(frame) == "sharegpt"
    mapped, dropped = map_layout_rows(frame, "sharegpt", RNG)
    assert mapped == [
        ("Some Excel. Where should I start?",
         [{"role": "system", "content": "You are a patient tutor."},
          {"role": "user", "content": "I want to learn Python."},
          {"role": "assistant", "content": "Great choice! What do you already know?"}],
         "Start with variables, lists and loops, then pandas.", "Read the CPython source code."),
        ("Name a prime number.", None, "7", "9"),
    ]
    assert dropped == {"sharegpt_unknown_role": 1, "sharegpt_prompt_does_not_end_with_user_turn": 1}


def test_sharegpt_answers_as_full_conversations():
    prompt = [{"from": "human", "value": "2+2?"}]
    row = {"conversations": prompt, "chosen": [*prompt, {"from": "gpt", "value": "4"}],
           "rejected": [{"from": "bard", "value": "5"}]}
    assert map_layout_row(row, "sharegpt", RNG) == ("2+2?", None, "4", "5")
    row["rejected"] = [*prompt, {"from": "gpt", "value": "5"}, {"from": "human", "value": "sure?"}]
    assert _reason(row, "sharegpt") == "rejected_does_not_end_with_assistant"


# --- OpenAI ----------------------------------------------------------------------------------

def test_openai_messages_with_chosen_rejected(tmp_path):
    rows = [
        {"messages": [{"role": "system", "content": "Answer in one sentence."},
                      {"role": "user", "content": "What is water's boiling point at sea level?"}],
         "chosen": [{"role": "assistant", "content": "100 degrees Celsius."}],
         "rejected": [{"role": "assistant", "content": "It depends on the pot."}]},
        {"messages": [{"role": "user", "content": "Say hi"}],
         "chosen": [{"role": "assistant", "content": "Hi!"}],
         "rejected": [{"role": "tool", "content": "{}"}]},
    ]
    frame = _jsonl(tmp_path, rows)
    assert detect_layout(frame) == "openai"
    mapped, dropped = map_layout_rows(frame, "openai", RNG)
    assert mapped == [("What is water's boiling point at sea level?",
                       [{"role": "system", "content": "Answer in one sentence."}],
                       "100 degrees Celsius.", "It depends on the pot.")]
    assert dropped == {"openai_unknown_role": 1}


def test_openai_preference_fine_tuning_file(tmp_path):
    rows = [{"input": {"messages": [{"role": "developer", "content": "Be brief."},
                                    {"role": "user", "content": "Is it cold in Oslo in January?"}],
                       "tools": [], "parallel_tool_calls": True},
             "preferred_output": [{"role": "assistant", "content": "Yes, usually below freezing."}],
             "non_preferred_output": [{"role": "assistant", "content": "Oslo is in Norway."}]}]
    frame = _jsonl(tmp_path, rows)
    assert detect_layout(frame) == "openai"
    (row,) = frame.iter_rows(named=True)
    assert map_layout_row(row, "openai", RNG) == (
        "Is it cold in Oslo in January?", [{"role": "system", "content": "Be brief."}],
        "Yes, usually below freezing.", "Oslo is in Norway.")


# --- UltraFeedback raw (HuggingFaceH4/ultrafeedback_binarized's rule) -------------------------

def _completion(model: str, response: str, overall: float | None) -> dict:
    rating = {"Rating": "4", "Rationale": "Accurate and clear."}
    return {"model": model, "principle": "helpfulness",
            "custom_system_prompt": "As an AI assistant, be accurate and engaging.",
            "response": response, "overall_score": overall, "fine-grained_score": 4.0,
            "critique": "Clear and correct.",
            "annotations": {"helpfulness": rating, "honesty": rating,
                            "instruction_following": rating, "truthfulness": rating}}


def _uf_row(scores: list[float | None]) -> dict:
    models = ["gpt-4", "llama-2-13b-chat", "falcon-40b-instruct", "alpaca-7b"]
    return {"source": "evol_instruct", "instruction": "Explain photosynthesis to a child.",
            "models": models,
            "completions": [_completion(m, f"answer {i} by {m}", s)
                            for i, (m, s) in enumerate(zip(models, scores))]}


def test_ultrafeedback_raw_best_vs_one_random_other():
    row = _uf_row([7.5, 9.0, 4.0, 6.0])
    assert detect_layout(pl.DataFrame([row])) == "ultrafeedback_raw"
    seen = set()
    for seed in range(40):
        prompt, history, chosen, rejected = map_layout_row(row, "ultrafeedback_raw",
                                                           random.Random(seed))
        assert (prompt, history, chosen) == ("Explain photosynthesis to a child.", None,
                                             "answer 1 by llama-2-13b-chat")
        # one rng.choice among the other rated completions, in their order
        other = random.Random(seed).choice([0, 2, 3])
        assert rejected == row["completions"][other]["response"]
        seen.add(other)
    assert seen == {0, 2, 3}


def test_ultrafeedback_raw_tie_with_the_pick_is_counted():
    # two completions share the top: chosen is the first; a pick of the other one is a tie
    row = _uf_row([8.0, 8.0, 5.0, 3.0])
    frame = pl.DataFrame([row] * 300)
    mapped, dropped = map_layout_rows(frame, "ultrafeedback_raw", random.Random(7))
    draws = random.Random(7)
    picks = [draws.choice([1, 2, 3]) for _ in range(300)]
    assert dropped == {"ratings_tie": picks.count(1)}
    assert 60 < picks.count(1) < 140  # about a third
    assert {m[2] for m in mapped} == {"answer 0 by gpt-4"}
    assert {m[3] for m in mapped} == {"answer 2 by falcon-40b-instruct", "answer 3 by alpaca-7b"}


def test_ultrafeedback_raw_unmappable_reasons():
    assert _reason(_uf_row([7.0, 7.0, 7.0, 7.0]), "ultrafeedback_raw") == "ratings_tie"
    assert _reason(_uf_row([6.0, None, None, None]), "ultrafeedback_raw") == \
        "fewer_than_two_rated_completions"
    assert _reason(_uf_row([None] * 4), "ultrafeedback_raw") == "missing_ratings"
    assert _reason({"instruction": "x", "completions": []}, "ultrafeedback_raw") == \
        "fewer_than_two_rated_completions"
    row = _uf_row([9.0, 3.0, 2.0, 1.0])
    row["completions"][0]["response"] = None  # an answer that is missing is not rated
    assert map_layout_row(row, "ultrafeedback_raw", RNG)[2] == "answer 1 by llama-2-13b-chat"


# --- distilabel ------------------------------------------------------------------------------

def test_distilabel_best_vs_a_random_lower_rating():
    rows = [
        {"instruction": "Give me a synonym for happy.", "system_prompt": "You are a thesaurus.",
         "generations": ["Joyful.", "Glad.", "Sad.", "Table."], "ratings": [5, 5, 2, 1],
         "rationales": ["ok", "ok", "wrong", "wrong"], "model_name": "judge"},
        {"instruction": "Capital of France?", "system_prompt": "",
         "generations": ["Paris.", "Lyon.", "Paris, France."], "ratings": [4, 2, None],
         "rationales": ["ok", "wrong", None], "model_name": "judge"},
        {"instruction": "Count to two.", "system_prompt": None, "generations": ["1 2", "one two"],
         "ratings": [3, 3], "rationales": ["ok", "ok"], "model_name": "judge"},
        {"instruction": "Hi", "system_prompt": None, "generations": ["Hello", "Hey"],
         "ratings": [None, None], "rationales": [None, None], "model_name": "judge"},
        {"instruction": "Hi", "system_prompt": None, "generations": ["Hello", "Hey"],
         "ratings": [4], "rationales": ["ok"], "model_name": "judge"},
    ]
    frame = pl.DataFrame(rows)
    assert detect_layout(frame) == "distilabel"
    rejected_seen = set()
    for seed in range(20):
        mapped, dropped = map_layout_rows(frame, "distilabel", random.Random(seed))
        assert dropped == {"ratings_tie": 1, "missing_ratings": 1,
                           "ratings_do_not_match_generations": 1}
        first, second = mapped
        assert first[:3] == ("Give me a synonym for happy.",
                             [{"role": "system", "content": "You are a thesaurus."}], "Joyful.")
        assert first[3] in ("Sad.", "Table.")  # never the other top-rated answer
        rejected_seen.add(first[3])
        assert second == ("Capital of France?", None, "Paris.", "Lyon.")
    assert rejected_seen == {"Sad.", "Table."}


def test_binarize_rules_directly():
    assert binarize([1, 9, 9, 3], random.Random(0), rejected_from="lower")[0] == 1
    with pytest.raises(Unmappable, match="ratings_tie"):
        binarize([2.0, 2.0], random.Random(0), rejected_from="lower")
    with pytest.raises(Unmappable, match="ratings_tie"):
        binarize([2.0, 2.0], random.Random(0))
    with pytest.raises(Unmappable, match="missing_ratings"):
        binarize([float("nan"), None], random.Random(0))
    with pytest.raises(ValueError):
        binarize([1, 2], random.Random(0), rejected_from="worst")


# --- detection and common checks -------------------------------------------------------------

def test_detect_layout_prefers_explicit_pairs_and_explains_failures():
    u = {"role": "user", "content": "q"}
    # UltraFeedback-binarized: prompt + chosen/rejected (+ messages): the importer's own layout
    assert detect_layout(pl.DataFrame({
        "prompt": ["q"], "chosen": [[u, {"role": "assistant", "content": "a"}]],
        "rejected": [[u, {"role": "assistant", "content": "b"}]],
        "messages": [[u, {"role": "assistant", "content": "a"}]]})) == "trl"
    assert detect_layout(pl.DataFrame({"chosen": ["good"], "rejected": ["bad"]})) == "trl"
    assert detect_layout(pl.DataFrame({"chosen": [None, HH_1TURN + " a"],
                                       "rejected": [None, HH_1TURN + " b"]})) == "hh"
    with pytest.raises(SelfprefError,
                       match=r"no column 'chosen', and the columns \(text\) match no other"):
        detect_layout(pl.DataFrame({"text": ["a"]}))
    with pytest.raises(SelfprefError,
                       match="'conversations' without chosen/rejected is a chat set"):
        detect_layout(pl.DataFrame({"conversations": [[{"from": "human", "value": "hi"}]]}))


def test_common_checks_and_unknown_layout():
    row = {"conversations": [{"from": "human", "value": "q"}], "chosen": "same", "rejected": "same"}
    assert _reason(row, "sharegpt") == "chosen_equals_rejected"
    row = {"conversations": [{"from": "human", "value": "  "}], "chosen": "a", "rejected": "b"}
    assert _reason(row, "sharegpt") == "empty_prompt"
    row = {"conversations": [{"from": "human", "value": "q"}], "chosen": "a", "rejected": None}
    assert _reason(row, "sharegpt") == "missing_chosen_or_rejected"
    with pytest.raises(ValueError, match="layout 'csv' is not mapped here"):
        map_layout_row({"prompt": "p", "chosen": "a", "rejected": "b"}, "csv", RNG)


# --- TRL: an entry of the table like the others ----------------------------------------------

def test_trl_layout_normalises_roles_like_the_other_chat_layouts(tmp_path):
    """TRL conversational rows whose turns say human/gpt/developer or from/value (exported from
    ShareGPT tooling) map as ShareGPT's do; before, the trl mapper kept roles verbatim and
    dropped a 'human' last turn as not a user turn."""
    frame = _jsonl(tmp_path, [
        {"prompt": [{"role": "developer", "content": "Answer briefly."},
                    {"role": "human", "content": "Capital of France?"}],
         "chosen": [{"role": "gpt", "content": "Paris."}],
         "rejected": [{"role": "assistant", "content": "Lyon."}]},
        {"prompt": [{"from": "human", "value": "2+2?"}],
         "chosen": [{"from": "gpt", "value": "4"}], "rejected": [{"from": "gpt", "value": "5"}]},
        {"prompt": [{"role": "narrator", "content": "Once"}],
         "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]},
    ])
    assert detect_layout(frame) == "trl"
    mapped, dropped = map_layout_rows(frame, "trl", RNG)
    assert mapped == [("Capital of France?", [{"role": "system", "content": "Answer briefly."}],
                       "Paris.", "Lyon."),
                      ("2+2?", None, "4", "5")]
    assert dropped == {"trl_unknown_role": 1}
    u = {"role": "user", "content": "q"}  # chosen/rejected conversations, no prompt column
    assert map_layout_row({"chosen": [u, {"role": "assistant", "content": "a"}],
                           "rejected": [u, {"role": "assistant", "content": "b"}]}, "trl", RNG) == \
        ("q", None, "a", "b")
    assert _reason({"chosen": "a", "rejected": "b"}, "trl") == "missing_prompt"


# --- prompt sets -----------------------------------------------------------------------------

MT_BENCH = [
    {"question_id": 81, "category": "writing",
     "turns": ["Write a short travel blog post about a weekend in Lisbon.",
               "Now rewrite it so that every sentence starts with the letter A."]},
    {"question_id": 111, "category": "math",
     "turns": ["A triangle has vertices (0, 0), (4, 0) and (0, 3). What is its area?",
               "What is the radius of its circumscribed circle?"],
     "reference": ["6", "2.5"]},
    {"question_id": 999, "category": "broken", "turns": []},
]


def test_mt_bench_questions_give_their_first_turn(tmp_path):
    frame = _jsonl(tmp_path, MT_BENCH)
    texts, skipped = prompt_texts(frame)
    assert texts == ["Write a short travel blog post about a weekend in Lisbon.",
                     "A triangle has vertices (0, 0), (4, 0) and (0, 3). What is its area?"]
    assert skipped == {"empty": 1}


def test_arena_hard_turns_of_content_give_the_first():
    frame = pl.DataFrame({"question_id": ["a"], "turns": [[{"content": "Write a haiku."}]]})
    assert prompt_texts(frame) == (["Write a haiku."], {})


def test_openai_messages_prompt_set_gives_the_last_user_turn(tmp_path):
    rows = [
        {"messages": [{"role": "system", "content": "You are terse."},
                      {"role": "user", "content": "Define entropy."}]},
        {"messages": [{"role": "user", "content": "Translate 'cat' to French."},
                      {"role": "assistant", "content": "chat"},
                      {"role": "user", "content": "And to German?"}]},
        {"messages": [{"role": "system", "content": "Only a system turn."}]},
        {"messages": [{"role": "user", "content": "   "}]},
    ]
    texts, skipped = prompt_texts(_jsonl(tmp_path, rows))
    assert texts == ["Define entropy.", "And to German?"]
    assert skipped == {"no_user_turn": 1, "empty": 1}


def test_sharegpt_conversations_prompt_set():
    frame = pl.DataFrame({"conversations": [[{"from": "human", "value": "Hi there"},
                                              {"from": "gpt", "value": "Hello"}]]})
    assert prompt_texts(frame) == (["Hi there"], {})


def test_prompt_column_choice_and_errors():
    frame = pl.DataFrame({"question": ["Why is the sea salty?", None, ""],
                          "instruction": ["x", "y", "z"], "prompt": ["p1", "p2", "p3"]})
    assert prompt_texts(frame) == (["p1", "p2", "p3"], {})  # `prompt` comes first
    assert prompt_texts(frame, "question") == (["Why is the sea salty?"], {"empty": 2})
    with pytest.raises(SelfprefError, match=r"no 'query' column \(columns: question, instruction, "
                                            r"prompt\)"):
        prompt_texts(frame, "query")
    with pytest.raises(SelfprefError, match="looked for prompt, instruction, turns, messages, "
                                            "conversations.*--prompt-column"):
        prompt_texts(pl.DataFrame({"question_id": [1], "text": ["q"]}))
    with pytest.raises(SelfprefError, match=r"column 'question' has no prompt text \(empty: 2\)"):
        prompt_texts(frame[1:], "question")


def test_layouts_is_a_pure_mapping_layer():
    """layouts.py imports only the stdlib, polars and SelfprefError (not importer or schema)."""
    from selfpref.data import layouts

    tree = ast.parse(Path(layouts.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported <= {"__future__", "collections", "math", "random", "re", "typing", "polars",
                        "selfpref"}
