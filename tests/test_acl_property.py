"""Property: a caller never gets a document its groups may not read — not as a search hit, a
ranked document, a citation, a source sent to the model, text in an answer or its trace, a chat
turn (follow-up rewrites included) or a fetched document.

Random knowledge bases (JSONL records carrying random ``acl`` groups, some public, as lists or
comma strings) are ingested; random callers (groups drawn from the same pool, plus unknown ones,
the empty set, and ``None`` = unrestricted) ask random queries made of the documents' words —
of restricted documents too. Each document holds a unique tag word, so any leak of its text is
seen in whatever the caller receives. The oracle is written here, independently of the store.

The default run checks a few hundred queries; ``DOMAINRAG_ACL_QUERIES=10000`` (or the ``slow``
test) checks at least that many and prints the count.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domainrag import KnowledgeBase
from domainrag.models.generation import GenerationRequest

GROUPS = ["hr", "legal", "finance", "board", "ops"]
CALLER_GROUPS = [*GROUPS, "nobody", "visitors"]
VOCAB = ["tariff", "harbor", "ledger", "audit", "pension", "merger", "vessel", "clinic", "dosage", "patent",
         "lease", "bond", "equity", "invoice", "payroll", "quarter", "margin", "hedge", "asset", "claim", "statute",
         "tenant", "broker", "cargo", "freight"]
SCRIPTED = "scripted:acl"

def tag(i: int) -> str:
    """The word only document ``i`` holds (so its text is recognisable anywhere)."""
    return f"zqtag{i}q"


@dataclass(frozen=True)
class Doc:
    words: tuple[str, ...]
    groups: tuple[str, ...] | None   # None: no acl field
    as_string: bool                  # write the groups as "a,b" instead of a list


@dataclass
class Tally:
    """Queries made by restricted callers (``calls``; unrestricted ones are checked but not
    counted) and signs that the property was exercised."""

    cases: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    restricted_seen: int = 0   # hits of restricted documents returned to callers allowed to read them
    citations: int = 0

    @property
    def queries(self) -> int:
        return sum(self.calls.values())


docs_strategy = st.lists(
    st.builds(Doc,
              words=st.lists(st.sampled_from(VOCAB), min_size=3, max_size=12).map(tuple),
              groups=st.one_of(st.none(), st.lists(st.sampled_from(GROUPS), max_size=3).map(tuple)),
              as_string=st.booleans()),
    min_size=1, max_size=9)
#: Mostly restricted callers (the empty set included); one in ten unrestricted (``None``).
callers = st.integers(0, 9).flatmap(
    lambda n: st.none() if n == 0 else st.frozensets(st.sampled_from(CALLER_GROUPS), max_size=3))


class Corpus:
    """One random knowledge base, its documents' ACLs and the oracle."""

    def __init__(self, docs: list[Doc], root: Path) -> None:
        self.docs = docs
        records = []
        for i, doc in enumerate(docs):
            record: dict[str, object] = {"_id": f"r{i}", "text": " ".join([*doc.words, tag(i)]) + "."}
            if doc.groups is not None:
                record["acl"] = ",".join(doc.groups) if doc.as_string else list(doc.groups)
            records.append(record)
        (root / "data").mkdir(parents=True)
        (root / "data" / "records.jsonl").write_text("\n".join(json.dumps(r) for r in records))
        self.kb = KnowledgeBase.open(root / "kb", create=True, overrides={
            "embedder.model": "fake-en:64", "chunking.target_tokens": 64, "chunking.overlap_tokens": 8,
            "answer.min_evidence": 0.0})
        report = self.kb.ingest([root / "data"])
        assert not report.failed, report.failed
        self.ids = [f"data/records.jsonl#r{i}" for i in range(len(docs))]

    def visible(self, caller: frozenset[str] | None) -> set[str]:
        return {doc_id for doc_id, doc in zip(self.ids, self.docs, strict=True)
                if caller is None or not doc.groups or caller & set(doc.groups)}

    def forbidden_tags(self, caller: frozenset[str] | None) -> list[str]:
        allowed = self.visible(caller)
        return [tag(i) for i, doc_id in enumerate(self.ids) if doc_id not in allowed]

    def restricted(self, doc_id: str) -> bool:
        return bool(self.docs[self.ids.index(doc_id)].groups)


class Script:
    """The scripted model: answers cite every source it was given (and a fabricated [99]);
    rewrites return the follow-up the test chose."""

    def __init__(self) -> None:
        self.standalone = "audit"
        self.requests: list[GenerationRequest] = []

    def __call__(self, request: GenerationRequest) -> str:
        self.requests.append(request)
        if not request.sources:
            return self.standalone
        return " ".join(f"{s.text} [{s.number}]" for s in request.sources) + " Also this [99]."


def leaks(payload: object, forbidden: list[str]) -> list[str]:
    text = json.dumps(payload, default=str, ensure_ascii=False)
    return [t for t in forbidden if t in text]


def check_case(corpus: Corpus, script: Script, caller: frozenset[str] | None, query: str,
               followup: str, doc_index: int, mode: str, tally: Tally) -> None:
    kb = corpus.kb
    allowed = corpus.visible(caller)
    # the caller's own words are no leak: look for the forbidden tags it did not type
    forbidden = [t for t in corpus.forbidden_tags(caller) if t not in f"{query} {followup}".split()]
    groups = None if caller is None else sorted(caller)
    k = 3
    counted = Counter[str]()

    hits = kb.search(query, k=k, mode=mode, groups=groups)  # type: ignore[arg-type]
    assert {h.doc_id for h in hits} <= allowed, (caller, query, [h.doc_id for h in hits])
    assert not leaks([h.to_dict() for h in hits], forbidden)
    tally.restricted_seen += sum(corpus.restricted(h.doc_id) for h in hits if caller is not None)
    # Access is applied before the top k: the caller gets the best k of what it may read.
    if mode != "hybrid":
        everything = kb.search(query, k=len(corpus.ids), mode=mode)  # type: ignore[arg-type]
        expected = [h.chunk_id for h in everything if h.doc_id in allowed][:k]
        assert [h.chunk_id for h in hits] == expected, (caller, query, mode)
    counted["search"] += 1

    ranked = kb.rank_documents(query, k=10, mode=mode, groups=groups)  # type: ignore[arg-type]
    assert set(ranked) <= allowed, (caller, query, ranked)
    counted["rank_documents"] += 1

    for model in (None, SCRIPTED):
        script.requests.clear()
        answer = kb.ask(query, model=model, groups=groups)
        assert {c.doc_id for c in answer.citations} <= allowed, (caller, query, model)
        assert not leaks(answer.to_dict(), forbidden), (caller, query, model, answer.text)
        for request in script.requests:
            assert {s.doc_id for s in request.sources} <= allowed
            assert not leaks([m.content for m in request.messages], forbidden)
        tally.citations += len(answer.citations)
        counted["ask"] += 1

    script.requests.clear()
    script.standalone = followup
    chat = kb.chat(model=SCRIPTED, groups=groups)
    for question in (query, f"and what about {followup}?"):
        answer = chat.ask(question)
        assert {c.doc_id for c in answer.citations} <= allowed, (caller, question)
        assert not leaks(answer.to_dict(), forbidden), (caller, question, answer.text)
        counted["chat"] += 1
    for request in script.requests:
        assert {s.doc_id for s in request.sources} <= allowed
        assert not leaks([m.content for m in request.messages], forbidden)

    doc_id = corpus.ids[doc_index]
    fetched = kb.document(doc_id, groups=groups)
    assert (fetched is not None) == (doc_id in allowed), (caller, doc_id)
    assert fetched is None or fetched["id"] == doc_id
    counted["document"] += 1
    if caller is not None:
        tally.calls.update(counted)
        tally.cases += 1


def queries_for(corpus: Corpus, rng: random.Random) -> Iterator[tuple[str, str]]:
    """Queries made of one document's words (its tag word sometimes), and a follow-up."""
    while True:
        i = rng.randrange(len(corpus.docs))
        words = list(corpus.docs[i].words)
        query = rng.sample(words, k=min(len(words), rng.randint(1, 3)))
        if rng.random() < 0.3:
            query.append(tag(i))
        j = rng.randrange(len(corpus.docs))
        followup = " ".join([*rng.sample(list(corpus.docs[j].words), k=1), tag(j)])
        yield " ".join(query), followup


def run_property(tmp_root: Path, scripted: type, examples: int, cases_per_corpus: int, tally: Tally) -> None:
    script = Script()
    scripted.script = script
    tmp_root.mkdir(parents=True, exist_ok=True)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(docs=docs_strategy, data=st.data())
    def prop(docs: list[Doc], data: st.DataObject) -> None:
        corpus = Corpus(docs, Path(tempfile.mkdtemp(dir=tmp_root)))
        try:
            rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
            stream = queries_for(corpus, rng)
            for _ in range(cases_per_corpus):
                caller = data.draw(callers, label="caller")
                mode = data.draw(st.sampled_from(["lexical", "dense", "hybrid"]), label="mode")
                query, followup = next(stream)
                check_case(corpus, script, caller, query, followup, rng.randrange(len(docs)), mode, tally)
        finally:
            corpus.kb.close()

    prop()


def report(tally: Tally) -> str:
    by_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(tally.calls.items()))
    return (f"ACL property: {tally.queries} queries by restricted callers over {tally.cases} cases ({by_kind}); "
            f"{tally.restricted_seen} restricted hits to allowed callers, {tally.citations} citations; 0 leaks")


def test_no_caller_gets_what_its_groups_may_not_read(tmp_path: Path, scripted: type) -> None:
    target = int(os.environ.get("DOMAINRAG_ACL_QUERIES", "400"))
    tally = Tally()
    while tally.queries < target:
        run_property(tmp_path / f"round{tally.queries}", scripted, examples=max(1, min(25, target // 160)),
                     cases_per_corpus=20, tally=tally)
    print(report(tally))
    assert tally.restricted_seen > 0 and tally.citations > 0  # the property was exercised, not vacuous


@pytest.mark.slow
def test_ten_thousand_queries_leak_nothing(tmp_path: Path, scripted: type) -> None:
    tally = Tally()
    while tally.queries < 10_000:
        run_property(tmp_path / f"round{tally.queries}", scripted, examples=25, cases_per_corpus=40, tally=tally)
    print(report(tally))
    assert tally.queries >= 10_000 and tally.restricted_seen > 0
