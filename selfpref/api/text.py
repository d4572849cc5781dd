"""The few lines the API and the CLI both print (one wording, one place)."""

from __future__ import annotations

from typing import Any


def kept_line(head: str, funnel: dict[str, Any], version: str) -> str:
    """``wrote out/sao: 7 pairs from 8 inputs (version 0.1.0)`` and one line per drop reason."""
    lines = [f"{head}: {funnel['kept']} pairs from {funnel['input']} inputs (version {version})"]
    lines += [f"  dropped {count}: {reason}" for reason, count in sorted(funnel["dropped"].items())]
    return "\n".join(lines)


def call_text(name: str, *args: Any, **kwargs: Any) -> str:
    """How a Python call is recorded in a build record: ``selfpref.build('sao', 'out', ...)``.
    Secrets never come as arguments (keys are read from named environment variables)."""
    shown = [repr(str(a)) if not isinstance(a, (int, float, bool)) else repr(a) for a in args]
    shown += [f"{k}={v!r}" for k, v in kwargs.items() if v is not None]
    return f"selfpref.{name}({', '.join(shown)})"
