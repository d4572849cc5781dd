"""The Python API: one function per command, with the command's options and checks.

``import selfpref`` exposes these names lazily (``selfpref.build`` imports this package on first
use), so importing selfpref pulls in neither torch nor TRL.
"""

from __future__ import annotations

from selfpref.api.build import build, build_config
from selfpref.api.data import card, import_data, inspect, load, push
from selfpref.api.evaluate import compare, evaluate
from selfpref.api.filter import filter
from selfpref.api.handles import Dataset, EvalResult, JudgeCheckResult, LoopResult, TrainedModel
from selfpref.api.iterate import iterate, loop_config
from selfpref.api.judge import judge_check
from selfpref.api.steer import steer_fit, steer_generate
from selfpref.api.train import train

__all__ = ["build", "build_config", "card", "compare", "evaluate", "filter", "import_data",
           "inspect", "iterate", "judge_check", "load", "loop_config", "push", "steer_fit",
           "steer_generate", "train", "Dataset", "EvalResult", "JudgeCheckResult", "LoopResult",
           "TrainedModel"]
