"""Property, over HTTP: a key never gets a document its groups may not read — through search,
ask (plain and streamed), chat, the OpenAI-compatible endpoint (plain and streamed), the
documents list or a document fetch.

Random knowledge bases from tests/test_acl_property.py's generator (JSONL records with random
``acl`` groups, each holding a unique tag word) are served by the real app; random API keys
(groups drawn from the same pool, the empty set, ``*``) send queries made of the documents'
words. Any forbidden tag in a response body is a leak. The default run makes a few hundred
requests; ``DOMAINRAG_ACL_HTTP_QUERIES=N`` (or the ``slow`` test) makes at least N.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from test_acl_property import CALLER_GROUPS, GROUPS, VOCAB, Corpus, Doc, Script, queries_for, tag

from domainrag.server.app import create_app
from domainrag.server.settings import CollectionSpec, ServerSettings


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def random_docs(rng: random.Random) -> list[Doc]:
    return [Doc(tuple(rng.choices(VOCAB, k=rng.randint(3, 12))),
                None if rng.random() < 0.25 else tuple(rng.sample(GROUPS, k=rng.randint(0, 3))),
                rng.random() < 0.5)
            for _ in range(rng.randint(2, 9))]


def random_caller(rng: random.Random) -> frozenset[str] | None:
    if rng.random() < 0.1:
        return None
    return frozenset(rng.sample(CALLER_GROUPS, k=rng.randint(0, 3)))


def sse_text(response) -> str:
    assert response.status_code == 200, response.text
    return response.text


def run_corpus(root: Path, rng: random.Random, cases: int, calls: Counter[str], scripted: type) -> None:
    from domainrag.server.keys import KEYS_FILE, KeyStore

    corpus = Corpus(random_docs(rng), root)
    corpus.kb.close()
    script = Script()
    scripted.script = script
    home = root / "home"
    home.mkdir()
    callers = {}
    with KeyStore(home / KEYS_FILE) as keys:
        keys.create("admin", None, "admin", None)
        for i in range(6):
            caller = random_caller(rng)
            groups = None if caller is None else sorted(caller)   # None: every document ('*')
            callers[keys.create(f"k{i}", ["c"], "read", groups)[1]] = caller
    app = create_app(ServerSettings(home=home, collections={"c": CollectionSpec(path=root / "kb")},
                                    rate_limit_per_minute=100_000, models=["scripted:acl"]))
    stream = queries_for(corpus, rng)
    with TestClient(app) as client:
        for _ in range(cases):
            secret, caller = rng.choice(list(callers.items()))
            query, followup = next(stream)
            forbidden = [t for t in corpus.forbidden_tags(caller) if t not in f"{query} {followup}".split()]
            headers = bearer(secret)
            mode = rng.choice(["lexical", "dense", "hybrid"])
            bodies = {
                "search": client.post("/v1/collections/c/search", headers=headers,
                                      json={"query": query, "k": 3, "mode": mode}).text,
                "ask": client.post("/v1/collections/c/ask", headers=headers,
                                   json={"question": query, "model": "scripted:acl", "mode": mode}).text,
                "ask-stream": sse_text(client.post("/v1/collections/c/ask", headers=headers,
                                                   json={"question": query, "stream": True})),
                "chat": client.post("/v1/collections/c/chat", headers=headers, json={
                    "model": "scripted:acl",
                    "messages": [{"role": "user", "content": query}, {"role": "assistant", "content": "ok"},
                                 {"role": "user", "content": f"and what about {followup}?"}]}).text,
                "openai": client.post("/v1/chat/completions", headers=headers, json={
                    "model": rng.choice(["c", "c:scripted:acl"]),
                    "messages": [{"role": "user", "content": query}]}).text,
                "openai-stream": sse_text(client.post("/v1/chat/completions", headers=headers, json={
                    "model": "c:scripted:acl", "stream": True,
                    "messages": [{"role": "user", "content": followup}]})),
                "documents": client.get("/v1/collections/c/documents", headers=headers).text,
            }
            doc_id = rng.choice(corpus.ids)
            fetched = client.get(f"/v1/collections/c/documents/{quote(doc_id, safe='/')}", headers=headers)
            assert (fetched.status_code == 200) == (doc_id in corpus.visible(caller)), (caller, doc_id)
            bodies["document"] = fetched.text
            for kind, body in bodies.items():
                leaked = [t for t in forbidden if t in body]
                assert not leaked, (kind, caller, query, leaked, body[:500])
            for request in script.requests:
                assert not [t for t in forbidden if t in json.dumps([m.content for m in request.messages])]
            script.requests.clear()
            if caller is not None:
                calls.update(bodies.keys())
                allowed_restricted = [tag(i) for i, d in enumerate(corpus.ids)
                                      if d in corpus.visible(caller) and corpus.restricted(d)]
                calls["(restricted documents seen by allowed keys)"] += sum(
                    t in bodies["search"] or t in bodies["openai"] for t in allowed_restricted)


def run(tmp_path: Path, scripted: type, target: int) -> Counter[str]:
    calls: Counter[str] = Counter()
    rng = random.Random(20261130)
    round_ = 0
    while sum(n for k, n in calls.items() if not k.startswith("(")) < target:
        run_corpus(tmp_path / f"r{round_}", rng, 12, calls, scripted)
        round_ += 1
    seen = calls.pop("(restricted documents seen by allowed keys)", 0)
    print(f"ACL over HTTP: {seen} restricted documents returned to keys allowed to read them; "
          f"{sum(calls.values())} requests by restricted keys over {round_} corpora "
          f"({', '.join(f'{k} {n}' for k, n in sorted(calls.items()))}); 0 leaks")
    assert seen > 0  # keys did read restricted documents they may read: the property is not vacuous
    return calls


def test_no_key_gets_what_its_groups_may_not_read(tmp_path: Path, scripted: type) -> None:
    calls = run(tmp_path, scripted, int(os.environ.get("DOMAINRAG_ACL_HTTP_QUERIES", "300")))
    assert calls["openai"] and calls["ask-stream"]


@pytest.mark.slow
def test_ten_thousand_requests_leak_nothing(tmp_path: Path, scripted: type) -> None:
    assert sum(run(tmp_path, scripted, 10_000).values()) >= 10_000
