"""A stand-in model that returns scripted texts: tests and dry runs of a recipe, no weights.

It offers the interface of ``local.LocalModel`` (generate, option_probabilities). Texts and
option probabilities are returned in order, cycling, and start again at every chunk, so a chunk
that is redone after a crash gets the texts the killed run got. ``fail`` makes a call raise,
to test how a build reports a step that breaks; ``kill`` SIGKILLs the process at a chosen point
(the start of a chunk, or a step's call), to test resume.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

from selfpref.models.generation import Message

Chat = Sequence[Message]


class ScriptedModel:
    """``outputs``: texts in order (an empty string stands for a failed generation);
    ``option_probs``: P(first option) per forced-choice call; ``delay``: seconds per call;
    ``fail``: ``{"message": ..., "chunk": n}`` raises RuntimeError(message) in chunk n
    (1-based; every chunk when n is absent); ``kill``: ``{"chunk": n, "at": "start" | "call"}``
    SIGKILLs this process when chunk n starts, or at this model's first call in chunk n."""

    def __init__(self, outputs: Sequence[str] = (), option_probs: Sequence[float] = (), *,
                 delay: float = 0.0, fail: dict[str, Any] | None = None,
                 kill: dict[str, Any] | None = None, name: str = "scripted") -> None:
        self.outputs = [str(t or "") for t in outputs]
        self.option_probs = [float(p) for p in option_probs]
        self.delay, self.fail, self.name = float(delay), dict(fail or {}), name
        self.kill = dict(kill or {})
        self.calls: list[tuple[str, int]] = []  # (kind, number of chats), for tests
        self._rewind(0)

    def _rewind(self, index: int) -> None:
        self._chunk = index
        self._texts = itertools.cycle(self.outputs or [""])
        self._probs = itertools.cycle(self.option_probs or [0.5])

    def start_chunk(self, index: int) -> None:
        """Begin chunk ``index`` (0-based): the script starts again from its first text."""
        self._rewind(index)
        self._kill_if("start")

    def _kill_if(self, at: str) -> None:
        if self.kill and self.kill.get("at", "call") == at and int(self.kill["chunk"]) == self._chunk + 1:
            os.kill(os.getpid(), signal.SIGKILL)

    def _call(self, kind: str, n: int) -> None:
        self.calls.append((kind, n))
        self._kill_if("call")
        if self.delay:
            time.sleep(self.delay)
        chunk = self.fail.get("chunk")
        if self.fail and (chunk is None or int(chunk) == self._chunk + 1):
            raise RuntimeError(str(self.fail.get("message") or "scripted failure"))

    def generate(self, chats: Sequence[Chat], *, num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0, seed: int | None = None,
                 seeds: Sequence[int] | None = None) -> list[list[str]]:
        self._call("generate", len(chats))
        return [[next(self._texts) for _ in range(num_generations)] for _ in chats]

    def option_probabilities(self, chats: Sequence[Chat], options: Sequence[str]) -> list[list[float]]:
        self._call("option_probabilities", len(chats))
        return [[p, 1.0 - p] for p in (next(self._probs) for _ in chats)]


def scripted_model(script: dict[str, Any], step: str) -> ScriptedModel:
    """The model a step of a scripted build talks to. The script maps step names to texts, and
    may hold ``option_probs: {step: [...]}``, ``delay: seconds``,
    ``raise: {step: message}`` or ``raise: {step: {message: ..., chunk: n}}``, and
    ``kill: {chunk: n, step: name}`` (SIGKILL at that step's first call in chunk n) or
    ``kill: {chunk: n, step: start}`` (SIGKILL as chunk n starts, after chunk n-1's part)."""
    fail = (script.get("raise") or {}).get(step)
    if isinstance(fail, str):
        fail = {"message": fail}
    kill = script.get("kill") or {}
    if kill.get("step") == "start":
        kill = {"chunk": kill["chunk"], "at": "start"}
    elif kill.get("step") == step:
        kill = {"chunk": kill["chunk"], "at": "call"}
    else:
        kill = None
    return ScriptedModel(script.get(step) or [], (script.get("option_probs") or {}).get(step) or [],
                         delay=float(script.get("delay", 0.0)), fail=fail, kill=kill)
