"""`selfpref iterate`: the self-alignment loop, each model making the next model's data.

For t = 1..T: build with pi_{t-1} -> filter (only with --filters: the papers' online loops train
on every pair they build) -> card -> push to --push-to-hub org/name, tagged v0.t.0 (optional) ->
train pi_t from pi_{t-1} (SAO: SimPO, SSO: the SSO loss, SELFEE: the refined DPO with lambda 1/2,
1/4, 1/8, ...); one function per stage below. Iterations see disjoint prompts
(`selfpref.loop.plan`: SSO §3.1 splits its prompts 1:1:1; SELFEE §5.1 gives each iteration new
prompts, of its own size with --prompts-per-iteration, none of them from the seed set). SELFEE labels
against pi_init (Alg. 1): with --seed-data, pi_0 is DPO on that seed set first; with
--reference-model, that model is pi_init; with neither, iteration 1 uses the reference-free
judgment (Table 5). --selfee-reference picks Table 5's other judgment variants
(`selfpref.loop.reference`).

Every stage writes atomically and is skipped when its output exists, so rerunning the same
command after a crash skips finished iterations and resumes the one that was running (its build
resumes chunk by chunk; an interrupted training run restarts, since training writes atomically).

With an evaluation (`selfpref.loop.evaluate`), each pi_t is judged against pi_0 on held-out
prompts after its iteration; the summary gains pi_t's win rate, LC win rate and intervals, pi_t's
model card an Evaluation section, and the loop folder's README.md (`selfpref.loop.report`) plots
them across iterations.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.data.store import write_json_atomic
from selfpref.loop.evaluate import LoopEval
from selfpref.loop.plan import funnel_summary, prompt_plan, split_prompts  # noqa: F401 (re-exported)
from selfpref.loop.reference import check_selfee_reference, policy_path, selfee_reference
from selfpref.loop.stages import (  # noqa: F401 (no_pair_hint re-exported)
    _build_stage,
    _filter_stage,
    _push_stage,
    _Stage,
    _summary_row,
    _train_stage,
    no_pair_hint,
    train_atomic,
)

TRAINER = {"sao": "simpo", "sso": "sso", "selfee": "selfee"}
# The loop's filters when --filters is not given: none, for every method, because none of the
# papers filters inside its online loop. SAO Alg. 1 adds every judged pair to D (D <- D ∪
# {(x, y_w, y_l)}, inconsistent self-judgments included); SSO filters only its *offline* dataset
# (§3.2.2 / A.1.4: "we conducted a round of data filtering on the preference data generated during
# the alignment process"; that chain is selfpref/recipes/filter/sso-a14.yaml, for `selfpref filter`);
# SELFEE trains on every labelled pair (its refinement, Eq. 9-12, handles the noise).
DEFAULT_FILTERS: dict[str, list[tuple[str, Any]]] = {"sao": [], "sso": [], "selfee": []}
Notify = Callable[[str], None]
# SELFEE §4.1 / §5.1 initial stage (pi_0): DPO on the seed set for 3 epochs, beta 0.1, lr 5e-7,
# AdamW ("adamw_torch"; not DPO's RMSprop default) with cosine and 10% warm-up.
# selfpref/recipes/dpo/selfee-seed.yaml holds the same values (a test keeps them equal).
SELFEE_SEED_SETTINGS: dict[str, Any] = {"beta": 0.1, "learning_rate": 5e-7, "num_train_epochs": 3,
                                        "optim": "adamw_torch", "lr_scheduler_type": "cosine",
                                        "warmup_steps": 0.1}


@dataclass
class IterateConfig:
    method: str = field(metadata={"help": "sao (SimPO), sso (SSO loss) or selfee (refined DPO)."})
    iterations: int = field(metadata={"help": "How many build -> train rounds (T)."})
    output: str = field(metadata={"help": "Folder for the loop: iter-1/, iter-2/, ... with data and model each."})
    model: str | None = field(default=None, metadata={"help": "Starting model M0 (pi_init); default: the embedded SmolLM2-135M-Instruct."})
    prompts: str | None = field(default=None, metadata={"help": "Prompt set (a 'prompt' column, or see --prompt-column), split into disjoint parts, one per iteration."})
    num_prompts: int | None = field(default=None, metadata={"help": "Prompts per iteration (sao without --prompts: personas the model writes)."})
    reference_model: str | None = field(default=None, metadata={"help": "selfee: a separate pi_init to label against (Eq. 7); default: --model."})
    seed_data: str | None = field(default=None, metadata={"help": "selfee: human-labelled seed set; pi_0 = DPO of --model on it (SELFEE Alg. 1)."})
    # SELFEE Table 5's judgment reference: initial (pi_init, the paper's), previous, none;
    # None: initial for selfee, and nothing for the other methods
    selfee_reference: str | None = field(default=None, metadata={"help": "selfee: Eq. 7's reference, SELFEE Table 5's variants: initial (default, the paper's: pi_init every iteration), previous (pi_{t-2}, the model before the generating policy; pi_init at t=1) or none (per-token policy log-likelihood). Without --seed-data or --reference-model, pi_0 is pi_init, so t=1 is reference-free under initial and previous."})
    name: str | None = field(default=None, metadata={"help": "Dataset name (default: the output folder's name); iteration t is name@0.t.0."})
    seed: int = field(default=0, metadata={"help": "Seed for prompt splits, sampling and training."})
    filters: list[tuple[str, Any]] | None = field(default=None, metadata={"help": "Filter recipe YAML ({filters: [...]}, as `filter --config`) applied inside every iteration; default: none, as the papers' online loops (SAO Alg. 1 adds every judged pair; SSO filters only its offline set, A.1.4: selfpref/recipes/filter/sso-a14.yaml; SELFEE trains on every labelled pair)."})
    filter_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "Options shared by the filters (as `selfpref filter` flags: threshold, ngram, judge, ...)."})
    judge_models: list[str] | None = field(default=None, metadata={"help": "sso: add SSO A.1.4's judge-dispute filter with these judge models to the loop's filters (repeatable; before balance_length when --filters has it)."})
    lambdas: list[float] | None = field(default=None, metadata={"help": "selfee: lambda per iteration, e.g. 0.5,0.25 (default 1/2, 1/4, 1/8, ...)."})
    build: dict[str, Any] = field(default_factory=dict, metadata={"help": "BuildConfig fields for every iteration's build (a build recipe's keys, e.g. backend, max_new_tokens, judge)."})
    train: dict[str, Any] = field(default_factory=dict, metadata={"help": "Trainer overrides for every iteration (e.g. max_steps, learning_rate, max_length)."})
    train_recipe: str | None = field(default=None, metadata={"help": "Training recipe YAML (as `train --config`) for every iteration."})
    seed_train_recipe: str | None = field(default=None, metadata={"help": "selfee: DPO recipe for the --seed-data stage (pi_0); default: SELFEE §4.1's initial stage, as selfpref/recipes/dpo/selfee-seed.yaml."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Push each iteration's dataset to this Hub repo, tagged v0.t.0."})
    prompt_column: str | None = field(default=None, metadata={"help": "Column of --prompts to read (default: the first of prompt, instruction, turns, messages, conversations)."})
    # SELFEE §5.1's unequal prompt sets ("subsets of 8K, 20K, and 30K"): one size per iteration; None: equal
    # parts of --prompts (SSO §3.1), each at most num_prompts
    prompts_per_iteration: list[int] | None = field(default=None, metadata={"help": "One prompt-set size per iteration, e.g. 8000,20000,30000 (SELFEE §5.1's 8K/20K/30K), cut from --prompts in turn (sao without --prompts: personas written per iteration); default: equal parts (SSO §3.1's 1:1:1), each at most --num-prompts. With --seed-data its prompts are never reused (SELFEE §4.1, X_i ∩ X_0 = ∅), counted in iterate.json's prompt_funnel."})
    # pi_t vs pi_0 after each iteration (selfpref.loop.evaluate); not part of the fingerprint, so
    # rerunning a finished loop with it evaluates that loop
    evaluation: LoopEval | None = field(default=None, metadata={"help": "pi_t against pi_0 after each iteration (LoopEval: prompts, judge, judge_model, ...); not part of the loop's arguments."})

    def __post_init__(self) -> None:
        if self.method not in TRAINER:
            raise SelfprefError(f"--method {self.method!r}: iterate runs {', '.join(TRAINER)}")
        if self.iterations < 1:
            raise SelfprefError(f"--iterations {self.iterations}: must be at least 1")
        if self.num_prompts is not None and self.num_prompts < 1:
            raise SelfprefError(f"--num-prompts {self.num_prompts}: must be at least 1")
        if self.method != "sao" and not self.prompts:
            raise SelfprefError(f"iterate --method {self.method} needs --prompts REF (a dataset with a "
                                "'prompt' column); only sao writes its own prompts")
        if self.method != "selfee" and (self.seed_data or self.reference_model):
            raise SelfprefError("--seed-data and --reference-model are for --method selfee")
        if self.selfee_reference is not None:
            check_selfee_reference(self.selfee_reference, self.method, self.reference_model)
        elif self.method == "selfee":
            self.selfee_reference = "initial"
        if self.seed_train_recipe and not self.seed_data:
            raise SelfprefError("--seed-train-config is the recipe of the --seed-data stage: give "
                                "--seed-data too, or drop it")
        if self.seed_data and self.reference_model:
            raise SelfprefError("give --seed-data (pi_0 = DPO of --model on it, pi_init = --model) or "
                                "--reference-model (pi_init), not both")
        if self.lambdas is not None and len(self.lambdas) != self.iterations:
            raise SelfprefError(f"--lambdas has {len(self.lambdas)} values for {self.iterations} "
                                "iterations: give one per iteration")
        self._check_prompts_per_iteration()
        if self.filters is None:
            self.filters = list(DEFAULT_FILTERS[self.method])
        self.filters = [tuple(step) for step in self.filters]
        if self.judge_models:
            self._add_judge_step()

    def _check_prompts_per_iteration(self) -> None:
        sizes = self.prompts_per_iteration
        if sizes is None:
            return
        if self.num_prompts is not None:
            raise SelfprefError("--prompts-per-iteration gives each iteration's size, --num-prompts "
                                "one size for all: give one of them")
        if len(sizes) != self.iterations:
            raise SelfprefError(f"--prompts-per-iteration has {len(sizes)} sizes for {self.iterations} "
                                "iterations: give one per iteration, e.g. 8000,20000,30000 for 3")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise SelfprefError(f"--prompts-per-iteration {','.join(map(str, sizes))}: every size "
                                "must be a whole number of at least 1")

    def _add_judge_step(self) -> None:
        """--judge-models adds SSO A.1.4's dispute step to the loop's filters (none by default),
        where A.1.4 has it: after the length difference, before the length balance."""
        if self.method != "sso":
            raise SelfprefError(f"--judge-models is SSO A.1.4's judge-dispute filter: it needs "
                                f"--method sso, not {self.method} (or a filter recipe with judge_models)")
        steps = list(self.filters or [])
        if any(k == "judge_models" for k, _ in steps):
            raise SelfprefError("--judge-models and the --filters recipe's judge_models step both name "
                                "the dispute judges: give them in one place")
        at = next((i for i, (k, _) in enumerate(steps) if k == "balance_length"), len(steps))
        steps.insert(at, ("judge_models", self.judge_models))
        self.filters = steps

    def min_prompts(self) -> int:
        """Prompts one iteration needs for its filters to be able to keep anything.

        Length balance keeps as many chosen-longer as chosen-shorter pairs, so a single pair (or
        pairs all on one side) is always dropped: with it, 4 prompts at least; otherwise 2 (a
        training batch of pairs).
        """
        return 4 if any(k == "balance_length" for k, _ in self.filters or []) else 2

    def plan_config(self) -> dict[str, Any]:
        """The options that make the loop's data and models (iterate.json's config)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "evaluation"}

    def fingerprint(self) -> str:
        """What must match for a rerun to resume: everything but where results are pushed and
        how the models are evaluated. Options left at their default before they existed
        (prompt_column None, selfee_reference initial, prompts_per_iteration None) are left out,
        so older loops still resume."""
        data = {k: v for k, v in self.plan_config().items()
                if k != "push_to_hub" and not (k in ("prompt_column", "prompts_per_iteration") and v is None)
                and not (k == "selfee_reference" and v in (None, "initial"))}
        data["build"] = {k: v for k, v in data["build"].items() if k not in ("no_cache", "cache_dir")}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def lam(self, t: int) -> float:
        return self.lambdas[t - 1] if self.lambdas else 0.5 ** t  # SELFEE §5.1: 1/2, 1/4, 1/8

    def prompts_at(self, t: int) -> int | None:
        """Prompts iteration t writes itself (sao without --prompts); None: the build's default."""
        return self.prompts_per_iteration[t - 1] if self.prompts_per_iteration else self.num_prompts


def check_output_folder(out: Path) -> None:
    """The --output of a loop is new, empty, or a loop folder (iterate.json) to resume."""
    if out.is_file():
        raise SelfprefError(f"--output {out}: a file is already there; name a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "iterate.json").is_file():
        raise SelfprefError(f"--output {out}: a folder that is not a selfpref loop (no iterate.json) "
                            "is already there; choose a new folder")


def plan_prompts(cfg: IterateConfig) -> tuple[list[list[str]] | None, list[dict[str, Any]]]:
    """The prompts of each iteration (None: sao writes its own), checked to be enough, and the
    prompt funnel: distinct prompts, the seed set's taken out (SELFEE §4.1, X_i ∩ X_0 = ∅), the split."""
    need = cfg.min_prompts()
    if not cfg.prompts:
        flag, sizes = (("--prompts-per-iteration", cfg.prompts_per_iteration) if cfg.prompts_per_iteration
                       else ("--num-prompts", [cfg.num_prompts] if cfg.num_prompts is not None else []))
        if any(n < need for n in sizes):
            raise SelfprefError(f"{flag} {','.join(map(str, sizes))}: each iteration needs {need} or "
                                "more prompts for its filters to keep any pair")
        return None, []
    from selfpref.data.importer import read_texts

    seed_prompts = read_texts(cfg.seed_data, flag="--seed-data") if cfg.seed_data else None
    return prompt_plan(read_texts(cfg.prompts, cfg.prompt_column), cfg.iterations, seed=cfg.seed,
                       per_part=cfg.num_prompts, sizes=cfg.prompts_per_iteration,
                       minimum=need, exclude=seed_prompts)


def plan_splits(cfg: IterateConfig) -> list[list[str]] | None:
    """The prompts of each iteration (None: sao writes its own), checked to be enough."""
    return plan_prompts(cfg)[0]


def _plan(cfg: IterateConfig, out: Path, notify: Notify | None = None) -> dict[str, Any]:
    """The loop's plan (config, prompt splits and their funnel), written once; a rerun must match it."""
    path = out / "iterate.json"
    if path.exists():
        plan = json.loads(path.read_text())
        if plan["fingerprint"] != cfg.fingerprint():
            raise SelfprefError(f"{out} holds a loop started with other arguments (see {path}); rerun "
                                "with the same arguments to resume, or use a new --output")
        return plan
    splits, funnel = plan_prompts(cfg)
    out.mkdir(parents=True, exist_ok=True)
    plan = {"fingerprint": cfg.fingerprint(), "config": cfg.plan_config(), "splits": splits,
            "prompt_funnel": funnel}
    write_json_atomic(path, plan, indent=2)
    if funnel and notify is not None:
        notify(f"prompts: {funnel_summary(funnel)}")
    return plan


def _policy(cfg: IterateConfig, out: Path, t: int) -> str | None:
    """pi_t: the starting model, the seed-trained pi_0, or iteration t's model."""
    return policy_path(out, t, cfg.model, bool(cfg.seed_data))


def labelling_reference(cfg: IterateConfig, out: Path, t: int) -> tuple[str | None, str]:
    """SELFEE's pi_ref for Eq. 7 at iteration t under cfg.selfee_reference (None: reference-free),
    and its name ('pi_init', 'pi_0', ... or 'none')."""
    return selfee_reference(cfg.selfee_reference or "initial", t, out, cfg.model,
                            cfg.reference_model, bool(cfg.seed_data))


def _seed_model(cfg: IterateConfig, out: Path, notify: Notify) -> None:
    assert cfg.seed_data  # called only when the loop has seed data
    target = out / "seed-model"
    if (target / "selfpref_train.json").exists():
        return
    notify(f"pi_0: DPO of {cfg.model or 'the embedded model'} on the seed data {cfg.seed_data}")
    # The seed stage is DPO (SELFEE Alg. 1): it never takes the loop's --train-config (a selfee
    # recipe), only its own --seed-train-config, or SELFEE §4.1's initial-stage settings.
    extra = {} if cfg.seed_train_recipe else dict(SELFEE_SEED_SETTINGS)
    train_atomic("dpo", cfg.seed_data, target, cfg.model, cfg,
                 {"parent_model": cfg.model, "parent_dataset": cfg.seed_data, "stage": "seed"},
                 cfg.seed_train_recipe, **extra)


def _iteration(cfg: IterateConfig, plan: dict[str, Any], t: int, out: Path, notify: Notify) -> dict[str, Any]:
    """Iteration t: build -> filter -> push -> train -> summary, each stage skipped when done."""
    from selfpref.data.refs import read_dataset

    st = _Stage(cfg, plan, t, out, notify, TRAINER[cfg.method])
    st.folder.mkdir(exist_ok=True)
    _build_stage(st)
    _filter_stage(st)
    df, record = read_dataset(st.data)
    if df.height == 0:
        raise st.no_pair(record.funnel)
    summary = _train_stage(st, _push_stage(st))
    return _summary_row(st, df, record, summary)


def iterate(cfg: IterateConfig, notify: Notify | None = None) -> list[dict[str, Any]]:
    """Run (or resume) the loop; returns one summary row per iteration.

    With ``cfg.evaluation``, pi_t is judged against pi_0 after each iteration (`LoopEvaluator`)
    and the rows gain its eval_* figures. The loop folder's README.md and plots/ are written last.
    """
    from selfpref.loop.evaluate import LoopEvaluator
    from selfpref.loop.report import write_loop_report

    say = notify or print
    out = Path(cfg.output)
    check_output_folder(out)
    evaluator = None
    if cfg.evaluation is not None:  # prompts, judge spec and finished evals checked before any work
        evaluator = LoopEvaluator(cfg.evaluation, out, _policy(cfg, out, 0), cfg.iterations, say)
    plan = _plan(cfg, out, say)
    if evaluator is not None:
        evaluator.prepare()
    if cfg.seed_data:
        _seed_model(cfg, out, say)
    rows = []
    for t in range(1, cfg.iterations + 1):
        done = out / f"iter-{t}" / "summary.json"
        if done.exists():
            say(f"iteration {t}/{cfg.iterations}: finished earlier, skipped")
            row = json.loads(done.read_text())
        else:
            if evaluator is not None:
                evaluator.release()  # no judge held in memory while building and training
            row = _iteration(cfg, plan, t, out, say)
        rows.append(evaluator.evaluate(t, row) if evaluator is not None else row)
    write_json_atomic(out / "summary.json", rows, indent=2)
    write_loop_report(out, rows, method=cfg.method, pi0=_policy(cfg, out, 0),
                      prompts_id=evaluator.prompts.id if evaluator is not None else None)
    return rows
