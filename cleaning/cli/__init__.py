"""The command line: ``python -m cleaning COMMAND ROOT ...`` (also the ``cleaning`` console script).

One root parser; each concern registers its sub-commands explicitly: :mod:`.data` (info, decisions,
apply, export), :mod:`.scrape`, :mod:`.model` (train, embed) and :mod:`.scan`. Errors the user can fix
(:class:`~cleaning.errors.CleaningError`) print one line ``error: ...`` and exit with status 2; bugs
stay loud.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import CleaningError, environment_error


def say(msg: str) -> None:
    """Print one line of progress or result to standard output."""
    print(msg, flush=True)


def add_root_command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A sub-command that works on one data set: ``ROOT`` and ``--state-dir`` declared once, here."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    p.add_argument("root", metavar="ROOT", help="data-set folder laid out as ROOT/<label>/<image>")
    p.add_argument("--state-dir", default=None,
                   help="where the store, quarantine and caches live (default: ROOT.cleaning next to ROOT); "
                        "it must exist unless --create is given")
    p.add_argument("--create", action="store_true", help="create the --state-dir folder if it does not exist")
    return p


def check_state_dir(args: argparse.Namespace) -> None:
    """A ``--state-dir`` that does not exist is a typo until proven otherwise: opening it would silently
    start a new, empty store. Raises :class:`CleaningError` unless ``--create`` was given."""
    sd = getattr(args, "state_dir", None)
    if sd and not getattr(args, "create", False) and not Path(sd).expanduser().is_dir():
        raise CleaningError(f"the state folder {sd!r} does not exist",
                            "check the path, or pass --create to start a new store there")


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every sub-command."""
    from . import data, model, scan, scrape

    parser = argparse.ArgumentParser(
        prog="python -m cleaning",
        description="Find and fix what is wrong with a folder-per-class image data set. "
                    "Decisions are recorded (undoable); only `apply` and `export` touch files.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data.register(sub)
    scrape.register(sub)
    model.register(sub)
    scan.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 a problem the user can fix, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_state_dir(args)
        return int(args.func(args) or 0)
    except CleaningError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader left; stop quietly (no traceback, nothing on stderr)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not complain either
        return 141  # 128 + SIGPIPE, as a shell tool stopped by a closed pipe
    except Exception as e:  # a full disk, a read-only folder, a corrupt store: one line; bugs stay loud
        env = environment_error(e)
        if env is None:
            raise
        print(f"error: {env}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: decisions recorded so far are kept", file=sys.stderr)
        return 130
