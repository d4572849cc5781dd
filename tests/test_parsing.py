"""parse_features. clean_prompt is tested in test_prompt_cleaning.py, parse_verdict (now in
selfpref.judges.verdict) in test_verdict.py."""

from selfpref.pipelines.parsing import parse_features


def test_parse_features():
    valid = ["Engagement", "Accuracy", "Helpfulness", "Safety"]
    assert parse_features("Accuracy,Helpfulness", valid) == ["Accuracy", "Helpfulness"]
    assert parse_features("1. helpfulness\n2. accuracy and Safety", valid) == [
        "Helpfulness", "Accuracy", "Safety"]
    assert parse_features("Creativity, Accuracy, accuracy", valid) == ["Accuracy"]
    assert parse_features("", valid) == [] and parse_features(None, valid) == []
