"""Settings read from the environment: the one mechanism, and Neo4j's connection settings.

Every part that reads ``NEO4J_*`` or ``HERITAGE_*`` variables declares them as a
:class:`EnvironmentSettings` class (pydantic-settings): names, types, defaults and
limits in one place, parsed and validated the same way, and an invalid value is one
line naming the variable (``NEO4J_HTTP_PORT='x': Input should be a valid integer ...``).
The objects the code passes around (:class:`Neo4jSettings`, the catalogue's and the
API's configurations) stay plain immutable values built from those classes by their
``from_env()``, so constructing one in code never reads the environment.

Neo4j (CLI, API, tests, the local server manager):

``NEO4J_URI``       Bolt URI, default ``bolt://127.0.0.1:7687``
``NEO4J_USER``      default ``neo4j``
``NEO4J_PASSWORD``  if unset, the password that ``heritage neo4j start`` generated and
                    stored in ``<home>/conf/.password`` (never a hard-coded default)
``NEO4J_DATABASE``  default ``neo4j``
``NEO4J_HTTP_PORT`` HTTP port of the local server (Neo4j Browser), default 7474
``NEO4J_HOME_DIR``  home of the local server, default ``<repo>/.neo4j``
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "DEFAULT_HOME_DIR",
    "DEFAULT_URI",
    "EnvironmentSettings",
    "Neo4jSettings",
    "password_file",
    "read_stored_password",
]

E = TypeVar("E", bound="EnvironmentSettings")

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


class EnvironmentSettings(BaseSettings):
    """Variables of one part of the system, read from the process environment only.

    Subclasses set ``env_prefix`` (or a field's ``validation_alias`` for a name outside
    the prefix) and declare each variable as a typed field with its default.  Empty
    values count as unset; no ``.env`` file or secrets folder is read.  Use :meth:`read`.
    """

    model_config = SettingsConfigDict(case_sensitive=False, env_ignore_empty=True, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings,)

    @classmethod
    def variable(cls, field_name: str) -> str:
        """The environment variable of ``field_name``."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, str):
            return alias
        return (str(cls.model_config.get("env_prefix") or "") + field_name).upper()

    @classmethod
    def read(cls: type[E]) -> E:
        """The variables as set now; ``ValueError`` with one line naming the first bad one."""
        try:
            return cls()
        except ValidationError as exc:
            raise ValueError(cls._one_line(exc)) from None

    @classmethod
    def _one_line(cls, exc: ValidationError) -> str:
        error = exc.errors(include_url=False)[0]
        key = str(error["loc"][0]) if error["loc"] else ""
        names = {cls.variable(n): n for n in cls.model_fields} | {n: n for n in cls.model_fields}
        field_name = names.get(key) or names.get(key.upper())
        if field_name is None:
            return f"invalid setting: {error['msg']}"
        shown = "" if not cls.model_fields[field_name].repr else f"={error.get('input')!r}"
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{cls.variable(field_name)}{shown}: {message}"


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


class Neo4jEnvironment(EnvironmentSettings):
    """The ``NEO4J_*`` variables (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="NEO4J_")

    uri: str = DEFAULT_URI
    user: str = DEFAULT_USER
    password: str | None = Field(None, repr=False)
    database: str = DEFAULT_DATABASE
    http_port: int = Field(DEFAULT_HTTP_PORT, ge=1, le=65535)
    home_dir: Path = DEFAULT_HOME_DIR


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
    def from_env(cls) -> Neo4jSettings:
        """Settings from the ``NEO4J_*`` variables (see the module doc); ``ValueError``
        naming the variable for an invalid value."""
        env = Neo4jEnvironment.read()
        home_dir = env.home_dir.expanduser().resolve()
        return cls(uri=env.uri, user=env.user, password=env.password or read_stored_password(home_dir),
                   database=env.database, http_port=env.http_port, home_dir=home_dir)

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
