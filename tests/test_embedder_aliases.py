"""An alias (``default``, ``multilingual``…) names the model it named when a knowledge base was
built: a release that redefines it leaves existing indexes working with their own vectors, while a
new knowledge base gets the new meaning. A manifest is data: it never switches a knowledge base to
a model no alias stands for."""

from __future__ import annotations

import pytest

from domainrag import KnowledgeBase
from domainrag.errors import IndexMismatchError
from domainrag.models.embedders import ALIASES


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tea.md").write_text("# Tea\n\nGreen tea is not fermented; black tea is.", encoding="utf-8")
    (folder / "rail.md").write_text("# Rail\n\nThe high-speed line links Beijing and Shanghai.", encoding="utf-8")
    return folder


def test_an_index_keeps_the_model_its_alias_meant(kb_factory, docs, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(ALIASES, "default", "fake-en:64")
    kb = kb_factory("old", **{"embedder.model": "default"})
    kb.ingest([docs])
    before = [hit.doc_id for hit in kb.search("fermented tea", mode="dense")]
    kb.close()

    monkeypatch.setitem(ALIASES, "default", "fake-en:32")  # an upgrade redefines the alias…
    monkeypatch.setitem(ALIASES, "fake-old", "fake-en:64")  # …and names the old model otherwise
    for preload in (False, True):  # a preloaded embedder of the new meaning is not used either
        old = KnowledgeBase.open(tmp_path / "old", preload=preload)
        assert old.config.embedder.model == "default"
        assert [hit.doc_id for hit in old.search("fermented tea", mode="dense")] == before
        assert old.embedder.id == "fake-en:64"
        old.ingest([docs])  # and it can still be written to
        old.close()
    assert "default" in (tmp_path / "old" / "domainrag.toml").read_text(encoding="utf-8")  # file untouched

    new = kb_factory("new", **{"embedder.model": "default"})
    new.ingest([docs])
    assert new.embedder.id == "fake-en:32"


def test_a_manifest_naming_another_model_is_refused_not_followed(kb_factory, docs, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(ALIASES, "default", "fake-en:64")
    kb = kb_factory("kb", **{"embedder.model": "default"})
    kb.ingest([docs])
    manifest = dict(kb.store.manifest() or {})
    manifest["embedder"] = {**manifest["embedder"], "model": "openai:text-embedding-3-small"}
    kb.store.set_manifest(manifest)
    kb.close()
    reopened = KnowledgeBase.open(tmp_path / "kb")
    with pytest.raises(IndexMismatchError, match="openai:text-embedding-3-small"):
        reopened.search("fermented tea", mode="dense")
    reopened.close()
