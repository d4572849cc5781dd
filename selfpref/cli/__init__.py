"""The `selfpref` command line: the typer app in ``cli.app``, one module per command group.

Importing this package registers every command on ``app``; ``main`` is the entry point. Every
way a command can fail ends in ``main``: one line on stderr and an exit code (README "Errors").
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer

from selfpref import SelfprefError
from selfpref.cli import basic, build, cache, data, eval, filter, iterate, judge, steer, train  # noqa: F401  (registration)
from selfpref.cli.app import app, console, err_console

__all__ = ["app", "main", "EXIT_USER", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE"]

EXIT_USER = 2  # a mistake the user can fix: flag, file, column, value, reference (also click's usage errors)
EXIT_INTERNAL = 1  # anything unforeseen: a bug to report
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_BROKEN_PIPE = 141  # stdout closed by its reader, as a shell reports SIGPIPE


def _say(text: str) -> None:
    err_console.print(text, style="red", markup=False, highlight=False, soft_wrap=True)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())


# typer >= 0.2x vendors click (typer._click); older typer uses click itself: take the exception
# classes from wherever typer's own come from.
_click = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_click, "NoArgsIsHelpError", ())


def _usage_error(exc: Any) -> str:
    message = _one_line(exc.format_message()).replace("Value error, ", "")
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path.replace(ctx.find_root().info_name or "", "selfpref", 1) if ctx else "selfpref"
    return f"error: {message} (see `{path} --help`)"


def run(args: Sequence[str]) -> int:
    """Run the app on ``args``; returns the exit code. Prints at most one line for any failure."""
    try:
        result = app(args=list(args), prog_name="selfpref", standalone_mode=False)
        if result == EXIT_INTERRUPTED:  # typer turns Ctrl-C inside a command into Exit(130), returned
            raise KeyboardInterrupt
        return result if isinstance(result, int) else 0
    except _NoArgsIsHelp as exc:
        console.print(exc.ctx.get_help(), markup=False, highlight=False)
        return 0
    except typer.Exit as exc:
        return exc.exit_code
    except _click.ClickException as exc:  # usage errors: unknown flag, bad choice, out of range
        _say(_usage_error(exc))
        return EXIT_USER
    except (typer.Abort, KeyboardInterrupt):
        _say("interrupted: finished chunks, parts and datasets are kept; rerun the same command to resume")
        return EXIT_INTERRUPTED
    except SelfprefError as exc:
        _say(f"error: {_one_line(str(exc))}")
        return EXIT_USER
    except BrokenPipeError:  # the reader went away (`selfpref inspect ... | head`): nothing to say
        return EXIT_BROKEN_PIPE
    except SystemExit as exc:
        # typer answers EPIPE inside a command with sys.exit(1) (click's habit); report it as the
        # broken pipe it is, as a shell reports SIGPIPE.
        if isinstance(exc.__context__, BrokenPipeError):
            return EXIT_BROKEN_PIPE
        raise
    except Exception as exc:  # noqa: BLE001  (the one place that turns bugs into a line)
        traceback.print_exc()  # into the log (and on the terminal with --verbose or SELFPREF_DEBUG)
        _say(f"internal error: {type(exc).__name__}: {_one_line(str(exc)) or '(no message)'} "
             "(set SELFPREF_DEBUG=1 for the traceback)")
        return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user errors become one red line and exit code 2, bugs exit code 1.

    Other libraries' output goes to a log file (beside the output) unless ``--verbose`` is given
    anywhere on the command line; ``SELFPREF_DEBUG=1`` shows tracebacks. Nothing here runs at
    import time, so importing selfpref changes no process-wide state.
    """
    from selfpref.cli.output import captured

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args or bool(os.environ.get("SELFPREF_DEBUG"))
    args = [a for a in args if a != "--verbose"]
    if not args or args[0] in ("--help", "-h") or "--help" in args:
        code = run(args)  # help goes straight to the terminal
    else:
        with captured(args, [console, err_console], verbose=verbose) as capture:
            code = run(args)
            capture.succeeded = code == 0
    sys.exit(code)
