"""What a request may choose and what only the server's operator may (docs/SECURITY.md).

The operator (``server.toml``, the environment, the command line) decides where data and
secrets go: the URLs models and stores are reached at, the environment variables sent as API
keys, the models that spend the server's keys. A request — even an admin key's — chooses only
among what the operator offers:

- :func:`check_collection_settings`: the settings of ``POST /v1/collections`` may not include an
  operator-only setting (:data:`OPERATOR_ONLY`, a remote embedder, an embedder read from a path,
  a template given as a path) nor loosen one of the server's :data:`BUDGETS`;
- :func:`check_stored_settings`: a collection created over the API is refused when its stored
  ``domainrag.toml`` holds one anyway (written before this check, or by hand under the home);
- :func:`check_model`: the ``model`` of every answering route is ``None`` (the collection's
  configured model) or one of the server's ``models``;
- :func:`check_template`: the ``template`` is the name of one of the collection's or the
  built-in templates — never a path; a path and an unknown name get the same 422.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .. import registry
from ..config import KBConfig
from ..kb import KnowledgeBase
from ..trust import NETWORK_KEYS
from .problems import Invalid

#: Settings only the operator chooses: where data goes, which secret goes with it, which models
#: spend the server's keys (besides the embedder, checked by :func:`_embedder_problem`).
OPERATOR_ONLY = (*NETWORK_KEYS, "answer.model", "answer.fallback", "answer.judge")
#: Budgets of the server's machine and of its provider keys: a request may tighten them (a value
#: at most the default), never loosen them (``parse_memory_mb = 0`` would lift the memory limit).
BUDGETS = ("ingest.parse_timeout_s", "ingest.parse_memory_mb", "ingest.max_file_mb", "ingest.max_unpacked_mb",
           "ingest.max_compression_ratio", "answer.max_tokens", "answer.max_retries", "answer.timeout_s")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_EMBEDDERS = "domainrag.embedders"


def check_collection_settings(settings: Mapping[str, Any]) -> None:
    """422 naming the first setting of a ``POST /v1/collections`` body that only the operator may
    choose."""
    for key, value in settings.items():
        problem = _operator_problem(key.strip(), value)
        if problem:
            raise Invalid(f"Setting {key!r} {problem}. It decides where data or secrets go, so only the server's "
                          "operator sets it (server.toml, the environment or the command line): leave it out.",
                          errors=[{"field": f"body.settings.{key}", "message": f"operator-only setting: {problem}"}])


def _operator_problem(key: str, value: Any) -> str | None:
    if key in OPERATOR_ONLY:
        return "may not be set over the API"
    if key == "embedder.model":
        return _embedder_problem(str(value))
    if key == "answer.template":
        return _template_problem(str(value))
    if key in BUDGETS:
        return _budget_problem(key, value)
    if key == "ingest.follow_external_symlinks" and value is not False:
        return "may not be set over the API (it would read files outside the uploads)"
    return None


def _budget_problem(key: str, value: Any) -> str | None:
    """Why a budget from a request is refused: above the default (or 0, no limit, for memory)."""
    ceiling = _get(KBConfig().model_dump(mode="json"), key) or (60.0 if key == "answer.timeout_s" else None)
    if not isinstance(value, int | float) or isinstance(value, bool) or ceiling is None:
        return None   # the configuration's own validation names a wrong type
    if value > ceiling or (key == "ingest.parse_memory_mb" and value <= 0):
        return f"= {value!r} loosens a budget of the server (a request may set at most {ceiling:g}, and no 0)"
    return None


def _template_problem(template: str) -> str | None:
    """Why a collection's template setting from a request is refused: a path, not a name."""
    if _TEMPLATE_NAME.match(template):
        return None
    return f"= {template[:64]!r} is not a template name (a template is chosen by name, never by path)"


def _embedder_problem(spec: str) -> str | None:
    """Why an embedder spec from a request is refused (``None``: it is not)."""
    from ..models.embedders import resolve

    provider, _, model = resolve(spec).partition(":")
    if model.startswith(("/", "\\", "~", ".")) or ".." in model or re.match(r"^[A-Za-z]:", model):
        return f"names a path on the server ({spec!r})"
    try:
        factory = registry.get(_EMBEDDERS, provider)
    except Exception:  # noqa: BLE001 - an unknown provider is refused later, with the list of known ones
        return None
    if getattr(factory, "remote", False):
        return f"= {spec!r} sends every document to a remote service with the server's key"
    parts = getattr(factory, "component_specs", None)   # a composite (pair): each part is vetted
    if parts is not None:
        try:
            specs: list[str] = parts(model)
        except Exception:  # noqa: BLE001 - a malformed composite is refused later, with its fix
            return None
        return next((problem for part in specs if (problem := _embedder_problem(part))), None)
    return None


def check_stored_settings(config: KBConfig, name: str) -> None:
    """Refuse a collection created over the API whose stored configuration holds an
    operator-only setting (a collection served from ``--kb``/``server.toml`` is the operator's)."""
    data, defaults = config.model_dump(mode="json"), KBConfig().model_dump(mode="json")
    chosen = [key for key in OPERATOR_ONLY if _get(data, key) != _get(defaults, key)]
    if _embedder_problem(config.embedder.model):
        chosen.append("embedder.model")
    if _template_problem(config.answer.template):
        chosen.append("answer.template")
    chosen += [key for key in BUDGETS if _get(data, key) is not None and _budget_problem(key, _get(data, key))]
    if config.ingest.follow_external_symlinks:
        chosen.append("ingest.follow_external_symlinks")
    if chosen:
        raise Invalid(f"Collection {name!r} was created over the API, but its stored settings choose "
                      f"{', '.join(chosen)}, which only the server's operator may set. Remove them from its "
                      "domainrag.toml, or serve the folder yourself (--kb or server.toml [collections.NAME]).")


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    section, _, key = dotted.partition(".")
    return data.get(section, {}).get(key)


def check_model(model: str | None, offered: Sequence[str], kb: KnowledgeBase) -> None:
    """422 unless ``model`` is ``None``, one of the server's ``offered`` models, or the
    collection's own configured model."""
    if model is None or model.strip() in offered or model.strip() == (kb.config.answer.model or ""):
        return
    choices = ", ".join(offered) or "none: each collection answers with its configured model"
    raise Invalid(f"Model {model[:200]!r} is not offered by this server (offered: {choices}). Leave 'model' out, "
                  "or ask the operator to add it to [server] models in server.toml.",
                  errors=[{"field": "body.model", "message": "not one of the server's models"}])


def check_template(template: str | None, kb: KnowledgeBase) -> None:
    """422 unless ``template`` is ``None`` or the name of one of ``kb``'s or the built-in
    templates. A path, a file name and an unknown name get the same answer, which reveals
    nothing of the server's files."""
    if template is None:
        return
    names = kb.answerer.templates.names()
    if _TEMPLATE_NAME.match(template) and template in names:
        return
    raise Invalid(f"Unknown prompt template {template[:64]!r}: give the name of one of this collection's "
                  f"templates ({', '.join(names)}).",
                  errors=[{"field": "body.template", "message": "not the name of a template of this collection"}])
