"""The ``Source`` seam without a server: fsspec's in-memory filesystem as a source (the generic
fsspec path: a folder walk, no version tag, bytes hashed), URL normalisation for the crawler,
dispatch by scheme (a third-party source plugs in through the registry), the install hints, safe
local names for downloaded objects, and the trust rule for ``[sources] urls``."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import BinaryIO, ClassVar, cast

import pytest

from domainrag import registry
from domainrag.errors import ConfigError, MissingDependencyError, UntrustedSettingsError
from domainrag.ingest.crawl import SiteCrawler, normalise
from domainrag.ingest.fsspec_source import FsspecSource
from domainrag.ingest.remote import GROUP, _file_name, is_url, open_source
from domainrag.ingest.sources import Entry, Source, SourceSettings, Unlisted
from domainrag.trust import Untrusted, check_sources

SETTINGS = SourceSettings(max_bytes=1024 * 1024, extensions=frozenset({".txt", ".md"}))


@pytest.fixture
def memory_docs() -> Iterator[object]:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/memdocs/a.txt", b"Alpha documents live in memory.")
    fs.pipe("/memdocs/sub/b.md", b"# Beta\n\nBeta notes in a sub folder.")
    fs.pipe("/memdocs/c.bin", b"\x00\x01")
    yield fs
    fs.rm("/memdocs", recursive=True)


def test_an_fsspec_folder_syncs_like_a_local_one(kb_factory, memory_docs) -> None:
    kb = kb_factory()
    first = kb.ingest(["memory://memdocs"])
    assert sorted(first.added) == ["memory://memdocs/a.txt", "memory://memdocs/sub/b.md"]
    assert first.ignored == [("memory://memdocs/c.bin", "unsupported file type '.bin'")]
    assert kb.search("beta notes", k=1)[0].source == "memory://memdocs/sub/b.md"

    memory_docs.pipe("/memdocs/a.txt", b"Alpha documents live in memory.")   # rewritten, same bytes
    memory_docs.pipe("/memdocs/sub/b.md", b"# Beta\n\nGamma replaced the beta notes.")
    memory_docs.rm("/memdocs/c.bin")
    second = kb.ingest(["memory://memdocs/"])
    assert second.skipped == ["memory://memdocs/a.txt"]          # no version tag: its bytes were hashed
    assert second.updated == ["memory://memdocs/sub/b.md"]

    memory_docs.rm("/memdocs/sub", recursive=True)
    assert kb.ingest(["memory://memdocs"], prune=True).removed == ["memory://memdocs/sub/b.md"]


def test_a_missing_fsspec_path_is_a_clear_error(kb_factory) -> None:
    pytest.importorskip("fsspec")
    with pytest.raises(ConfigError, match="no such bucket, prefix or path"):
        kb_factory().ingest(["memory://nothing-here"])


def test_an_unknown_protocol_names_the_fix(kb_factory) -> None:
    pytest.importorskip("fsspec")
    with pytest.raises(ConfigError, match="nosuchproto"):
        kb_factory().ingest(["nosuchproto://bucket/x"])


def test_s3_without_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fsspec")
    monkeypatch.setitem(sys.modules, "s3fs", None)   # as if not installed
    loaded = sys.modules["fsspec.registry"]._registry  # nor imported by an earlier test (fsspec caches it)
    for protocol in ("s3", "s3a"):
        monkeypatch.delitem(loaded, protocol, raising=False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'domainrag\[s3\]'"):
        FsspecSource("s3://bucket/prefix", SETTINGS)


def test_a_crawl_without_httpx_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'domainrag\[crawl\]'"):
        SiteCrawler("https://intranet.example/wiki/", SETTINGS)


@pytest.mark.parametrize(("url", "expected"), [
    ("HTTP://Intranet.Example:80/wiki/./a/../b.html#frag", "http://intranet.example/wiki/b.html"),
    ("https://intranet.example:443", "https://intranet.example/"),
    ("https://intranet.example:8443/x?q=1#y", "https://intranet.example:8443/x?q=1"),
    ("https://intranet.example/%7Euser/a%20b", "https://intranet.example/~user/a%20b"),
    ("https://intranet.example/a/../../../etc", "https://intranet.example/etc"),
    ("mailto:someone@example.com", None),
    ("javascript:alert(1)", None),
    ("https:///no-host", None),
    ("http://[::1]:8080/a", "http://[::1]:8080/a"),
    ("http://bad-port:99999/", None),
])
def test_urls_are_normalised_so_loops_end(url: str, expected: str | None) -> None:
    assert normalise(url) == expected


def test_a_url_is_told_from_a_path() -> None:
    assert is_url("s3://bucket/prefix") and is_url("https://intranet/") and is_url("memory://x")
    assert not is_url("docs/s3:/x") and not is_url("C:\\docs") and not is_url(Path("s3://b"))


class DemoSource:
    """A third-party source: three fixed entries under demo://."""

    schemes: ClassVar[tuple[str, ...]] = ("demo",)

    def __init__(self, url: str, settings: SourceSettings) -> None:
        self.scope = url.rstrip("/") + "/"
        self.bodies = {f"{self.scope}{n}.txt": f"Demo document number {n} about plug-ins.".encode() for n in range(3)}

    def entries(self) -> Iterator[Entry | Unlisted]:
        for key, body in self.bodies.items():
            yield Entry(key, key[len(self.scope):], len(body), version=str(hash(body)), mtime_ns=1)
        yield Unlisted(self.scope + "broken.txt", "the demo says it is broken")

    def open(self, entry: Entry) -> AbstractContextManager[BinaryIO]:
        return closing(cast(BinaryIO, io.BytesIO(self.bodies[entry.key])))


def test_a_third_party_source_plugs_in_by_scheme(kb_factory) -> None:
    assert isinstance(DemoSource("demo://x", SETTINGS), Source)
    registry.register(GROUP, "demo", DemoSource)
    try:
        assert isinstance(open_source("demo://shelf", SETTINGS), DemoSource)
        report = kb_factory().ingest(["demo://shelf"], prune=True)
    finally:
        registry.unregister(GROUP, "demo")
    assert sorted(report.added) == [f"demo://shelf/{n}.txt" for n in range(3)]
    assert report.failed == [("demo://shelf/broken.txt", "the demo says it is broken")]
    assert isinstance(open_source("https://intranet.example/", SETTINGS), SiteCrawler)


@pytest.mark.parametrize(("name", "expected"), [
    ("reports/2024/q3.pdf", "q3.pdf"),
    ("../../etc/passwd", "passwd"),
    ("a/..", "object"),
    ("we ird/na;me$.TXT", "na_me.TXT"),
    ("x/" + "long" * 100 + ".md", "long" * 20 + ".md"),
    ("no-suffix", "no-suffix"),
])
def test_downloaded_objects_get_safe_local_names(name: str, expected: str) -> None:
    assert _file_name(name) == expected


def test_network_sources_from_an_untrusted_file_are_refused(tmp_path: Path) -> None:
    record = Untrusted(tmp_path, "sources", {"urls": ["s3://bucket/x", "docs"]}, str(tmp_path / "domainrag.toml"))
    with pytest.raises(UntrustedSettingsError, match="s3://bucket/x"):
        check_sources(record, ["s3://bucket/x", "docs"])
    check_sources(record, ["docs", "file:///srv/docs"])   # local: nothing leaves the machine
    check_sources(None, ["s3://bucket/x"])                  # the user's own setting
