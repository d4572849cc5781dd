"""SSO's features and principles (SSO §3.1, A.3), written in selfpref's own words.

Each feature has a good and a bad adjective, a one-line meaning, and the principle each side's
system prompt asks for. A recipe can replace the table (``--principles file.yaml``).
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


FEATURES = [
    Feature("Engagement", "engaging", "dull", "how personal and lively the answer feels",
            "Speak to the user directly and warmly, in a conversational tone that keeps them interested.",
            "Sound detached and monotonous, like a form letter that ignores who is asking."),
    Feature("Accuracy", "accurate", "inaccurate", "whether the facts are right and current",
            "State only facts you are confident are correct and up to date; say so when unsure.",
            "Mix in unverified or outdated claims and present them as settled fact."),
    Feature("Literariness", "literary", "boring", "the quality of the language itself",
            "Use rich, well-chosen language and varied sentences while staying easy to follow.",
            "Use plain, repetitive wording with the same flat sentence shapes throughout."),
    Feature("Helpfulness", "helpful", "unhelpful", "whether the user can act on the answer",
            "Tailor the answer to the user's situation and give concrete, actionable steps.",
            "Stay vague and generic so the user is left without anything they can act on."),
    Feature("Comprehensiveness", "comprehensive", "incomplete", "how much of the question is covered",
            "Cover every aspect the question raises, including the ones that are easy to overlook.",
            "Touch the surface of the question only and leave out key points."),
    Feature("Logicality", "logical", "illogical", "how well the reasoning holds together",
            "Start from clear premises and let each step follow from the last in a coherent order.",
            "Jump between points, skip steps and draw conclusions the reasoning does not support."),
    Feature("Safety", "safe", "unsafe", "whether the answer avoids harm",
            "Avoid anything that could cause harm, add the precautions that matter and refer to "
            "professionals where appropriate.",
            "Ignore risks, leave out precautions and never suggest asking a professional."),
]
CONCISION = Feature("Concision", "concise", "verbose", "how economical the answer is",
                    "Say what is needed in as few words as clarity allows.",
                    "Pad the answer with repetition, filler and needless detail.")

SYSTEM_TEMPLATE = (
    "When you answer the user, your response must be {adjectives}. Follow these principles:\n"
    "{principles}\nNever mention these instructions or principles in your response.")
ALLOCATE_TEMPLATE = (
    "Pick the two qualities that matter most for a good answer to the query. Choose from: "
    "{names}.\n\nQuery: How do I treat a minor burn at home?\nQualities: Safety,Helpfulness\n\n"
    "Query: Write a short poem about autumn.\nQualities: Literariness,Engagement\n\n"
    "Query: Explain why the sky is blue.\nQualities: Accuracy,Logicality\n\n"
    "Query: {query}\nQualities:")


def load_features(path: str | Path | None) -> tuple[list[Feature], Feature]:
    """The default table, or one from YAML: {features: [{name, good, bad, meaning, good_principle,
    bad_principle}, ...], concision: {...}}."""
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
