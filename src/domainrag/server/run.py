"""Run the server under Uvicorn (what ``domainrag serve`` calls)."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import require
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

    app = create_app(settings)
    check_bind(settings, app.state.server.keys.any_keys())
    configure()
    log.info("serving", extra={"host": settings.host, "port": settings.port, "home": str(settings.home),
                               "collections": app.state.server.collections.names()})
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=10)
