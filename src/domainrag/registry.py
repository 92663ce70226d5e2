"""Plug-in registry: built-ins and third-party plug-ins register the same way.

A plug-in is an entry point in one of the groups below (see ``pyproject.toml``), e.g.::

    [project.entry-points."domainrag.embedders"]
    myvendor = "my_package.embed:MyEmbedder"

Tests and applications may also call :func:`register` directly.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from .errors import PluginError

GROUPS = (
    "domainrag.loaders",
    "domainrag.embedders",
    "domainrag.stores",
    "domainrag.generators",
    "domainrag.verifiers",
    "domainrag.sources",
)

_registered: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}


def register(group: str, name: str, obj: Any) -> None:
    """Register ``obj`` (usually a class) under ``name``; replaces an entry point of that name."""
    _check_group(group)
    _registered[group][name] = obj


def unregister(group: str, name: str) -> None:
    _registered[_check_group(group)].pop(name, None)


def names(group: str) -> list[str]:
    """All plug-in names of ``group``, registered and installed."""
    _check_group(group)
    return sorted(set(_entry_points(group)) | set(_registered[group]))


def get(group: str, name: str) -> Any:
    """The plug-in ``name`` of ``group``, loading its entry point on first use."""
    _check_group(group)
    if name in _registered[group]:
        return _registered[group][name]
    eps = _entry_points(group)
    if name not in eps:
        known = ", ".join(names(group)) or "none"
        raise PluginError(f"Unknown {group.split('.')[-1][:-1]} {name!r}. Known: {known}.")
    try:
        obj = eps[name].load()
    except ImportError as exc:
        raise PluginError(f"Plug-in {name!r} of {group} failed to import: {exc}") from exc
    _registered[group][name] = obj
    return obj


@cache
def _entry_points(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in _installed().select(group=group)}


@cache
def _installed() -> Any:
    """Every installed distribution's entry points, read once: each read opens the metadata of
    every distribution (~20 ms with 180 installed), and a search needs two groups (store and
    embedder). The same entry points, in the same order, as ``entry_points(group=...)``."""
    return entry_points()


def _check_group(group: str) -> str:
    if group not in _registered:
        raise PluginError(f"Unknown plug-in group {group!r}; groups are {', '.join(GROUPS)}.")
    return group
