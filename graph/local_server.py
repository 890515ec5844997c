"""A local Neo4j 5 Community server, fetched from Maven Central and run without Docker.

Why: the project needs a real Neo4j (constraints, Cypher, Browser) on machines where
no Docker engine runs.  Neo4j publishes every piece of the server as Maven
artifacts, so Maven (``graph/neo4j_pom.xml``) copies the server, its runtime
dependencies and the Browser into ``<home>/lib``; the JVM is then started on
``org.neo4j.server.CommunityEntryPoint``, the same class the official ``neo4j``
script ends up running.

Layout of the home folder (``NEO4J_HOME_DIR``, default ``<repo>/.neo4j``)::

    lib/            jars (+ a marker file written after a complete fetch)
    conf/           neo4j.conf (rewritten on every start), .password (generated, 600)
    data/           databases and the auth store; survives stop/start
    logs/           console.log (stdout/stderr of the JVM), neo4j.log, debug.log ...
    run/            neo4j.pid, lock file

Every failure the user can act on raises :class:`graph.errors.Neo4jServerError`
with one line naming the cause and the fix.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import neo4j
from neo4j import exceptions as neo4j_errors

from graph.driver import UNAVAILABLE_ERRORS
from graph.errors import AuthenticationFailed, GraphError, Neo4jServerError
from graph.processes import process_alive
from graph.settings import Neo4jSettings, password_file, read_stored_password

__all__ = [
    "BROWSER_VERSION",
    "NEO4J_VERSION",
    "ServerLayout",
    "ServerStatus",
    "StartResult",
    "fetch",
    "is_running",
    "start",
    "status",
    "stop",
    "write_config",
]

log = logging.getLogger(__name__)

# The one place the server version is pinned: Neo4j 5.26 LTS (runs on Java 17 and 21).
NEO4J_VERSION = "5.26.30"
# Neo4j Browser published as org.neo4j.client:neo4j-browser (static files under /browser/).
BROWSER_VERSION = "5.24.0"

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
POM_FILE = Path(__file__).with_name("neo4j_pom.xml")
MIN_JAVA = 17

# Modest memory: the server shares a small machine with the tests.
HEAP_INITIAL = "512m"
HEAP_MAX = "1g"
PAGECACHE = "256m"

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
FETCH_TIMEOUT_S = 1800.0
MIN_PASSWORD_LENGTH = 8  # Neo4j's dbms.security.auth_minimum_password_length default

# JVM flags of the official `neo4j` launcher (conf/neo4j.conf server.jvm.additional),
# minus the ones that only help big production heaps (e.g. AlwaysPreTouch).
_JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
)

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class ServerLayout:
    """Paths inside the server's home folder."""

    home: Path

    @property
    def lib(self) -> Path:
        return self.home / "lib"

    @property
    def conf(self) -> Path:
        return self.home / "conf"

    @property
    def config_file(self) -> Path:
        return self.conf / "neo4j.conf"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def console_log(self) -> Path:
        return self.logs / "console.log"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def pid_file(self) -> Path:
        return self.run / "neo4j.pid"

    @property
    def lock_file(self) -> Path:
        return self.run / "heritage.lock"

    @property
    def fetch_marker(self) -> Path:
        return self.lib / ".heritage-fetched"

    @property
    def system_database(self) -> Path:
        """Exists once the server has initialised its auth store (first start)."""
        return self.data / "databases" / "system"

    def directories(self) -> tuple[Path, ...]:
        return (self.conf, self.data, self.logs, self.run, self.home / "import", self.home / "plugins")


@dataclass(frozen=True)
class ServerStatus:
    """What ``heritage neo4j status`` reports."""

    running: bool
    pid: int | None
    bolt_uri: str
    browser_url: str
    home: Path


@dataclass(frozen=True)
class StartResult:
    """Outcome of :func:`start`; ``settings`` carries the password actually in use."""

    status: ServerStatus
    already_running: bool
    seconds: float
    settings: Neo4jSettings
    password_generated: bool = False


# --------------------------------------------------------------------------- helpers


def _settings(settings: Neo4jSettings | None) -> Neo4jSettings:
    return settings if settings is not None else Neo4jSettings.from_env()


def _bolt_uri(settings: Neo4jSettings) -> str:
    return f"bolt://127.0.0.1:{settings.bolt_port}"


def _browser_url(settings: Neo4jSettings) -> str:
    return f"http://127.0.0.1:{settings.http_port}/browser/"


def _require_tool(name: str, fix: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise Neo4jServerError(f"`{name}` was not found on PATH: {fix}")
    return path


def _require_java() -> str:
    """Path of a Java >= 17 runtime (Neo4j 5.26 supports Java 17 and 21)."""
    java = _require_tool("java", f"install a Java {MIN_JAVA} or 21 runtime (e.g. openjdk-17-jre-headless)")
    try:
        out = subprocess.run([java, "-version"], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Neo4jServerError(
            f"could not run `{java} -version` ({exc}): check the Java installation"
        ) from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0" style
            major = int(match.group(2))
        if major < MIN_JAVA:
            raise Neo4jServerError(
                f"Neo4j {NEO4J_VERSION} needs Java {MIN_JAVA}+, but `{java}` is Java {major}: "
                f"install Java {MIN_JAVA} or 21 and put it first on PATH"
            )
    return java


def _tail(path: Path, lines: int = 40) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _log_hint(layout: ServerLayout, since: float = 0.0) -> str:
    """The most telling log line (an ERROR if any) of files written since ``since`` (epoch s)."""
    candidates: list[str] = []
    for path in (layout.logs / "neo4j.log", layout.console_log):
        try:
            if path.stat().st_mtime >= since:
                candidates += _tail(path)
        except OSError:
            continue
    errors = [line for line in candidates if "ERROR" in line or "Exception" in line or "Error:" in line]
    line = (errors or candidates or ["(no log output)"])[-1].strip()
    return line[:300]


def _port_in_use(port: int) -> bool:
    """True when something already listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@contextmanager
def _home_lock(layout: ServerLayout) -> Iterator[None]:
    """Serialise start/stop between processes (e.g. two test sessions starting at once)."""
    layout.run.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_pid(layout: ServerLayout) -> int | None:
    try:
        return int(layout.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_server_process(pid: int) -> bool:
    """Alive and (where /proc tells) really a Neo4j JVM, not a recycled pid."""
    if not process_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return ENTRY_POINT.encode() in cmdline.read_bytes()
        except OSError:
            return False
    return True


def _running_pid(layout: ServerLayout) -> int | None:
    pid = _read_pid(layout)
    return pid if pid is not None and _is_server_process(pid) else None


# --------------------------------------------------------------------------- fetch


def _fetch_stamp() -> str:
    return f"neo4j {NEO4J_VERSION} browser {BROWSER_VERSION}\n"


def _is_fetched(layout: ServerLayout) -> bool:
    try:
        return layout.fetch_marker.read_text() == _fetch_stamp()
    except OSError:
        return False


def _maven_command(mvn: str, pom: Path, target: Path) -> list[str]:
    """``mvn dependency:copy-dependencies`` of the server, its runtime and the Browser into ``target``."""
    return [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-Dneo4j.version={NEO4J_VERSION}",
        f"-Dneo4j.browser.version={BROWSER_VERSION}",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={target}",
    ]


def _run_maven(command: list[str], cwd: Path) -> None:
    """Run Maven; one-line :class:`Neo4jServerError` (its first ``[ERROR]``) when it fails."""
    try:
        proc = subprocess.run(command, check=False, cwd=cwd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise Neo4jServerError(
            f"Maven did not finish fetching Neo4j {NEO4J_VERSION} within {FETCH_TIMEOUT_S:.0f} s: "
            "check network access to Maven Central and retry"
        ) from exc
    if proc.returncode != 0:
        output = _ANSI_RE.sub("", proc.stdout + proc.stderr).splitlines()
        errors = [line for line in output if "[ERROR]" in line] or output or ["(no output)"]
        reason = errors[0].replace("[ERROR]", "").strip()[:300]
        raise Neo4jServerError(
            f"Maven could not fetch Neo4j {NEO4J_VERSION} (exit {proc.returncode}: {reason}): "
            "check access to Maven Central (proxy/mirror in ~/.m2/settings.xml) and retry"
        )


def _check_jars(folder: Path) -> None:
    """The jars a start needs are all in ``folder`` (Maven may succeed with a partial copy)."""
    expected = (
        f"neo4j-{NEO4J_VERSION}.jar",
        f"neo4j-server-{NEO4J_VERSION}.jar",
        f"neo4j-browser-{BROWSER_VERSION}.jar",
    )
    missing = [name for name in expected if not (folder / name).exists()]
    if missing:
        raise Neo4jServerError(
            f"Maven finished but {', '.join(missing)} is missing from {folder}: rerun with a clean ~/.m2"
        )


def fetch(settings: Neo4jSettings | None = None, *, force: bool = False) -> Path:
    """Copy the server jars into ``<home>/lib`` with Maven; a no-op once complete.

    Maven downloads into a scratch folder that replaces ``lib`` only after a
    successful run, so an interrupted fetch never leaves a half-filled ``lib``
    that a later start would trust.
    """
    layout = ServerLayout(_settings(settings).home_dir)
    if not force and _is_fetched(layout):
        return layout.lib
    mvn = _require_tool("mvn", "install Apache Maven 3.6+ (e.g. apt-get install maven); it fetches Neo4j")
    layout.home.mkdir(parents=True, exist_ok=True)
    scratch = layout.home / "lib.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    pom = layout.home / "neo4j_pom.xml"  # a copy: the package dir may be read-only
    shutil.copyfile(POM_FILE, pom)
    log.info("fetching Neo4j %s and Browser %s from Maven Central into %s", NEO4J_VERSION, BROWSER_VERSION,
             layout.lib)
    started = time.monotonic()
    _run_maven(_maven_command(mvn, pom, scratch), layout.home)
    _check_jars(scratch)
    shutil.rmtree(layout.lib, ignore_errors=True)
    scratch.rename(layout.lib)
    layout.fetch_marker.write_text(_fetch_stamp())
    log.info("fetched %d jars in %.1f s", len(list(layout.lib.glob("*.jar"))), time.monotonic() - started)
    return layout.lib


# --------------------------------------------------------------------------- config & auth


def write_config(settings: Neo4jSettings | None = None) -> Path:
    """Write ``<home>/conf/neo4j.conf`` from the settings; rewritten on every start."""
    settings = _settings(settings)
    layout = ServerLayout(settings.home_dir)
    for directory in layout.directories():
        directory.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.conf, 0o700)
    bolt, http = settings.bolt_port, settings.http_port
    lines = [
        "# Generated by `heritage neo4j start` (graph/local_server.py); edits are overwritten.",
        "server.default_listen_address=127.0.0.1",
        "server.default_advertised_address=127.0.0.1",
        "server.bolt.enabled=true",
        f"server.bolt.listen_address=127.0.0.1:{bolt}",
        f"server.bolt.advertised_address=127.0.0.1:{bolt}",
        "server.bolt.tls_level=DISABLED",
        "server.http.enabled=true",
        f"server.http.listen_address=127.0.0.1:{http}",
        f"server.http.advertised_address=127.0.0.1:{http}",
        "server.https.enabled=false",
        f"server.directories.data={layout.data}",
        f"server.directories.logs={layout.logs}",
        f"server.directories.run={layout.run}",
        f"server.directories.import={layout.home / 'import'}",
        f"server.directories.plugins={layout.home / 'plugins'}",
        f"server.memory.heap.initial_size={HEAP_INITIAL}",
        f"server.memory.heap.max_size={HEAP_MAX}",
        f"server.memory.pagecache.size={PAGECACHE}",
        f"initial.dbms.default_database={settings.database}",
        "dbms.security.auth_enabled=true",
        "dbms.usage_report.enabled=false",
        # Defaults are 5 s each and only delay shutdown of an idle development server.
        "internal.server.bolt.thread_pool_shutdown_wait_time=1s",
        "internal.server.bolt.connection_shutdown_wait_time=1s",
    ]
    layout.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return layout.config_file


def _store_generated_password(layout: ServerLayout) -> str:
    password = secrets.token_urlsafe(18)
    path = password_file(layout.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    os.chmod(path, 0o600)
    log.info("generated a Neo4j password, stored in %s", path)
    return password


def _set_initial_password(java: str, layout: ServerLayout, password: str) -> None:
    """``neo4j-admin dbms set-initial-password`` via its main class.

    The password travels in a picocli ``@argfile`` (mode 600, deleted afterwards)
    rather than on the command line, where ``ps`` would show it.  It follows ``--``, so a
    password that starts with ``-`` is read as the password, not as an option.
    """
    argfile = layout.conf / ".initial-password.args"
    quoted = '--\n"' + password.replace("\\", "\\\\").replace('"', '\\"') + '"\n'
    fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(quoted)
    env = {**os.environ, "NEO4J_HOME": str(layout.home), "NEO4J_CONF": str(layout.conf)}
    env.pop("NEO4J_PASSWORD", None)
    try:
        proc = subprocess.run(
            [java, "-cp", f"{layout.lib}/*", ADMIN_TOOL, "dbms", "set-initial-password", f"@{argfile}"],
            check=False,
            cwd=layout.home,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        argfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()] or ["(no output)"]
        raise Neo4jServerError(
            f"neo4j-admin set-initial-password failed (exit {proc.returncode}: {lines[0].strip()[:300]}): "
            f"check {layout.config_file}"
        )


def _resolve_password(settings: Neo4jSettings, layout: ServerLayout) -> tuple[Neo4jSettings, bool]:
    """Settings with the password to use, and whether one was generated just now."""
    initialised = layout.system_database.exists()
    if settings.password is None:
        if initialised:
            raise Neo4jServerError(
                f"the Neo4j data in {layout.data} was initialised with a password that is not known here: "
                f"set NEO4J_PASSWORD to it, or delete {layout.data} to start over"
            )
        return settings.with_password(_store_generated_password(layout)), True
    if not initialised and len(settings.password) < MIN_PASSWORD_LENGTH:
        raise Neo4jServerError(
            f"NEO4J_PASSWORD is shorter than Neo4j's minimum of {MIN_PASSWORD_LENGTH} characters: "
            "choose a longer one (or unset it to have one generated)"
        )
    return settings, False


# --------------------------------------------------------------------------- start / stop / status


def status(settings: Neo4jSettings | None = None) -> ServerStatus:
    """Whether the local server of ``settings.home_dir`` runs (pid file + live JVM)."""
    settings = _settings(settings)
    layout = ServerLayout(settings.home_dir)
    pid = _running_pid(layout)
    return ServerStatus(pid is not None, pid, _bolt_uri(settings), _browser_url(settings), layout.home)


def is_running(settings: Neo4jSettings | None = None) -> bool:
    """Shorthand for ``status(settings).running``."""
    return status(settings).running


def _check_can_listen(settings: Neo4jSettings) -> None:
    if settings.bolt_host not in _LOCAL_HOSTS:
        raise Neo4jServerError(
            f"NEO4J_URI points at {settings.bolt_host!r}, but the local server only listens on 127.0.0.1: "
            f"unset NEO4J_URI or use bolt://127.0.0.1:{settings.bolt_port}"
        )
    if settings.bolt_port == settings.http_port:
        raise Neo4jServerError(
            f"Bolt and HTTP would both use port {settings.http_port}: change NEO4J_URI or NEO4J_HTTP_PORT"
        )
    for port, what, fix in (
        (settings.bolt_port, "Bolt", "NEO4J_URI (e.g. bolt://127.0.0.1:7688)"),
        (settings.http_port, "HTTP", "NEO4J_HTTP_PORT (e.g. 7475)"),
    ):
        if _port_in_use(port):
            raise Neo4jServerError(
                f"port {port} (Neo4j {what}) on 127.0.0.1 is already in use by another process: "
                f"stop that process or choose another port with {fix}"
            )


def _launch(java: str, layout: ServerLayout) -> subprocess.Popen[bytes]:
    command = [
        java,
        f"-Xms{HEAP_INITIAL}",
        f"-Xmx{HEAP_MAX}",
        *_JVM_FLAGS,
        "-cp",
        f"{layout.lib}/*",
        ENTRY_POINT,
        f"--home-dir={layout.home}",
        f"--config-dir={layout.conf}",
    ]
    env = {**os.environ, "NEO4J_HOME": str(layout.home), "NEO4J_CONF": str(layout.conf)}
    env.pop("NEO4J_PASSWORD", None)  # the server never needs it; keep it out of /proc/<pid>/environ
    with layout.console_log.open("ab") as console:
        console.write(
            f"\n==== heritage: starting Neo4j {NEO4J_VERSION} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode()
        )
        console.flush()
        proc = subprocess.Popen(
            command,
            cwd=layout.home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: survives the CLI and ignores its Ctrl-C
            close_fds=True,
        )
    tmp = layout.pid_file.with_suffix(".tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.replace(layout.pid_file)
    return proc


def _wait_for_bolt(
    proc: subprocess.Popen[bytes], settings: Neo4jSettings, layout: ServerLayout, timeout: float
) -> None:
    """Block until Bolt accepts the credentials; raise if the JVM dies or time runs out."""
    deadline = time.monotonic() + timeout
    launched = time.time() - 1.0
    uri = _bolt_uri(settings)
    while True:
        code = proc.poll()
        if code is not None:
            layout.pid_file.unlink(missing_ok=True)
            raise Neo4jServerError(
                f"Neo4j exited during start-up (exit {code}): {_log_hint(layout, launched)} -- see {layout.console_log} "
                f"and {layout.logs / 'neo4j.log'}"
            )
        if _port_open(settings.bolt_port):
            try:
                with neo4j.GraphDatabase.driver(uri, auth=settings.auth, connection_timeout=5.0) as driver:
                    driver.verify_connectivity()
                return
            except neo4j_errors.AuthError as exc:
                raise AuthenticationFailed(
                    f"Neo4j started (pid {proc.pid}) but rejected user {settings.user!r}: the data in {layout.data} "
                    "keeps the password it was first started with; set NEO4J_PASSWORD to that password "
                    f"(or stop the server and delete {layout.data} to start over)"
                ) from exc
            except UNAVAILABLE_ERRORS:
                pass  # Bolt is bound but the databases are not ready yet
        if time.monotonic() > deadline:
            _terminate(proc.pid, layout, timeout=STOP_TIMEOUT_S)
            raise Neo4jServerError(
                f"Neo4j did not answer on {uri} within {timeout:.0f} s and was stopped: {_log_hint(layout, launched)} -- "
                f"see {layout.console_log} and {layout.logs / 'neo4j.log'}"
            )
        time.sleep(0.5)


def start(settings: Neo4jSettings | None = None, *, timeout: float = START_TIMEOUT_S) -> StartResult:
    """Fetch (first time), configure and start the server; wait until Bolt answers.

    Starting a server that already runs is not an error (``already_running``).
    """
    settings = _settings(settings)
    layout = ServerLayout(settings.home_dir)
    began = time.monotonic()
    with _home_lock(layout):
        pid = _running_pid(layout)
        if pid is not None:
            resolved = (
                settings
                if settings.password is not None
                else settings.with_password(read_stored_password(settings.home_dir))
            )
            return StartResult(status(settings), True, time.monotonic() - began, resolved)
        layout.pid_file.unlink(missing_ok=True)  # stale
        java = _require_java()
        _check_can_listen(settings)
        fetch(settings)
        write_config(settings)
        settings, generated = _resolve_password(settings, layout)
        if not layout.system_database.exists():
            _set_initial_password(java, layout, settings.password or "")
        proc = _launch(java, layout)
        log.info("started Neo4j (pid %d), waiting for Bolt on port %d", proc.pid, settings.bolt_port)
        try:
            _wait_for_bolt(proc, settings, layout, timeout)
        except GraphError:
            raise
        except BaseException:  # e.g. Ctrl-C while waiting: do not leave a half-started server
            _terminate(proc.pid, layout, timeout=STOP_TIMEOUT_S)
            raise
        elapsed = time.monotonic() - began
        log.info("Neo4j answers on %s after %.1f s", _bolt_uri(settings), elapsed)
        return StartResult(status(settings), False, elapsed, settings, generated)


def _terminate(pid: int, layout: ServerLayout, *, timeout: float) -> None:
    """SIGTERM (clean shutdown with checkpoint), then SIGKILL after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not process_alive(pid):
            break
        log.warning("Neo4j (pid %d) did not stop within %.0f s; sending SIGKILL", pid, wait)
    else:
        raise Neo4jServerError(f"could not stop Neo4j (pid {pid}): kill it by hand")
    layout.pid_file.unlink(missing_ok=True)


def stop(settings: Neo4jSettings | None = None, *, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the server cleanly; returns False when it was not running."""
    layout = ServerLayout(_settings(settings).home_dir)
    with _home_lock(layout):
        pid = _running_pid(layout)
        if pid is None:
            layout.pid_file.unlink(missing_ok=True)
            return False
        log.info("stopping Neo4j (pid %d)", pid)
        _terminate(pid, layout, timeout=timeout)
        return True
