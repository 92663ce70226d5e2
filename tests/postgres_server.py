"""A real PostgreSQL 16 + pgvector on 127.0.0.1 for the integration tests.

The binaries come from the ``pgserver`` package (PyPI; PostgreSQL 16 with pgvector bundled) or,
without it, from Debian's ``postgresql`` + ``postgresql-NN-pgvector`` packages. The cluster is
initialised in a fresh temporary folder with password (scram) authentication over TCP, started
on a free loopback port, and removed at the end of the session. PostgreSQL refuses to run as
root, so as root it runs as the unprivileged user ``pgserver`` (created when missing).

``postgres_url`` (session fixture) is a store URL whose password comes from
``$DOMAINRAG_TEST_PGPASSWORD``; when PostgreSQL cannot start (or psycopg is not installed) the
tests are skipped, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PASSWORD_ENV = "DOMAINRAG_TEST_PGPASSWORD"
SYSTEM_USER = "pgserver"


def _bin_dir() -> Path | None:
    try:
        from pgserver import _commands
    except ImportError:
        pass
    else:
        return Path(_commands.POSTGRES_BIN_PATH)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "postgres").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throw-away cluster (see module docstring)."""

    def __init__(self) -> None:
        found = _bin_dir()
        if found is None:
            raise RuntimeError("no PostgreSQL binaries: pip install pgserver, or apt-get install "
                               "postgresql postgresql-16-pgvector")
        self.bin: Path = found
        self.password = secrets.token_urlsafe(12)
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="domainrag-pg-"))
        self.data = self.folder / "data"
        self.user = SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, *args: str, env: dict[str, str] | None = None) -> None:
        kwargs: dict[str, Any] = {"user": self.user} if self.user else {}
        if env:
            kwargs["env"] = {**os.environ, **env}
        result = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                                timeout=120, check=False, **kwargs)
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr or result.stdout}")

    def start(self) -> str:
        if self.user:
            _ensure_user(self.user)
            info = pwd.getpwnam(self.user)
            os.chown(self.folder, info.pw_uid, info.pw_gid)
            if not _others_can_reach(self.bin):
                # e.g. a clone under `mktemp -d` (mode 0700): the unprivileged user cannot reach
                # the binaries inside its virtual environment, so it runs a copy of the install
                self.bin = _reachable_copy(self.bin, self.folder / "site-packages")
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password)
        if self.user:
            os.chown(pwfile, pwd.getpwnam(self.user).pw_uid, -1)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile), "-E", "UTF8",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        pwfile.unlink()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.folder / "log"), "-o", options,
                  "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?password_env={PASSWORD_ENV}"

    def start_replica(self) -> Replica:
        """A streaming replica of this server (pg_basebackup over the replication protocol, then a
        hot standby on its own free port): ``replica.url`` has no query options."""
        replica = Replica(self, _free_port(), self.folder / f"replica-{secrets.token_hex(3)}")
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-D", str(replica.data),
                  "-R", "-X", "stream", "--no-sync", env={"PGPASSWORD": self.password})
        replica.start()
        return replica

    def log(self) -> str:
        try:
            return (self.folder / "log").read_text()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


class Replica:
    """A hot standby of a :class:`PostgresServer` (see :meth:`PostgresServer.start_replica`)."""

    def __init__(self, primary: PostgresServer, port: int, data: Path) -> None:
        self.primary, self.port, self.data = primary, port, data
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.primary.folder} -c fsync=off -c max_connections=200"
        log = self.data.parent / f"{self.data.name}.log"
        try:
            self.primary._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(log), "-o", options, "start")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{log.read_text()[-3000:] if log.exists() else ''}") from exc

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.primary._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


def _others_can_reach(path: Path) -> bool:
    """Whether a user other than the owner can traverse every folder down to ``path``."""
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in [path, *path.parents])


def _reachable_copy(bin_dir: Path, site: Path) -> Path:
    """Copy pgserver's install (``site-packages/pgserver/pginstall``) and its bundled libraries
    (``site-packages/pgserver.libs``, found through the binaries' ``$ORIGIN/../../../`` rpath)
    under ``site``, keeping that layout; the copy's ``bin`` folder."""
    install = bin_dir.parent
    package = install.parent
    shutil.copytree(install, site / package.name / install.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    return site / package.name / install.name / bin_dir.name


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer() if _bin_dir() else None
    try:
        try:
            import pgvector.psycopg  # noqa: F401
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(f"the postgres extra is not installed ({exc}): pip install -e '.[dev]'") from exc
        if server is None:
            raise RuntimeError("no PostgreSQL binaries (pip install pgserver)")
        url = server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        message = f"PostgreSQL could not start: {exc}"
        if server is not None:
            message += "\n" + server.log()
            server.stop()
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server.url = url  # type: ignore[attr-defined]
    os.environ[PASSWORD_ENV] = server.password
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return str(postgres_server.url)  # type: ignore[attr-defined]
