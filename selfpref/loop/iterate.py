"""`selfpref iterate`: the self-alignment loop, each model making the next model's data.

For t = 1..T: build with pi_{t-1} -> filter with the method's recipe -> card -> push to
--push-to-hub org/name, tagged v0.t.0 (optional) -> train pi_t from pi_{t-1} (SAO: SimPO, SSO: the
SSO loss, SELFEE: the refined DPO with lambda 1/2, 1/4, 1/8, ...). Iterations see disjoint prompts
(SSO §3.1 splits its prompts 1:1:1; SELFEE §5.1 gives each iteration new prompts). SELFEE labels
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
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from selfpref import SelfprefError
from selfpref.data.store import replace_folder, write_json_atomic
from selfpref.loop.evaluate import LoopEval
from selfpref.loop.reference import check_selfee_reference, policy_path, selfee_reference

TRAINER = {"sao": "simpo", "sso": "sso", "selfee": "selfee"}
# SAO: dedup + judge consistency; SSO: A.1.4 steps 1 and 3 (step 2 when judge models are given);
# SELFEE: none (the paper trains on every labelled pair; its refinement handles noise).
DEFAULT_FILTERS: dict[str, list[tuple[str, Any]]] = {
    "sao": [("dedup", "minhash"), ("require_consistent_judge", True)],
    "sso": [("dedup", "minhash"), ("max_length_diff", 3000), ("balance_length", True)],
    "selfee": [],
}
Notify = Callable[[str], None]
# SELFEE §4.1 / §5.1 initial stage (pi_0): DPO on the seed set for 3 epochs, beta 0.1, lr 5e-7,
# cosine with 10% warm-up. recipes/dpo/selfee-seed.yaml holds the same values (a test keeps them equal).
SELFEE_SEED_SETTINGS: dict[str, Any] = {"beta": 0.1, "learning_rate": 5e-7, "num_train_epochs": 3,
                                        "lr_scheduler_type": "cosine", "warmup_steps": 0.1}


@dataclass
class IterateConfig:
    method: str
    iterations: int
    output: str
    model: str | None = None
    prompts: str | None = None
    num_prompts: int | None = None
    reference_model: str | None = None
    seed_data: str | None = None
    # SELFEE Table 5's judgment reference: initial (pi_init, the paper's), previous, none;
    # None: initial for selfee, and nothing for the other methods
    selfee_reference: str | None = None
    name: str | None = None
    seed: int = 0
    filters: list[tuple[str, Any]] | None = None  # None: the method's default recipe
    filter_options: dict[str, Any] = field(default_factory=dict)
    judge_models: list[str] | None = None
    lambdas: list[float] | None = None
    build: dict[str, Any] = field(default_factory=dict)  # BuildConfig fields
    train: dict[str, Any] = field(default_factory=dict)  # train() overrides
    train_recipe: str | None = None
    seed_train_recipe: str | None = None  # the seed DPO stage's recipe (default: SELFEE_SEED_SETTINGS)
    push_to_hub: str | None = None
    prompt_column: str | None = None
    # pi_t vs pi_0 after each iteration (selfpref.loop.evaluate); not part of the fingerprint, so
    # rerunning a finished loop with it evaluates that loop
    evaluation: LoopEval | None = None

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
        if self.filters is None:
            self.filters = list(DEFAULT_FILTERS[self.method])
            if self.judge_models and self.method == "sso":
                self.filters.insert(2, ("judge_models", self.judge_models))
        self.filters = [tuple(step) for step in self.filters]

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
        (prompt_column None, selfee_reference initial) are left out, so older loops still resume."""
        data = {k: v for k, v in self.plan_config().items()
                if k != "push_to_hub" and not (k == "prompt_column" and v is None)
                and not (k == "selfee_reference" and v in (None, "initial"))}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def lam(self, t: int) -> float:
        return self.lambdas[t - 1] if self.lambdas else 0.5 ** t  # SELFEE §5.1: 1/2, 1/4, 1/8


def split_prompts(prompts: list[str], parts: int, per_part: int | None, seed: int,
                  minimum: int = 1) -> list[list[str]]:
    """Disjoint prompt sets, one per iteration: shuffled once, cut into equal parts (SSO §3.1)."""
    unique = list(dict.fromkeys(p.strip() for p in prompts if isinstance(p, str) and p.strip()))
    random.Random(seed).shuffle(unique)
    size = len(unique) // parts
    if per_part:
        size = min(size, per_part)
    if size == 0 or size < minimum:
        need = max(minimum, 1)
        cap = f" (--num-prompts {per_part} caps each)" if per_part and per_part < need else ""
        raise SelfprefError(f"--prompts has {len(unique)} distinct prompts for {parts} iterations, "
                            f"{size} per iteration{cap}: each iteration needs its own {need} or more "
                            f"(its filters need {need} to keep any pair), so give at least "
                            f"{need * parts} prompts or fewer --iterations")
    return [unique[i * size : (i + 1) * size] for i in range(parts)]


def check_output_folder(out: Path) -> None:
    """The --output of a loop is new, empty, or a loop folder (iterate.json) to resume."""
    if out.is_file():
        raise SelfprefError(f"--output {out}: a file is already there; name a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "iterate.json").is_file():
        raise SelfprefError(f"--output {out}: a folder that is not a selfpref loop (no iterate.json) "
                            "is already there; choose a new folder")


def plan_splits(cfg: IterateConfig) -> list[list[str]] | None:
    """The prompts of each iteration (None: sao writes its own), checked to be enough."""
    if not cfg.prompts:
        need = cfg.min_prompts()
        if cfg.num_prompts is not None and cfg.num_prompts < need:
            raise SelfprefError(f"--num-prompts {cfg.num_prompts}: each iteration needs {need} or more "
                                f"prompts for its filters to keep any pair")
        return None
    from selfpref.data.importer import read_texts

    return split_prompts(read_texts(cfg.prompts, cfg.prompt_column), cfg.iterations,
                         cfg.num_prompts, cfg.seed, minimum=cfg.min_prompts())


def _plan(cfg: IterateConfig, out: Path) -> dict[str, Any]:
    """The loop's plan (config + prompt splits), written once; a rerun must match it."""
    path = out / "iterate.json"
    if path.exists():
        plan = json.loads(path.read_text())
        if plan["fingerprint"] != cfg.fingerprint():
            raise SelfprefError(f"{out} holds a loop started with other arguments (see {path}); rerun "
                                "with the same arguments to resume, or use a new --output")
        return plan
    splits = plan_splits(cfg)
    out.mkdir(parents=True, exist_ok=True)
    plan = {"fingerprint": cfg.fingerprint(), "config": cfg.plan_config(), "splits": splits}
    write_json_atomic(path, plan, indent=2)
    return plan


def no_pair_hint(cfg: IterateConfig, funnel: list[dict[str, Any]], prompts: int) -> str:
    """What to change when an iteration kept no pair: only the knobs that apply to this run."""
    hints = []
    emptied = next((f for f in funnel if f.get("kept") == 0), None)
    step = (emptied or {}).get("step", "")
    if step == "judge_consistency":
        hints.append("the judge never agreed with itself across orders (small models rarely do, "
                     "SAO App. B): drop the consistency filter with --filters "
                     "recipes/filter/sao-small-judge.yaml")
    elif step == "length_balance":
        hints.append(f"length balance needs pairs with chosen longer and with chosen shorter; "
                     f"{prompts} prompts gave none on one side: give more prompts per iteration")
    elif emptied is not None and step not in ("", "build") and emptied is not funnel[0]:
        hints.append(f"the {step} filter dropped every pair: loosen or remove it with --filters FILE")
    unparsed = {r for f in funnel for r in (f.get("dropped") or {}) if r.startswith("judge_")}
    judge = cfg.build.get("judge") or cfg.build.get("judge_mode") or "text"
    if cfg.method == "sao" and judge == "text" and unparsed:
        hints.append(f"--judge-mode logits (a verdict that always parses; the text judge lost pairs "
                     f"to {', '.join(sorted(unparsed))})")
    if cfg.prompts and step != "length_balance":
        hints.append(f"more prompts in {cfg.prompts} (this iteration had {prompts})")
    elif not cfg.prompts and step not in ("judge_consistency",):
        hints.append(f"a larger --num-prompts (this iteration had {prompts})")
    return "; or ".join(hints) if hints else "loosen the filters (--filters FILE)"


def _policy(cfg: IterateConfig, out: Path, t: int) -> str | None:
    """pi_t: the starting model, the seed-trained pi_0, or iteration t's model."""
    return policy_path(out, t, cfg.model, bool(cfg.seed_data))


def labelling_reference(cfg: IterateConfig, out: Path, t: int) -> tuple[str | None, str]:
    """SELFEE's pi_ref for Eq. 7 at iteration t under cfg.selfee_reference (None: reference-free),
    and its name ('pi_init', 'pi_0', ... or 'none')."""
    return selfee_reference(cfg.selfee_reference or "initial", t, out, cfg.model,
                            cfg.reference_model, bool(cfg.seed_data))


def _train_atomic(method: str, dataset: str, target: Path, model: str | None, cfg: IterateConfig,
                  lineage: dict[str, Any], recipe: str | None, **extra: Any) -> dict[str, Any]:
    from selfpref.trainers.run import train

    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    summary = train(method, dataset, tmp, model=model, recipe=recipe, **{**extra, **cfg.train})
    summary["lineage"] = lineage
    write_json_atomic(tmp / "selfpref_train.json", summary, indent=2)
    replace_folder(tmp, target)
    return summary


def _seed_model(cfg: IterateConfig, out: Path, notify: Notify) -> None:
    target = out / "seed-model"
    if (target / "selfpref_train.json").exists():
        return
    notify(f"pi_0: DPO of {cfg.model or 'the embedded model'} on the seed data {cfg.seed_data}")
    # The seed stage is DPO (SELFEE Alg. 1): it never takes the loop's --train-config (a selfee
    # recipe), only its own --seed-train-config, or SELFEE §4.1's initial-stage settings.
    extra = {} if cfg.seed_train_recipe else dict(SELFEE_SEED_SETTINGS)
    _train_atomic("dpo", cfg.seed_data, target, cfg.model, cfg,
                  {"parent_model": cfg.model, "parent_dataset": cfg.seed_data, "stage": "seed"},
                  cfg.seed_train_recipe, **extra)


def _iteration(cfg: IterateConfig, plan: dict[str, Any], t: int, out: Path, notify: Notify) -> dict[str, Any]:
    from selfpref.pipelines.run import build
    from selfpref.datacards import card_writer
    from selfpref.filters.apply import filter_dataset
    from selfpref.pipelines.config import BuildConfig
    from selfpref.data.refs import read_dataset
    from selfpref.data.store import is_dataset_folder

    folder = out / f"iter-{t}"
    folder.mkdir(exist_ok=True)
    policy, name, version = _policy(cfg, out, t - 1), cfg.name or out.name, f"0.{t}.0"
    steps = cfg.filters or []
    raw = folder / "raw"
    data = folder / "data" if steps else raw
    head = f"iteration {t}/{cfg.iterations}"
    judged: dict[str, Any] = {}
    if cfg.method == "selfee":
        ref, role = labelling_reference(cfg, out, t)
        judged = {"selfee_reference": cfg.selfee_reference, "reference": role, "reference_model": ref}
    if not is_dataset_folder(raw):
        options = {**cfg.build, "method": cfg.method, "model": policy, "seed": cfg.seed + t}
        if plan["splits"]:
            split = folder / "prompts.jsonl"  # one 'prompt' column, whatever --prompt-column was
            split.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in plan["splits"][t - 1]))
            options.update(prompts=str(split), num_prompts=len(plan["splits"][t - 1]))
        elif cfg.num_prompts:
            options["num_prompts"] = cfg.num_prompts
        if cfg.method == "selfee":
            options["reference_model"] = judged["reference_model"]
        labels = ""
        if judged:
            labels = (f", labelled against {judged['reference']} ({judged['reference_model']})"
                      if judged["reference_model"] else ", labelled reference-free (SELFEE Table 5)")
        notify(f"{head}: build {cfg.method} with {policy or 'the embedded model'}{labels}")
        build(BuildConfig(**options), raw, name=f"{name}-raw" if steps else name, version=version,
              command=f"selfpref iterate (iteration {t})", card=card_writer(), notify=notify,
              extra_stats={"iteration": {"index": t, "of": cfg.iterations, "policy": policy,
                                         "previous_dataset": f"{name}@0.{t - 1}.0" if t > 1 else None,
                                         **judged}})
    if steps and not is_dataset_folder(data):
        # near-duplicates of earlier iterations' prompts go too: iterations see disjoint prompts
        against = [str(out / f"iter-{s}" / "data") for s in range(1, t)] if ("dedup", "minhash") in steps else []
        notify(f"{head}: filter ({', '.join(k for k, _ in steps)})")
        from selfpref.filters.apply import EmptyResult

        try:
            filter_dataset(raw, data, steps, cfg.filter_options, against=against or None, name=name,
                           version=version, card=card_writer())
        except EmptyResult as empty:
            prompts = len(plan["splits"][t - 1]) if plan["splits"] else (cfg.num_prompts or 8)
            funnel = read_dataset(raw)[1].funnel + empty.reports
            kept = "; ".join(f"{f['step']}: {f['kept']} kept" for f in funnel)
            raise SelfprefError(f"{head}: no pair left to train on ({kept}); try "
                                f"{no_pair_hint(cfg, funnel, prompts)}") from None
    df, record = read_dataset(data)
    if df.height == 0:
        funnel = "; ".join(f"{f['step']}: {f['kept']} kept" for f in record.funnel)
        prompts = len(plan["splits"][t - 1]) if plan["splits"] else (cfg.num_prompts or 8)
        raise SelfprefError(f"{head}: no pair left to train on ({funnel}); try "
                            f"{no_pair_hint(cfg, record.funnel, prompts)}")
    dataset_ref = str(data)
    if cfg.push_to_hub:
        pushed = folder / "pushed.json"
        if not pushed.exists():
            from selfpref.data.hub import push_folder

            url = push_folder(data, cfg.push_to_hub, version=version)
            write_json_atomic(pushed, {"repo": cfg.push_to_hub, "version": version, "url": url}, indent=2)
            notify(f"{head}: pushed {cfg.push_to_hub}@v{version}")
        dataset_ref = f"{cfg.push_to_hub}@v{version}"
    model_dir = folder / "model"
    if (model_dir / "selfpref_train.json").exists():
        summary = json.loads((model_dir / "selfpref_train.json").read_text())
    else:
        notify(f"{head}: train {TRAINER[cfg.method]} from {policy or 'the embedded model'}")
        extra = {"selfee_lambda": cfg.lam(t)} if cfg.method == "selfee" else {}
        summary = _train_atomic(TRAINER[cfg.method], dataset_ref, model_dir, policy, cfg,
                                {"parent_model": policy, "parent_dataset": dataset_ref,
                                 "iteration": t}, cfg.train_recipe, **extra)
    sep = record.stats.get("separability") or {}
    row = {"iteration": t, "dataset": f"{name}@{version}", "rows_kept": df.height,
           "mean_chosen_chars": round(float(df["chosen"].str.len_chars().mean()), 1),
           "mean_rejected_chars": round(float(df["rejected"].str.len_chars().mean()), 1),
           "mean_confidence": (None if df["confidence"].null_count() == df.height
                               else round(float(df["confidence"].mean()), 3)),
           "separability": round(sep["accuracy"], 3) if "accuracy" in sep else None,
           "train_loss": round(float(summary["train_loss"]), 4), "model": str(model_dir), **judged}
    write_json_atomic(folder / "summary.json", row, indent=2)
    return row


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
    plan = _plan(cfg, out)
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
