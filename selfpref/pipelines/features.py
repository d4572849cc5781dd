"""SSO's features and principles (SSO §3.1, A.3), written in selfpref's own words.

Each feature has a good and a bad adjective, a one-line meaning, and the principle each side's
system prompt asks for. A recipe can replace the table (``--principles file.yaml``).

Where each choice comes from (SSO, seed ``001_*``):

- seven features, Concise one of them: §3.1, "we defined seven preference features: Safety,
  Logicality, Concise, etc."; §4 (Length Control) calls it "the **Concision** preference
  feature". Concision is therefore in the table and allocated like any other feature.
- Accuracy: A.3.2 Table 14's few-shot allocation answers "Accuracy,Logicality".
- Helpfulness, Comprehensiveness, Engagement: selfpref's choice. A.3.1 Table 13 ("The
  principles we use. Each feature has a good principle, a bad principle, and a pair of
  adjectives") did not survive in the seed text, so the other three names, every adjective and
  every principle sentence are selfpref's; the good/bad-adjective-and-principle shape is Table 13's
  caption.
- the allocation: §3.1, "we first determined the most crucial features to reply to the query and
  then randomly selected one of these features": the model names the crucial features (Table 14
  shows two, "Accuracy,Logicality"), one of them is picked (`selfpref.pipelines.sso`).
- no seed text gives a probability for adding Concision to another feature: the build option
  ``concision_probability`` (default 0, the paper's reading) is selfpref's. This module's earlier
  default (Engagement, Accuracy, Literariness, Helpfulness, Comprehensiveness, Logicality, Safety,
  with Concision outside them added with p 0.2) is a ``--principles`` file listing those seven,
  built with ``concision_probability: 0.2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfpref import SelfprefError
from selfpref.data.recipes import load_yaml_mapping


@dataclass(frozen=True)
class Feature:
    name: str
    good: str
    bad: str
    meaning: str
    good_principle: str
    bad_principle: str


# the seed's names first (§3.1: Safety, Logicality, Concise; Table 14: Accuracy), then selfpref's
CONCISION = Feature("Concision", "concise", "verbose", "how economical the answer is",
                    "Say what is needed in as few words as clarity allows.",
                    "Pad the answer with repetition, filler and needless detail.")
FEATURES = [
    Feature("Safety", "safe", "unsafe", "whether the answer avoids harm",
            "Avoid anything that could cause harm, add the precautions that matter and refer to "
            "professionals where appropriate.",
            "Ignore risks, leave out precautions and never suggest asking a professional."),
    Feature("Logicality", "logical", "illogical", "how well the reasoning holds together",
            "Start from clear premises and let each step follow from the last in a coherent order.",
            "Jump between points, skip steps and draw conclusions the reasoning does not support."),
    CONCISION,
    Feature("Accuracy", "accurate", "inaccurate", "whether the facts are right and current",
            "State only facts you are confident are correct and up to date; say so when unsure.",
            "Mix in unverified or outdated claims and present them as settled fact."),
    Feature("Helpfulness", "helpful", "unhelpful", "whether the user can act on the answer",
            "Tailor the answer to the user's situation and give concrete, actionable steps.",
            "Stay vague and generic so the user is left without anything they can act on."),
    Feature("Comprehensiveness", "comprehensive", "incomplete", "how much of the question is covered",
            "Cover every aspect the question raises, including the ones that are easy to overlook.",
            "Touch the surface of the question only and leave out key points."),
    Feature("Engagement", "engaging", "dull", "how personal and lively the answer feels",
            "Speak to the user directly and warmly, in a conversational tone that keeps them interested.",
            "Sound detached and monotonous, like a form letter that ignores who is asking."),

]

SYSTEM_TEMPLATE = (
    "When you answer the user, your response must be {adjectives}. Follow these principles:\n"
    "{principles}\nNever mention these instructions or principles in your response.")
ALLOCATE_TEMPLATE = (
    "Pick the two qualities that matter most for a good answer to the query. Choose from: "
    "{names}.\n\nQuery: How do I treat a minor burn at home?\nQualities: Safety,Helpfulness\n\n"
    "Query: Write a short poem about autumn.\nQualities: Engagement,Concision\n\n"
    "Query: Explain why the sky is blue.\nQualities: Accuracy,Logicality\n\n"
    "Query: {query}\nQualities:")


def load_features(path: str | Path | None) -> tuple[list[Feature], Feature]:
    """The default table and the feature ``concision_probability`` adds, or both from YAML:
    {features: [{name, good, bad, meaning, good_principle, bad_principle}, ...], concision: {...}}."""
    if path is None:
        return FEATURES, CONCISION
    data = load_yaml_mapping(path, what="principles file", allowed=("features", "concision"),
                             flag="--principles")
    try:
        features = [Feature(**f) for f in data["features"]]
        concision = Feature(**data["concision"]) if data.get("concision") else CONCISION
    except (KeyError, TypeError) as exc:
        raise SelfprefError(f"{path}: a principles file needs 'features', each with name, good, "
                            f"bad, meaning, good_principle, bad_principle ({exc})") from None
    return features, concision


def system_prompt(features: list[Feature], good: bool) -> str:
    adjectives = " and ".join(f.good if good else f.bad for f in features)
    principles = "\n".join(f"- {f.good_principle if good else f.bad_principle}" for f in features)
    return SYSTEM_TEMPLATE.format(adjectives=adjectives, principles=principles)
