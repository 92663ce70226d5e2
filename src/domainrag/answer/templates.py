"""Prompt templates: Jinja2 files with ``system`` / ``user`` (and ``retry``) blocks.

Presets ship in ``answer/templates/`` as ``NAME.LANG.j2`` (``general``, ``finance``,
``medical``, ``legal`` in ``en`` and ``zh``; ``rewrite`` and ``judge`` for conversations and the
entailment judge). A knowledge base overrides or adds templates in ``<kb>/templates/``; a
template may also be given as a path to a file. Lookup for ``NAME`` in language ``LANG``:
``NAME.LANG.j2``, ``NAME.j2``, ``NAME.en.j2``.

Retrieved text is data, not instructions: every field shown inside a ``<source>`` element is
escaped so it cannot close the element or open another one, and the system prompt says so.
The hash recorded with every answer covers the template and every template it extends.

A knowledge base is data, not code: templates render in Jinja2's immutable sandbox (no access
to Python internals, no mutation of the values passed in, bounded ranges, string repetition and
powers). A template with a syntax error, an unknown variable or a forbidden expression raises
:class:`ConfigError` naming the file, the line and the fix.
"""

from __future__ import annotations

import hashlib
import re
import signal
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..child import close_inherited, die_with_parent, limit_cpu, limit_memory
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
#: Longest string or list a template may build by repetition (``"x" * n``), largest exponent.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 1_000
#: A knowledge base's own template renders in a child process: killed after this many seconds,
#: limited to this much more memory; and no rendering yields more characters than this.
RENDER_TIMEOUT_S = 5.0
RENDER_MEMORY_MB = 256
MAX_RENDER_CHARS = 2_000_000
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
        return _sandbox()(loader=jinja2.FileSystemLoader(dirs), autoescape=False,
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
        """Render ``blocks`` of the template as messages (``system`` -> system, others -> user).

        The shipped templates render here; a knowledge base's own (or a template file) renders
        in a child process that is killed past :data:`RENDER_TIMEOUT_S` and limited to
        :data:`RENDER_MEMORY_MB` more memory, so that no template keeps a thread or the machine
        busy. Either way the text is at most :data:`MAX_RENDER_CHARS` characters."""
        file = self.resolve(name, language)
        if self._presets_only():
            texts = self.render_blocks(file, blocks, variables)
        else:
            texts = _render_in_child(list(self._env.loader.searchpath), file, list(blocks), variables,
                                     self._path(file))
        messages = tuple(Message("system" if block == "system" else "user", text)
                         for block, text in zip(blocks, texts, strict=True))
        return Prompt(messages, file, self.hash(file))

    def render_blocks(self, file: str, blocks: Sequence[str], variables: dict[str, Any]) -> list[str]:
        """The text of each of ``blocks`` of template ``file``, at most :data:`MAX_RENDER_CHARS`
        characters in all (in this process: no time or memory budget)."""
        with self._errors(file, sorted(variables)):
            template = self._env.get_template(file)
            context = template.new_context(variables)
            for ancestor in self._ancestors(file):  # as Jinja does on {% extends %}: child first
                for block, render in ancestor.blocks.items():
                    context.blocks.setdefault(block, []).append(render)
            texts, size = [], 0
            for block in blocks:
                if block not in context.blocks:
                    raise ConfigError(f"Prompt template {self._path(file)} has no '{block}' block. "
                                      f"Add {{% block {block} %}}...{{% endblock %}}.")
                pieces = []
                for piece in context.blocks[block][0](context):
                    size += len(piece)
                    if size > MAX_RENDER_CHARS:
                        raise ConfigError(f"Prompt template {self._path(file)} renders more than "
                                          f"{MAX_RENDER_CHARS:,} characters: a prompt is not that long. "
                                          "Fix its loops.")
                    pieces.append(piece)
                texts.append("".join(pieces).strip())
            return texts

    def _presets_only(self) -> bool:
        """Whether every template this object can load is a shipped one (so it renders here)."""
        return all(Path(folder) == _PACKAGE_DIR or not any(p.is_file() for p in Path(folder).rglob("*"))
                   for folder in self._env.loader.searchpath)

    @contextmanager
    def _errors(self, file: str, variables: list[str]) -> Iterator[None]:
        """Jinja2's errors (and the template's own failures) as :class:`ConfigError` naming the
        file, the line and the fix."""
        import jinja2
        from jinja2.exceptions import SecurityError

        try:
            yield
        except (ConfigError, MemoryError):
            raise
        except jinja2.TemplateSyntaxError as exc:
            where = f"{exc.filename or self._path(exc.name or file)}, line {exc.lineno}"
            raise ConfigError(f"Prompt template {where} has a syntax error: {exc.message}. Fix the template "
                              "(Jinja2 syntax: https://jinja.palletsprojects.com/templates/).") from exc
        except SecurityError as exc:
            raise ConfigError(f"Prompt template {self._where(exc, file)} tried something templates may not do "
                              f"({str(exc).rstrip('.')}): a template may only show the values it is given "
                              f"({', '.join(variables)}). Remove that expression.") from exc
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"Prompt template {self._where(exc, file)} uses an undefined value ({exc.message}). "
                              f"The values a template is given here: {', '.join(variables)}.") from exc
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"Prompt template {self._where(exc, file)} refers to the template {exc.name!r}, "
                              "which does not exist. Fix the name in its extends/include/import.") from exc
        except Exception as exc:  # the template's own expressions failed (1/0, "a" + 1, ...)
            raise ConfigError(f"Prompt template {self._where(exc, file)} failed while rendering: "
                              f"{type(exc).__name__}: {exc}. Fix the template.") from exc

    def _path(self, file: str) -> str:
        """Where template ``file`` lies, for messages."""
        try:
            return str(self._env.loader.get_source(self._env, file)[1] or file)
        except Exception:  # not found: the name is all there is
            return file

    def _where(self, exc: BaseException, file: str) -> str:
        """``PATH, line N`` of the template frame an error was raised in (Jinja2 rewrites
        tracebacks to point into templates), else the template's path."""
        from jinja2.debug import rewrite_traceback_stack

        # The template's lines instead of the compiled module's (needs the error in flight); an
        # error Jinja cannot map keeps its frames as they are.
        with suppress(Exception):
            exc = rewrite_traceback_stack()
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith(".j2"):
                return f"{frame.filename}, line {frame.lineno}"
        return self._path(file)

    def _ancestors(self, file: str) -> list[Any]:
        from jinja2 import nodes

        chain: list[Any] = []
        current = file
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


def _sandbox() -> type:
    """Jinja2's immutable sandbox with repetition and powers bounded too."""
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"the exponent {right} is above {MAX_EXPONENT}")
            if operator == "*":
                sized, times = (left, right) if isinstance(right, int) else (right, left)
                if (isinstance(times, int) and isinstance(sized, str | list | tuple)
                        and len(sized) * times > MAX_REPEAT):
                    raise SecurityError(f"the repetition would build {len(sized) * times:,} items "
                                        f"(limit {MAX_REPEAT:,})")
            return super().call_binop(context, operator, left, right)

    return Sandbox


def _render_in_child(searchpath: list[str], file: str, blocks: list[str], variables: dict[str, Any],
                     shown: str) -> list[str]:
    """:meth:`Templates.render_blocks` in a child process under the render budgets; the child is
    killed (not left running) when the time is up. ``shown`` names the template in messages."""
    import multiprocessing
    import os

    import jinja2.debug
    import jinja2.meta
    import jinja2.sandbox  # noqa: F401 - imported before the fork, so the child imports nothing

    forked = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if forked else "spawn")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_render_child, name="domainrag-template",  # type: ignore[attr-defined]
                              args=(writer, searchpath, file, blocks, variables, os.getpid(),
                                    reader.fileno() if forked else None))
    process.start()
    writer.close()
    try:
        if not reader.poll(RENDER_TIMEOUT_S):
            raise ConfigError(f"Prompt template {shown} took longer than {RENDER_TIMEOUT_S:g} s to render and was "
                              "stopped: a template only lays out the values it is given. Remove its long loops.")
        status, payload = reader.recv()
    except (EOFError, OSError):
        status, payload = "error", (f"Prompt template {shown} could not be rendered (the renderer was stopped, "
                                    f"exit code {process.exitcode}). Simplify the template.")
    finally:
        reader.close()
        if process.is_alive():
            process.kill()
        process.join()
    if status == "memory":
        raise ConfigError(f"Prompt template {shown} needs more than {RENDER_MEMORY_MB} MB to render and was "
                          "stopped: a template only lays out the values it is given. Remove what builds huge values.")
    if status != "ok":
        raise ConfigError(str(payload))
    return list(payload)


def _render_child(conn: Any, searchpath: list[str], file: str, blocks: list[str], variables: dict[str, Any],
                  parent_pid: int, parent_end: int | None) -> None:
    """The child of :func:`_render_in_child`: one rendering, its result or error sent back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if parent_end is not None:
        close_inherited(parent_end)
    die_with_parent(parent_pid)
    limit_memory(RENDER_MEMORY_MB)
    limit_cpu(int(RENDER_TIMEOUT_S) + 1)
    templates = Templates()
    templates._env.loader.searchpath[:] = searchpath   # a fresh environment: no lock held by another thread
    try:
        reply: tuple[str, Any] = ("ok", templates.render_blocks(file, blocks, variables))
    except MemoryError:
        reply = ("memory", "")
    except ConfigError as exc:
        reply = ("error", str(exc))
    conn.send(reply)


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
