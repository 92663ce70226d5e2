"""Run the server under Uvicorn (what ``domainrag serve`` calls)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from urllib.parse import urlsplit

from ..config import CONFIG_FILE
from ..errors import ConfigError, DomainragError, require
from ..index.postgres_connect import is_postgres_url
from .settings import ServerSettings, check_bind

log = logging.getLogger("domainrag.server")


def collection_args(values: list[str]) -> dict[str, dict[str, str]]:
    """``--kb DIR`` (served as ``basename(DIR)``), ``--kb URL`` (a PostgreSQL knowledge base with
    no folder, served as its ``#collection``) and ``--kb NAME=DIR|URL`` as ``[collections]``
    entries."""
    collections: dict[str, dict[str, str]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if is_postgres_url(value):                      # the '=' was inside the URL's query
            name, path = urlsplit(value).fragment, value
        elif not sep:
            name, path = Path(value).resolve().name, value
        collections[name] = {"path": path}
    return collections


def serve(settings: ServerSettings) -> None:
    """Build the application, refuse a public bind without keys (unless ``insecure``), serve
    until SIGINT/SIGTERM; then running ingest jobs stop after their current file and resume at
    the next start."""
    require("fastapi", "fastapi", "server", "domainrag serve")
    uvicorn = require("uvicorn", "uvicorn", "server", "domainrag serve")
    from .app import create_app
    from .logs import configure

    check_collections(settings)
    app = create_app(settings)
    check_bind(settings, app.state.server.keys.any_keys())
    check_port(settings.host, settings.port)
    configure()
    log.info("serving", extra={"host": settings.host, "port": settings.port, "home": str(settings.home),
                               "collections": app.state.server.collections.names()})
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                    timeout_graceful_shutdown=10)
    except SystemExit as exc:   # uvicorn's own exit when it cannot start (its log line says why)
        if exc.code in (0, None):
            raise
        raise DomainragError(f"The server did not start on {settings.host}:{settings.port} (the log line above "
                             "says why).") from None


def check_collections(settings: ServerSettings) -> None:
    """Refuse to start with a configured collection whose folder holds no knowledge base."""
    for name, spec in settings.collections.items():
        if isinstance(spec.path, str) and is_postgres_url(spec.path):
            continue   # opened on first use; /readyz reports it
        path = Path(spec.path)
        if not ((path / "catalog.sqlite3").is_file() or (path / CONFIG_FILE).is_file()):
            raise ConfigError(f"Collection {name!r}: there is no knowledge base at {path} (--kb, or "
                              f"[collections.{name}] in server.toml). Build one with 'domainrag ingest DOCS --kb "
                              f"{path}', or fix the path.")


def check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on, before the server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Another program (perhaps "
                              "another 'domainrag serve') uses it: stop that one, or choose another --port.") from exc
