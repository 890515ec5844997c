"""The ``heritage`` command line.

Each sub-command lives in its own module and registers itself through a
``register(subparsers)`` function, so that adding a command never touches the others.
Errors that the user can act on are raised as :class:`CLIError` and printed as one
line with a non-zero exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

__all__ = ["CLIError", "main", "build_parser"]

# Modules under heritage.cli that contribute sub-commands, in help order.
_COMMAND_MODULES = (
    "demo",
    "neo4j_cmd",
    "recover",
    "zoo_cmd",
    "evaluate_cmd",
    "calibrate_cmd",
    "catalogue",
    "serve",
)


class CLIError(Exception):
    """A failure the user can fix; printed as ``heritage: <message>``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heritage",
        description="Recover and serve the genealogy of AI model weights.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"heritage.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CLIError as exc:
        print(f"heritage: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("heritage: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
