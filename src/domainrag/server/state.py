"""What every request of one server shares (``app.state.server``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from .collections import Collections
from .jobs import JobRunner
from .keys import KeyStore
from .metrics import Metrics
from .ratelimit import RateLimiter
from .settings import ServerSettings
from .uploads import Limits


@dataclass
class ServerState:
    settings: ServerSettings
    collections: Collections
    jobs: JobRunner
    keys: KeyStore
    limiter: RateLimiter
    metrics: Metrics
    limits: Limits
    #: Server paths and what error messages sent to clients say instead (:func:`.problems.for_client`).
    private_paths: tuple[tuple[str, str], ...] = ()


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state
