"""Finding the files to ingest: walk the roots, apply include/exclude globs and size limits.

A root that is a file is taken as it is (globs do not apply to files named explicitly; its doc id
is its file name). A directory root is walked recursively, following symbolic links that stay
inside it (links that lead outside are reported as ignored unless
``ingest.follow_external_symlinks``) but never entering a directory twice, so symlink loops end.
Doc ids are ``{root name}/{relative path}`` (``policies/sub/a.pdf``); globs match the relative
path (``sub/a.pdf``), with ``**`` matching any number of directories. Files that are not taken
are reported as :class:`Skipped` with the reason.

A file's source key is the path it was reached by inside the (resolved) root, so deleting a
symlink prunes what it led to. File names that are not valid UTF-8 keep their undecodable bytes
as ``\\xNN`` in doc ids, source keys and reports (:func:`display_path`): stored text must be
UTF-8.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from ..config import IngestConfig
from ..errors import ConfigError

_MB = 1024 * 1024


@dataclass(frozen=True)
class FoundFile:
    """A file to ingest: its resolved absolute path, its document id, its size in bytes, the
    path it was reached by (``None``: ``path`` itself) and its posix path relative to the folder
    given to ingest (``None``: a file given itself; :attr:`relative` is then its name).
    ``key``: the source key when the file is a downloaded copy of a remote object (its URL)."""

    path: Path
    doc_id: str
    size: int
    reached: Path | None = None
    rel: str | None = None
    key: str | None = None

    @property
    def relative(self) -> str:
        """The path that ``[[ingest.acl]]`` rules match: relative to the ingested folder."""
        return self.rel if self.rel is not None else self.doc_id

    @property
    def source(self) -> str:
        """The key of this file in the ingest state: the path it was reached by, printable (or
        the URL of the remote object it is a copy of)."""
        return self.key if self.key is not None else display_path(str(self.reached or self.path))


def display_path(path: str) -> str:
    """``path`` as valid UTF-8 text: bytes of a file name that are not UTF-8 (held by Python as
    lone surrogates, PEP 383) become ``\\xNN``; every other path is returned unchanged."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return path


@dataclass(frozen=True)
class Skipped:
    """A file or directory that was not taken, and why. ``failed`` marks real problems
    (unreadable, too large, symlink loop...) that make an ingest partial; unsupported types and
    files reached twice are merely ignored."""

    path: str
    reason: str
    failed: bool = True


def discover(
    roots: Sequence[Path], config: IngestConfig, extensions: Collection[str]
) -> tuple[list[FoundFile], list[Skipped]]:
    """Files under ``roots`` that a loader claims (by lower-case suffix), sorted by doc id.

    Raises :class:`ConfigError` for a root that does not exist.
    """
    found, skipped, _ = discover_protected(roots, config, extensions)
    return found, skipped


def discover_protected(
    roots: Sequence[Path], config: IngestConfig, extensions: Collection[str]
) -> tuple[list[FoundFile], list[Skipped], list[str]]:
    """:func:`discover`, plus the source keys that still exist but could not be taken this time
    (an unreadable file or folder, a file over the size cap): a prune must keep what they hold.
    A key ending in a path separator stands for everything under it."""
    walk = _Walk(config, {e.lower() for e in extensions})
    for root in roots:
        walk.root(Path(root))
    found, skipped = walk.results()
    return found, skipped, sorted(walk.protected)


def glob_match(rel_path: str, pattern: str) -> bool:
    """Whether the posix ``rel_path`` matches ``pattern`` (``**`` spans directories; a pattern
    without ``/`` such as ``*.md`` also matches the file name at any depth)."""
    if _glob_regex(pattern).fullmatch(rel_path) or fnmatch.fnmatchcase(rel_path, pattern):
        return True
    return PurePosixPath(rel_path).match(pattern)


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append(_glob_char(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _glob_char(char: str) -> str:
    return {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))


class _Walk:
    """The state of one discovery: files found, files skipped, directories visited."""

    def __init__(self, config: IngestConfig, extensions: set[str]) -> None:
        self.config = config
        self.extensions = extensions
        self.found: dict[str, FoundFile] = {}
        self.by_path: dict[Path, str] = {}
        self.skipped: list[Skipped] = []
        self.visited: set[tuple[int, int]] = set()
        self.protected: set[str] = set()

    def root(self, root: Path) -> None:
        if not root.exists() and not root.is_symlink():
            raise ConfigError(
                f"Cannot ingest {display_path(str(root))!r}: no such file or directory; check the path"
            )
        if root.is_dir():
            self._directory(root)
        else:
            self._file(root, display_path(root.name), None, None)

    def results(self) -> tuple[list[FoundFile], list[Skipped]]:
        found = sorted(self.found.values(), key=lambda f: f.doc_id)
        return found, sorted(self.skipped, key=lambda s: (s.path, s.reason))

    def skip(self, path: str | os.PathLike[str], reason: str, failed: bool = True) -> None:
        self.skipped.append(Skipped(display_path(str(path)), reason, failed))

    def _directory(self, root: Path) -> None:
        """Walk ``root`` depth first; directories reached through symlinks wait until every
        real directory is seen, so a link into the tree is the one reported, not its target."""
        base = Path(os.path.abspath(root))
        prefix = f"{display_path(base.name)}/" if base.name else ""
        tree = _Tree(base, base.resolve(), prefix)
        real: list[Path] = [base]
        linked: list[Path] = []
        while real or linked:
            directory = real.pop() if real else linked.pop()
            if not self._enter(directory, tree):
                continue
            for sub in self._scan(directory, tree):
                (linked if sub.is_symlink() else real).append(sub)

    def _scan(self, directory: Path, tree: _Tree) -> list[Path]:
        """Handle the files of ``directory`` (real files before symlinks to files); return its
        subdirectories to walk."""
        try:
            entries = sorted(os.scandir(directory), key=lambda e: (e.is_symlink(), e.name))
        except OSError as exc:
            self.skip(directory, _os_reason(exc))
            self.protected.add(display_path(str(tree.resolved / directory.relative_to(tree.base))) + "/")
            return []
        subdirs: list[Path] = []
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(tree.base).as_posix()
            if self._excluded(display_path(rel), directory=_is_dir(entry)):
                if entry.name.startswith(".") and entry.name not in _TOOL_FOLDERS:
                    self.skip(path, _HIDDEN.format(kind="folder" if _is_dir(entry) else "file"), failed=False)
                continue
            if _is_dir(entry):
                subdirs.append(path)
            else:
                self._file(path, tree.prefix + display_path(rel), tree, tree.resolved / rel, display_path(rel))
        return sorted(subdirs, key=lambda p: p.name, reverse=True)

    def _enter(self, path: Path, tree: _Tree) -> bool:
        """Mark ``path`` visited; False (and skipped) if it was visited before or leads outside
        the tree."""
        try:
            info = path.stat()
        except OSError as exc:
            self.skip(path, _os_reason(exc))
            return False
        key = (info.st_dev, info.st_ino)
        if key in self.visited:
            target = path.resolve()
            loop = target == path.parent.resolve() or target in path.parent.resolve().parents
            if loop:
                self.skip(path, "symlink loop")
            else:
                self.skip(path, "directory already visited through a symlink", failed=False)
            return False
        if path.is_symlink() and not self._inside(path, tree):
            return False
        self.visited.add(key)
        return True

    def _inside(self, link: Path, tree: _Tree) -> bool:
        """Whether the symlink ``link`` leads inside the tree; reported as ignored if not (unless
        external symlinks are followed)."""
        if self.config.follow_external_symlinks:
            return True
        target = link.resolve()
        if target == tree.resolved or target.is_relative_to(tree.resolved):
            return True
        self.skip(
            link,
            f"symlink to {display_path(str(target))}, outside the ingested folder; ingest that path "
            "itself, or set ingest.follow_external_symlinks = true",
            failed=False,
        )
        return False

    def _excluded(self, rel: str, directory: bool) -> bool:
        cfg = self.config
        if any(glob_match(rel, p) or (directory and glob_match(rel + "/", p)) for p in cfg.exclude):
            return True
        if directory or not cfg.include:
            return False
        return not any(glob_match(rel, p) for p in cfg.include)

    def _file(self, path: Path, doc_id: str, tree: _Tree | None, reached: Path | None,
              rel: str | None = None) -> None:
        reason, size = self._check(path)
        if reason:
            failed = not reason.startswith("unsupported")
            self.skip(path, reason, failed)
            if failed and path.exists():
                self.protected.add(display_path(str(reached or _resolved(path))))
            return
        if tree is not None and path.is_symlink() and not self._inside(path, tree):
            return
        resolved = path.resolve()
        if resolved in self.by_path:
            self.skip(path, f"same file as {self.by_path[resolved]!r}", failed=False)
            return
        reason = self._duplicate(doc_id)
        if reason:
            self.skip(path, reason)
            self.protected.add(display_path(str(reached or resolved)))
            return
        self.by_path[resolved] = doc_id
        self.found[doc_id] = FoundFile(resolved, doc_id, size, reached, rel)

    def _duplicate(self, doc_id: str) -> str:
        if doc_id in self.found:
            return (
                f"doc id {doc_id!r} is already taken by {self.found[doc_id].source}; "
                "ingest folders with the same name separately"
            )
        return ""

    def _check(self, path: Path) -> tuple[str, int]:
        """Why ``path`` cannot be taken ("" when it can), and its size."""
        suffix = path.suffix.lower()
        try:
            info = path.stat()
        except OSError as exc:
            if path.is_symlink():
                return ("symlink loop" if exc.errno == errno.ELOOP else "broken symlink"), 0
            return _os_reason(exc), 0
        if suffix not in self.extensions:
            return f"unsupported file type {display_path(suffix) or '(no extension)'!r}", 0
        return self._stat_problem(path, info), info.st_size

    def _stat_problem(self, path: Path, info: os.stat_result) -> str:
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if not os.access(path, os.R_OK):
            return "permission denied"
        limit = self.config.max_file_mb
        if info.st_size > limit * _MB:
            return (
                f"larger than max_file_mb={limit:g} ({info.st_size / _MB:.1f} MB); "
                "raise ingest.max_file_mb to include it"
            )
        return ""


@dataclass(frozen=True)
class _Tree:
    """A directory root: as given (absolute), resolved, and the doc id prefix of its files."""

    base: Path
    resolved: Path
    prefix: str


#: Hidden folders of tools, excluded without a word (their contents are no one's documents).
_TOOL_FOLDERS = frozenset({".git", ".domainrag", ".hg", ".svn", ".venv", ".idea", ".vscode"})
_HIDDEN = ("hidden {kind} (its name starts with '.'), excluded by ingest.exclude; ingest it by naming it, "
           "or remove '**/.*' from ingest.exclude")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)
