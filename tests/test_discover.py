"""File discovery: doc ids, globs, limits, unreadable files and symlink loops."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from domainrag.config import IngestConfig
from domainrag.errors import ConfigError
from domainrag.ingest.discover import FoundFile, Skipped, discover, glob_match

EXTENSIONS = {".md", ".txt", ".pdf"}


def touch(path: Path, text: str = "text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run(roots: list[Path], **config: Any) -> tuple[list[FoundFile], list[Skipped]]:
    return discover(roots, IngestConfig(**config), EXTENSIONS)


def ids(found: list[FoundFile]) -> list[str]:
    return [f.doc_id for f in found]


def reasons(skipped: list[Skipped]) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in skipped}


@pytest.fixture()
def policies(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    touch(root / "b.md")
    touch(root / "a.txt")
    touch(root / "sub" / "deep" / "c.pdf")
    touch(root / ".hidden.md")
    touch(root / ".git" / "notes.md")
    touch(root / "sub" / ".cache" / "x.md")
    touch(root / "image.PNG")
    return root


def test_walks_recursively_with_root_name_in_doc_ids(policies: Path) -> None:
    found, skipped = run([policies])
    assert ids(found) == ["policies/a.txt", "policies/b.md", "policies/sub/deep/c.pdf"]
    assert found[0].path == (policies / "a.txt").resolve() and found[0].path.is_absolute()
    assert found[0].size == 4
    hidden = "hidden {} (its name starts with '.'), excluded by ingest.exclude; ingest it by naming it, or remove " \
             "'**/.*' from ingest.exclude"
    assert reasons(skipped) == {"image.PNG": "unsupported file type '.png'", ".hidden.md": hidden.format("file"),
                                ".cache": hidden.format("folder")}
    assert not any(s.failed for s in skipped if s.path.endswith((".hidden.md", ".cache")))


def test_file_root_is_taken_as_is_with_its_name_as_id(policies: Path) -> None:
    found, skipped = run([policies / "sub" / "deep" / "c.pdf", policies / "image.PNG"])
    assert ids(found) == ["c.pdf"]
    assert reasons(skipped) == {"image.PNG": "unsupported file type '.png'"}


def test_dot_root_uses_the_directory_name(policies: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(policies / "sub")
    found, _ = run([Path(".")])
    assert ids(found) == ["sub/deep/c.pdf"]


def test_include_and_exclude_globs_match_the_relative_path(policies: Path) -> None:
    found, _ = run([policies], include=["**/*.pdf", "*.md"])
    assert ids(found) == ["policies/b.md", "policies/sub/deep/c.pdf"]
    found, _ = run([policies], exclude=["sub/**", "a.*"])
    assert ids(found) == ["policies/.git/notes.md", "policies/.hidden.md", "policies/b.md"]


@pytest.mark.parametrize(
    ("path", "pattern", "matches"),
    [
        (".hidden.md", "**/.*", True),
        ("sub/.cache", "**/.*", True),
        ("sub/.cache/x.md", "**/.*", True),  # fnmatch's "*" spans "/" too
        ("docs/v1.2/a.md", "**/.*", False),
        ("a/.git/", "**/.git/**", True),
        (".git/", "**/.git/**", True),
        ("docs/a/b.md", "docs/**/*.md", True),
        ("docs/b.md", "docs/**/*.md", True),
        ("deep/dir/b.md", "*.md", True),
        ("b.txt", "*.md", False),
        ("sub/a.md", "sub/*.md", True),
    ],
)
def test_glob_match(path: str, pattern: str, matches: bool) -> None:
    assert glob_match(path, pattern) is matches


def test_files_over_the_size_cap_are_skipped(tmp_path: Path) -> None:
    touch(tmp_path / "kb" / "big.txt", "x" * 3000)
    touch(tmp_path / "kb" / "small.txt", "x" * 10)
    found, skipped = run([tmp_path / "kb"], max_file_mb=0.001)
    assert ids(found) == ["kb/small.txt"]
    assert reasons(skipped)["big.txt"].startswith("larger than max_file_mb=0.001")


def test_unreadable_files_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = touch(tmp_path / "kb" / "secret.txt")
    touch(tmp_path / "kb" / "open.txt")
    if os.geteuid() == 0:  # root reads everything: simulate the permission check failing
        real_access = os.access
        monkeypatch.setattr(
            os, "access", lambda p, mode: Path(p).name != "secret.txt" and real_access(p, mode)
        )
    else:
        secret.chmod(0)
    try:
        found, skipped = run([tmp_path / "kb"])
    finally:
        secret.chmod(0o644)
    assert ids(found) == ["kb/open.txt"]
    assert reasons(skipped) == {"secret.txt": "permission denied"}


def test_symlink_loops_end_and_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    touch(root / "sub" / "a.md")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "alias").symlink_to(root / "sub", target_is_directory=True)
    found, skipped = run([root])
    assert ids(found) == ["kb/sub/a.md"]  # the real directory wins over the link to it
    assert reasons(skipped) == {
        "loop": "symlink loop",
        "alias": "directory already visited through a symlink",
    }


def test_broken_symlinks_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    touch(root / "ok.md")
    (root / "gone.md").symlink_to(root / "missing.md")
    found, skipped = run([root])
    assert ids(found) == ["kb/ok.md"]
    assert reasons(skipped) == {"gone.md": "broken symlink"}


def test_same_file_twice_is_taken_once(policies: Path) -> None:
    found, skipped = run([policies, policies / "b.md"])
    assert ids(found).count("policies/b.md") == 1 and "b.md" not in ids(found)
    assert reasons(skipped)["b.md"] == "same file as 'policies/b.md'"


def test_missing_root_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope"):
        run([tmp_path / "nope"])


def test_file_symlinks_pointing_at_each_other_are_reported_not_raised(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    touch(root / "ok.md")
    (root / "ping.md").symlink_to("pong.md")
    (root / "pong.md").symlink_to("ping.md")
    found, skipped = run([root])
    assert ids(found) == ["kb/ok.md"]
    assert reasons(skipped) == {"ping.md": "symlink loop", "pong.md": "symlink loop"}


def test_symlinks_leaving_the_root_are_ignored_with_the_reason(tmp_path: Path) -> None:
    root, outside = tmp_path / "kb", tmp_path / "outside"
    touch(root / "ok.md")
    touch(outside / "secret.md")
    touch(outside / "other.md")
    (root / "file.md").symlink_to(outside / "secret.md")
    (root / "folder").symlink_to(outside, target_is_directory=True)
    (root / "inner.md").symlink_to(root / "ok.md")
    found, skipped = run([root])
    assert ids(found) == ["kb/ok.md"]
    assert {s.path.rsplit("/", 1)[1]: s.failed for s in skipped} == {"file.md": False, "folder": False,
                                                                    "inner.md": False}
    assert "outside the ingested folder" in reasons(skipped)["folder"]
    assert reasons(skipped)["inner.md"] == "same file as 'kb/ok.md'"  # the real file wins over a link
    found, skipped = run([root], follow_external_symlinks=True)
    assert ids(found) == ["kb/file.md", "kb/folder/other.md", "kb/ok.md"]
    assert found[0].source == str(root.resolve() / "file.md")  # keyed by the link: pruned with it


def test_names_that_are_not_utf8_get_printable_ids(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.md")).write_text("text")
    (root / os.fsdecode(b"\xff.png")).write_text("x")
    found, skipped = run([root])
    assert ids(found) == ["kb/caf\\xe9.md"]
    assert found[0].source.endswith("/kb/caf\\xe9.md") and found[0].path.exists()
    assert [s.path.rsplit("/", 1)[1] for s in skipped] == ["\\xff.png"]
    for text in (found[0].doc_id, found[0].source, skipped[0].path):
        text.encode("utf-8")
