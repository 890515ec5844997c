"""``heritage neo4j start|stop|status``: manage the local Neo4j Community server.

A thin shell over :mod:`graph.local_server`: it prints what the user needs (URIs,
where the password is) and turns graph errors into :class:`heritage.cli.CLIError`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from graph.errors import GraphError
from graph.settings import Neo4jSettings, password_file
from heritage.cli import CLIError

__all__ = ["EXIT_NOT_RUNNING", "register"]

# LSB convention for "program is not running" (as `neo4j status` and init scripts use).
EXIT_NOT_RUNNING = 3


def register(subparsers: Any) -> None:
    """Add ``neo4j`` and its ``start``/``stop``/``status`` sub-commands."""
    parser = subparsers.add_parser(
        "neo4j",
        help="run a local Neo4j server (no Docker needed)",
        description=(
            "Manage a local Neo4j 5 Community server fetched from Maven Central with Maven. "
            "Configured by NEO4J_URI (Bolt port), NEO4J_HTTP_PORT, NEO4J_PASSWORD and NEO4J_HOME_DIR."
        ),
    )
    actions = parser.add_subparsers(dest="neo4j_action", metavar="ACTION")

    start = actions.add_parser("start", help="fetch (first time) and start the server, wait until it answers")
    start.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for Bolt to answer (default 120)",
    )
    start.set_defaults(handler=_start)

    stop = actions.add_parser("stop", help="stop the server cleanly")
    stop.set_defaults(handler=_stop)

    status = actions.add_parser("status", help="is the server running? (exit 0 yes, 3 no)")
    status.set_defaults(handler=_status)

    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _settings() -> Neo4jSettings:
    try:
        return Neo4jSettings.from_env()
    except ValueError as exc:
        raise CLIError(str(exc)) from exc


def _start(args: argparse.Namespace) -> int:
    from graph import local_server

    settings = _settings()
    kwargs = {"timeout": args.timeout} if args.timeout is not None else {}
    try:
        result = local_server.start(settings, **kwargs)
    except GraphError as exc:
        raise CLIError(str(exc)) from exc
    state = result.status
    if result.already_running:
        print(f"Neo4j is already running (pid {state.pid}).")
    else:
        print(f"Neo4j {local_server.NEO4J_VERSION} started in {result.seconds:.1f} s (pid {state.pid}).")
    print(f"  Bolt:    {state.bolt_uri}")
    print(f"  Browser: {state.browser_url}")
    print(f"  User:    {result.settings.user}")
    if os.environ.get("NEO4J_PASSWORD"):
        print("  Password: $NEO4J_PASSWORD")
    else:
        generated = " (generated now)" if result.password_generated else ""
        print(f"  Password: stored in {password_file(settings.home_dir)}{generated}")
    print(f"  Home:    {state.home}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from graph import local_server

    try:
        stopped = local_server.stop(_settings())
    except GraphError as exc:
        raise CLIError(str(exc)) from exc
    print("Neo4j stopped." if stopped else "Neo4j was not running.")
    return 0


def _status(args: argparse.Namespace) -> int:
    from graph import local_server

    state = local_server.status(_settings())
    if not state.running:
        print(f"Neo4j is not running (home {state.home}); start it with `heritage neo4j start`.")
        return EXIT_NOT_RUNNING
    print(f"Neo4j is running (pid {state.pid}).")
    print(f"  Bolt:    {state.bolt_uri}")
    print(f"  Browser: {state.browser_url}")
    print(f"  Home:    {state.home}")
    return 0
