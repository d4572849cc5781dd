"""The loop folder's README.md and plots/iterations.png: the loop at a glance.

One row per iteration (dataset, rows kept, training loss) and, when the loop was evaluated
(`selfpref.loop.evaluate`), pi_t's win rate and length-controlled win rate over pi_0 with their
95% intervals, the judge's consistency and the mean answer length; the plot shows the last three
across iterations (SAO Figure 2, SSO Table 12), with pi_0's answer length at iteration 0.
Both files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfpref.data.atomic import write_atomic

PLOT = "plots/iterations.png"


def _num(value: Any, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ci(row: dict[str, Any], key: str) -> str:
    ci = row.get("eval_ci95") or {}
    return f"{ci[key][0]:.1f} to {ci[key][1]:.1f}" if key in ci else ""


def _plot(path: Path, evaluated: list[dict[str, Any]], title: str) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [r["iteration"] for r in evaluated]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for key, label, colour, shift in (("win_rate", "win rate", "tab:blue", -0.06),
                                      ("lc_win_rate", "LC win rate", "tab:orange", 0.06)):
        values = [r[f"eval_{key}"] for r in evaluated]
        cis = [(r.get("eval_ci95") or {}).get(key) for r in evaluated]
        err = [[v - c[0] if c else 0 for v, c in zip(values, cis)],
               [c[1] - v if c else 0 for v, c in zip(values, cis)]]
        left.errorbar([t + shift for t in ts], values, yerr=err, fmt="o-", capsize=3, color=colour,
                      label=label)
    left.axhline(50, color="black", linestyle="--", linewidth=1, label="50% (LC: no change)")
    left.set(xlabel="iteration t", ylabel="% over pi_0 (95% CI)", ylim=(-2, 102), xticks=ts,
             title="pi_t vs pi_0")
    left.legend(loc="best", fontsize=8)
    lengths = [evaluated[0]["eval_mean_len_a"]] + [r["eval_mean_len_b"] for r in evaluated]
    right.plot([0, *ts], lengths, "o-", color="tab:green")
    right.set(xlabel="iteration t (0 = pi_0)", ylabel="mean answer length (characters)",
              xticks=[0, *ts], title="answer length of pi_t")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def render_readme(name: str, rows: list[dict[str, Any]], *, method: str, pi0: str,
                  prompts_id: str | None = None) -> str:
    from selfpref.eval.report import consistency_note

    evaluated = [r for r in rows if r.get("eval_win_rate") is not None]
    lines = [f"# selfpref loop: {name}", "",
             f"`{method}` for {len(rows)} iteration(s) from pi_0 = `{pi0}`: iteration t builds a "
             "dataset with pi_{t-1}, filters it (with its data card) and trains pi_t. `iterate.json` "
             "holds the plan, `summary.json` these rows, `iter-t/` each iteration's data and model.", ""]
    head = ["iter", "dataset", "rows kept", "train loss"]
    if evaluated:
        head += ["win % vs pi_0", "95% CI", "LC win %", "95% CI", "judge consistency %",
                 "mean answer length"]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" if h == "dataset" else "---:" for h in head) + "|"]
    if evaluated:
        lines.append("| 0 | pi_0 | | | | | | | | " + _num(evaluated[0]["eval_mean_len_a"], 0) + " |")
    for r in rows:
        cells = [str(r["iteration"]), r["dataset"], str(r["rows_kept"]), _num(r.get("train_loss"), 4)]
        if evaluated:
            cells += [_num(r.get("eval_win_rate")), _ci(r, "win_rate"), _num(r.get("eval_lc_win_rate")),
                      _ci(r, "lc_win_rate"), _num(r.get("eval_judge_consistency")),
                      _num(r.get("eval_mean_len_b"), 0)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if not evaluated:
        lines += ["Not evaluated: rerun the same command with `--eval-prompts default` (selfpref's "
                  "held-out prompts; `--eval-num-prompts N` for fewer) to judge each pi_t against "
                  "pi_0; finished iterations are not redone.", ""]
        return "\n".join(lines)
    last = json.loads((Path(evaluated[-1]["eval_folder"]) / "eval.json").read_text())
    decoding = last["models"]["b"].get("decoding") or {}
    how = ("greedy" if not decoding.get("temperature") else
           f"sampled at temperature {decoding['temperature']} (seed {decoding.get('seed')})")
    n = evaluated[-1]["eval_n"]
    consistency = sum(r["eval_judge_consistency"] for r in evaluated) / len(evaluated)
    lines += [
        f"Evaluation: pi_t (B) against pi_0 (A) on {n} prompts ({'`' + prompts_id + '`, ' if prompts_id else ''}"
        f"`eval/prompts.jsonl`), {how}, at most {decoding.get('max_new_tokens')} new tokens; "
        f"pi_0 answered once (`eval/answers_pi0.json`). Each pair judged in both orders by "
        f"`{last['judge']['label']}`. Every rate is pi_t's: win % is the share of prompts where the "
        "judge prefers pi_t (a tie, score exactly 0.5, counts for neither side; each "
        "`iter-t/eval/eval.json` is written from pi_0's side, so there it is `lose_rate`), LC win % "
        "= 100 - `lc_win_rate`, the length-controlled preference for pi_t, 50 being no change from "
        "pi_0. Intervals: "
        f"bootstrap over prompts ({last.get('bootstrap')} resamples).", "",
        consistency_note(consistency, n, fix="--eval-judge-model",
                         scope=" (mean over iterations)" if len(evaluated) > 1 else ""), "",
        f"![win rate, LC win rate and answer length across iterations]({PLOT})", ""]
    return "\n".join(lines)


def write_loop_report(out: Path, rows: list[dict[str, Any]], *, method: str, pi0: str | None,
                      prompts_id: str | None = None) -> None:
    """README.md (and plots/iterations.png once the loop was evaluated) in the loop folder."""
    from selfpref.models import model_label

    evaluated = [r for r in rows if r.get("eval_win_rate") is not None]
    label = model_label(pi0)
    if evaluated:
        judge = evaluated[-1].get("eval_judge")
        _plot(out / PLOT, evaluated, f"{out.name}: pi_t vs pi_0 = {label}, judge {judge}")
    write_atomic(out / "README.md", render_readme(out.name, rows, method=method, pi0=label,
                                                  prompts_id=prompts_id))
