"""``selfpref.judge_check``: is this judge any good on my kind of data?"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref.api.checks import check_models
from selfpref.api.handles import JudgeCheckResult


def judge_check(data: str, output: str | Path, *, config: Any = None,
                notify: Callable[[str], None] | None = print, **options: Any) -> JudgeCheckResult:
    """Accuracy of a judge (or a panel, a reward model, SELFEE's implicit reward, a rule) against
    human-labelled pairs: a bootstrap 95% interval, per order, consistency, ties, by length.

    Args:
        data: human-labelled pairs: a file, folder or Hub id in any layout ``import`` reads.
        output: the folder to write (judge_check.json, judgments.parquet, accuracy.png).
        config: a ready :class:`~selfpref.eval.judge_check.JudgeCheckConfig` (instead of
            ``options``).
        notify: where progress lines go (``None``: nowhere).
        **options: any JudgeCheckConfig field: ``judge`` (logits, text, rm, implicit, length,
            length:longer, random), ``judge_model`` (a list for a panel), ``panel``,
            ``judge_reference``, ``judge_base_url``, ``judge_orders``, ``max_pairs``, ...
    """
    from selfpref.eval.judge_check import JudgeCheckConfig, run_judge_check

    if config is None:
        model = options.get("judge_model")
        if isinstance(model, str):
            options["judge_model"] = [model]
        config = JudgeCheckConfig(data=data, output=str(output),
                                  **{k: v for k, v in options.items() if v is not None})
    models = [config.judge_model] if isinstance(config.judge_model, str) else config.judge_model
    if not config.judge_base_url:
        check_models([*(("--judge-model", m) for m in models or []),
                      ("--judge-reference", config.judge_reference)])
    summary = run_judge_check(config, notify=notify or (lambda _line: None))
    return JudgeCheckResult(path=Path(config.output), summary=summary)
