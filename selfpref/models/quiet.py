"""Keep other libraries' progress bars and chatter out of selfpref's output while models load."""

from __future__ import annotations


def quiet_transformers() -> None:
    """No per-load progress bars: selfpref shows its own progress for long work.

    Called when a model is loaded, never at import: importing selfpref changes no global state.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
