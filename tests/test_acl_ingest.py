"""Access groups given to documents at ingest: ``kb.ingest(acl=...)`` / ``--acl``, ``[[ingest.acl]]``
rules, a document's own ``acl`` field; change detection and stickiness (ingest/acl.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domainrag import KnowledgeBase
from domainrag.acl import parse_groups
from domainrag.cli import app
from domainrag.config import KBConfig, validate
from domainrag.errors import ConfigError
from domainrag.ingest.loaders.markdown import front_matter


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "salaries.txt").write_text("Salary bands are reviewed every March by the pay committee.")
    (root / "hr" / "leave.md").write_text("# Leave\n\nParental leave lasts twenty weeks at full pay.")
    (root / "handbook.md").write_text("# Handbook\n\nThe office opens at eight in the morning.")
    (root / "faq.txt").write_text("Visitors sign in at the front desk of the lobby.")
    return root


def acl_of(kb: KnowledgeBase) -> dict[str, list[str] | None]:
    return {d["id"]: d["metadata"].get("acl") for d in kb.store.iter_documents()}


# -- groups given to the ingest ----------------------------------------------------------------------
def test_groups_given_to_ingest_go_to_every_document_of_those_paths(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs / "hr"], acl=["hr", "managers"])
    kb.ingest([docs / "faq.txt"])
    assert acl_of(kb) == {"hr/leave.md": ["hr", "managers"], "hr/salaries.txt": ["hr", "managers"], "faq.txt": None}


def test_a_comma_string_is_groups_and_bad_names_are_refused_before_anything_is_read(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs / "faq.txt"], acl=" legal , hr,hr")
    assert acl_of(kb) == {"faq.txt": ["hr", "legal"]}
    for bad, message in [(["a,b"], "contains a comma"), (["x" * 65], "the limit is 64"), ([""], "is empty"),
                         ("hr,,legal", "is empty"), (["*"], "is '\\*'"), ([3], "group names are text")]:
        with pytest.raises(ConfigError, match=message):
            kb.ingest([docs / "handbook.md"], acl=bad)
    assert set(acl_of(kb)) == {"faq.txt"}


def test_other_groups_rewrite_the_source_without_re_embedding(kb_factory, docs: Path) -> None:
    kb = kb_factory()
    first = kb.ingest([docs], acl=["hr"])
    assert first.embedded > 0
    same = kb.ingest([docs], acl=["hr"])
    assert len(same.skipped) == 4 and not same.updated
    other = kb.ingest([docs], acl=["finance", "hr"])
    assert len(other.updated) == 4 and other.embedded == 0
    assert set(map(tuple, acl_of(kb).values())) == {("finance", "hr")}
    assert kb.search("parental leave", k=1)[0].doc_id == "docs/hr/leave.md"


def test_a_plain_re_ingest_or_reindex_keeps_the_groups_and_an_empty_list_makes_documents_public(
        kb_factory, docs: Path) -> None:
    kb = kb_factory()
    kb.ingest([docs], acl=["hr"])
    (docs / "faq.txt").write_text("Visitors sign in at the front desk and wear a badge.")
    plain = kb.ingest([docs])
    assert plain.updated == ["docs/faq.txt"] and len(plain.skipped) == 3
    assert set(map(tuple, acl_of(kb).values())) == {("hr",)}
    kb.ingest([docs], reindex=True)
    assert set(map(tuple, acl_of(kb).values())) == {("hr",)}
    public = kb.ingest([docs / "hr"], acl=[])
    assert len(public.updated) == 2 and public.embedded == 0
    assert acl_of(kb) == {"docs/faq.txt": ["hr"], "docs/handbook.md": ["hr"], "hr/leave.md": None,
                          "hr/salaries.txt": None}


# -- per-folder rules --------------------------------------------------------------------------------
RULES = [{"path": "hr/**", "groups": ["hr"]}, {"path": "*.md", "groups": ["staff"]},
         {"path": "hr/leave.md", "groups": ["never-reached"]}]


def test_the_first_matching_rule_gives_a_files_groups(kb_factory, docs: Path) -> None:
    kb = kb_factory(**{"ingest.acl": RULES})
    kb.ingest([docs])
    assert acl_of(kb) == {"docs/hr/salaries.txt": ["hr"], "docs/hr/leave.md": ["hr"],
                          "docs/handbook.md": ["staff"], "docs/faq.txt": None}


def test_rules_match_the_path_relative_to_the_ingested_folder(kb_factory, docs: Path) -> None:
    rules = {"ingest.acl": [{"path": "hr/*.txt", "groups": ["pay"]}, {"path": "docs/**", "groups": ["wrong"]},
                            {"path": "faq.txt", "groups": ["desk"]}]}
    whole = kb_factory("whole", **rules)
    whole.ingest([docs])
    assert acl_of(whole) == {"docs/hr/salaries.txt": ["pay"], "docs/hr/leave.md": None,
                             "docs/handbook.md": None, "docs/faq.txt": ["desk"]}
    part = kb_factory("part", **rules)
    part.ingest([docs / "hr"])  # the rule's hr/ is not part of these paths
    part.ingest([docs / "faq.txt"])  # a file given itself matches by its name
    assert acl_of(part) == {"hr/salaries.txt": None, "hr/leave.md": None, "faq.txt": ["desk"]}


def test_groups_given_to_the_ingest_win_over_rules(kb_factory, docs: Path) -> None:
    kb = kb_factory(**{"ingest.acl": RULES})
    kb.ingest([docs], acl=["board"])
    assert set(map(tuple, acl_of(kb).values())) == {("board",)}


def test_a_changed_rule_rewrites_the_sources_it_changes(kb_factory, docs: Path) -> None:
    kb = kb_factory(**{"ingest.acl": RULES})
    kb.ingest([docs])
    kb.close()
    again = kb_factory(**{"ingest.acl": [{"path": "hr/**", "groups": ["people"]}]})
    report = again.ingest([docs])
    assert sorted(report.updated) == ["docs/hr/leave.md", "docs/hr/salaries.txt"] and report.embedded == 0
    # handbook.md matches no rule now: it keeps the groups it was given
    assert acl_of(again) == {"docs/hr/salaries.txt": ["people"], "docs/hr/leave.md": ["people"],
                             "docs/handbook.md": ["staff"], "docs/faq.txt": None}


def test_rules_in_domainrag_toml_are_validated(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    toml = kb_dir / "domainrag.toml"
    toml.write_text('[[ingest.acl]]\npath = "hr/**"\ngroups = ["hr"]\n\n[[ingest.acl]]\npath = "x/*"\ngroups = []\n')
    config = KnowledgeBase.open(kb_dir, create=True).config
    assert [(r.path, r.groups) for r in config.ingest.acl] == [("hr/**", ["hr"]), ("x/*", [])]
    for body, message in [('path = "a"\ngroups = ["hr"]\nmode = "x"', r"ingest\.acl\.0\.mode: Extra inputs"),
                          ('path = "a"\ngroups = ["h,r"]', r"ingest\.acl\.0\.groups: .*'h,r' contains a comma"),
                          ('path = ""\ngroups = ["hr"]', r"ingest\.acl\.0\.path"),
                          ('path = "a"', r"ingest\.acl\.0\.groups: Field required"),
                          ('path = "a"\ngroups = "hr"', r"ingest\.acl\.0\.groups")]:
        toml.write_text(f"[[ingest.acl]]\n{body}\n")
        with pytest.raises(ConfigError, match=message):
            KnowledgeBase.open(kb_dir, create=True)


def test_rules_survive_the_config_round_trip() -> None:
    config = validate({"ingest": {"acl": RULES}}, source="test")
    assert config.flat()["ingest.acl"] == RULES
    assert KBConfig().with_overrides({"ingest.acl": RULES}).ingest.acl == config.ingest.acl


# -- a document's own acl field ----------------------------------------------------------------------
def test_records_and_front_matter_carry_their_own_groups(kb_factory, tmp_path: Path) -> None:
    root = tmp_path / "own"
    root.mkdir()
    records = [{"_id": "a", "text": "alpha text", "acl": ["hr", "legal"]}, {"_id": "b", "text": "beta text", "acl": "ops"},
               {"_id": "c", "text": "gamma text"}, {"_id": "d", "text": "delta text", "acl": []}]
    (root / "records.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    (root / "inline.md").write_text("---\ntitle: Inline\nacl: hr, finance\n---\n\nInline body text.")
    (root / "flow.md").write_text("---\nacl: [board, 'hr']\n---\n\nFlow body text.")
    (root / "block.md").write_text("---\nacl:\n  - board\n  - \"legal\"\nauthor: me\n---\n\nBlock body text.")
    kb = kb_factory()
    report = kb.ingest([root])
    assert not report.failed
    assert acl_of(kb) == {"own/records.jsonl#a": ["hr", "legal"], "own/records.jsonl#b": ["ops"],
                          "own/records.jsonl#c": None, "own/records.jsonl#d": None,
                          "own/inline.md": ["finance", "hr"], "own/flow.md": ["board", "hr"],
                          "own/block.md": ["board", "legal"]}
    assert kb.store.document("own/block.md")["metadata"]["author"] == "me"


def test_groups_given_to_the_ingest_or_a_rule_win_over_a_documents_own(kb_factory, tmp_path: Path) -> None:
    root = tmp_path / "own"
    root.mkdir()
    (root / "records.jsonl").write_text(json.dumps({"_id": "a", "text": "alpha", "acl": ["hr"]}))
    (root / "note.md").write_text("---\nacl: hr\n---\n\nA note.")
    kb = kb_factory(**{"ingest.acl": [{"path": "*.md", "groups": ["staff"]}]})
    kb.ingest([root])
    assert acl_of(kb) == {"own/records.jsonl#a": ["hr"], "own/note.md": ["staff"]}
    kb.ingest([root], acl=[])
    assert acl_of(kb) == {"own/records.jsonl#a": None, "own/note.md": None}


def test_a_bad_group_in_a_document_fails_that_file_with_the_reason(kb_factory, tmp_path: Path) -> None:
    root = tmp_path / "own"
    root.mkdir()
    (root / "bad.jsonl").write_text(json.dumps({"_id": "r1", "text": "alpha", "acl": ["ok", "g" * 70]}))
    (root / "nested.json").write_text(json.dumps({"text": "beta", "acl": {"group": "hr"}}))
    (root / "good.txt").write_text("gamma")
    kb = kb_factory()
    report = kb.ingest([root])
    reasons = dict(report.failed)
    assert "own/bad.jsonl" in reasons and "bad.jsonl#r1" in reasons["own/bad.jsonl"]
    assert "the limit is 64" in reasons["own/bad.jsonl"]
    assert "expected a list of group names" in reasons["own/nested.json"]
    assert acl_of(kb) == {"own/good.txt": None}


def test_beir_entries_carry_their_groups_and_ingest_groups_apply(kb_factory, tmp_path: Path) -> None:
    corpus = tmp_path / "beir"
    corpus.mkdir()
    entries = [{"_id": "d1", "title": "One", "text": "first entry", "acl": ["hr"]},
               {"_id": "d2", "title": "Two", "text": "second entry"}]
    (corpus / "corpus.jsonl").write_text("\n".join(json.dumps(e) for e in entries))
    kb = kb_factory()
    kb.ingest([corpus], format="beir")
    assert acl_of(kb) == {"d1": ["hr"], "d2": None}
    report = kb.ingest([corpus], format="beir", acl=["ops"])
    assert len(report.updated) == 2 and report.embedded == 0
    assert acl_of(kb) == {"d1": ["ops"], "d2": ["ops"]}


def test_front_matter_lists_and_parse_groups() -> None:
    meta, body = front_matter("---\ntags:\n  - a\n  - b\nempty:\ntitle: T\n---\nbody")
    assert meta == {"tags": ["a", "b"], "title": "T"} and body == "body"
    assert parse_groups("[a, 'b', \"c\"]") == ("a", "b", "c")
    assert parse_groups(None) == parse_groups("") == parse_groups("[]") == parse_groups([]) == ()
    assert parse_groups(["b", "a", "b"]) == ("a", "b")


# -- the CLI -----------------------------------------------------------------------------------------
def test_cli_ingest_acl(tmp_path: Path, docs: Path) -> None:
    runner = CliRunner()
    kb_dir = tmp_path / "cli-kb"
    common = ["--kb", str(kb_dir), "--embedder", "fake-en:64"]
    done = runner.invoke(app, ["ingest", str(docs / "hr"), "--acl", "hr,managers", *common])
    assert done.exit_code == 0, done.output
    bad = runner.invoke(app, ["ingest", str(docs / "faq.txt"), "--acl", "a,,b", *common])
    assert bad.exit_code == 1 and "is empty" in bad.stderr
    public = runner.invoke(app, ["ingest", str(docs / "hr"), "--acl", "", "--json", *common])
    assert public.exit_code == 0 and json.loads(public.stdout)["updated"] == 2
    with KnowledgeBase.open(kb_dir) as kb:
        assert acl_of(kb) == {"hr/leave.md": None, "hr/salaries.txt": None}
