"""parse_verdict on judge outputs as Llama, Gemma, Qwen and Mistral judges write them.

Cases marked "old misreading" are the ones the issue quotes: the previous parser (a tie pattern
matching anywhere in the prose) got each of them wrong.
"""

import pytest

from selfpref.judges.verdict import OPTIONS, TIE, parse_verdict

CASES = [
    # --- the misreadings quoted in the issue (old parser: tie, tie, None, None) ---
    ("A. Response B is neither accurate nor relevant.", "A"),
    ("I choose A because B is equally long", "A"),
    ("Response A is better than Response B.", "A"),
    ("**A**", "A"),
    # --- bare labels, as a small model asked for "a single letter" answers ---
    ("A", "A"),
    ("B", "B"),
    ("B.", "B"),
    ("(A)", "A"),
    ("[[B]]", "B"),
    ("1", "A"),
    ("2.", "B"),
    ("Answer 1", "A"),
    ("B<|eot_id|>", "B"),
    ("**B**\n\nResponse B covers every part of the question, while Response A skips costs.", "B"),
    ("A - it answers the question directly and Response B does not.", "A"),
    # --- Llama 3 style: reasons first, verdict at the end ---
    (("Response A provides a clear, step-by-step explanation, but it misses the safety warning. "
     "Response B includes the warning and is equally clear.\n\nTherefore, the answer is B."), "B"),
    (("**Evaluation:**\n\n* **Relevance:** Both responses address the question.\n"
     "* **Accuracy:** Response A states an outdated figure.\n\n**Final Verdict:** Response B"),
     "B"),
    (("Response A is better in terms of style, but Response B is better in accuracy. "
     "Overall, Response B is better."), "B"),
    (("I would rank Response 2 higher than Response 1 because it is more complete.\n\n"
     "Ranking: 2 > 1"), "B"),
    ("Both responses are relevant, but the first one contains a factual error.\n\nB", "B"),
    # --- Gemma style: markdown, verdict first ---
    (("**Response B is better.**\n\nHere's why:\n\n* **Accuracy:** Response B correctly names "
     "the treaty, while Response A confuses the dates.\n* **Clarity:** Both are easy to read."),
     "B"),
    (("**Verdict:** Response A\n\n**Explanation:** Response A is more complete and directly "
     "addresses the user's concern. Response B is vague."), "A"),
    (("## Comparison\n\n**Response A:**\n- Accurate\n- Concise\n\n**Response B:**\n- Verbose\n"
     "- Contains an error\n\n## Conclusion\n\nResponse A is the better response."), "A"),
    ("Final answer: **A**", "A"),
    # --- Qwen style ---
    (("After evaluating both responses based on relevance, accuracy, completeness, and clarity:"
     "\n\n- **Response A** gives a general overview.\n- **Response B** gives concrete steps."
     "\n\n**Conclusion:** The better response is **B**."), "B"),
    ("The final answer is $\\boxed{A}$.", "A"),
    (("Response 1 is more detailed, but Response 2 is more accurate and directly answers the "
     "question. Thus, Response 2 is the better one."), "B"),
    # --- Mistral style ---
    (("Based on the given criteria, Response A is more relevant, accurate, complete, and clear "
     "than Response B. Therefore, I would choose Response A."), "A"),
    ("After comparing both, I think Response A is more accurate.", "A"),
    ("Response 2 is better because it is more complete.", "B"),
    ("In my opinion, Response B is worse than Response A: it ignores half the question.", "A"),
    # --- other judge formats: AlpacaEval, MT-Bench, Arena-Hard, SAO Table 13 ---
    ("Output (b)", "B"),
    ("Output (a) is more helpful and accurate than Output (b).", "A"),
    ("Assistant A's answer is more helpful because it explains the cause. [[A]]", "A"),
    ("My final verdict is Assistant B is slightly better: [[B>A]]", "B"),
    ("2 > 1", "B"),
    ("Ranking\t1 > 2", "A"),
    ("The better response is B.", "B"),
    # --- real ties ---
    ("Tie", TIE),
    ("[[C]]", TIE),
    ("It's a tie: both are equally good.", TIE),
    ("Both responses are equally good: each answers the question correctly and clearly.", TIE),
    ("Verdict: tie", TIE),
    ("Neither response is better than the other; they are essentially equivalent.", TIE),
    ("My final verdict is tie: [[A=B]].", TIE),
    ("Ranking: 1 = 2", TIE),
    # --- refusals, garbage and contradictions ---
    ("I cannot determine which response is better", None),
    ("I'm sorry, but I can't compare these responses without more context.", None),
    ("As an AI, I can't decide. Response A is more detailed and Response B is shorter.", None),
    ("I cannot tell whether Response A is better than Response B.", None),
    ("The weather is nice today.", None),
    ("asdkjh qwe zzz", None),
    ("Response A is good and Response B is good too", None),
    ("[[A]] if assistant A is better, [[B]] if assistant B is better.", None),
    ("Response A is better. Response B is better.", None),
    ("", None),
    ("   \n ", None),
    (None, None),
]


@pytest.mark.parametrize("raw,expected", CASES)
def test_parse_verdict(raw, expected):
    assert parse_verdict(raw) == expected


def test_table_covers_enough_cases():
    assert len(CASES) >= 30


def test_every_verdict_is_an_option_a_tie_or_none():
    assert OPTIONS == ("A", "B")
    assert {parse_verdict(raw) for raw, _ in CASES} <= {*OPTIONS, TIE, None}


def test_sao_judge_outputs_in_the_pipeline_test():
    # The scripted self-judge outputs of tests/test_pipelines.py, as sao.decide reads them.
    assert [parse_verdict(t) for t in ["A", "Response A is better.", "Tie", "garbage", "B",
                                       "nonsense"]] == ["A", "A", TIE, None, "B", None]
