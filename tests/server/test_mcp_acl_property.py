"""Property, over MCP: a key never gets a document its groups may not read — through the search,
fetch and ask tools (answers, citations and the prompts sent to the model), resources (listed
and read) or a rendered prompt; and a forbidden document is "not found" in the same words as a
missing one.

Hypothesis draws random knowledge bases (tests/test_acl_property.py's generator: documents with
random ``acl`` groups, each holding a unique tag word) and random API keys (groups from the same
pool, unknown groups, the empty set, ``*``); the whole app runs in-process and the official SDK
client speaks Streamable HTTP to it with each key, sending queries made of the documents' words.
Any forbidden tag in what a key receives is a leak. The default run makes a few hundred tool
calls by restricted keys; ``DOMAINRAG_MCP_ACL_CALLS=N`` makes at least N.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError
from mcp_support import call, http_session
from test_acl_property import SCRIPTED, Corpus, Script, callers, docs_strategy, queries_for

from domainrag.server.app import create_app
from domainrag.server.keys import KEYS_FILE, KeyStore
from domainrag.server.settings import CollectionSpec, ServerSettings

URL = "http://127.0.0.1/mcp"


def uri(doc_id: str) -> str:
    return f"domainrag://c/{quote(doc_id, safe='/')}"


def leaked(payload: Any, forbidden: list[str], typed: str = "") -> list[str]:
    """The forbidden tags in ``payload`` (the caller's own words ``typed`` removed first)."""
    text = json.dumps(payload, ensure_ascii=False) if not isinstance(payload, str) else payload
    text = text.replace(typed, " ") if typed else text
    return [t for t in forbidden if t in text]


class Tally:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.restricted_seen = 0
        self.citations = 0
        self.corpora = 0


async def check_corpus(corpus: Corpus, keys: dict[str, frozenset[str] | None], app: Any, script: Script,
                       rng: random.Random, cases: int, tally: Tally) -> None:
    transport = httpx2.ASGITransport(app=app)
    missing = uri("data/records.jsonl#nothing-here")
    async with app.router.lifespan_context(app), AsyncExitStack() as stack:
        clients = {secret: await stack.enter_async_context(http_session(URL, secret, transport=transport))
                   for secret in keys}
        stream = queries_for(corpus, rng)
        for _ in range(cases):
            query, _followup = next(stream)
            for secret, caller in keys.items():
                client = clients[secret]
                allowed = corpus.visible(caller)
                forbidden = [t for t in corpus.forbidden_tags(caller) if t not in query.split()]
                counted: Counter[str] = Counter()

                error, found, text = await call(client, "search", {"query": query, "k": 3,
                                                                    "mode": rng.choice(["lexical", "dense", "hybrid"])})
                assert not error, text
                assert {r["doc_id"] for r in found["results"]} <= allowed, (caller, query)
                assert not leaked(found["results"], forbidden) and not leaked(text, forbidden, query)
                if caller is not None:
                    tally.restricted_seen += sum(corpus.restricted(r["doc_id"]) for r in found["results"])
                counted["search"] += 1

                script.requests.clear()
                error, answer, text = await call(client, "ask", {"question": query, "model": SCRIPTED})
                assert not error, text
                assert {c["doc_id"] for c in answer["citations"]} <= allowed, (caller, query)
                assert not leaked({**answer, "question": ""}, forbidden, query) and not leaked(text, forbidden, query)
                for request in script.requests:
                    assert {s.doc_id for s in request.sources} <= allowed
                    assert not leaked([m.content for m in request.messages], forbidden, query)
                tally.citations += len(answer["citations"])
                counted["ask"] += 1

                doc_id = rng.choice(corpus.ids)
                error, fetched, text = await call(client, "fetch", {"id": uri(doc_id)})
                assert error == (doc_id not in allowed), (caller, doc_id)
                if error:
                    absent = await call(client, "fetch", {"id": missing})
                    assert text.replace(uri(doc_id), "ID") == absent[2].replace(missing, "ID")
                assert not leaked(text, forbidden) and not leaked(fetched or {}, forbidden)
                counted["fetch"] += 1

                try:
                    read = await client.read_resource(uri(doc_id))
                    assert doc_id in allowed and not leaked(read.contents[0].text, forbidden)
                except MCPError as exc:
                    assert doc_id not in allowed and not leaked(exc.message, forbidden)
                counted["read_resource"] += 1

                listed = {r.uri for r in (await client.list_resources()).resources}
                assert listed == {uri(d) for d in allowed}, (caller, listed)
                counted["list_resources"] += 1

                prompt = await client.get_prompt("general", {"question": query})
                assert not leaked(prompt.messages[0].content.text, forbidden, query), (caller, query)
                counted["prompt"] += 1
                if caller is not None:
                    tally.calls.update(counted)


def run_property(root: Path, scripted: type, examples: int, cases: int, tally: Tally) -> None:
    script = Script()
    scripted.script = script
    root.mkdir(parents=True, exist_ok=True)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(docs=docs_strategy, key_groups=st.lists(callers, min_size=2, max_size=4),
           seed=st.integers(0, 2**32 - 1))
    def prop(docs: list[Any], key_groups: list[frozenset[str] | None], seed: int) -> None:
        folder = Path(tempfile.mkdtemp(dir=root))
        corpus = Corpus(docs, folder)
        corpus.kb.close()
        home = folder / "home"
        home.mkdir()
        keys: dict[str, frozenset[str] | None] = {}
        with KeyStore(home / KEYS_FILE) as store:
            for i, groups in enumerate(key_groups):
                keys[store.create(f"k{i}", ["c"], "read", None if groups is None else sorted(groups))[1]] = groups
        app = create_app(ServerSettings(home=home, rate_limit_per_minute=1_000_000, max_concurrent_per_key=64,
                                        models=[SCRIPTED], collections={"c": CollectionSpec(path=folder / "kb")}))
        anyio.run(check_corpus, corpus, keys, app, script, random.Random(seed), cases, tally)
        tally.corpora += 1

    prop()


def report(tally: Tally) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(tally.calls.items()))
    return (f"ACL over MCP: {sum(tally.calls.values())} calls by restricted keys over {tally.corpora} corpora "
            f"({kinds}); {tally.restricted_seen} restricted passages to keys allowed to read them, "
            f"{tally.citations} citations; 0 leaks")


def test_no_key_gets_what_its_groups_may_not_read_over_mcp(tmp_path: Path, scripted: type) -> None:
    target = int(os.environ.get("DOMAINRAG_MCP_ACL_CALLS", "300"))
    tally = Tally()
    while sum(tally.calls.values()) < target:
        run_property(tmp_path / f"round{tally.corpora}", scripted, examples=4, cases=4, tally=tally)
    print(report(tally))
    assert tally.restricted_seen > 0 and tally.citations > 0   # exercised, not vacuous


@pytest.mark.slow
def test_ten_thousand_mcp_calls_leak_nothing(tmp_path: Path, scripted: type) -> None:
    tally = Tally()
    while sum(tally.calls.values()) < 10_000:
        run_property(tmp_path / f"round{tally.corpora}", scripted, examples=10, cases=10, tally=tally)
    print(report(tally))
    assert tally.restricted_seen > 0
