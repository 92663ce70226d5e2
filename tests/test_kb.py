from __future__ import annotations

from pathlib import Path

import pytest

from domainrag import KnowledgeBase
from domainrag.errors import ConfigError, IndexMismatchError, KnowledgeBaseNotFound

MED = """# Hypothyroidism

## Treatment

Hypothyroidism is treated with synthetic thyroxine, a pill taken every day.
Doctors check hormone levels after six to eight weeks.

## Symptoms

Fatigue, weight gain and feeling cold are common symptoms.
"""

LAW = ("第十四条 劳动者在该用人单位连续工作满十年的，应当订立无固定期限劳动合同。\n\n"
       "第十七条 保险人应当向投保人说明合同的内容。")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "medical").mkdir(parents=True)
    (root / "medical" / "thyroid.md").write_text(MED)
    (root / "law.txt").write_text(LAW, encoding="utf-8")
    (root / "notes.txt").write_text("Retention: records are kept for seven years after closure.")
    return root


def test_ingest_and_search_returns_spans_into_documents(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    report = kb.ingest([docs])
    assert sorted(report.added) == ["docs/law.txt", "docs/medical/thyroid.md", "docs/notes.txt"]
    assert not report.partial and report.chunks >= 3
    for mode in ("lexical", "dense", "hybrid"):
        hits = kb.search("what treats hypothyroidism", k=3, mode=mode)
        assert hits[0].doc_id == "docs/medical/thyroid.md", mode
    hit = kb.search("synthetic thyroxine pill", k=1)[0]
    text = kb.store.document(hit.doc_id)["text"]
    assert text[hit.span.start : hit.span.end] == hit.text
    assert hit.heading_path[0] == "Hypothyroidism"


def test_reingest_skips_unchanged_and_replaces_changed(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    chunks_before = kb.status()["chunks"]
    again = kb.ingest([docs])
    assert len(again.skipped) == 3 and again.chunks == 0 and again.embedded == 0

    notes = docs / "notes.txt"
    notes.write_text("Retention: records are kept for ten years after closure.")
    changed = kb.ingest([docs])
    assert changed.updated == ["docs/notes.txt"] and len(changed.skipped) == 2
    assert kb.status()["chunks"] == chunks_before  # replaced, not duplicated
    assert "ten years" in kb.search("how long are records kept", k=1)[0].text


def test_touched_but_identical_file_is_not_reembedded(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    path = docs / "law.txt"
    path.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")  # new mtime, same bytes
    report = kb.ingest([docs])
    assert report.embedded == 0 and report.chunks == 0 and len(report.skipped) == 3


def test_prune_removes_deleted_files_only_when_asked(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    (docs / "notes.txt").unlink()
    assert kb.ingest([docs]).removed == []
    assert kb.status()["documents"] == 3
    report = kb.ingest([docs], prune=True)
    assert [Path(p).name for p in report.removed] == ["notes.txt"]
    assert kb.status()["documents"] == 2
    assert all(h.doc_id != "docs/notes.txt" for h in kb.search("records kept seven years", k=5))


def test_bad_files_fail_alone_with_reasons(kb_factory, docs: Path) -> None:
    (docs / "empty.txt").write_text("")
    (docs / "junk.txt").write_bytes(bytes(range(256)) * 20)
    kb = kb_factory()
    report = kb.ingest([docs])
    failed = dict(report.failed)
    assert set(failed) == {"docs/empty.txt", "docs/junk.txt"}
    assert "empty" in failed["docs/empty.txt"]
    assert report.partial and len(report.added) == 3


def test_filters_and_one_per_doc(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    hits = kb.search("records years treatment", k=10, filters={"path": "docs/medical/*"})
    assert hits and {h.doc_id for h in hits} == {"docs/medical/thyroid.md"}
    assert {h.doc_id for h in kb.search("records", k=10, filters={"doc_id": ["docs/notes.txt"]})} == {"docs/notes.txt"}
    assert {h.doc_id for h in kb.search("records", k=10, filters={"format": "markdown"})} <= {"docs/medical/thyroid.md"}
    assert kb.search("records", filters={"path": "nothing/*"}) == []
    per_doc = kb.search("hypothyroidism symptoms treatment", k=10, one_per_doc=True)
    assert len({h.doc_id for h in per_doc}) == len(per_doc)
    with pytest.raises(ConfigError):
        kb.search("x", filters={"bad field!": 1})


def test_chinese_query_hybrid_equals_lexical_with_english_embedder(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    query = "劳动者什么情况下订立无固定期限劳动合同"
    lexical = [h.chunk_id for h in kb.search(query, k=5, mode="lexical")]
    hybrid = [h.chunk_id for h in kb.search(query, k=5, mode="hybrid")]
    assert hybrid == lexical and lexical
    assert kb.retriever.candidates(query).dense is None


def test_different_embedder_is_refused_with_reindex_hint(kb_factory, docs: Path, tmp_path: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    kb.close()
    with KnowledgeBase.open(tmp_path / "kb", overrides={"embedder.model": "hash:32"}) as other, \
            pytest.raises(IndexMismatchError, match="--reindex"):
        other.search("thyroxine")
    with KnowledgeBase.open(tmp_path / "kb", overrides={"chunking.target_tokens": 300}) as other:
        with pytest.raises(IndexMismatchError, match="chunker"):
            other.ingest([docs])
        with pytest.raises(IndexMismatchError, match="chunker"):
            other.search("thyroxine")
    same = KnowledgeBase.open(tmp_path / "kb")
    assert same.search("thyroxine", k=1)


def test_reindex_rebuilds_with_new_settings(kb_factory, docs: Path, tmp_path: Path) -> None:
    kb_factory().ingest([docs])
    from domainrag.config import KBConfig
    from domainrag.kb import KnowledgeBase as KB

    config = KBConfig().with_overrides({"embedder.model": "hash:32"})
    kb = KB(tmp_path / "other", config)
    kb.ingest([docs])
    assert kb.status()["manifest"]["embedder"]["dimensions"] == 32


def test_missing_kb_and_bad_arguments(tmp_path: Path, kb_factory) -> None:
    with pytest.raises(KnowledgeBaseNotFound, match="domainrag ingest"):
        KnowledgeBase.open(tmp_path / "nowhere")
    kb = kb_factory()
    assert kb.search("anything at all") == []
    with pytest.raises(ConfigError, match="empty"):
        kb.search("   ")
    with pytest.raises(ConfigError, match="mode"):
        kb.search("x", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does-not-exist"):
        kb.ingest([tmp_path / "does-not-exist"])
    with pytest.raises(ConfigError, match="Unknown setting"):
        KnowledgeBase.open(tmp_path / "x", create=True, overrides={"nope": 1})


def test_interrupted_ingest_is_consistent_and_resumes(kb_factory, docs: Path, monkeypatch) -> None:
    for i in range(12):
        (docs / f"extra{i}.txt").write_text(f"Extra document number {i} about topic {i}. " * 30)
    kb = kb_factory(**{"ingest.batch_chunks": 16})
    embedder = kb.embedder
    real = embedder.embed_batch
    calls = {"n": 0}

    def flaky(texts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(texts)

    monkeypatch.setattr(embedder, "embed_batch", flaky)
    first = kb.ingest([docs])
    assert first.interrupted and first.partial
    written = kb.status()["documents"]
    assert 0 < written < 15
    hits = kb.search("extra document topic", k=50)  # derived indexes rebuilt from the catalog
    assert len({h.chunk_id for h in hits}) == len(hits)
    second = kb.ingest([docs])
    assert not second.partial and len(second.added) == 15 - written
    fresh = kb_factory("fresh")
    fresh.ingest([docs])
    assert kb.status()["chunks"] == fresh.status()["chunks"]


def test_same_spec_loading_another_model_is_refused(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    manifest = kb.store.manifest()
    manifest["embedder"]["id"] = "fake-en:64-from-an-older-release"
    kb.store.set_manifest(manifest)
    reopened = KnowledgeBase.open(kb.path)
    assert reopened.search("thyroxine", k=1, mode="lexical")  # lexical needs no model
    with pytest.raises(IndexMismatchError, match="older-release"):
        reopened.search("thyroxine", k=1, mode="dense")
    reopened.close()


def test_a_hand_written_config_is_used_and_kept_when_the_knowledge_base_is_created(tmp_path) -> None:
    from domainrag import KnowledgeBase

    folder = tmp_path / "kb"
    folder.mkdir()
    written = '# our settings\n[embedder]\nmodel = "hash:64"\n[retrieval]\nk = 7\n'
    (folder / "domainrag.toml").write_text(written)
    with KnowledgeBase.open(folder, create=True) as kb:
        assert kb.config.embedder.model == "hash:64" and kb.config.retrieval.k == 7
    assert (folder / "domainrag.toml").read_text() == written


# --- paths: exact prune scopes, symlinks, odd names (issue 11) --------------------------------


def _sources(kb: KnowledgeBase) -> list[str]:
    return sorted(Path(s).name for s in kb.store.source_states())


def test_prune_matches_files_exactly_never_by_prefix(kb_factory, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for name in ("page.htm", "page.html", "export.json", "export.jsonl"):
        (d / name).write_text('{"text": "x"}\n' if "json" in name else f"<p>text of {name}</p>")
    (tmp_path / "d2").mkdir()
    (tmp_path / "d2" / "other.txt").write_text("a sibling folder whose name starts with d")
    kb = kb_factory()
    kb.ingest([d, tmp_path / "d2"])
    (d / "page.htm").unlink()
    (d / "export.json").unlink()
    report = kb.ingest([tmp_path / "d2"], prune=True)
    assert not report.removed
    report = kb.ingest([d], prune=True)
    assert sorted(Path(s).name for s in report.removed) == ["export.json", "page.htm"]
    assert _sources(kb) == ["export.jsonl", "other.txt", "page.html"]


def test_pruning_a_file_scope_leaves_longer_names_alone(kb_factory, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "page.htm").write_text("<p>short name</p>")
    (d / "page.html").write_text("<p>long name</p>")
    (d / "export.json").write_text('{"text": "one"}')
    (d / "export.jsonl").write_text('{"text": "two"}\n')
    kb = kb_factory()
    kb.ingest([d])
    assert not kb.ingest([d / "page.htm"], prune=True).removed
    assert not kb.ingest([d / "export.json"], prune=True).removed
    assert _sources(kb) == ["export.json", "export.jsonl", "page.htm", "page.html"]


def test_symlinks_leaving_the_folder_are_ignored_unless_configured(kb_factory, tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("outside text zqsecret")
    (root / "inside.txt").write_text("inside text")
    (root / "link.txt").symlink_to(outside / "secret.txt")
    kb = kb_factory()
    report = kb.ingest([root])
    assert report.added == ["root/inside.txt"]
    assert [Path(p).name for p, _ in report.ignored] == ["link.txt"]
    assert "follow_external_symlinks" in report.ignored[0][1] and not report.partial

    follows = kb_factory("follows", **{"ingest.follow_external_symlinks": True})
    assert sorted(follows.ingest([root]).added) == ["root/inside.txt", "root/link.txt"]
    assert follows.search("zqsecret", mode="lexical")[0].doc_id == "root/link.txt"
    (root / "link.txt").unlink()  # the link goes: its document goes with --prune
    assert [Path(s).name for s in follows.ingest([root], prune=True).removed] == ["link.txt"]
    assert not follows.search("zqsecret", mode="lexical")


def test_file_names_that_are_not_utf8_are_ingested_and_pruned(kb_factory, tmp_path: Path) -> None:
    import os

    root = tmp_path / "root"
    root.mkdir()
    name = os.fsdecode(b"caf\xe9.txt")
    (root / name).write_text("latin-1 named file zqcafe")
    kb = kb_factory()
    report = kb.ingest([root])
    assert report.added == ["root/caf\\xe9.txt"] and not report.failed
    assert kb.search("zqcafe", mode="lexical")[0].doc_id == "root/caf\\xe9.txt"
    (root / name).unlink()
    assert kb.ingest([root], prune=True).removed[0].endswith("caf\\xe9.txt")


def test_reindex_works_after_the_settings_changed(kb_factory, docs: Path, tmp_path: Path) -> None:
    from domainrag import config as config_io

    kb_factory().ingest([docs])
    path = tmp_path / "kb"
    saved = config_io.load(path)
    config_io.save(saved.with_overrides({"chunking.target_tokens": 300, "embedder.model": "hash:32"}), path)
    with KnowledgeBase.open(path) as kb:  # opening is fine; using the stale index is not
        with pytest.raises(IndexMismatchError, match="--reindex"):
            kb.ingest([docs])
        report = kb.ingest([docs], reindex=True)
        assert len(report.added) == 3 and not report.failed
        assert kb.status()["manifest"]["chunker"] == "structure-v1:300:8"
    with KnowledgeBase.open(path) as kb:
        assert kb.search("thyroxine", k=1)
        assert kb.status()["manifest"]["embedder"]["dimensions"] == 32


def test_reindex_with_session_overrides_records_them(kb_factory, docs: Path, tmp_path: Path) -> None:
    kb_factory().ingest([docs])
    with KnowledgeBase.open(tmp_path / "kb", overrides={"embedder.model": "hash:48"}) as kb:
        kb.ingest([docs], reindex=True)
    with KnowledgeBase.open(tmp_path / "kb") as kb:  # domainrag.toml now says what the index holds
        assert kb.config.embedder.model == "hash:48" and kb.search("thyroxine", k=1)


def test_reindex_of_a_missing_path_keeps_the_index(kb_factory, docs: Path, tmp_path: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    with pytest.raises(ConfigError, match="no such file"):
        kb.ingest([tmp_path / "typo"], reindex=True)
    assert kb.status()["documents"] == 3


def test_kb_path_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a knowledge base")
    for create in (False, True):
        with pytest.raises(ConfigError, match=f"{path} is a file, not a folder"):
            KnowledgeBase.open(path, create=create)
    assert path.read_text() == "not a knowledge base"


def test_prune_keeps_files_that_exist_but_cannot_be_read_now(kb_factory, docs: Path, tmp_path: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs])
    (docs / "notes.txt").write_text("grown " * 2000)  # now over the size cap below
    with KnowledgeBase.open(tmp_path / "kb", overrides={"ingest.max_file_mb": 0.001}) as capped:
        report = capped.ingest([docs], prune=True)
        assert [Path(label).name for label, _ in report.failed] == ["notes.txt"] and not report.removed
        assert capped.search("seven years closure", k=1, mode="lexical")[0].doc_id == "docs/notes.txt"
    (docs / "notes.txt").unlink()
    assert [Path(s).name for s in kb.ingest([docs], prune=True).removed] == ["notes.txt"]
