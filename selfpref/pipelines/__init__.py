"""One module per method, each giving the distilabel Tasks of its pipeline (``build_steps``) and an
``assemble`` that turns the rows into contract records plus the count of rows dropped per reason.

The Tasks are the definition of a method (prompts, parsing, columns; written as
``pipeline.yaml``); ``engine`` executes them in-process, chunk by chunk, on models loaded once.
Importing this package changes no process-wide state.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

# (step name, generation kwargs[, role]) -> LLM face; role "judge" is SAO's judge step (its
# model may differ from the generator's), "generator" (the default) every other step.
LLMFactory = Callable[..., Any]

METHODS = ("sao", "sso", "alignez", "selfee")


def method_module(method: str) -> ModuleType:
    from selfpref.pipelines import alignez, sao, selfee, sso

    return {"sao": sao, "sso": sso, "alignez": alignez, "selfee": selfee}[method]
