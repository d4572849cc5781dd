import pytest

from selfpref.judges.verdict import parse_verdict
from selfpref.pipelines.parsing import clean_prompt, parse_features


@pytest.mark.parametrize("raw,expected", [
    ("User prompt: How do I bake bread?", "How do I bake bread?"),
    ("**Prompt:** What is a black hole?", "What is a black hole?"),
    ("Prompt:\nExplain tides.", "Explain tides."),
    ('"Can you plan a trip to Rome?"', "Can you plan a trip to Rome?"),
    ("How do vaccines work?", "How do vaccines work?"),
])
def test_clean_prompt(raw, expected):
    assert clean_prompt(raw) == (expected, None)


@pytest.mark.parametrize("raw,reason", [
    ("", "empty_prompt"), (None, "empty_prompt"), ("User prompt:", "empty_prompt"),
    ("I'm sorry, but I can't help with that.", "refusal"),
    ("As an AI, I cannot write that.", "refusal"),
])
def test_clean_prompt_drops(raw, reason):
    assert clean_prompt(raw) == (None, reason)


@pytest.mark.parametrize("raw,expected", [
    ("A", "A"), ("B", "B"), ("[[B]]", "B"), ("(A)", "A"), ("1", "A"), ("2.", "B"),
    ("Response 2 is better because it is more complete.", "B"),
    ("After comparing both, I think Response A is more accurate.", "A"),
    ("The better response is B.", "B"),
    ("Answer 1", "A"),
    ("It's a tie: both are equally good.", "tie"),
    ("Tie", "tie"),
    ("", None), (None, None), ("The weather is nice today.", None),
    ("Response A is good and Response B is good too", None),
    ("asdkjh qwe zzz", None),
])
def test_parse_verdict(raw, expected):
    assert parse_verdict(raw) == expected


def test_parse_features():
    valid = ["Engagement", "Accuracy", "Helpfulness", "Safety"]
    assert parse_features("Accuracy,Helpfulness", valid) == ["Accuracy", "Helpfulness"]
    assert parse_features("1. helpfulness\n2. accuracy and Safety", valid) == [
        "Helpfulness", "Accuracy", "Safety"]
    assert parse_features("Creativity, Accuracy, accuracy", valid) == ["Accuracy"]
    assert parse_features("", valid) == [] and parse_features(None, valid) == []
