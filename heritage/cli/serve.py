"""``heritage serve``: run the REST API with uvicorn.

Configuration comes from the environment (see :mod:`heritage.api.settings` and
:mod:`heritage.catalogue.config`); the command only chooses where to listen.  A
configuration the API refuses (e.g. ``HERITAGE_ENV=production`` without
``HERITAGE_API_KEYS``) ends the command with one line saying why.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
from typing import Any

from heritage.cli import CLIError

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the REST API (FastAPI + uvicorn)",
        description=(
            "Serve the Model Heritage REST API under /api (OpenAPI at /docs). Configured by "
            "HERITAGE_* and NEO4J_* environment variables; writes need HERITAGE_API_KEYS."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="uvicorn log level (default info)")
    parser.add_argument("--proxy-headers", action="store_true",
                        help="trust X-Forwarded-* headers (only behind a reverse proxy you run)")
    parser.set_defaults(handler=_serve)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from heritage.api.app import create_app
    from heritage.api.settings import ApiSettings, ConfigurationError

    if not 0 < args.port < 65536:
        raise CLIError(f"--port must be between 1 and 65535, got {args.port}", exit_code=2)
    try:
        settings = ApiSettings.from_env()
        app = create_app(settings)
    except (ConfigurationError, ValueError) as exc:
        raise CLIError(f"cannot start the API: {exc}") from None
    if settings.writes_open and not _is_loopback(args.host):
        log.warning("writes need no API key and the API listens on %s: anyone who can reach it "
                    "can change the catalogue", args.host)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        proxy_headers=args.proxy_headers,
        server_header=False,
    )
    return 0
