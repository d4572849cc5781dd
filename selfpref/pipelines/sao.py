"""SAO (Aligning LLMs via Fully Self-Synthetic Data, §3, Alg. 1) as a distilabel pipeline.

persona -> one prompt per persona (§3.1) -> two sampled answers (§3.2, Eq. 2) -> a judge ranks
them with a pairwise prompt (§3.3, Eq. 3). SAO Alg. 1 / Eq. 3 make one call R(y1, y2 | x) per
pair; selfpref asks in both orders by default (its choice, not the paper's), so position bias
shows up as ``judge_consistent=false`` instead of hiding in the labels. ``--judge-orders 1``
makes the paper's single call (``judge_consistent`` is then null). The judge prompt is
selfpref's wording (`selfpref.judges.prompts`), not SAO's.

The judge is the judges layer's (``selfpref.judges``): by default the generator itself (SAO's
self-judge), ``--judge-model`` another model (SAO Table 8), ``--judge rm`` a reward model, or
one of SAO Table 6's baselines, ``length`` (the shorter answer wins) and ``random`` (a coin seeded
by the build seed), which call no model.
"""

import collections
from typing import Any

from selfpref.data.schema import make_row
from selfpref.judges import LogitsJudge, TextJudge, make_judge
from selfpref.judges.pairwise import both_orders, decide, decide_one, decide_scores
from selfpref.judges.prompts import CRITERIA, check_criteria
from selfpref.judges.reward import RewardJudge
from selfpref.pipelines._distilabel import Step, StepInput
from selfpref.pipelines.prompting import (  # noqa: F401
    PERSONA_TEMPLATE,
    PROMPT_TEMPLATE,
    WritePersona,
    WritePrompt,
    prompt_steps,
)
from selfpref.pipelines.tasks import AnswerPair, Chat, MultiConversationTask


def _needs_judging(row: dict[str, Any]) -> bool:
    answers = row.get("answers") or []
    return (not row.get("drop_reason") and len(answers) == 2 and all(a.strip() for a in answers)
            and answers[0] != answers[1])


def judge_rows(rows: list[dict[str, Any]], judge: Any) -> list[dict[str, Any]]:
    """Rows with ``judge_raw`` (both orders' raw outputs, answers[0] shown first, then swapped)
    and ``judge_p`` (P(answers[0] better) in each order); None for a row with nothing to judge."""
    todo = [i for i, row in enumerate(rows) if _needs_judging(row)]
    verdicts = judge.judge([(rows[i]["prompt"], *rows[i]["answers"]) for i in todo]) if todo else []
    out = [{**row, "judge_raw": None, "judge_p": None} for row in rows]
    for i, verdict in zip(todo, verdicts):
        out[i].update(judge_raw=list(verdict.raw), judge_p=[verdict.p_a_first, verdict.p_a_second])
        if verdict.members:  # a panel: every judge's P, answers[0]'s orientation
            out[i]["judge_members"] = {k: [m.p_a_first, m.p_a_second] for k, m in verdict.members.items()}
    return out


def _toward_chosen(p: list[float] | None, chosen_idx: int) -> list[float] | None:
    """[P(chosen better | chosen shown first), P(chosen better | chosen shown second)] from
    answers[0]'s [P(a better | a first), P(a better | a second)]."""
    if p is None:
        return None
    return [float(p[0]), float(p[1])] if chosen_idx == 0 else [1.0 - float(p[1]), 1.0 - float(p[0])]


class _FaceModel:
    """The judges layer's model interface over a step's LLM face, so judging goes through the
    build's pooled model with the face's per-conversation seeds."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def generate(self, chats: Any, *, num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0, **_: Any) -> list[list[str | None]]:
        outputs = self.llm.generate(list(chats), num_generations=num_generations,
                                    max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        return [list(o.get("generations") or [None]) for o in outputs]

    def option_probabilities(self, chats: Any, options: Any) -> list[list[float]]:
        return self.llm.option_probabilities(list(chats), tuple(options))


class PairwiseSelfJudge(MultiConversationTask):
    """A model judges each pair in both orders. Input: ``prompt``, ``answers``; output:
    ``judge_raw`` (``mode='text'``: the two verdicts; ``'logits'``: P(first-shown answer is
    better) per order, as text) and ``judge_p``. The model is the generator unless the build
    names another (``--judge-model``)."""

    mode: str = "text"
    orders: int = 2
    criteria: list[str] = list(CRITERIA)  # SAO Table 6's "w/o Criterion k": three of the four

    @property
    def inputs(self) -> list[str]:
        return ["prompt", "answers"]

    @property
    def outputs(self) -> list[str]:
        return ["judge_raw", "judge_p"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        if not _needs_judging(row):
            return []
        first, second = row["answers"]
        return both_orders(row["prompt"], first, second, criteria=self.criteria)[: self.orders]

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        return {"judge_raw": [g[0] for g in generations] if generations else None}

    def judge(self) -> Any:
        model, label = _FaceModel(self.llm), self.llm.model_name
        if self.mode == "text":
            tokens = int(self.llm.generation_kwargs.get("max_new_tokens") or 16)
            judge: Any = TextJudge(model, max_new_tokens=tokens, model_label=label, orders=self.orders)
        else:
            judge = LogitsJudge(model, model_label=label, orders=self.orders)
        judge.criteria = tuple(self.criteria)
        return judge

    def process(self, inputs: StepInput):
        rows = judge_rows(list(inputs), self.judge())
        yield [{**row, "model_name": self.llm.model_name} for row in rows]


class JudgeStep(Step):
    """A step that labels each pair with the judge ``judge()`` makes (a rule, a panel, a reward
    model), the rows named after the judge; the self-judge above is a Task instead, because it
    generates through the build's LLM."""

    @property
    def inputs(self) -> list[str]:
        return ["prompt", "answers"]

    @property
    def outputs(self) -> list[str]:
        return ["judge_raw", "judge_p"]

    def judge(self) -> Any:
        raise NotImplementedError

    def process(self, inputs: StepInput):
        judge = self.judge()
        yield [{**row, "model_name": judge.label} for row in judge_rows(list(inputs), judge)]


class RuleJudge(JudgeStep):
    """SAO Table 6's baselines through the judges layer, no model: ``rule='length'`` (the shorter
    answer wins; equal lengths tie), ``'length:longer'``, or ``'random'`` (a coin per pair from
    ``seed`` and the pair itself, so the pick does not depend on chunk, batch or order)."""

    rule: str = "length"
    seed: int = 0
    orders: int = 2

    def judge(self) -> Any:
        return make_judge(self.rule, seed=self.seed, orders=self.orders)


class PanelJudgeStep(JudgeStep):
    """A panel of judge models (several ``--judge-model``), each loaded once through the build's
    pool and asked in both orders; ``rule`` combines them (`selfpref.judges.panel`)."""

    judge_models: list[str] = []
    kinds: list[str] = []
    labels: list[str] = []
    rule: str = "mean"
    backend: str = "transformers"
    max_new_tokens: int = 16

    @property
    def outputs(self) -> list[str]:
        return ["judge_raw", "judge_p", "judge_members"]

    def bind_models(self, pool: Any) -> None:
        self._models = [pool.get("reward" if kind == "rm" else self.backend, ref)
                        for kind, ref in zip(self.kinds, self.judge_models)]

    def judge(self) -> Any:
        from selfpref.judges.panel import PanelJudge

        judges = [make_judge(kind, model, model_label=label, max_new_tokens=self.max_new_tokens)
                  for kind, model, label in zip(self.kinds, self._models, self.labels)]
        return PanelJudge(judges, self.rule)


class RewardModelJudge(JudgeStep):
    """``--judge rm``: a reward model (``reward_model``, loaded once per build through the pool)
    scores each answer; P(answers[0] better) = sigmoid(r_0 - r_1), the raw rewards in
    ``judge_raw``."""

    reward_model: str = ""
    model_id: str = ""
    orders: int = 2

    def bind_models(self, pool: Any) -> None:
        self._scorer = pool.get("reward", self.reward_model)

    def judge(self) -> Any:
        return RewardJudge(self._scorer, model_label=self.model_id or self.reward_model,
                           orders=self.orders)


def assemble(rows: list[dict[str, Any]], *, generator: str, judge: str = "text",
             labeler: str | None = None, judge_mode: str | None = None, judge_orders: int = 2,
             **_: Any) -> tuple[list[dict], collections.Counter]:
    """Contract records from the pipeline's rows, and the count of rows dropped per reason.

    ``judge``: the kind that labelled the rows (text, logits, rm, length, length:longer, random);
    ``labeler``: what the records' ``labeler`` says (default: the generator's self-judge);
    ``judge_orders`` 1: one call per pair, so ``judge_consistent`` is null.
    """
    judge = judge_mode or judge
    if labeler is None:
        labeler = f"self-judge:{generator}" + ("" if judge == "text" else "|logits")
    records: list[dict] = []
    dropped: collections.Counter[str] = collections.Counter()
    for row in rows:
        answers = row.get("answers") or []
        reason = row.get("drop_reason")
        if not reason and len(answers) != 2:
            reason = "no_answers"
        elif not reason and not all(a.strip() for a in answers):
            reason = "empty_answer"
        elif not reason and answers[0] == answers[1]:
            reason = "identical_answers"
        if reason:
            dropped[reason] += 1
            continue
        if judge_orders == 1:
            chosen_idx, consistent, confidence, reason = decide_one(row.get("judge_raw"),
                                                                    row.get("judge_p"), judge)
        elif judge in ("text", "logits"):
            chosen_idx, consistent, confidence, reason = decide(row.get("judge_raw"), judge)
        elif judge == "panel":
            chosen_idx, consistent, confidence, reason = decide_scores(row.get("judge_p"))
        else:
            chosen_idx, consistent, confidence, reason = decide_scores(row.get("judge_p"))
            if judge == "random" and not reason:
                confidence = 0.5  # a coin: both orders agree by construction, but it knows nothing
        if reason:
            dropped[reason] += 1
            continue
        assert chosen_idx is not None  # no drop reason: the judge chose one
        extra: dict[str, Any] = {}
        if row.get("judge_members"):
            import json

            extra["judge_panel"] = json.dumps({k: _toward_chosen(v, chosen_idx)
                                               for k, v in row["judge_members"].items()})
        records.append(make_row(row["prompt"], answers[chosen_idx], answers[1 - chosen_idx],
                                method="sao", generator=generator, labeler=labeler,
                                confidence=confidence, persona=row.get("persona"),
                                judge_raw=list(row["judge_raw"]), judge_consistent=consistent,
                                judge_p_chosen=_toward_chosen(row.get("judge_p"), chosen_idx), **extra))
    return records, dropped


def build_steps(config: Any, llm_factory: Any, source: str) -> list[Any]:
    """Tasks after the loader: [WritePersona] [WritePrompt] AnswerPair, then PairwiseSelfJudge
    (text / logits: a model, the generator's unless --judge-model) or RuleJudge (length, random).

    ``source`` is what the loader yields: 'domain' (the model writes personas, fully
    self-synthetic), 'persona' (a persona dataset) or 'prompt' (an existing prompt set).
    """
    steps = prompt_steps(config, llm_factory, source)
    steps.append(AnswerPair(name="answer_pair", llm=llm_factory("answer_pair", config.generation()),
                            num_generations=2, input_batch_size=config.batch_size))
    judge = getattr(config, "judge", None) or config.judge_mode or "text"
    orders = int(getattr(config, "judge_orders", 2) or 2)
    if getattr(config, "judge_models", None):
        from selfpref.models.resolve import model_label, resolve_model

        steps.append(PanelJudgeStep(name="panel_judge", rule=config.panel, backend=config.backend,
                                    kinds=judge.split(","), max_new_tokens=config.judge_max_new_tokens,
                                    judge_models=[resolve_model(m, flag="--judge-model") for m in config.judge_models],
                                    labels=[model_label(m) for m in config.judge_models],
                                    input_batch_size=config.batch_size))
    elif judge in ("text", "logits"):
        generation = config.generation(config.judge_max_new_tokens, temperature=0.0)
        steps.append(PairwiseSelfJudge(name="self_judge", mode=judge, input_batch_size=config.batch_size,
                                       orders=orders, criteria=list(check_criteria(config.judge_criteria)),
                                       llm=llm_factory("self_judge", generation, role="judge")))
    elif judge == "rm":
        from selfpref.models.resolve import model_label, resolve_model

        steps.append(RewardModelJudge(name="rm_judge", orders=orders, input_batch_size=config.batch_size,
                                      reward_model=resolve_model(config.judge_model, flag="--judge-model"),
                                      model_id=model_label(config.judge_model)))
    else:
        steps.append(RuleJudge(name="rule_judge", rule=judge, seed=config.seed, orders=orders,
                               input_batch_size=config.batch_size))
    return steps


def build_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The build record's ``judge_bias`` (`selfpref.judges.bias`): position and length from each
    pair's P in both orders (chosen's orientation), and a panel's agreement."""
    import json

    from selfpref.judges.agreement import agreement_report
    from selfpref.judges.bias import bias_report

    rows = [r for r in records if r.get("judge_p_chosen")]
    if not rows:
        return {}
    p = [r["judge_p_chosen"] for r in rows]
    one_order = all(r.get("judge_consistent") is None for r in rows)
    from selfpref.judges.lengthfit import length_fit

    len_c, len_r = [len(r["chosen"]) for r in rows], [len(r["rejected"]) for r in rows]
    # the LC fit's length coefficient, oriented to the chosen answer (b > 0: the longer one wins more)
    scores = [x[0] if one_order else (x[0] + x[1]) / 2 for x in p]
    coef = length_fit(scores, len_c, len_r).length_coef if len(rows) > 1 else None
    out = bias_report([x[0] for x in p], None if one_order else [x[1] for x in p], len_c, len_r,
                      length_coef=coef)
    panels = [json.loads(r["judge_panel"]) for r in rows if r.get("judge_panel")]
    if panels and len(panels) == len(rows):
        by_member = {k: [(v[k][0] + v[k][1]) / 2 for v in panels] for k in panels[0]}
        out["panel"] = agreement_report(by_member, [(x[0] + x[1]) / 2 for x in p])
    return {"judge_bias": out}
