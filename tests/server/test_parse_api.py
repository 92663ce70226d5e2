"""GET /v1/collections/{c}/parse: the files that parsed suspiciously, as the CLI's
``status --parse`` lists them, never naming a file the caller may not read."""

from __future__ import annotations

from conftest import add_collection, bearer
from fastapi.testclient import TestClient
from test_api import assert_problem

from domainrag.testing.store import make_update

GARBLED = "Le cafÃ© de la gare sert des crÃªpes Ã  midi et le soir. " * 5


def test_the_parse_report_lists_suspicious_files_and_all_notes_on_request(client: TestClient) -> None:
    add_collection(client, docs=[{"name": "clean.txt", "text": "Refunds are paid within 30 days of the request."},
                                 {"name": "garbled.txt", "text": GARBLED}])
    files = client.get("/v1/collections/docs/parse").json()["files"]
    assert len(files) == 1 and files[0]["source"].endswith("garbled.txt")
    assert files[0]["notes"][0]["code"] == "mojibake" and files[0]["notes"][0]["warning"] is True
    assert client.get("/v1/collections/docs/parse?all=true").json()["files"] == files
    assert_problem(client.get("/v1/collections/ghost/parse"), 404, "ghost")


def test_a_key_sees_only_the_files_it_may_read(client: TestClient, make_key) -> None:
    add_collection(client)
    kb = client.app.state.server.collections.get("docs")
    public = make_update("pub.txt", "pub", ["public words"], dim=64)
    secret = make_update("board.txt", "board", ["board words"], dim=64, seed=1, acl=["board"])
    for update, code in ((public, "sparse"), (secret, "mojibake")):
        update.notes = [{"code": code, "message": f"{code} here", "warning": True}]
        update.tokens = [kb.analyzer.tokenize(c.text) for c in update.chunks]
    kb.store.write([public, secret])
    hr = bearer(make_key("hr", ["docs"], groups=["hr"]))
    board = bearer(make_key("board", ["docs"], groups=["board"]))
    assert [f["source"] for f in client.get("/v1/collections/docs/parse", headers=hr).json()["files"]] == ["pub.txt"]
    assert [f["source"] for f in client.get("/v1/collections/docs/parse", headers=board).json()["files"]] == \
        ["board.txt", "pub.txt"]
