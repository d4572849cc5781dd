"""selfpref: a language model as its own preference-data factory."""

__version__ = "0.1.0"


class SelfprefError(Exception):
    """An error a user can fix; the CLI prints its message as one line, without a traceback."""
