"""The one exception tree of domainrag.

Every error raised on purpose is a :class:`DomainragError`; messages name the bad value and the
fix. Third-party errors are translated where they enter (``raise ... from exc``). The CLI and HTTP
edges turn these into short messages; set ``DOMAINRAG_TRACEBACK=1`` to see full tracebacks.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType


class DomainragError(Exception):
    """Base class of every error domainrag raises on purpose."""


class ConfigError(DomainragError, ValueError):
    """A configuration value or argument is invalid."""


class UntrustedSettingsError(ConfigError):
    """A knowledge base's own ``domainrag.toml`` chooses where data is sent or which secret goes
    with it, and the user has not trusted that knowledge base (see :mod:`domainrag.trust`)."""


class MissingDependencyError(DomainragError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'domainrag[{extra}]'"
        )
        self.package = package
        self.extra = extra


class LoaderError(DomainragError):
    """A file could not be read into a document (corrupt, encrypted, empty, unsupported...)."""


class IndexMismatchError(DomainragError):
    """The knowledge base was built with a different embedder or chunker than the one requested."""


class CorruptKnowledgeBase(DomainragError):
    """A knowledge base's catalog cannot be read (damaged, truncated, or not a catalog at all)."""


class KnowledgeBaseNotFound(DomainragError, FileNotFoundError):
    """No knowledge base exists at the given path."""


class EmbeddingError(DomainragError):
    """An embedding model failed or returned vectors of the wrong shape."""


class PluginError(ConfigError):
    """A plug-in name is unknown (a provider, embedder, loader or store) or a registered plug-in
    failed to load; the message lists the known names."""


class GenerationError(DomainragError):
    """A language model call failed (after retries and any fallbacks), or returned nothing usable."""


class EmptyKnowledgeBase(DomainragError):
    """The knowledge base holds no documents yet."""


def require(module: str, package: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingDependencyError` naming the extra
    to install: ``openai = require("openai", "openai", "openai", "OpenAI-compatible models")``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra, purpose) from exc


def missing(package: str, extra: str, purpose: str) -> MissingDependencyError:
    """Shorthand used at the point of a lazy import: ``raise missing(...) from exc``."""
    return MissingDependencyError(package, extra, purpose)


def make_folder(path: Path, what: str, fix: str) -> Path:
    """``path`` created as a folder (with its parents) if absent; a path that cannot be one (a file
    is there or above it, no permission, an unusable name) raises :class:`ConfigError`
    ("Cannot use {path} as the {what}: {reason}. {fix}")."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        blocker = next((p for p in path.parents if p.is_file()), path if path.is_file() else None)
        if blocker is not None:
            reason = f"{blocker} is a file, not a folder"
        raise ConfigError(f"Cannot use {path} as the {what}: {reason}. {fix}") from exc
    return path
