"""``selfpref.evaluate`` and ``selfpref.compare``: model A vs model B through the judges."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.api.checks import check_models
from selfpref.api.handles import EvalResult


def evaluate(output: str | Path | None = None, *, config: Any = None,
             notify: Callable[[str], None] | None = print, command: str | None = None,
             **options: Any) -> EvalResult:
    """Answer held-out prompts with A and B, judge each pair in both orders, report win rates.

    Args:
        output: the folder to write (judgments.parquet, eval.json, README.md, answers_a/b.json).
        config: a ready :class:`~selfpref.eval.run.EvalConfig` (instead of ``options``).
        notify: where progress lines go (``None``: nowhere).
        command: the command line recorded in eval.json.
        **options: any :class:`~selfpref.eval.run.EvalConfig` field: ``model_a``, ``model_b``,
            ``answers_a``, ``answers_b``, ``steer_b``, ``prompts``, ``max_prompts``, ``judge``,
            ``judge_model``, ``judge_base_url``, ``aspects``, ``max_new_tokens``, ...
    """
    from selfpref.eval.run import EvalConfig, run_eval
    from selfpref.judges import check_aspects, local_judge_backend

    if config is None:
        if output is None:
            raise SelfprefError("--output DIR: say where to write the evaluation")
        if isinstance(options.get("aspects"), str):
            options["aspects"] = list(check_aspects(options["aspects"])) or None
        config = EvalConfig(output=str(output), **{k: v for k, v in options.items() if v is not None})
    panel = isinstance(config.judge_model, list)  # a panel's members are models
    local_judge = local_judge_backend("logits" if panel else config.judge, base_url=config.judge_base_url,
                                      backend=config.judge_backend) is not None
    judges = config.judge_model if panel else [config.judge_model]
    check_models([("--model-a", None if config.answers_a else config.model_a),
                  ("--model-b", config.model_b),
                  *(("--judge-model", m if local_judge else None) for m in judges)])  # before any work
    summary = run_eval(config, notify=notify or (lambda _line: None), command=command)
    return EvalResult(path=Path(config.output), summary=summary)


def compare(ours: str | Path, aligned: str | Path) -> dict[str, Any]:
    """AlignEZ's Relative Improvement% = NetWin(ours vs base) / NetWin(aligned vs base) x 100,
    from two eval folders that share their base model A."""
    from selfpref.eval.compare import compare as compare_folders

    return compare_folders(Path(ours), Path(aligned))
