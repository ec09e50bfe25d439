"""The command line: ``python -m cleaning COMMAND ROOT ...`` (also the ``cleaning`` console script).

One root parser; each concern registers its sub-commands explicitly: :mod:`.data` (info, decisions,
apply, export), :mod:`.scrape`, :mod:`.model` (train, embed) and :mod:`.scan`. Errors the user can fix
(:class:`~cleaning.errors.CleaningError`) print one line ``error: ...`` and exit with status 2; bugs
stay loud.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import CleaningError


def say(msg: str) -> None:
    """Print one line of progress or result to standard output."""
    print(msg, flush=True)


def add_root_command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A sub-command that works on one data set: ``ROOT`` and ``--state-dir`` declared once, here."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    p.add_argument("root", metavar="ROOT", help="data-set folder laid out as ROOT/<label>/<image>")
    p.add_argument("--state-dir", default=None,
                   help="where the store, quarantine and caches live (default: ROOT.cleaning next to ROOT)")
    return p


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
        return int(args.func(args) or 0)
    except CleaningError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: decisions recorded so far are kept", file=sys.stderr)
        return 130
