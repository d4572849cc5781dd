"""`selfpref judge check`: how often a judge agrees with people, before it labels anything.

Any judge of the judges layer (text, logits, rm, an endpoint, length, random) judges every pair of
a human-labelled dataset (any layout `selfpref import` reads) with the chosen answer as A, in both
orders. The figures, all in percent (RewardBench / alpaca_eval's `analyze_evaluators` reading):

- ``accuracy``: the share of pairs where the judge prefers the human's chosen answer (mean P of
  both orders > 0.5; a tie, exactly 0.5, counts half), with a seeded percentile-bootstrap 95%
  interval over pairs;
- ``accuracy_chosen_first`` / ``accuracy_chosen_second``: the same from one order alone;
- ``consistency``, ``ties``;
- ``by_length_diff``: accuracy where the chosen answer is longer / shorter / as long (in
  characters): a judge that only prefers the longer answer scores ~100 / ~0 there;
- ``by_length_bucket``: accuracy by the pair's mean length, in terciles of this dataset;
- ``bias``: `selfpref.judges.bias.bias_report` (position, length, LC length coefficient).

Writes ``judge_check.json``, ``judgments.parquet`` (one row per pair) and ``accuracy.png``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfpref import SelfprefError, __version__


@dataclass
class JudgeCheckConfig:
    """Every option of `selfpref judge check`; ``__post_init__`` names the flag and the fix."""

    data: str = field(metadata={"help": "Human-labelled pairs: a file, folder or Hub id in any layout `selfpref import` reads."})
    output: str = field(metadata={"help": "Folder to write (judge_check.json, judgments.parquet, accuracy.png)."})
    judge: str = field(default="logits", metadata={"help": "logits, text, rm, implicit (SELFEE's implicit reward of --judge-model against --judge-reference), length, length:longer, random."})
    judge_reference: str | None = field(default=None, metadata={"help": "--judge implicit: the reference model (unset: reference-free, SELFEE Table 5)."})
    beta: float = field(default=0.1, metadata={"help": "--judge implicit: beta of SELFEE Eq. 7."})
    judge_model: str | list[str] | None = field(default=None, metadata={"help": "Judge model: folder, Hub id, 'default', a reward model (rm), or the endpoint's model name; several make a panel."})
    panel: str = field(default="mean", metadata={"help": "Several judge models: mean, majority or unanimous."})
    judge_base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint of the judge (…/v1)."})
    judge_api_key_env: str | None = field(default=None, metadata={"help": "NAME of the environment variable with the endpoint's key."})
    judge_backend: str | None = field(default=None, metadata={"help": "transformers (default), vllm, or openai."})
    judge_orders: int = field(default=2, metadata={"help": "2: both orders (default); 1: chosen shown first only."})
    judge_max_new_tokens: int = field(default=32, metadata={"help": "--judge text: most new tokens per verdict."})
    layout: str | None = field(default=None, metadata={"help": "Source layout (default: detected, as `import`)."})
    split: str | None = field(default=None, metadata={"help": "Split of a Hub dataset or files of a folder."})
    max_pairs: int | None = field(default=None, metadata={"help": "Judge only the first N pairs (a quick look)."})
    batch_size: int = field(default=8, metadata={"help": "Sequences per forward pass."})
    bootstrap: int = field(default=1000, metadata={"help": "Bootstrap resamples for the 95% interval (0: none)."})
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap, the random judge and binarized layouts."})

    def __post_init__(self) -> None:
        if isinstance(self.judge_model, (list, tuple)):
            models = [str(m) for m in self.judge_model]
            self.judge_model = models[0] if len(models) == 1 else (models or None)
        if self.max_pairs is not None and self.max_pairs < 1:
            raise SelfprefError(f"--max-pairs {self.max_pairs}: give at least 1")
        if self.bootstrap < 0:
            raise SelfprefError(f"--bootstrap {self.bootstrap}: give a number of resamples >= 0")
        if self.judge_orders not in (1, 2):
            raise SelfprefError(f"--judge-orders {self.judge_orders}: use 2 (both orders) or 1")
        out = Path(self.output)
        if out.exists() and not (out.is_dir() and ((out / "judge_check.json").is_file() or not any(out.iterdir()))):
            raise SelfprefError(f"--output {self.output}: exists and is not a judge-check folder (no "
                                "judge_check.json); pick a new folder")


def load_pairs(cfg: JudgeCheckConfig) -> tuple[Any, dict[str, int]]:
    """(prompt/history/chosen/rejected rows, unmappable rows per reason) as `import` maps them."""
    from selfpref.data.importer import import_rows, read_source

    source = read_source(cfg.data, cfg.split, flag="--data")
    rows, dropped = import_rows(source, layout=cfg.layout, seed=cfg.seed)
    if cfg.max_pairs:
        rows = rows.head(cfg.max_pairs)
    return rows, dict(dropped)


def make_check_judge(cfg: JudgeCheckConfig) -> Any:
    from selfpref.judges import make_judge, make_panel

    if cfg.judge == "implicit":  # SELFEE §4.1: a policy's implicit reward against a reference
        from selfpref.judges.reward import ImplicitRewardJudge
        from selfpref.models.local import LocalModel
        from selfpref.models.resolve import model_label, resolve_model

        if isinstance(cfg.judge_model, list):
            raise SelfprefError("--judge implicit takes one --judge-model (the policy)")
        refs = [r for r in (cfg.judge_model, cfg.judge_reference) if r is not None]
        for flag, ref in zip(("--judge-model", "--judge-reference"), refs):
            resolve_model(ref, flag=flag)  # a missing folder fails now
        reference = LocalModel(cfg.judge_reference, batch_size=cfg.batch_size) if cfg.judge_reference else None
        return ImplicitRewardJudge(LocalModel(cfg.judge_model, batch_size=cfg.batch_size), reference,
                                   beta=cfg.beta, model_label=model_label(cfg.judge_model),
                                   reference_label=model_label(cfg.judge_reference) if reference else None,
                                   orders=cfg.judge_orders)
    if cfg.judge_reference:
        raise SelfprefError("--judge-reference goes with --judge implicit")
    if isinstance(cfg.judge_model, list):
        return make_panel(cfg.judge, cfg.judge_model, cfg.panel, seed=cfg.seed, batch_size=cfg.batch_size,
                          max_new_tokens=cfg.judge_max_new_tokens)
    return make_judge(cfg.judge, cfg.judge_model, base_url=cfg.judge_base_url,
                      api_key_env=cfg.judge_api_key_env, backend=cfg.judge_backend, seed=cfg.seed,
                      max_new_tokens=cfg.judge_max_new_tokens, batch_size=cfg.batch_size,
                      orders=cfg.judge_orders)


def _correct(p: np.ndarray) -> np.ndarray:
    """1 where P(chosen better) > 0.5, 0.5 for a tie, 0 otherwise."""
    return np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))


def _acc(p: np.ndarray) -> float | None:
    return float(_correct(p).mean() * 100) if p.size else None


def accuracy_figures(p_first: Sequence[float], p_second: Sequence[float] | None,
                     len_chosen: Sequence[int], len_rejected: Sequence[int], *,
                     bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The figures of the module doc from per-pair P(chosen better) in each order."""
    from selfpref.eval.stats import length_fit
    from selfpref.judges.bias import bias_report

    p1 = np.asarray(p_first, dtype=float)
    p2 = np.asarray(p_second, dtype=float) if p_second is not None else None
    score = p1 if p2 is None else (p1 + p2) / 2
    lc, lr = np.asarray(len_chosen), np.asarray(len_rejected)
    n = int(score.size)
    out: dict[str, Any] = {"n": n, "accuracy": _acc(score), "ci95": None, "bootstrap": int(bootstrap),
                           "accuracy_chosen_first": _acc(p1),
                           "accuracy_chosen_second": _acc(p2) if p2 is not None else None,
                           "consistency": (float(np.mean((p1 > .5) & (p2 > .5) | (p1 < .5) & (p2 < .5)) * 100)
                                           if p2 is not None and n else None),
                           "ties": float(np.mean(score == 0.5) * 100) if n else None}
    if bootstrap and n:
        idx = np.random.default_rng(seed).integers(0, n, size=(bootstrap, n))
        accs = _correct(score)[idx].mean(axis=1) * 100
        out["ci95"] = [float(np.percentile(accs, 2.5)), float(np.percentile(accs, 97.5))]
    diff = lc - lr
    out["by_length_diff"] = {name: {"n": int(mask.sum()), "accuracy": _acc(score[mask])}
                             for name, mask in (("chosen_longer", diff > 0), ("chosen_shorter", diff < 0),
                                                ("same_length", diff == 0))}
    mean_len = (lc + lr) / 2
    edges = np.quantile(mean_len, [1 / 3, 2 / 3]) if n else [0, 0]
    buckets = (("short", mean_len <= edges[0]), ("medium", (mean_len > edges[0]) & (mean_len <= edges[1])),
               ("long", mean_len > edges[1]))
    out["by_length_bucket"] = {name: {"n": int(mask.sum()), "accuracy": _acc(score[mask]),
                                      "mean_chars": float(mean_len[mask].mean()) if mask.any() else None}
                               for name, mask in buckets}
    coef = None
    if n >= 2 and np.std(diff) > 0:
        coef = length_fit(score, lc, lr).length_coef
    out["bias"] = bias_report(p1, p2, lc, lr, length_coef=coef)
    return out


def _plot(path: Path, figures: dict[str, Any], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # the report is a file; no display
    import matplotlib.pyplot as plt

    groups = [("all", figures["accuracy"]),
              *((f"chosen {k.split('_')[1]}" if k != "same_length" else "same length", v["accuracy"])
                for k, v in figures["by_length_diff"].items()),
              *((f"{k} pairs", v["accuracy"]) for k, v in figures["by_length_bucket"].items())]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = [g for g, _ in groups]
    ax.bar(names, [v if v is not None else 0 for _, v in groups], color="#4c72b0")
    ax.axhline(50, color="grey", linestyle="--", linewidth=1)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy vs humans (%)")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_judge_check(cfg: JudgeCheckConfig, *, judge: Any = None,
                    notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Judge every pair, compute the figures, write ``cfg.output``; returns judge_check.json."""
    import shutil
    import tempfile

    import polars as pl

    from selfpref.data.store import replace_folder

    notify = notify or (lambda _m: None)
    judge = judge or make_check_judge(cfg)  # before reading: a bad judge spec fails at once
    rows, unmappable = load_pairs(cfg)
    if rows.height == 0:
        raise SelfprefError(f"--data {cfg.data}: no pair to judge")
    notify(f"judging {rows.height} human-labelled pairs with {judge.label} "
           f"({'both orders' if judge.orders == 2 else 'one order'})")
    histories = rows["history"].to_list() if "history" in rows.columns else [None] * rows.height
    items = [(p, h or (), c, r) for p, h, c, r in zip(rows["prompt"], histories, rows["chosen"], rows["rejected"])]
    judgments = judge.judge(items)
    p1 = [j.p_a_first for j in judgments]
    p2 = [j.p_a_second for j in judgments] if judge.orders == 2 else None
    lc, lr = [len(c) for c in rows["chosen"]], [len(r) for r in rows["rejected"]]
    figures = accuracy_figures(p1, p2, lc, lr, bootstrap=cfg.bootstrap, seed=cfg.seed)
    if judgments and judgments[0].members:  # a panel: each member's accuracy and bias too
        figures["members"] = {label: accuracy_figures(
            [j.members[label].p_a_first for j in judgments], [j.members[label].p_a_second for j in judgments],
            lc, lr, bootstrap=0) for label in judgments[0].members}
        from selfpref.judges.agreement import agreement_report

        figures["bias"]["panel"] = agreement_report(
            {label: [j.members[label].score for j in judgments] for label in judgments[0].members},
            [j.score for j in judgments])
    summary = {**figures, "judge": judge.describe(), "data": cfg.data, "unmappable": unmappable,
               "config": {**asdict(cfg), "judge_base_url": bool(cfg.judge_base_url) or None},
               "selfpref_version": __version__}
    table = pl.DataFrame({"prompt": rows["prompt"], "chosen": rows["chosen"], "rejected": rows["rejected"],
                          "len_chosen": lc, "len_rejected": lr, "p_chosen_first": p1,
                          "p_chosen_second": p1 if p2 is None else p2,
                          "score": [j.score for j in judgments],
                          "judge_raw": [list(j.raw) for j in judgments]},
                         schema_overrides={"judge_raw": pl.List(pl.Utf8)})
    folder = Path(cfg.output)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        tmp.chmod(0o755)
        table.write_parquet(tmp / "judgments.parquet")
        (tmp / "judge_check.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        _plot(tmp / "accuracy.png", figures, f"{judge.label} on {Path(cfg.data).name} ({rows.height} pairs)")
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def format_table(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows for the terminal."""
    def pct(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}%"

    ci = summary.get("ci95")
    rows = [("pairs", str(summary["n"])),
            ("accuracy", pct(summary["accuracy"]) + (f"  [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")),
            ("accuracy, chosen shown first", pct(summary["accuracy_chosen_first"])),
            ("accuracy, chosen shown second", pct(summary["accuracy_chosen_second"])),
            ("consistency (both orders agree)", pct(summary["consistency"])),
            ("ties", pct(summary["ties"]))]
    for name, v in summary["by_length_diff"].items():
        rows.append((f"accuracy, {name.replace('_', ' ')} (n={v['n']})", pct(v["accuracy"])))
    for name, v in summary["by_length_bucket"].items():
        rows.append((f"accuracy, {name} pairs (n={v['n']})", pct(v["accuracy"])))
    bias = summary["bias"]
    rows += [("verdicts for the first-shown answer", pct(bias["first_shown"])),
             ("decided verdicts for the longer answer", pct(bias["longer"])),
             ("LC length coefficient", "-" if bias["length_coef"] is None else f"{bias['length_coef']:+.2f}")]
    return rows
