"""Finding the files to ingest: walk the roots, apply include/exclude globs and size limits.

A root that is a file is taken as it is (globs do not apply to files named explicitly; its doc id
is its file name). A directory root is walked recursively, following symbolic links but never
entering a directory twice, so symlink loops end. Doc ids are ``{root name}/{relative path}``
(``policies/sub/a.pdf``); globs match the relative path (``sub/a.pdf``), with ``**`` matching any
number of directories. Files that are not taken are reported as :class:`Skipped` with the reason.
"""

from __future__ import annotations

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
    """A file to ingest: its resolved absolute path, its document id and its size in bytes."""

    path: Path
    doc_id: str
    size: int


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
    walk = _Walk(config, {e.lower() for e in extensions})
    for root in roots:
        walk.root(Path(root))
    return walk.results()


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

    def root(self, root: Path) -> None:
        if not root.exists() and not root.is_symlink():
            raise ConfigError(
                f"Cannot ingest {str(root)!r}: no such file or directory; check the path"
            )
        if root.is_dir():
            self._directory(root)
        else:
            self._file(root, root.name)

    def results(self) -> tuple[list[FoundFile], list[Skipped]]:
        found = sorted(self.found.values(), key=lambda f: f.doc_id)
        return found, sorted(self.skipped, key=lambda s: (s.path, s.reason))

    def skip(self, path: str | os.PathLike[str], reason: str, failed: bool = True) -> None:
        self.skipped.append(Skipped(str(path), reason, failed))

    def _directory(self, root: Path) -> None:
        """Walk ``root`` depth first; directories reached through symlinks wait until every
        real directory is seen, so a link into the tree is the one reported, not its target."""
        base = Path(os.path.abspath(root))
        prefix = f"{base.name}/" if base.name else ""
        real: list[Path] = [base]
        linked: list[Path] = []
        while real or linked:
            directory = real.pop() if real else linked.pop()
            if not self._enter(directory):
                continue
            for sub in self._scan(directory, base, prefix):
                (linked if sub.is_symlink() else real).append(sub)

    def _scan(self, directory: Path, base: Path, prefix: str) -> list[Path]:
        """Handle the files of ``directory``; return its subdirectories to walk."""
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            self.skip(directory, _os_reason(exc))
            return []
        subdirs: list[Path] = []
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(base).as_posix()
            if self._excluded(rel, directory=_is_dir(entry)):
                continue
            if _is_dir(entry):
                subdirs.append(path)
            else:
                self._file(path, prefix + rel)
        return subdirs[::-1]

    def _enter(self, path: Path) -> bool:
        """Mark ``path`` visited; False (and skipped) if it was visited before."""
        try:
            info = path.stat()
        except OSError as exc:
            self.skip(path, _os_reason(exc))
            return False
        key = (info.st_dev, info.st_ino)
        if key not in self.visited:
            self.visited.add(key)
            return True
        target = path.resolve()
        loop = target == path.parent.resolve() or target in path.parent.resolve().parents
        if loop:
            self.skip(path, "symlink loop")
        else:
            self.skip(path, "directory already visited through a symlink", failed=False)
        return False

    def _excluded(self, rel: str, directory: bool) -> bool:
        cfg = self.config
        if any(glob_match(rel, p) or (directory and glob_match(rel + "/", p)) for p in cfg.exclude):
            return True
        if directory or not cfg.include:
            return False
        return not any(glob_match(rel, p) for p in cfg.include)

    def _file(self, path: Path, doc_id: str) -> None:
        reason, size = self._check(path)
        resolved = path.resolve()
        if reason:
            self.skip(path, reason, failed=not reason.startswith("unsupported"))
            return
        if resolved in self.by_path:
            self.skip(path, f"same file as {self.by_path[resolved]!r}", failed=False)
            return
        reason = self._duplicate(doc_id)
        if reason:
            self.skip(path, reason)
            return
        self.by_path[resolved] = doc_id
        self.found[doc_id] = FoundFile(resolved, doc_id, size)

    def _duplicate(self, doc_id: str) -> str:
        if doc_id in self.found:
            return (
                f"doc id {doc_id!r} is already taken by {self.found[doc_id].path}; "
                "ingest folders with the same name separately"
            )
        return ""

    def _check(self, path: Path) -> tuple[str, int]:
        """Why ``path`` cannot be taken ("" when it can), and its size."""
        if path.is_symlink() and not path.exists():
            return "broken symlink", 0
        suffix = path.suffix.lower()
        if suffix not in self.extensions:
            return f"unsupported file type {suffix or '(no extension)'!r}", 0
        try:
            info = path.stat()
        except OSError as exc:
            return _os_reason(exc), 0
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


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)
