"""The one door to distilabel (pinned, unmaintained): its names, imported without side effects.

- distilabel 1.5.3 declares ``Field(default=None)`` inside unions, and pydantic warns about it
  on every import; the warning is silenced for the import only (the caller's warning filters
  are restored, not changed).
- ``distilabel.pipeline`` (which any Step loads when it is created) calls
  ``multiprocessing.get_context()`` at import, which fixes the process's start method; the
  start method the process had before is put back, so a build changes nobody's process.

Pipeline holds the Tasks only to write ``pipeline.yaml``: selfpref never runs distilabel's pipeline: it executes the Tasks itself (``pipelines.engine``).
"""

from __future__ import annotations

import contextlib
import multiprocessing.context
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_import() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The 'default' attribute with value None")
        yield


@contextlib.contextmanager
def start_method_kept() -> Iterator[None]:
    """Undo what importing ``distilabel.pipeline`` does to the default multiprocessing context."""
    default = getattr(multiprocessing.context, "_default_context", None)
    before = getattr(default, "_actual_context", None)
    try:
        yield
    finally:
        if default is not None and hasattr(default, "_actual_context"):
            default._actual_context = before


# Creating a Step imports distilabel.pipeline, so it is imported here, once, start method kept.
with quiet_import(), start_method_kept():
    from distilabel.models.llms import LLM
    from distilabel.models.llms.utils import prepare_output
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts, Step, StepInput
    from distilabel.steps.tasks import Task

__all__ = ["LLM", "LoadDataFromDicts", "Pipeline", "Step", "StepInput", "Task", "prepare_output",
           "quiet_import", "start_method_kept"]
