"""selfpref: a language model as its own preference-data factory.

The Python API is one function per command (``selfpref.build``, ``selfpref.filter``,
``selfpref.train``, ``selfpref.iterate``, ``selfpref.evaluate``, ...; see :mod:`selfpref.api`).
They resolve lazily: ``import selfpref`` imports nothing heavy and changes no process state.
"""

from __future__ import annotations

from typing import Any

from selfpref._version import __version__


class SelfprefError(Exception):
    """An error a user can fix; the CLI prints its message as one line, without a traceback."""


_API = ("build", "build_config", "card", "compare", "evaluate", "filter", "import_data", "inspect",
        "iterate", "judge_check", "load", "loop_config", "push", "steer_fit", "steer_generate",
        "train", "Dataset", "EvalResult", "JudgeCheckResult", "LoopResult", "TrainedModel")

__all__ = ["SelfprefError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        # importlib, not an import statement: the root package sits below every layer (they all
        # import SelfprefError from it), so it must not appear to import the API layer above them.
        import importlib

        return getattr(importlib.import_module("selfpref.api"), name)
    raise AttributeError(f"module 'selfpref' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
