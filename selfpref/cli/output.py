"""Quiet by default: selfpref's own lines on the terminal, everything else in a log file.

Inside the `selfpref` entry point (never at import), file descriptors 1 and 2 are pointed at a
log file for the length of the command, and selfpref's consoles write to duplicates of the
original terminal streams. So other libraries' warnings, progress bars and per-step prints
(TRL's experimental-API warning, transformers deprecations, the Trainer's per-step dicts, the
worker processes distilabel spawns) land in the log and not on the screen. With ``--verbose``
they are shown as well: a thread copies the log stream to the terminal as it comes.

The log is written under ``$SELFPREF_CACHE/logs/`` while the command runs and then moved
beside its output (``out/sao`` -> ``out/sao.log``) when the command succeeded; otherwise (no
output, or a failed command: its log must not land beside a folder it did not write) it stays at
``$SELFPREF_CACHE/logs/selfpref-<command>.log``, replaced by the next such command.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

OUTPUT_FLAGS = ("--output", "-o", "--output-dir")


def output_of(args: Sequence[str]) -> Path | None:
    """The value of the first --output / -o / --output-dir in ``args`` (None when absent)."""
    for i, arg in enumerate(args):
        for flag in OUTPUT_FLAGS:
            if arg == flag and i + 1 < len(args):
                return Path(args[i + 1]).expanduser()
            if flag.startswith("--") and arg.startswith(flag + "="):
                return Path(arg.split("=", 1)[1]).expanduser()
    return None


def command_of(args: Sequence[str]) -> str:
    words = [a for a in args if not a.startswith("-")]
    return "-".join(words[:2]) if words[:1] == ["steer"] else (words[0] if words else "help")


def _logs_dir() -> Path:
    env = os.environ.get("SELFPREF_CACHE")
    if env:
        return Path(env).expanduser() / "logs"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("selfpref")) / "logs"


class Capture:
    """Where the command's log went (``path``) once the capture has ended; the caller sets
    ``succeeded`` so that a failed command's log never lands beside a folder it did not write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.succeeded = False


def _pump(read_fd: int, log: io.BufferedWriter, terminal_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        for chunk in iter(lambda: pipe.read(65536), b""):
            log.write(chunk)
            log.flush()
            with contextlib.suppress(OSError):
                os.write(terminal_fd, chunk)


@contextlib.contextmanager
def captured(args: Sequence[str], consoles: Sequence, *, verbose: bool) -> Iterator[Capture]:
    """Run the body with fds 1/2 in the log (and on the terminal with ``verbose``)."""
    logs = _logs_dir()
    try:
        logs.mkdir(parents=True, exist_ok=True)
        tmp_log = logs / f".selfpref-{os.getpid()}-{threading.get_ident()}.log"
        log = open(tmp_log, "ab")
    except OSError:  # nowhere to log: run uncaptured rather than not at all
        yield Capture(Path(os.devnull))
        return
    capture = Capture(tmp_log)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
    except OSError:  # no usable stdout/stderr (a daemon, a closed pipe): run uncaptured
        log.close()
        yield capture
        return
    terminal = {fd: os.fdopen(os.dup(saved[fd]), "w", buffering=1, encoding="utf-8",
                              errors="replace") for fd in (1, 2)}
    old_files = [(c, c._file) for c in consoles]
    for c in consoles:
        c.file = terminal[2 if c.stderr else 1]
    pump = None
    if verbose:
        read_fd, write_fd = os.pipe()
        pump = threading.Thread(target=_pump, args=(read_fd, log, saved[2]), daemon=True)
        pump.start()
        target = write_fd
    else:
        target = log.fileno()
    old_sys = sys.stdout, sys.stderr
    for fd in (1, 2):
        os.dup2(target, fd)
    if verbose:
        os.close(target)
    # Python-level streams too: a test runner may have replaced sys.stdout with its own object.
    sys.stdout = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield capture
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
                stream.close()
        sys.stdout, sys.stderr = old_sys
        for fd in (1, 2):
            os.dup2(saved[fd], fd)  # closes the pipe's last write ends: the pump reads to EOF
        if pump is not None:
            # before saved[2] closes: the pump still copies the tail (a traceback printed just
            # before the command ended) to the terminal through it
            pump.join(timeout=5)
        for fd in (1, 2):
            os.close(saved[fd])
        for c, old in old_files:
            c.file = old
        for stream in terminal.values():
            with contextlib.suppress(Exception):
                stream.flush()
                stream.close()
        log.close()
        capture.path = _place_log(tmp_log, args, logs, capture.succeeded)


def _place_log(tmp_log: Path, args: Sequence[str], logs: Path, succeeded: bool) -> Path:
    """Move the log beside the command's output when it wrote one, else keep it in logs/."""
    output = output_of(args)
    if succeeded and output is not None and output.exists() and output.name:
        target = output.with_name(output.name + ".log")
    else:
        target = logs / f"selfpref-{command_of(args)}.log"
    try:
        shutil.move(str(tmp_log), target)
        from selfpref.data.store import user_mode

        user_mode(target)
        return target
    except OSError:
        return tmp_log
