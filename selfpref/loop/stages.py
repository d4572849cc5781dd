"""The stages of one `selfpref iterate` iteration, one function each: build, filter, push, train,
summary. Each is skipped when its output exists (so a rerun resumes), and writes atomically.
`selfpref.loop.iterate` runs them in order for t = 1..T.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.data.funnel import funnel_text
from selfpref.data.store import replace_folder, write_json_atomic
from selfpref.loop.reference import policy_path, selfee_reference
from selfpref.models.memory import release_memory

Notify = Callable[[str], None]
# The loop's options, `selfpref.loop.iterate.IterateConfig` (not imported: iterate imports this module).
IterateConfig = Any


def iteration_prompts(cfg: IterateConfig, plan: dict[str, Any], t: int) -> int:
    """How many prompts iteration t starts from (for the hints)."""
    return len(plan["splits"][t - 1]) if plan["splits"] else (cfg.prompts_at(t) or 8)


def no_pair_hint(cfg: IterateConfig, funnel: list[dict[str, Any]], prompts: int) -> str:
    """What to change when an iteration kept no pair: only the knobs that apply to this run."""
    hints = []
    emptied = next((f for f in funnel if f.get("kept") == 0), None)
    step = (emptied or {}).get("step", "")
    if step == "judge_consistency":
        hints.append("the judge never agreed with itself across orders (small models rarely do, "
                     "SAO App. B): drop require_consistent_judge from --filters (the loop's "
                     "default has no filter; the shipped sao-small-judge recipe has none)")
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


def train_atomic(method: str, dataset: str, target: Path, model: str | None, cfg: IterateConfig,
                 lineage: dict[str, Any], recipe: str | None, **extra: Any) -> dict[str, Any]:
    """Train into a temporary folder, record the lineage, then rename: a model folder with
    selfpref_train.json is always a finished model."""
    from selfpref.trainers.run import train

    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    summary = train(method, dataset, tmp, model=model, recipe=recipe, **{**extra, **cfg.train})
    release_memory()  # the trainer's CUDA cache would fail the next vLLM engine's memory check
    summary["lineage"] = lineage
    write_json_atomic(tmp / "selfpref_train.json", summary, indent=2)
    replace_folder(tmp, target)
    return summary


class _Stage:
    """What every stage of iteration t shares: where it writes, pi_{t-1}, the dataset's name."""

    def __init__(self, cfg: IterateConfig, plan: dict[str, Any], t: int, out: Path, notify: Notify,
                 trainer: str):
        self.cfg, self.plan, self.t, self.out, self.notify = cfg, plan, t, out, notify
        self.trainer = trainer  # the method that trains pi_t (iterate.TRAINER)
        self.folder = out / f"iter-{t}"
        self.policy = policy_path(out, t - 1, cfg.model, bool(cfg.seed_data))
        self.name, self.version = cfg.name or out.name, f"0.{t}.0"
        self.steps = cfg.filters or []
        self.raw = self.folder / "raw"
        self.data = self.folder / "data" if self.steps else self.raw
        self.head = f"iteration {t}/{cfg.iterations}"
        self.judged: dict[str, Any] = {}
        if cfg.method == "selfee":
            ref, role = selfee_reference(cfg.selfee_reference or "initial", t, out, cfg.model,
                                         cfg.reference_model, bool(cfg.seed_data))
            self.judged = {"selfee_reference": cfg.selfee_reference, "reference": role,
                           "reference_model": ref}

    def no_pair(self, funnel: list[dict[str, Any]]) -> SelfprefError:
        kept = funnel_text(funnel)
        hint = no_pair_hint(self.cfg, funnel, iteration_prompts(self.cfg, self.plan, self.t))
        return SelfprefError(f"{self.head}: no pair left to train on ({kept}); try {hint}")


def _build_stage(st: _Stage) -> None:
    """Build iteration t's raw pairs with pi_{t-1} (resumes chunk by chunk; skipped when built)."""
    from selfpref.data.store import is_dataset_folder
    from selfpref.datacards import card_writer
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build

    if is_dataset_folder(st.raw):
        return
    cfg, t = st.cfg, st.t
    options = {**cfg.build, "method": cfg.method, "model": st.policy, "seed": cfg.seed + t}
    if st.plan["splits"]:
        split = st.folder / "prompts.jsonl"  # one 'prompt' column, whatever --prompt-column was
        split.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in st.plan["splits"][t - 1]))
        options.update(prompts=str(split), num_prompts=len(st.plan["splits"][t - 1]))
    elif cfg.prompts_at(t):
        options["num_prompts"] = cfg.prompts_at(t)
    labels = ""
    if st.judged:
        options["reference_model"] = st.judged["reference_model"]
        labels = (f", labelled against {st.judged['reference']} ({st.judged['reference_model']})"
                  if st.judged["reference_model"] else ", labelled reference-free (SELFEE Table 5)")
    st.notify(f"{st.head}: build {cfg.method} with {st.policy or 'the embedded model'}{labels}")
    iteration = {"index": t, "of": cfg.iterations, "policy": st.policy,
                 "previous_dataset": f"{st.name}@0.{t - 1}.0" if t > 1 else None, **st.judged}
    if st.plan.get("prompt_funnel"):  # the loop's prompt funnel, seed-set exclusion included
        iteration["prompt_funnel"] = st.plan["prompt_funnel"]
    build(BuildConfig(**options), st.raw, name=f"{st.name}-raw" if st.steps else st.name,
          version=st.version, command=f"selfpref iterate (iteration {t})", card=card_writer(),
          notify=st.notify, extra_stats={"iteration": iteration})


def _filter_stage(st: _Stage) -> None:
    """Apply --filters to the raw pairs (nothing by default); an empty result names the fix."""
    from selfpref.data.refs import read_dataset
    from selfpref.data.store import is_dataset_folder
    from selfpref.datacards import card_writer
    from selfpref.filters.apply import EmptyResult, filter_dataset

    if not st.steps or is_dataset_folder(st.data):
        return
    # near-duplicates of earlier iterations' prompts go too: iterations see disjoint prompts
    against = ([str(st.out / f"iter-{s}" / "data") for s in range(1, st.t)]
               if ("dedup", "minhash") in st.steps else [])
    st.notify(f"{st.head}: filter ({', '.join(k for k, _ in st.steps)})")
    try:
        filter_dataset(st.raw, st.data, st.steps, st.cfg.filter_options, against=against or None,
                       name=st.name, version=st.version, card=card_writer())
    except EmptyResult as empty:
        raise st.no_pair(read_dataset(st.raw)[1].funnel + empty.reports) from None


def _push_stage(st: _Stage) -> str:
    """Push the iteration's dataset (with --push-to-hub, once); the reference training reads."""
    if not st.cfg.push_to_hub:
        return str(st.data)
    repo = st.cfg.push_to_hub
    pushed = st.folder / "pushed.json"
    if not pushed.exists():
        from selfpref.data.hub import push_folder

        url = push_folder(st.data, repo, version=st.version)
        write_json_atomic(pushed, {"repo": repo, "version": st.version, "url": url}, indent=2)
        st.notify(f"{st.head}: pushed {repo}@v{st.version}")
    return f"{repo}@v{st.version}"


def _train_stage(st: _Stage, dataset_ref: str) -> dict[str, Any]:
    """Train pi_t from pi_{t-1} on the dataset (skipped when its model is finished)."""
    model_dir = st.folder / "model"
    if (model_dir / "selfpref_train.json").exists():
        return json.loads((model_dir / "selfpref_train.json").read_text())
    cfg = st.cfg
    st.notify(f"{st.head}: train {st.trainer} from {st.policy or 'the embedded model'}")
    extra = {"selfee_lambda": cfg.lam(st.t)} if cfg.method == "selfee" else {}
    return train_atomic(st.trainer, dataset_ref, model_dir, st.policy, cfg,
                         {"parent_model": st.policy, "parent_dataset": dataset_ref,
                          "iteration": st.t}, cfg.train_recipe, **extra)


def _summary_row(st: _Stage, df: Any, record: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """The iteration's row of the loop summary, written to iter-t/summary.json."""
    sep = record.stats.get("separability") or {}
    row = {"iteration": st.t, "dataset": f"{st.name}@{st.version}", "rows_kept": df.height,
           "mean_chosen_chars": round(float(df["chosen"].str.len_chars().mean()), 1),
           "mean_rejected_chars": round(float(df["rejected"].str.len_chars().mean()), 1),
           "mean_confidence": (None if df["confidence"].null_count() == df.height
                               else round(float(df["confidence"].mean()), 3)),
           "separability": round(sep["accuracy"], 3) if "accuracy" in sep else None,
           "train_loss": round(float(summary["train_loss"]), 4), "model": str(st.folder / "model"),
           **st.judged}
    write_json_atomic(st.folder / "summary.json", row, indent=2)
    return row
