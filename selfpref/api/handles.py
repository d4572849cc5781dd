"""What the API functions return: handles on what a command wrote, with the views users want."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Dataset:
    """A dataset folder (local, or a Hub dataset's downloaded revision) and its build record.

    ``polars()`` and ``datasets()`` read the rows; ``record`` is ``selfpref.json`` (version,
    fingerprint, models, parameters, funnel, parent); ``summary()`` is what `selfpref inspect`
    prints.
    """

    path: Path
    ref: str
    record: Any
    url: str | None = None  # where a push put it

    def polars(self, lazy: bool = False) -> Any:
        """The rows as a polars DataFrame (``lazy=True``: a LazyFrame over the parquet files)."""
        import polars as pl

        frame = pl.scan_parquet(str(self.path / "data" / "*.parquet"))
        return frame if lazy else frame.collect()

    def datasets(self) -> Any:
        """The rows as a Hugging Face ``datasets.Dataset`` (the train split)."""
        import datasets

        files = sorted(str(p) for p in (self.path / "data").glob("*.parquet"))
        return datasets.Dataset.from_parquet(files)

    def summary(self) -> dict[str, Any]:
        """Rows, nulls, length quantiles, chosen-longer share, confidence, judge consistency."""
        from selfpref.data.stats import summarize

        return {"name": self.record.name, "version": self.record.version,
                **summarize(self.polars())}

    @property
    def version(self) -> str:
        return str(self.record.version)

    @property
    def funnel(self) -> list[dict[str, Any]]:
        return list(self.record.funnel)

    def __len__(self) -> int:
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in (self.path / "data").glob("*.parquet"))

    def __repr__(self) -> str:
        return (f"Dataset({str(self.path)!r}, name={self.record.name!r}, version={self.version!r}, "
                f"method={self.record.method!r}, rows={len(self)})")


@dataclass
class FolderResult:
    """A folder a command wrote and the JSON summary it wrote there; ``result["key"]`` reads it."""

    path: Path
    summary: dict[str, Any] = field(repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]


@dataclass(repr=False)
class TrainedModel(FolderResult):
    """A model folder written by ``selfpref.train``, with its run summary (``selfpref_train.json``)."""

    @property
    def train_loss(self) -> float:
        return float(self.summary["train_loss"])

    @property
    def steps(self) -> int:
        return int(self.summary["steps"])

    def __str__(self) -> str:  # so a TrainedModel passes as a model reference: model=str(m)
        return str(self.path)


@dataclass(repr=False)
class EvalResult(FolderResult):
    """An evaluation folder written by ``selfpref.evaluate``, with ``eval.json``'s content."""

    @property
    def win_rate(self) -> float | None:
        return self.summary.get("win_rate")

    @property
    def lc_win_rate(self) -> float | None:
        return self.summary.get("lc_win_rate")

    def judgments(self) -> Any:
        """Every judged pair as a polars DataFrame (judgments.parquet)."""
        import polars as pl

        return pl.read_parquet(self.path / "judgments.parquet")

    def __repr__(self) -> str:
        s = self.summary
        return (f"EvalResult({str(self.path)!r}, n={s.get('n')}, win_rate={s.get('win_rate')}, "
                f"lc_win_rate={s.get('lc_win_rate')}, judge_consistency={s.get('judge_consistency')})")


@dataclass
class LoopResult:
    """A loop folder written by ``selfpref.iterate``: one summary row per iteration."""

    path: Path
    rows: list[dict[str, Any]] = field(repr=False)

    @property
    def model(self) -> str:
        """The last iteration's model folder (pi_T)."""
        return str(self.rows[-1]["model"])

    def datasets(self) -> list[str]:
        return [str(r["dataset"]) for r in self.rows]

    def __repr__(self) -> str:
        return f"LoopResult({str(self.path)!r}, iterations={len(self.rows)}, model={self.model!r})"


@dataclass(repr=False)
class JudgeCheckResult(FolderResult):
    """A judge-check folder written by ``selfpref.judge_check``, with judge_check.json's content."""

    @property
    def accuracy(self) -> float | None:
        return self.summary.get("accuracy")

    def __repr__(self) -> str:
        return (f"JudgeCheckResult({str(self.path)!r}, n={self.summary.get('n')}, "
                f"accuracy={self.summary.get('accuracy')})")
