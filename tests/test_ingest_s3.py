"""``s3://`` ingest against a real S3-protocol server on loopback (moto's server mode, signatures
checked; see s3_server.py): the first sync, an unchanged re-run that downloads nothing (read from
the server's request log), a changed object re-ingested, a deleted object pruned only with
``prune``, a listing longer than one page, the per-object size cap, wrong credentials and a
missing bucket, and a knowledge base's own ``[sources] urls`` refused until trusted."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from s3_server import S3Server, s3_env, s3_server  # noqa: F401 - fixtures

from domainrag import trust
from domainrag.errors import ConfigError, UntrustedSettingsError

pytestmark = pytest.mark.integration

_bucket_names = (f"docs-{n}" for n in itertools.count())
FILES = {
    "policies/credit.txt": b"Loans above 10,000 EUR need the signatures of two credit officers.",
    "policies/sub/leave.md": b"# Leave\n\nParental leave lasts sixteen weeks at full pay.",
    "policies/tool.exe": b"MZ not a document we read",
    "other/outside.txt": b"This file lies outside the ingested prefix.",
}


@pytest.fixture
def bucket(s3_env: S3Server) -> str:  # noqa: F811 - fixture
    name = next(_bucket_names)
    client = s3_env.client()
    client.create_bucket(Bucket=name)
    for key, body in FILES.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    return name


def test_first_sync_ingests_the_prefix_and_cites_the_url(kb_factory, bucket: str) -> None:
    kb = kb_factory()
    report = kb.ingest([f"s3://{bucket}/policies"])
    assert sorted(report.added) == [f"s3://{bucket}/policies/credit.txt", f"s3://{bucket}/policies/sub/leave.md"]
    assert report.ignored == [(f"s3://{bucket}/policies/tool.exe", "unsupported file type '.exe'")]
    assert not report.failed
    hit = kb.search("signatures credit officers", k=1)[0]
    assert hit.source == f"s3://{bucket}/policies/credit.txt"
    assert hit.metadata["path"] == hit.source == hit.doc_id
    assert "two credit officers" in hit.text


def test_unchanged_rerun_downloads_nothing_and_a_changed_object_is_reingested(kb_factory, bucket: str,
                                                                              s3_env: S3Server) -> None:  # noqa: F811
    kb = kb_factory()
    mark = s3_env.log_size()
    kb.ingest([f"s3://{bucket}/policies/"])
    assert sorted(s3_env.downloads(bucket, mark)) == ["policies/credit.txt", "policies/sub/leave.md"]

    mark = s3_env.log_size()
    again = kb.ingest([f"s3://{bucket}/policies/"])
    assert sorted(again.skipped) == [f"s3://{bucket}/policies/credit.txt", f"s3://{bucket}/policies/sub/leave.md"]
    assert again.embedded == 0 and not again.added and not again.updated
    assert s3_env.downloads(bucket, mark) == []

    s3_env.client().put_object(Bucket=bucket, Key="policies/credit.txt",
                               Body=b"Loans above 50,000 EUR need the approval of the risk committee.")
    mark = s3_env.log_size()
    changed = kb.ingest([f"s3://{bucket}/policies/"])
    assert changed.updated == [f"s3://{bucket}/policies/credit.txt"]
    assert s3_env.downloads(bucket, mark) == ["policies/credit.txt"]
    assert "risk committee" in kb.search("approval risk committee", k=1)[0].text


def test_a_rewritten_object_with_the_same_bytes_is_not_downloaded(kb_factory, bucket: str,
                                                                   s3_env: S3Server) -> None:  # noqa: F811
    kb = kb_factory()
    kb.ingest([f"s3://{bucket}/policies/"])
    s3_env.client().put_object(Bucket=bucket, Key="policies/credit.txt", Body=FILES["policies/credit.txt"])
    mark = s3_env.log_size()
    report = kb.ingest([f"s3://{bucket}/policies/"])
    assert f"s3://{bucket}/policies/credit.txt" in report.skipped
    assert s3_env.downloads(bucket, mark) == []   # same ETag: the new time alone is no reason to read it


def test_a_deleted_object_is_pruned_only_with_prune(kb_factory, bucket: str, s3_env: S3Server,  # noqa: F811
                                                    tmp_path: Path) -> None:
    kb = kb_factory()
    local = tmp_path / "local"
    local.mkdir()
    (local / "note.txt").write_text("A local note that must survive the bucket's prune.")
    kb.ingest([f"s3://{bucket}/policies", str(local)])
    s3_env.client().delete_object(Bucket=bucket, Key="policies/sub/leave.md")

    kept = kb.ingest([f"s3://{bucket}/policies"])
    assert not kept.removed
    assert kb.document(f"s3://{bucket}/policies/sub/leave.md") is not None

    pruned = kb.ingest([f"s3://{bucket}/policies"], prune=True)
    assert pruned.removed == [f"s3://{bucket}/policies/sub/leave.md"]
    assert kb.document(f"s3://{bucket}/policies/sub/leave.md") is None
    assert kb.document(f"s3://{bucket}/policies/credit.txt") is not None
    assert kb.document("local/note.txt") is not None   # another scope: untouched


def test_an_object_over_the_size_cap_fails_unread_and_is_kept_from_prune(kb_factory, bucket: str,
                                                                          s3_env: S3Server) -> None:  # noqa: F811
    kb = kb_factory()
    kb.ingest([f"s3://{bucket}/policies"])
    big = b"Loans and more loans. " * 60_000   # 1.3 MB
    s3_env.client().put_object(Bucket=bucket, Key="policies/credit.txt", Body=big)
    mark = s3_env.log_size()
    capped = kb_factory("kb", **{"ingest.max_file_mb": 1})
    report = capped.ingest([f"s3://{bucket}/policies"], prune=True)
    assert [label for label, _ in report.failed] == [f"s3://{bucket}/policies/credit.txt"]
    assert "larger than max_file_mb=1" in report.failed[0][1]
    assert "policies/credit.txt" not in s3_env.downloads(bucket, mark)
    assert not report.removed   # it exists: the copy ingested before stays
    assert capped.document(f"s3://{bucket}/policies/credit.txt") is not None


def test_a_listing_longer_than_one_page_is_followed(kb_factory, s3_env: S3Server) -> None:  # noqa: F811
    name = next(_bucket_names)
    client = s3_env.client()
    client.create_bucket(Bucket=name)
    for n in range(1_001):   # one page is 1,000 keys
        client.put_object(Bucket=name, Key=f"a/{n:04d}.bin", Body=b"x")
    client.put_object(Bucket=name, Key="a/zz-last.txt", Body=b"The last key sits on the second page.")
    mark = s3_env.log_size()
    report = kb_factory().ingest([f"s3://{name}/a"])
    assert report.added == [f"s3://{name}/a/zz-last.txt"]
    assert len(report.ignored) == 1_001
    assert s3_env.downloads(name, mark) == ["a/zz-last.txt"]   # unsupported types are never read


def test_a_single_object_url_is_that_object(kb_factory, bucket: str) -> None:
    kb = kb_factory()
    report = kb.ingest([f"s3://{bucket}/other/outside.txt"])
    assert report.added == [f"s3://{bucket}/other/outside.txt"]
    assert kb.ingest([f"s3://{bucket}/other/outside.txt"], prune=True).skipped == [f"s3://{bucket}/other/outside.txt"]


def test_a_missing_bucket_is_a_clear_error(kb_factory, s3_env: S3Server) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="no such bucket") as caught:
        kb_factory().ingest(["s3://no-such-bucket-here/docs"])
    assert "s3://no-such-bucket-here/docs" in str(caught.value)


def test_wrong_credentials_are_a_clear_error_that_shows_no_secret(kb_factory, bucket: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789")
    kb = kb_factory()
    with pytest.raises(ConfigError, match="access denied") as caught:
        kb.ingest([f"s3://{bucket}/policies", "."])
    message = str(caught.value)
    assert "wrong-secret" not in message and "AWS_ACCESS_KEY_ID" in message
    assert kb.store.source_states() == {}   # refused before anything was ingested


def test_credentials_in_the_url_are_refused(kb_factory) -> None:
    with pytest.raises(ConfigError, match="holds credentials") as caught:
        kb_factory().ingest(["https://alice:hunter2@intranet.example/wiki/"])
    assert "hunter2" not in str(caught.value)


def test_a_knowledge_bases_own_sources_need_trust(kb_factory, bucket: str, tmp_path: Path) -> None:
    kb = kb_factory()
    kb.close()
    config = tmp_path / "kb" / "domainrag.toml"
    config.write_text(config.read_text() + f'\n[sources]\nurls = ["s3://{bucket}/policies"]\n')
    from domainrag import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "kb") as opened:
        with pytest.raises(UntrustedSettingsError, match="domainrag trust"):
            opened.ingest()
        assert opened.store.source_states() == {}
        assert opened.ingest([f"s3://{bucket}/other/outside.txt"]).added   # named by the user: fine
    trust.trust(tmp_path / "kb")
    with KnowledgeBase.open(tmp_path / "kb") as trusted:
        report = trusted.ingest()
    assert sorted(report.added) == [f"s3://{bucket}/policies/credit.txt", f"s3://{bucket}/policies/sub/leave.md"]


def test_local_folders_in_sources_need_no_trust(kb_factory, tmp_path: Path) -> None:
    kb = kb_factory()
    kb.close()
    (tmp_path / "kb" / "docs").mkdir()
    (tmp_path / "kb" / "docs" / "a.txt").write_text("Local documents named by the knowledge base itself.")
    config = tmp_path / "kb" / "domainrag.toml"
    config.write_text(config.read_text() + '\n[sources]\nurls = ["docs"]\n')
    from domainrag import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "kb") as opened:
        assert opened.ingest().added == ["docs/a.txt"]
