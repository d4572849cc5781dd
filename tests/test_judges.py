"""The pairwise judge layer: both orders, each kind, aspects, backends (tiny model, fake endpoint)."""

from __future__ import annotations

import json
import re

import pytest

from selfpref import SelfprefError
from selfpref.judges import (
    ASPECTS,
    Judgment,
    LengthJudge,
    LogitsJudge,
    PairItem,
    RandomJudge,
    TextJudge,
    judge_chat,
    make_judge,
)
from selfpref.judges.pairwise import decide, forced_choice
from tests.openai_server import SECRET, serve, work

ITEMS = [("Q1?", "a good answer", "bad"), ("Q2?", "meh", "a good, long answer"),
         ("Q3?", "good", "good too")]


class ScriptedScorer:
    """P(label A) = 0.5 + 0.3 if the first-shown answer says 'good' - 0.3 if the second does,
    plus a position bias toward A; records the chats it saw."""

    def __init__(self, bias: float = 0.1) -> None:
        self.bias, self.seen = bias, []

    def option_probabilities(self, chats, options):
        assert tuple(options) == ("A", "B")
        out = []
        for chat in chats:
            text = chat[-1]["content"]
            self.seen.append(text)
            first = re.search(r"\[Response A\]\n(.*?)\n\n\[Response B\]", text, re.S).group(1)
            second = re.search(r"\[Response B\]\n(.*?)\n\n", text, re.S).group(1)
            p = 0.5 + self.bias + 0.3 * ("good" in first) - 0.3 * ("good" in second)
            out.append([p, 1 - p])
        return out


class ScriptedWriter:
    """``generate`` returns the next scripted verdict per chat."""

    def __init__(self, texts):
        self.texts, self.calls = list(texts), []

    def generate(self, chats, *, num_generations=1, max_new_tokens=128, temperature=0.7, top_p=1.0,
                 seed=None):
        self.calls.append(dict(n=len(chats), max_new_tokens=max_new_tokens, temperature=temperature))
        return [[self.texts.pop(0)] for _ in chats]


def test_judgment_both_orders_by_hand():
    j = Judgment(0.9, 0.3, ("x", "y"))  # A wins when first, loses when second: position bias
    assert j.score == pytest.approx(0.6) and not j.consistent
    assert Judgment(0.7, 0.6, ("", "")).consistent and Judgment(0.2, 0.4, ("", "")).consistent
    assert not Judgment(0.5, 0.5, ("", "")).consistent  # a tie picks no side
    s = j.swapped()
    assert (s.p_a_first, s.p_a_second, s.raw) == (pytest.approx(0.7), pytest.approx(0.1), ("y", "x"))
    assert s.score == pytest.approx(1 - j.score)


def test_logits_judge_maps_orders_back_to_a():
    scorer = ScriptedScorer(bias=0.1)
    [good_a, good_b, both] = LogitsJudge(scorer, model_label="s").judge(ITEMS)
    # item 1, A first: 0.5 + 0.1 + 0.3 = 0.9; A second: P(label A = "bad") = 0.5+0.1-0.3 = 0.3,
    # so P(A better) = 0.7; both pick A
    assert (good_a.p_a_first, good_a.p_a_second) == (pytest.approx(0.9), pytest.approx(0.7))
    assert good_a.consistent and good_a.raw == ("0.900000", "0.300000")
    assert good_b.score == pytest.approx((0.3 + 0.1) / 2) and good_b.consistent  # 0.3; 1 - 0.9
    # both say good: only the position bias is left, and averaging cancels it
    assert both.score == pytest.approx(0.5) and not both.consistent
    # order: each item's A-first presentation, then its B-first one
    assert "[Response A]\na good answer" in scorer.seen[0] and "[Response A]\nbad" in scorer.seen[1]
    assert forced_choice(ScriptedScorer(), ITEMS) == pytest.approx([j.score for j in (good_a, good_b, both)])


@pytest.mark.parametrize("make", [
    lambda: LogitsJudge(ScriptedScorer(bias=0.15), model_label="s"),
    lambda: TextJudge(ScriptedWriter(["A", "A", "B", "A", "tie", "Response 2 is better"] * 2),
                      model_label="w"),
    lambda: LengthJudge(), lambda: LengthJudge(prefer="longer"), lambda: RandomJudge(seed=3)])
def test_swapping_a_and_b_swaps_every_judgment(make):
    judge = make()
    forward = judge.judge(ITEMS)
    swapped_judge = make()  # a fresh script for the text judge
    backward = swapped_judge.judge([(p, b, a) for p, a, b in ITEMS])
    if isinstance(judge, TextJudge):  # the script answers by position, not content: only check shape
        assert len(backward) == 3
        return
    for f, b in zip(forward, backward):
        assert b.score == pytest.approx(1 - f.score) and b.consistent == f.consistent


def test_text_judge_parses_and_keeps_raw():
    writer = ScriptedWriter(["A", "**B**", "I cannot tell.", "Response 1 is better", "tie", "A"])
    judge = TextJudge(writer, model_label="w", max_new_tokens=7)
    [j1, j2, j3] = judge.judge(ITEMS)
    assert (j1.p_a_first, j1.p_a_second, j1.consistent) == (1.0, 1.0, True)  # A, then B(=A)
    assert (j2.p_a_first, j2.p_a_second) == (0.5, 0.0) and j2.raw == ("I cannot tell.", "Response 1 is better")
    assert (j3.p_a_first, j3.p_a_second, j3.score) == (0.5, 0.0, 0.25)  # tie, then A(=B)
    assert writer.calls == [dict(n=6, max_new_tokens=7, temperature=0.0)]  # one greedy batch
    assert judge.label == "text:w" and judge.describe()["decoding"] == "greedy"


def test_length_judge_is_sao_table_6_shorter_wins_and_ties_on_equal_length():
    [j1, j2, j3] = LengthJudge().judge(ITEMS + [])[:3]
    assert (j1.score, j1.consistent) == (0.0, True)   # A longer: loses
    assert (j2.score, j2.consistent) == (1.0, True)
    assert (j3.p_a_first, j3.p_a_second, j3.consistent) == (1.0, 1.0, True)
    [tie] = LengthJudge().judge([("q", "abc", "xyz")])
    assert (tie.p_a_first, tie.p_a_second, tie.consistent) == (0.5, 0.5, False)
    assert LengthJudge(prefer="longer").judge(ITEMS)[0].score == 1.0
    assert tie.raw == ("length 3 vs 3", "length 3 vs 3")


def test_random_judge_is_a_seeded_coin_per_pair():
    items = [(f"q{i}", f"answer {i}", f"other {i}") for i in range(400)]
    first = RandomJudge(seed=1).judge(items)
    assert [j.score for j in first] == [j.score for j in RandomJudge(seed=1).judge(items)]
    assert [j.score for j in first] != [j.score for j in RandomJudge(seed=2).judge(items)]
    assert all(j.consistent and j.score in (0.0, 1.0) for j in first)  # one pick, both orders
    wins = sum(j.score for j in first) / len(first)
    assert 0.4 < wins < 0.6
    # a batch of one gives the same pick as the batch of 400 (no hidden call-order state)
    assert RandomJudge(seed=1).judge(items[7:8])[0].score == first[7].score
    [same] = RandomJudge().judge([("q", "x", "x")])
    assert same.score == 0.5


def test_aspects_one_verdict_each():
    scorer = ScriptedScorer()
    judge = LogitsJudge(scorer, model_label="s", aspects="clarity, Depth")
    [j, *_] = judge.judge(ITEMS)
    assert list(j.aspects) == ["clarity", "depth"] and j.aspects["depth"].score == pytest.approx(0.8)
    assert len(scorer.seen) == 3 * 3 * 2  # items x (overall + 2 aspects) x both orders
    assert "one aspect only, clarity" in scorer.seen[2] and "better on depth?" in scorer.seen[4]
    assert set(ASPECTS) == {"engagement", "helpfulness", "factuality", "depth", "clarity"}
    with pytest.raises(SelfprefError, match="--aspects 'tone'"):
        LogitsJudge(scorer, aspects="clarity,tone")


def test_history_is_shown_above_the_question():
    text = judge_chat("And then?", "x", "y", history=[{"role": "user", "content": "Hi"},
                                                      {"role": "assistant", "content": "Hello"}])[0]["content"]
    assert text.startswith("[Conversation so far]\nUser: Hi\nAssistant: Hello\n\n")
    scorer = ScriptedScorer()
    LogitsJudge(scorer).judge([PairItem("And then?", "good", "x", ({"role": "user", "content": "Hi"},)),
                               ("p", [{"role": "user", "content": "earlier"}], "a", "b")])
    assert "User: Hi" in scorer.seen[0] and "User: earlier" in scorer.seen[2]


def test_make_judge_kinds_and_errors():
    assert make_judge("length").label == "length" and make_judge("length:longer").label == "length:longer"
    assert make_judge("random", seed=4).describe() == {"kind": "random", "label": "random",
                                                      "aspects": [], "seed": 4, "orders": 2,
                                                      "template": "selfpref"}
    judge = make_judge("logits", ScriptedScorer(), model_label="mine", aspects=["depth"])
    assert judge.label == "logits:mine" and judge.aspects == ("depth",)
    with pytest.raises(SelfprefError, match="--judge 'best'"):
        make_judge("best")
    with pytest.raises(SelfprefError, match="takes no --judge-model"):
        make_judge("length", "some/model")
    with pytest.raises(SelfprefError, match="--judge-model: name the endpoint's model"):
        make_judge("logits", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(SelfprefError, match="no such model folder"):
        make_judge("text", "./no/such/model")


def test_sao_decide_still_reads_raw_verdicts():
    assert decide(["0.9", "0.8"], "logits")[:2] == (0, False)
    assert decide(["A", "B"], "text") == (0, True, 1.0, None)


# --- real models ---------------------------------------------------------------------------

def test_logits_and_text_judges_on_the_tiny_model(tiny_model_path):
    from selfpref.models.local import LocalModel

    model = LocalModel(str(tiny_model_path), batch_size=4)
    items = ITEMS + [("Q4?", "x" * 50, "y")]
    for j in make_judge("logits", model, model_label="tiny").judge(items):
        assert 0 < j.p_a_first < 1 and 0 < j.p_a_second < 1
        assert float(j.raw[0]) == pytest.approx(j.p_a_first, abs=1e-6)
    # batching and sorting by length give the same probabilities as one chat at a time
    batched = [j.score for j in make_judge("logits", model).judge(items)]
    single = [make_judge("logits", model).judge([it])[0].score for it in items]
    assert batched == pytest.approx(single, abs=1e-5)
    text = make_judge("text", model, max_new_tokens=4).judge(ITEMS[:2])
    assert all(isinstance(r, str) for j in text for r in j.raw)
    assert all(p in (0.0, 0.5, 1.0) for j in text for p in (j.p_a_first, j.p_a_second))


# --- an OpenAI-compatible endpoint (a local fake server) -----------------------------------

@pytest.fixture
def endpoint():
    with serve() as (server, url):
        yield server, url


def test_openai_compat_generate_and_forced_choice(endpoint, monkeypatch):
    from selfpref.models.openai_compat import OpenAICompatModel

    server, url = endpoint
    monkeypatch.setenv("JUDGE_KEY", SECRET)
    model = OpenAICompatModel(url, "m", api_key_env="JUDGE_KEY", max_workers=2)
    chats = [[{"role": "user", "content": "first question"}], [{"role": "user", "content": "second"}]]
    assert model.generate(chats, num_generations=2, max_new_tokens=5, temperature=0.0) == [
        ["echo: first questi", "echo: first questi"], ["echo: second", "echo: second"]]
    auth, body = work(server.requests)[0]
    assert auth == f"Bearer {SECRET}" and body["max_completion_tokens"] == 5 and body["n"] == 2
    # " A" and "A" both count for label A; "The" counts for nothing; renormalised over A, B
    judge = make_judge("logits", "m", base_url=url, api_key_env="JUDGE_KEY")
    [j] = judge.judge([("q", "good", "bad")])
    assert j.p_a_first == pytest.approx(0.75) and j.p_a_second == pytest.approx(0.75)
    assert server.requests[-1][1]["max_completion_tokens"] == 1 and server.requests[-1][1]["top_logprobs"] == 20
    described = json.dumps(judge.describe()) + repr(model) + judge.label
    assert SECRET not in described and "JUDGE_KEY" in described


def test_openai_compat_never_shows_the_key(endpoint, monkeypatch):
    from selfpref.models.openai_compat import OpenAICompatModel

    _, url = endpoint
    with pytest.raises(SelfprefError, match="--judge-api-key-env NO_SUCH_VAR: the environment variable is not set"):
        make_judge("logits", "m", base_url=url, api_key_env="NO_SUCH_VAR")
    monkeypatch.setenv("JUDGE_KEY", SECRET)
    for name, expected in (("deny", "refused the key from \\$JUDGE_KEY \\(HTTP 401\\)"),
                           ("echo", "HTTP 400")):
        model = OpenAICompatModel(url, name, api_key_env="JUDGE_KEY", max_retries=0)
        with pytest.raises(SelfprefError, match=expected) as info:
            model.generate([[{"role": "user", "content": "hi"}]])
        assert SECRET not in str(info.value) and info.value.__cause__ is None
    unreachable = OpenAICompatModel("http://user:pw@127.0.0.1:9/v1", "m", api_key_env="JUDGE_KEY",
                                    max_retries=0, timeout=2)
    with pytest.raises(SelfprefError) as info:
        unreachable.option_probabilities([[{"role": "user", "content": "hi"}]], ("A", "B"))
    assert SECRET not in str(info.value) and "pw" not in str(info.value) + repr(unreachable)
