"""Prompt templates: Jinja2 files with ``system`` / ``user`` (and ``retry``) blocks.

Presets ship in ``answer/templates/`` as ``NAME.LANG.j2`` (``general``, ``finance``,
``medical``, ``legal`` in ``en`` and ``zh``; ``rewrite`` and ``judge`` for conversations and the
entailment judge). A knowledge base overrides or adds templates in ``<kb>/templates/``; a
template may also be given as a path to a file. Lookup for ``NAME`` in language ``LANG``:
``NAME.LANG.j2``, ``NAME.j2``, ``NAME.en.j2``.

Retrieved text is data, not instructions: every field shown inside a ``<source>`` element is
escaped so it cannot close the element or open another one, and the system prompt says so.
The hash recorded with every answer covers the template and every template it extends.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..models.generation import Message
from ..types import Source

PRESETS = ("general", "finance", "medical", "legal")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
ABSTAIN_MESSAGES = {
    "en": "The documents do not contain an answer to this question.",
    "zh": "文档中没有找到这个问题的答案。",
}
_PACKAGE_DIR = Path(__file__).parent / "templates"
_DELIMITER = re.compile(r"<(?=\s*/?\s*(?:source|claim|context|question|answer)\b)", re.IGNORECASE)


def quote_data(text: str) -> str:
    """``text`` with the prompts' delimiter tags (source, claim, context, question, answer)
    neutralised (``<`` -> ``&lt;``)."""
    return _DELIMITER.sub("&lt;", text)


@dataclass(frozen=True)
class Prompt:
    """A rendered template: the messages and what identifies the template."""

    messages: tuple[Message, ...]
    name: str
    hash: str


class Templates:
    """Finds and renders templates: the knowledge base's own first, then the presets."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = override_dir

    @cached_property
    def _env(self) -> Any:
        import jinja2

        dirs = [str(d) for d in (self.override_dir, _PACKAGE_DIR) if d and d.is_dir()]
        return jinja2.Environment(loader=jinja2.FileSystemLoader(dirs), autoescape=False,
                                  undefined=jinja2.StrictUndefined, keep_trailing_newline=False)

    def names(self) -> list[str]:
        """Template names available in either language."""
        found = {name.split(".")[0] for name in self._env.list_templates(extensions=["j2"])}
        return sorted(found - {"base"})

    def resolve(self, name: str, language: str) -> str:
        """The file name serving template ``name`` in ``language``."""
        available = set(self._env.list_templates(extensions=["j2"]))
        if name in available:
            return name
        if name.endswith(".j2") or "/" in name or "\\" in name:
            return self._file(Path(name))
        for candidate in (f"{name}.{language}.j2", f"{name}.j2", f"{name}.en.j2"):
            if candidate in available:
                return candidate
        raise ConfigError(
            f"Unknown prompt template {name!r}. Presets: {', '.join(PRESETS)}; templates here: "
            f"{', '.join(self.names())}. Add your own as {self.override_dir or '<kb>'}/templates/{name}.{language}.j2."
        )

    def _file(self, path: Path) -> str:
        if not path.is_file():
            raise ConfigError(f"Prompt template file {path} does not exist.")
        loader = self._env.loader
        parent = str(path.resolve().parent)
        if parent not in loader.searchpath:
            loader.searchpath.insert(0, parent)
        return path.name

    def render(self, name: str, language: str, *, blocks: Sequence[str] = ("system", "user"),
               **variables: Any) -> Prompt:
        """Render ``blocks`` of the template as messages (``system`` -> system, others -> user)."""
        file = self.resolve(name, language)
        template = self._env.get_template(file)
        context = template.new_context(variables)
        for ancestor in self._ancestors(file):  # as Jinja does on {% extends %}: child first
            for block, render in ancestor.blocks.items():
                context.blocks.setdefault(block, []).append(render)
        messages = []
        for block in blocks:
            if block not in context.blocks:
                raise ConfigError(f"Prompt template {file} has no '{block}' block.")
            text = "".join(context.blocks[block][0](context)).strip()
            messages.append(Message("system" if block == "system" else "user", text))
        return Prompt(tuple(messages), file, self.hash(file))

    def _ancestors(self, file: str) -> list[Any]:
        from jinja2 import nodes

        chain, current = [], file
        while True:
            source, _, _ = self._env.loader.get_source(self._env, current)
            extends = self._env.parse(source).find(nodes.Extends)
            if extends is None or not isinstance(extends.template, nodes.Const):
                return chain
            current = extends.template.value
            chain.append(self._env.get_template(current))

    def hash(self, file: str) -> str:
        """sha256 (16 hex) over the template and every template it extends or includes."""
        from jinja2 import meta

        digest = hashlib.sha256()
        pending, seen = [file], set()
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            source, _, _ = self._env.loader.get_source(self._env, current)
            digest.update(current.encode() + b"\0" + source.encode() + b"\0")
            pending.extend(n for n in meta.find_referenced_templates(self._env.parse(source)) if n)
        return digest.hexdigest()[:16]


def source_fields(sources: Sequence[Source]) -> list[dict[str, Any]]:
    """What the answer templates show of each source, escaped as quoted data."""
    return [
        {"number": s.number, "title": quote_data(s.title).replace('"', "'"),
         "location": quote_data(location(s)).replace('"', "'"), "text": quote_data(s.text)}
        for s in sources
    ]


def location(source: Source) -> str:
    """``"guide.pdf, p. 3, Dosage > Adults"``: where a source lies, for prompts and display."""
    parts = [Path(source.source).name if source.source else source.doc_id]
    if source.page:
        parts.append(f"p. {source.page}")
    if source.heading_path:
        parts.append(" > ".join(source.heading_path))
    return ", ".join(parts)


def abstain_message(language: str, custom: dict[str, str] | None = None) -> str:
    custom = custom or {}
    return custom.get(language) or ABSTAIN_MESSAGES.get(language) or custom.get("en") or ABSTAIN_MESSAGES["en"]
