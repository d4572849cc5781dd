"""SELFEE (Aligning LLMs with Self-generated Preference Data, §4.1, Eq. 7-8): logit rewards.

Two samples per prompt from the policy; a labelling Step scores both under the policy and the
reference pi_init and the implicit reward r = beta * (log pi - log pi_ref) picks the chosen one.
Without a reference model the policy's own per-token log-likelihood judges (SELFEE Table 5's
reference-free judgment), so short answers are not favoured by length alone.
"""


import collections
import math
from typing import Any

from pydantic import PrivateAttr

from selfpref.data.schema import make_row
from selfpref.judges.implicit_reward import implicit_reward_label
from selfpref.pipelines._distilabel import Step, StepInput
from selfpref.pipelines.prompting import prompt_steps, stage_drop
from selfpref.pipelines.tasks import AnswerPair


class ImplicitRewardScores(Step):
    """Input: ``prompt``, ``answers``. Output: summed log-probs and token counts under both models.

    Scores through the build's model pool: the policy is the model that wrote the answers (one
    load for both), the reference pi_init a second one.
    """

    policy_model: str
    reference_model: str | None = None
    backend: str = "transformers"

    _policy: Any = PrivateAttr(None)
    _reference: Any = PrivateAttr(None)

    @property
    def inputs(self) -> list[str]:
        return ["prompt", "answers"]

    @property
    def outputs(self) -> list[str]:
        return ["logps_policy", "logps_ref", "answer_tokens"]

    def bind_models(self, pool: Any) -> None:
        self._policy = pool.get(self.backend, self.policy_model)
        self._reference = pool.get(self.backend, self.reference_model) if self.reference_model else None

    def process(self, inputs: StepInput):
        todo = [i for i, r in enumerate(inputs) if len(r.get("answers") or []) == 2
                and all(a.strip() for a in r["answers"])]
        prompts = [[{"role": "user", "content": inputs[i]["prompt"]}] for i in todo for _ in (0, 1)]
        answers = [a for i in todo for a in inputs[i]["answers"]]
        policy, counts = self._policy.answer_logps(prompts, answers) if todo else ([], [])
        ref = self._reference.answer_logps(prompts, answers)[0] if todo and self._reference else None
        out = [{**r, "logps_policy": None, "logps_ref": None, "answer_tokens": None} for r in inputs]
        for k, i in enumerate(todo):
            out[i]["logps_policy"] = policy[2 * k : 2 * k + 2]
            out[i]["answer_tokens"] = counts[2 * k : 2 * k + 2]
            out[i]["logps_ref"] = ref[2 * k : 2 * k + 2] if ref is not None else None
        yield out


def assemble(rows: list[dict[str, Any]], *, generator: str, beta: float = 0.1,
             reference: str | None = None, **_: Any) -> tuple[list[dict], collections.Counter]:
    records: list[dict] = []
    dropped: collections.Counter[str] = collections.Counter()
    labeler = f"logit-reward:{generator}|{reference or 'reference-free'}"
    for row in rows:
        answers = row.get("answers") or []
        if stage := stage_drop(row):
            dropped[stage] += 1
            continue
        if len(answers) != 2 or not all(a.strip() for a in answers) or row.get("logps_policy") is None:
            dropped["empty_answer"] += 1
            continue
        if answers[0] == answers[1]:
            dropped["identical_answers"] += 1
            continue
        lp, n = row["logps_policy"], row["answer_tokens"]
        if reference:
            lr = row["logps_ref"]
            label = implicit_reward_label(lp[0], lp[1], lr[0], lr[1], beta)
        else:  # Table 5's reference-free judgment, per-token so length alone does not win
            lr = [None, None]
            label = implicit_reward_label(lp[0] / max(n[0], 1), lp[1] / max(n[1], 1), 0.0, 0.0, beta)
        if label.first_is_chosen is None:
            dropped["tie"] += 1
            continue
        c, r = (0, 1) if label.first_is_chosen else (1, 0)
        records.append(make_row(row["prompt"], answers[c], answers[r], method="selfee",
                                generator=generator, labeler=labeler,
                                confidence=1.0 / (1.0 + math.exp(-label.margin)),
                                logp_policy_chosen=lp[c], logp_policy_rejected=lp[r],
                                logp_ref_chosen=lr[c], logp_ref_rejected=lr[r],
                                reward_margin=label.margin))
    return records, dropped


def build_steps(config: Any, llm_factory: Any, source: str) -> list[Any]:
    """[WritePersona] [WritePrompt] AnswerPair ImplicitRewardScores.

    The scorer needs log-probs: local weights (a scripted generator scores with transformers),
    or an endpoint that returns prompt log-probs (``--backend openai``: the served model names).
    """
    from selfpref.models import resolve_model

    scorer = config.backend if config.backend in ("vllm", "openai") else "transformers"

    def ref(name: Any, flag: str) -> str:
        return str(name) if scorer == "openai" else resolve_model(name, flag=flag)

    return [*prompt_steps(config, llm_factory, source),
            AnswerPair(name="answer_pair", llm=llm_factory("answer_pair", config.generation()),
                       num_generations=2, input_batch_size=config.batch_size),
            ImplicitRewardScores(name="implicit_reward", input_batch_size=config.batch_size,
                                 policy_model=ref(config.model, "--model"), backend=scorer,
                                 reference_model=ref(config.reference_model, "--reference-model")
                                 if config.reference_model else None)]
