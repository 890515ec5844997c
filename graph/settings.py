"""Connection settings for Neo4j, read from the environment.

Everything that talks to Neo4j (CLI, API, tests, the local server manager) builds
its settings here, so one set of environment variables configures them all:

``NEO4J_URI``       Bolt URI, default ``bolt://127.0.0.1:7687``
``NEO4J_USER``      default ``neo4j``
``NEO4J_PASSWORD``  if unset, the password that ``heritage neo4j start`` generated and
                    stored in ``<home>/conf/.password`` (never a hard-coded default)
``NEO4J_DATABASE``  default ``neo4j``
``NEO4J_HTTP_PORT`` HTTP port of the local server (Neo4j Browser), default 7474
``NEO4J_HOME_DIR``  home of the local server, default ``<repo>/.neo4j``
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_HOME_DIR",
    "DEFAULT_URI",
    "Neo4jSettings",
    "password_file",
    "read_stored_password",
]

DEFAULT_URI = "bolt://127.0.0.1:7687"
DEFAULT_USER = "neo4j"
DEFAULT_DATABASE = "neo4j"
DEFAULT_HTTP_PORT = 7474
# <repo>/.neo4j: git-ignored; holds the fetched jars, config, data and logs.
DEFAULT_HOME_DIR = Path(__file__).resolve().parents[1] / ".neo4j"

_DEFAULT_PORTS = {
    "bolt": 7687,
    "bolt+s": 7687,
    "bolt+ssc": 7687,
    "neo4j": 7687,
    "neo4j+s": 7687,
    "neo4j+ssc": 7687,
}


def password_file(home_dir: Path) -> Path:
    """Where ``heritage neo4j start`` keeps a generated password (mode 600)."""
    return Path(home_dir) / "conf" / ".password"


def read_stored_password(home_dir: Path) -> str | None:
    """The generated password of the local server, or ``None`` if there is none yet."""
    try:
        text = password_file(home_dir).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


@dataclass(frozen=True)
class Neo4jSettings:
    """Where Neo4j is and how to log in; immutable, safe to share between threads."""

    uri: str = DEFAULT_URI
    user: str = DEFAULT_USER
    # Excluded from repr so settings can be logged without leaking the secret.
    password: str | None = field(default=None, repr=False)
    database: str = DEFAULT_DATABASE
    http_port: int = DEFAULT_HTTP_PORT
    home_dir: Path = DEFAULT_HOME_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Neo4jSettings:
        """Build settings from ``env`` (default ``os.environ``), see the module doc."""
        env = os.environ if env is None else env
        home_dir = Path(env.get("NEO4J_HOME_DIR") or DEFAULT_HOME_DIR).expanduser().resolve()
        password = env.get("NEO4J_PASSWORD") or read_stored_password(home_dir)
        http_port_text = env.get("NEO4J_HTTP_PORT") or str(DEFAULT_HTTP_PORT)
        try:
            http_port = int(http_port_text)
        except ValueError:
            raise ValueError(f"NEO4J_HTTP_PORT must be a port number, got {http_port_text!r}") from None
        return cls(
            uri=env.get("NEO4J_URI") or DEFAULT_URI,
            user=env.get("NEO4J_USER") or DEFAULT_USER,
            password=password,
            database=env.get("NEO4J_DATABASE") or DEFAULT_DATABASE,
            http_port=http_port,
            home_dir=home_dir,
        )

    def with_password(self, password: str | None) -> Neo4jSettings:
        """A copy with another password (used right after one is generated)."""
        return replace(self, password=password)

    @property
    def bolt_host(self) -> str:
        """Host part of :attr:`uri`."""
        return urlsplit(self.uri).hostname or "127.0.0.1"

    @property
    def bolt_port(self) -> int:
        """Port part of :attr:`uri` (the scheme's default when it has none)."""
        parts = urlsplit(self.uri)
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"NEO4J_URI has an invalid port: {self.uri!r}") from None
        return port or _DEFAULT_PORTS.get(parts.scheme, 7687)

    @property
    def browser_url(self) -> str:
        """Neo4j Browser of a server on the Bolt host (the local server's in practice)."""
        host = self.bolt_host
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.http_port}/browser/"

    @property
    def auth(self) -> tuple[str, str] | None:
        """``(user, password)`` for the driver, ``None`` when no password is known."""
        return (self.user, self.password) if self.password is not None else None
