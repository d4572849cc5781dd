"""Write an evaluation's figures as a README.md with two plots, readable without selfpref.

The summary comes from `selfpref.eval.stats.summarize_scores`; the judgments are any table whose
``table["score"]``, ``table["len_a"]``, ``table["len_b"]`` give one value per prompt (a polars
DataFrame, or a dict of arrays).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from selfpref import SelfprefError

# Below this share of prompts judged the same way in both orders, the verdicts mostly follow the
# position of the answers (a judge that picks by coin agrees with itself 50% of the time).
LOW_CONSISTENCY = 60.0

ROWS = (  # (summary key, label, ci95 key)
    ("win_rate", "Win % (score > 0.5)", "win_rate"),
    ("lose_rate", "Lose % (score < 0.5)", None),
    ("tie_rate", "Tie % (score = 0.5)", None),
    ("net_win", "Net win % (win - lose, AlignEZ)", "net_win"),
    ("mean_score", "Mean P(A better) % (AlpacaEval raw win rate)", None),
    ("lc_win_rate", "Length-controlled win %", "lc_win_rate"),
    ("judge_consistency", "Judge consistency % (same side in both orders)", None),
)


def consistency_note(consistency: float | None, n: int, *, fix: str = "--judge-model",
                     scope: str = "") -> str:
    """One honest sentence on what a judge's verdicts are worth at this self-consistency rate
    (``scope``: words after the prompt count, e.g. " (mean over iterations)")."""
    if consistency is None:
        return "No judge consistency was measured."
    if consistency < LOW_CONSISTENCY:
        return (f"The judge picked the same answer in both orders on only {consistency:.0f}% of "
                f"{n} prompts{scope}: its verdicts mostly follow which answer is shown first, so these "
                f"win rates measure position bias, not quality (a larger {fix} or an endpoint "
                "gives numbers that mean something).")
    tail = (f"with {n} prompts the 95% intervals are wide, so read a trend, not one number" if n < 50
            else "read each rate with its 95% interval")
    return (f"The judge picked the same answer in both orders on {consistency:.0f}% of {n} "
            f"prompts{scope}; {tail}.")


def _column(judgments: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(judgments[name], dtype=float).reshape(-1)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SelfprefError(f"judgments: no usable '{name}' column ({exc})") from None


def _fmt(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _plot_scores(path: Path, scores: np.ndarray, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=np.linspace(0, 1, 21).tolist(), color="tab:blue", edgecolor="white")
    ax.axvline(0.5, color="black", linestyle="--", linewidth=1)
    ax.set(xlabel="score = P(A better), mean of both orders", ylabel="prompts", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_length(path: Path, scores: np.ndarray, delta: np.ndarray, summary: dict[str, Any],
                 title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.scatter(delta, scores, s=12, alpha=0.6, color="tab:blue", label="prompts")
    lc, coef, sd = (summary.get(k) for k in ("lc_win_rate", "lc_length_coef", "lc_sd_delta_len"))
    if lc is not None and coef is not None and sd is not None:
        grid = np.linspace(min(delta.min(), 0), max(delta.max(), 0), 200)
        x = np.tanh(grid / sd) if sd > 0 else np.zeros_like(grid)
        p = lc / 100
        with np.errstate(divide="ignore", over="ignore"):
            intercept = np.log(p) - np.log1p(-p)
            curve = 1 / (1 + np.exp(-(intercept + coef * x)))
        ax.plot(grid, curve, color="tab:red", label="fitted P(A better)")
        ax.plot([0], [p], "o", color="tab:red", label=f"LC = {lc:.1f}% at equal length")
    ax.axhline(0.5, color="black", linestyle="--", linewidth=1)
    ax.set(xlabel="len(A) - len(B), characters", ylabel="score", ylim=(-0.03, 1.03), title=title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _provenance(summary: dict[str, Any]) -> list[str]:
    """What was compared, when the summary says (eval.json's models, judge and prompts)."""
    lines = []
    models, judge, prompts = summary.get("models"), summary.get("judge"), summary.get("prompts")
    for side in ("a", "b"):
        if models and side in models:
            m = models[side]
            how = {"answers": f"answers from `{m.get('path')}`", "steer": (
                f"model A with the AlignEZ edit `{m.get('directions')}` on layers {m.get('layers')}"
            )}.get(m.get("source"), "generated")
            decoding = m.get("decoding")
            extra = f"; decoding {decoding}" if decoding else ""
            lines.append(f"- {side.upper()}: `{m.get('label')}` ({how}{extra})")
    if judge:
        aspects = f", aspects {', '.join(judge['aspects'])}" if judge.get("aspects") else ""
        lines.append(f"- judge: `{judge.get('label')}` ({judge.get('kind')}{aspects})")
    if prompts:
        lines.append(f"- prompts: `{prompts.get('id')}` ({prompts.get('n')} prompts, fingerprint "
                     f"{str(prompts.get('fingerprint'))[:16]})")
    return lines + [""] if lines else []


def _readme(summary: dict[str, Any], title: str) -> str:
    ci = summary.get("ci95") or {}
    lines = [f"# {title}", "",
             (f"{summary['n']} prompts, each judged with A first and with B first; score = P(A "
              "better) averaged over the two orders."), "",
             "| figure | value | 95% CI |", "|---|---:|---:|"]
    lines[4:4] = _provenance(summary)
    for key, label, ci_key in ROWS:
        interval = ci.get(ci_key) if ci_key else None
        shown = f"{interval[0]:.1f} to {interval[1]:.1f}" if interval else ""
        lines.append(f"| {label} | {_fmt(summary.get(key))} | {shown} |")
    lines.append(f"| Mean length A / B (characters) | {_fmt(summary.get('mean_len_a'), 0)} / "
                 f"{_fmt(summary.get('mean_len_b'), 0)} | |")
    lines.append("")
    if ci:
        lines.append(f"Intervals: percentile bootstrap over prompts, {summary.get('bootstrap')} "
                     f"resamples, seed {summary.get('seed')}.")
    lines.append("Length-controlled win rate: a logistic fit of score on tanh(dlen / sd(dlen)) "
                 "over this run's prompts (AlpacaEval 2's idea), read at equal length; length "
                 f"coefficient {_fmt(summary.get('lc_length_coef'), 2)} (positive: the judge "
                 "favours the longer answer).")
    consistency = summary.get("judge_consistency")
    if consistency is not None and consistency < LOW_CONSISTENCY:
        lines += ["", (f"**Warning:** the judge picked the same answer in both orders on only "
                       f"{consistency:.1f}% of prompts. Its verdicts mostly reflect position bias, "
                       "not the answers; treat the rates above as noise.")]
    aspects = summary.get("aspects")
    if aspects:
        lines += ["", "| aspect | win % | lose % | tie % | net win % |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {a['win_rate']:.1f} | {a['lose_rate']:.1f} | {a['tie_rate']:.1f} | "
                  f"{a['net_win']:.1f} |" for name, a in aspects.items()]
        mean = {k: sum(a[k] for a in aspects.values()) / len(aspects)
                for k in ("win_rate", "lose_rate", "tie_rate", "net_win")}
        lines.append(f"| mean of the {len(aspects)} aspects (AlignEZ Table 1's Avg.) | "
                     f"{mean['win_rate']:.1f} | {mean['lose_rate']:.1f} | {mean['tie_rate']:.1f} | "
                     f"{mean['net_win']:.1f} |")
    if summary.get("judge_bias"):
        from selfpref.judges.bias import bias_markdown

        lines += ["", "## Judge bias", "", bias_markdown(summary["judge_bias"])]
    lines += ["", "![scores](plots/scores.png)", "", "![score vs length](plots/score_vs_length.png)",
              ""]
    return "\n".join(lines)


def write_report(folder: str | Path, judgments: Any, summary: dict[str, Any], title: str) -> list[str]:
    """Write README.md, plots/scores.png and plots/score_vs_length.png; return their relative paths.

    ``summary`` is `summarize_scores`'s dict, optionally with ``aspects`` from `summarize_aspects`.
    """
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(folder)
    scores = _column(judgments, "score")
    delta = _column(judgments, "len_a") - _column(judgments, "len_b")
    if scores.size == 0 or scores.shape != delta.shape:
        raise SelfprefError(f"judgments: {scores.size} scores and {delta.size} length pairs; "
                            "give one of each per prompt")
    (folder / "plots").mkdir(parents=True, exist_ok=True)
    written = ["plots/scores.png", "plots/score_vs_length.png", "README.md"]
    _plot_scores(folder / written[0], scores, title)
    _plot_length(folder / written[1], scores, delta, summary, title)
    (folder / written[2]).write_text(_readme(summary, title))
    return written
