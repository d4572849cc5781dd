"""Filters: ``Dataset -> (Dataset, FilterReport)``, every dropped row counted with a reason."""

from selfpref.filters.base import Filter, FilterReport
from selfpref.filters.exact import ExactDedup
from selfpref.filters.judge import JudgeDispute, MinConfidence, RequireConsistentJudge
from selfpref.filters.length import LengthBalance, MaxLengthDiff, OnePerPrompt
from selfpref.filters.minhash import MinHashDedup
from selfpref.filters.onpolicy import SSOOnPolicy
from selfpref.filters.runner import apply_filters

__all__ = ["Filter", "FilterReport", "apply_filters", "ExactDedup", "MinHashDedup",
           "MaxLengthDiff", "LengthBalance", "OnePerPrompt", "RequireConsistentJudge",
           "MinConfidence", "JudgeDispute", "SSOOnPolicy"]
