"""SSO (Self-Steering Optimization, §3.1, A.3): principle-steered answer triples.

The model allocates the query's most relevant features (few-shot, ``Feature1,Feature2``), one is
picked (Concision is one of the seven, SSO §3.1; ``concision_probability`` > 0 adds it to another
pick, selfpref's option), and it answers three times: under the good
principles (x+ -> y+, chosen), the bad principles (x- -> y-, rejected) and the bare query
(x -> y°, ``original``), which the SSO loss needs for its steering term.
"""

from __future__ import annotations

import collections
import hashlib
import random
from typing import Any

from pydantic import Field

from selfpref.data.schema import make_row
from selfpref.data.stats import feature_source_share
from selfpref.pipelines.features import ALLOCATE_TEMPLATE, load_features, system_prompt
from selfpref.pipelines.parsing import parse_features
from selfpref.pipelines.prompting import prompt_steps, stage_drop
from selfpref.pipelines.tasks import Chat, MultiConversationTask, usable_prompt


def _rng(seed: int, prompt: str) -> random.Random:
    # Per-row randomness keyed by prompt: a resumed chunk draws exactly what the killed one drew.
    return random.Random(int(hashlib.sha256(f"{seed}:{prompt}".encode()).hexdigest()[:16], 16))


class AllocateFeatures(MultiConversationTask):
    """Input: ``prompt``. Output: ``allocated``, ``feature``, ``feature_source``,
    ``principle_chosen``, ``principle_rejected`` (the x+ and x- system prompts).

    SSO §3.1 allocates the features "to ensure these principles are relevant". When the model's
    allocation names fewer than two valid features, the rest are drawn at random, and
    ``feature_source`` says which happened to the feature the row is steered by: ``allocated``
    (the model named it) or ``random`` (drawn because the allocation did not parse, or parsed
    only one name and the pick fell on the random top-up). Concision added to the pick by
    ``concision_probability`` (selfpref's option; 0 by default) does not change the label.
    """

    seed: int = 0
    concision_probability: float = 0.0
    principles: str | None = Field(default=None, description="YAML replacing the feature table.")

    @property
    def inputs(self) -> list[str]:
        return ["prompt"]

    @property
    def outputs(self) -> list[str]:
        return ["allocated", "feature", "feature_source", "principle_chosen", "principle_rejected"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        if not usable_prompt(row):
            return []
        features, _ = load_features(self.principles)
        names = ", ".join(f.name for f in features)
        return [[{"role": "user", "content": ALLOCATE_TEMPLATE.format(names=names, query=row["prompt"])}]]

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        if not usable_prompt(row):
            return dict.fromkeys(self.outputs)
        features, concision = load_features(self.principles)
        by_name = {f.name: f for f in features}
        rng = _rng(self.seed, row["prompt"])
        named = parse_features(generations[0][0] if generations else None, list(by_name))[:2]
        spare = [n for n in by_name if n not in named]
        allocated = named + rng.sample(spare, 2 - len(named))  # top up at random to two
        main = rng.choice(allocated)
        picked = [by_name[main]]
        if rng.random() < self.concision_probability and concision.name != main:
            picked.append(concision)
        return {"allocated": allocated, "feature": ",".join(f.name for f in picked),
                "feature_source": "allocated" if main in named else "random",
                "principle_chosen": system_prompt(picked, good=True),
                "principle_rejected": system_prompt(picked, good=False)}


class PrincipledAnswers(MultiConversationTask):
    """Input: ``prompt``, ``principle_chosen``, ``principle_rejected``.
    Output: ``chosen`` (y+), ``rejected`` (y-), ``original`` (y°)."""

    @property
    def inputs(self) -> list[str]:
        return ["prompt", "principle_chosen", "principle_rejected"]

    @property
    def outputs(self) -> list[str]:
        return ["chosen", "rejected", "original"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        if not usable_prompt(row):
            return []
        user = {"role": "user", "content": row["prompt"]}
        return [[{"role": "system", "content": row["principle_chosen"]}, user],
                [{"role": "system", "content": row["principle_rejected"]}, user], [user]]

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        texts = [(g[0] or "").strip() for g in generations] + [""] * (3 - len(generations))
        return dict(zip(("chosen", "rejected", "original"), texts))


def assemble(rows: list[dict[str, Any]], *, generator: str, **_: Any) -> tuple[list[dict], collections.Counter]:
    records: list[dict] = []
    dropped: collections.Counter[str] = collections.Counter()
    for row in rows:
        c, r, o = row.get("chosen") or "", row.get("rejected") or "", row.get("original") or ""
        if stage := stage_drop(row):
            dropped[stage] += 1
        elif not (c and r and o):
            dropped["empty_answer"] += 1
        elif c == r:
            dropped["identical_answers"] += 1
        elif o in (c, r):
            dropped["answer_equals_original"] += 1
        else:
            records.append(make_row(row["prompt"], c, r, method="sso", generator=generator,
                                    labeler=f"principle:{generator}", confidence=None,
                                    feature=row["feature"], feature_source=row["feature_source"],
                                    principle_chosen=row["principle_chosen"],
                                    principle_rejected=row["principle_rejected"], original=o))
    return records, dropped


def build_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The build's ``feature_source`` counts over its pairs, and the sentence the card uses."""
    found = collections.Counter(r.get("feature_source") for r in records)
    counts = {k: found.get(k, 0) for k in ("allocated", "random")}
    return {"feature_source": counts, "feature_allocation": feature_source_share(counts)}


def build_steps(config: Any, llm_factory: Any, source: str) -> list[Any]:
    """[WritePersona] [WritePrompt] AllocateFeatures PrincipledAnswers."""
    return [*prompt_steps(config, llm_factory, source),
            AllocateFeatures(name="allocate_features", seed=config.seed, principles=config.principles,
                             concision_probability=config.concision_probability,
                             input_batch_size=config.batch_size,
                             llm=llm_factory("allocate_features", config.generation(16, temperature=0.0))),
            PrincipledAnswers(name="principled_answers", input_batch_size=config.batch_size,
                              llm=llm_factory("principled_answers", config.generation()))]
