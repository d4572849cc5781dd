"""The card's plots as PNG files: length distributions, confidence, the filter funnel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(rows: pl.DataFrame, funnel: list[dict[str, Any]], folder: Path) -> list[str]:
    """Write plots under ``folder/plots``; returns their paths relative to ``folder``."""
    plt = _pyplot()
    (folder / "plots").mkdir(exist_ok=True)
    written = []

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for col, color in (("chosen", "tab:green"), ("rejected", "tab:red")):
        ax.hist(rows[col].str.len_chars().to_numpy(), bins=30, alpha=0.55, label=col, color=color)
    ax.set_xlabel("characters"), ax.set_ylabel("pairs"), ax.legend()
    ax.set_title("Answer lengths")
    fig.tight_layout(), fig.savefig(folder / "plots/lengths.png", dpi=100), plt.close(fig)
    written.append("plots/lengths.png")

    conf = rows["confidence"].drop_nulls() if "confidence" in rows.columns else pl.Series([])
    if len(conf):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.hist(conf.cast(pl.Float64).to_numpy(), bins=20, range=(0, 1), color="tab:blue")
        ax.set_xlabel("confidence"), ax.set_ylabel("pairs"), ax.set_title("Label confidence")
        fig.tight_layout(), fig.savefig(folder / "plots/confidence.png", dpi=100), plt.close(fig)
        written.append("plots/confidence.png")

    if funnel:
        labels = [funnel[0]["step"] + " (input)"] + [step["step"] for step in funnel]
        values = [funnel[0]["input"]] + [step["kept"] for step in funnel]
        fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(labels)))
        ax.barh(range(len(labels)), values, color="tab:gray")
        ax.set_yticks(range(len(labels)), labels), ax.invert_yaxis()
        for i, v in enumerate(values):
            ax.text(v, i, f" {v}", va="center")
        ax.set_xlabel("rows"), ax.set_title("Funnel")
        fig.tight_layout(), fig.savefig(folder / "plots/funnel.png", dpi=100), plt.close(fig)
        written.append("plots/funnel.png")
    return written
