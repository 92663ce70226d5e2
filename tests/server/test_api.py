"""The REST API over TestClient: routes, result shapes and problem details for bad input."""

from __future__ import annotations

import json

import pytest
from conftest import DOCS, FAKE, add_collection, bearer, wait_job
from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    assert "Traceback" not in body["detail"]
    for word in words:
        assert word in body["detail"], (word, body["detail"])
    return body


# -- operations ------------------------------------------------------------------------------------------
def test_health_ready_and_metrics(docs: TestClient) -> None:
    assert docs.get("/healthz").json() == {"status": "ok"}
    assert docs.get("/readyz").json() == {"status": "ok"}
    docs.post("/v1/collections/docs/ask", json={"question": "How long can customers return goods?"})
    text = docs.get("/metrics").text
    assert 'route="/v1/collections/{collection}/ask"' in text
    assert 'domainrag_answers_total{collection="docs",outcome="answered"} 1.0' in text
    assert 'domainrag_ingest_jobs_total{state="done"} 1.0' in text


def test_every_response_has_a_request_id(client: TestClient) -> None:
    assert len(client.get("/healthz").headers["x-request-id"]) == 16
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/nope", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"] != "bad id\n"


def test_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v1/nope"), 404, "/v1/nope", "/docs")
    assert_problem(client.post("/healthz"), 405, "POST", "/healthz")
    assert_problem(client.get("/v1/collections/docs/search"), 405, "GET")


# -- collections -----------------------------------------------------------------------------------------
def test_collection_lifecycle(client: TestClient) -> None:
    created = client.post("/v1/collections", json={"name": "kb1", "settings": FAKE})
    assert created.status_code == 201 and created.json()["name"] == "kb1"
    assert_problem(client.post("/v1/collections", json={"name": "kb1"}), 409, "'kb1' already exists")
    listed = client.get("/v1/collections").json()["collections"]
    assert listed == [{"name": "kb1", "documents": 0, "chunks": 0, "status": "ready"}]
    detail = client.get("/v1/collections/kb1").json()
    assert detail["name"] == "kb1" and detail["stats"]["documents"] == 0
    assert client.delete("/v1/collections/kb1").status_code == 204
    assert_problem(client.get("/v1/collections/kb1"), 404, "'kb1'")


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x" * 65])
def test_bad_collection_name_is_422(client: TestClient, name: str) -> None:
    body = assert_problem(client.post("/v1/collections", json={"name": name}), 422, "body.name")
    assert body["errors"][0]["field"] == "body.name"


def test_bad_collection_settings_name_the_key(client: TestClient) -> None:
    response = client.post("/v1/collections", json={"name": "x", "settings": {"retrieval.nope": 1}})
    assert_problem(response, 422, "nope")
    assert client.get("/v1/collections").json()["collections"] == []


def test_unknown_collection_is_404_naming_it(client: TestClient) -> None:
    for response in (client.get("/v1/collections/ghost"), client.post("/v1/collections/ghost/search",
                                                                      json={"query": "x"}),
                     client.get("/v1/collections/ghost/documents")):
        assert_problem(response, 404, "'ghost'")


# -- documents ---------------------------------------------------------------------------------------------
def test_documents_list_get_and_unknown(docs: TestClient) -> None:
    listed = docs.get("/v1/collections/docs/documents").json()["documents"]
    assert [d["id"] for d in listed] == ["refunds.md", "shipping.txt", "warranty.txt"]
    assert set(listed[0]) == {"id", "source", "title", "metadata"}
    one = docs.get("/v1/collections/docs/documents/refunds.md").json()
    assert "30 days" in one["text"] and one["title"] == "Refunds"
    assert_problem(docs.get("/v1/collections/docs/documents/nothere.pdf"), 404, "'nothere.pdf'", "'docs'")


def test_json_documents_with_metadata_and_plain_names(client: TestClient) -> None:
    docs = [{"name": "notes", "text": "Plain notes about invoices."},
            {"name": "policy", "text": "Invoices are due in 14 days.", "metadata": {"department": "finance"}}]
    job = add_collection(client, "kb", docs)
    assert job["files_total"] == 2 and job["files_done"] == 2 and job["chunks"] >= 2
    listed = {d["id"]: d for d in client.get("/v1/collections/kb/documents").json()["documents"]}
    assert set(listed) == {"notes.txt", "policy.json"}
    assert listed["policy.json"]["metadata"]["department"] == "finance"
    hits = client.post("/v1/collections/kb/search", json={"query": "due", "filters": {"department": "finance"}})
    assert [h["doc_id"] for h in hits.json()["hits"]] == ["policy.json"]


def test_multipart_upload_and_delete_source(docs: TestClient) -> None:
    files = [("files", ("a.txt", b"Alpha particles are helium nuclei.", "text/plain")),
             ("files", ("b.md", b"# Beta\n\nBeta decay emits electrons.", "text/markdown"))]
    response = docs.post("/v1/collections/docs/documents", files=files)
    assert response.status_code == 202
    job = wait_job(docs, response.json()["job"]["id"])
    assert (job["state"], job["files_done"], job["failures"]) == ("done", 2, [])
    source = docs.get("/v1/collections/docs/documents/a.txt").json()["source"]
    assert docs.delete(f"/v1/collections/docs/sources/{source}").status_code == 204
    assert_problem(docs.get("/v1/collections/docs/documents/a.txt"), 404)
    assert_problem(docs.delete(f"/v1/collections/docs/sources/{source}"), 404, "No source")
    hits = docs.post("/v1/collections/docs/search", json={"query": "alpha helium"}).json()["hits"]
    assert "a.txt" not in [h["doc_id"] for h in hits]


def test_a_failed_file_does_not_stop_the_others(docs: TestClient) -> None:
    files = [("files", ("broken.pdf", b"not a pdf at all", "application/pdf")),
             ("files", ("fine.txt", b"Gamma rays are photons.", "text/plain"))]
    job = wait_job(docs, docs.post("/v1/collections/docs/documents", files=files).json()["job"]["id"])
    assert job["state"] == "done" and [f["file"] for f in job["failures"]] == ["broken.pdf"]
    assert job["failures"][0]["reason"]
    assert docs.get("/v1/collections/docs/documents/fine.txt").status_code == 200


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd.txt", "a/../../b.txt", "..", "sub\\x.txt",
                                  ".hidden.txt"])
def test_file_names_with_paths_are_refused(docs: TestClient, home, name: str) -> None:
    response = docs.post("/v1/collections/docs/documents", files=[("files", (name, b"text", "text/plain"))])
    assert_problem(response, 422, "File name")
    assert not (home / "evil.txt").exists() and not (home.parent / "evil.txt").exists()
    assert not any((home / "uploads" / "docs" / "incoming").iterdir())


def test_json_document_names_are_checked_too(docs: TestClient) -> None:
    response = docs.post("/v1/collections/docs/documents", json={"documents": [{"name": "../x", "text": "t"}]})
    assert_problem(response, 422, "File name")


def test_wrong_file_type_is_415_naming_the_setting(docs: TestClient) -> None:
    response = docs.post("/v1/collections/docs/documents", files=[("files", ("tool.exe", b"MZ", "application/x"))])
    assert_problem(response, 415, "'.exe'", "allowed_types")
    assert_problem(docs.post("/v1/collections/docs/documents", content=b"x", headers={"content-type": "text/plain"}),
                   415, "multipart/form-data")


def test_oversize_upload_is_413_before_and_while_reading(make_client) -> None:
    client = make_client(max_upload_mb=0.01, max_files=3)
    add_collection(client)
    big = b"word " * 5000  # 25 kB > 10 kB
    assert_problem(client.post("/v1/collections/docs/documents", files=[("files", ("big.txt", big, "text/plain"))]),
                   413, "max_upload_mb")

    def chunks():  # no Content-Length: the limit is counted while streaming
        boundary = b"--xyz"
        yield boundary + b'\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n\r\n'
        for _ in range(10):
            yield big[:5000]
        yield b"\r\n" + boundary + b"--\r\n"

    response = client.post("/v1/collections/docs/documents", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert_problem(response, 413, "while receiving")
    four = [("files", (f"f{i}.txt", b"x", "text/plain")) for i in range(4)]
    assert_problem(client.post("/v1/collections/docs/documents", files=four), 413, "max_files")
    assert [d["id"] for d in client.get("/v1/collections/docs/documents").json()["documents"]] == \
        [d["name"] for d in DOCS]


def test_two_uploads_of_the_same_file_at_once_make_one_document(docs: TestClient) -> None:
    first = docs.post("/v1/collections/docs/documents", files=[("files", ("same.txt", b"Version one.", "text/plain"))])
    second = docs.post("/v1/collections/docs/documents", files=[("files", ("same.txt", b"Version two.", "text/plain"))])
    jobs = [wait_job(docs, r.json()["job"]["id"]) for r in (first, second)]
    assert [j["state"] for j in jobs] == ["done", "done"]
    ids = [d["id"] for d in docs.get("/v1/collections/docs/documents").json()["documents"]]
    assert ids.count("same.txt") == 1
    assert docs.get("/v1/collections/docs/documents/same.txt").json()["text"] == "Version two."


def test_the_same_name_twice_in_one_upload_is_refused(docs: TestClient) -> None:
    files = [("files", ("x.txt", b"1", "text/plain")), ("files", ("x.txt", b"2", "text/plain"))]
    assert_problem(docs.post("/v1/collections/docs/documents", files=files), 422, "twice")


def test_reingest_runs_a_job(docs: TestClient) -> None:
    response = docs.post("/v1/collections/docs/reingest")
    assert response.status_code == 202 and response.json()["job"]["kind"] == "reingest"
    job = wait_job(docs, response.json()["job"]["id"])
    assert (job["state"], job["files_total"]) == ("done", 3)
    assert len(docs.get("/v1/collections/docs/documents").json()["documents"]) == 3


def test_unknown_job_is_404(client: TestClient) -> None:
    assert_problem(client.get("/v1/jobs/nope"), 404, "'nope'")


# -- search and ask ------------------------------------------------------------------------------------------
def test_search_returns_hits_like_the_python_api(docs: TestClient) -> None:
    hits = docs.post("/v1/collections/docs/search", json={"query": "express shipping cost", "k": 2}).json()["hits"]
    assert len(hits) == 2 and hits[0]["doc_id"] == "shipping.txt"
    assert {"doc_id", "chunk_id", "text", "score"} <= set(hits[0])
    lexical = docs.post("/v1/collections/docs/search", json={"query": "warranty", "mode": "lexical"}).json()
    assert lexical["hits"][0]["doc_id"] == "warranty.txt"


def test_search_and_ask_bodies_are_the_library_records_as_json(docs: TestClient) -> None:
    kb = docs.app.state.server.collections.get("docs")
    response = docs.post("/v1/collections/docs/search", json={"query": "express shipping cost", "k": 3})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hits": [h.to_dict() for h in kb.search("express shipping cost", 3)]}
    answer = docs.post("/v1/collections/docs/ask", json={"question": "How long can customers return goods?"})
    assert answer.headers["content-type"] == "application/json"
    expected = kb.ask("How long can customers return goods?").to_dict()
    assert {k: v for k, v in answer.json().items() if k not in ("manifest", "trace", "usage")} == \
        {k: v for k, v in expected.items() if k not in ("manifest", "trace", "usage")}


@pytest.mark.parametrize(("body", "field"), [
    ({"query": "x", "k": "many"}, "body.k"),
    ({"query": "x", "k": 0}, "body.k"),
    ({"query": "x", "mode": "psychic"}, "body.mode"),
    ({"k": 3}, "body.query"),
    ({"query": "x", "extra": 1}, "body.extra"),
    ({"query": ["x"]}, "body.query"),
])
def test_wrong_types_are_422_naming_the_field(docs: TestClient, body: dict, field: str) -> None:
    problem = assert_problem(docs.post("/v1/collections/docs/search", json=body), 422, field)
    assert field in [e["field"] for e in problem["errors"]]


def test_malformed_json_is_422(docs: TestClient) -> None:
    response = docs.post("/v1/collections/docs/ask", content=b'{"question": "unterminated',
                         headers={"content-type": "application/json"})
    assert_problem(response, 422, "body")


def test_ask_returns_the_answer_record(docs: TestClient) -> None:
    answer = docs.post("/v1/collections/docs/ask", json={"question": "How long can customers return goods?"}).json()
    assert not answer["abstained"] and answer["complete"] and answer["grounded"] == 1.0
    assert answer["citations"][0]["doc_id"] == "refunds.md" and answer["citations"][0]["supported"]
    assert {"usage", "manifest", "trace"} <= set(answer)


@pytest.mark.parametrize(("question", "words"), [("", ["empty"]), ("   ", ["empty"]),
                                                 ("why " * 25_000, ["100,000", "max_question_chars"])])
def test_empty_and_huge_questions_are_422_with_the_library_message(docs: TestClient, question: str,
                                                                   words: list[str]) -> None:
    assert_problem(docs.post("/v1/collections/docs/ask", json={"question": question}), 422, *words)
    assert_problem(docs.post("/v1/collections/docs/ask", json={"question": question, "stream": True}), 422, *words)


def test_unknown_model_is_a_problem_naming_it(docs: TestClient) -> None:
    response = docs.post("/v1/collections/docs/ask", json={"question": "Refund period?", "model": "nope:x"})
    assert_problem(response, 422, "nope")


def test_empty_collection_is_409(client: TestClient) -> None:
    client.post("/v1/collections", json={"name": "empty", "settings": FAKE})
    assert_problem(client.post("/v1/collections/empty/ask", json={"question": "anything?"}), 409, "no documents")


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_ask_streams_tokens_then_the_checked_answer(docs: TestClient, scripted) -> None:
    scripted.script = ["Customers may return goods within 30 days [1]."]
    with docs.stream("POST", "/v1/collections/docs/ask",
                     json={"question": "How long can customers return goods?", "model": "scripted:m",
                           "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.read().decode())
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"token"} and len(kinds) > 3
    assert "".join(data["text"] for kind, data in events[:-1]) == scripted.script[0]
    final = events[-1][1]
    assert final["citations"][0]["doc_id"] == "refunds.md" and final["usage"]["prompt_tokens"] == 10
    assert {"grounded", "abstained", "complete", "manifest"} <= set(final)


def test_a_model_failure_mid_stream_is_an_error_event(docs: TestClient, scripted) -> None:
    response = docs.post("/v1/collections/docs/ask", json={"question": "How long can customers return goods?",
                                                           "model": "scripted:fail", "stream": True})
    assert_problem(response, 503, "scripted failure")


def test_chat_uses_the_history(docs: TestClient, scripted) -> None:
    scripted.script = ["What does the warranty cover?", "The warranty covers manufacturing defects [1]."]
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Tell me about shipping."},
                {"role": "assistant", "content": "Orders ship within two business days."},
                {"role": "user", "content": "And the warranty?"}]
    answer = docs.post("/v1/collections/docs/chat", json={"messages": messages, "model": "scripted:m"}).json()
    assert answer["trace"]["asked"] == "And the warranty?"
    assert answer["question"] == "What does the warranty cover?"
    rewrite = scripted.requests[0].messages[-1].content
    assert "Orders ship within two business days." in rewrite


def test_chat_needs_a_last_user_message(docs: TestClient) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    body = assert_problem(docs.post("/v1/collections/docs/chat", json={"messages": messages}), 422, "last message")
    assert body["errors"][0]["field"] == "body.messages"
    assert_problem(docs.post("/v1/collections/docs/chat", json={"messages": []}), 422, "body.messages")


# -- runs ---------------------------------------------------------------------------------------------------------
def test_runs_of_a_collection(docs: TestClient, tmp_path) -> None:
    suite = tmp_path / "suite.jsonl"
    suite.write_text(json.dumps({"id": "q1", "question": "How long can customers return goods?",
                                 "answers": ["30 days"], "gold": ["refunds.md"]}) + "\n")
    from domainrag.kb import KnowledgeBase

    with KnowledgeBase.open(docs.app.state.server.collections.path("docs")) as kb:
        run = kb.evaluate(suite, name="first")
        kb.evaluate(suite, name="second")
    listed = docs.get("/v1/collections/docs/runs").json()["runs"]
    assert [r["name"] for r in listed] == ["second", "first"]
    assert docs.get(f"/v1/collections/docs/runs/{run.run_id}").json()["run_id"] == run.run_id
    report = docs.get("/v1/collections/docs/runs/first/report")
    assert report.headers["content-type"].startswith("text/html") and "<html" in report.text
    comparison = docs.get("/v1/collections/docs/compare", params={"baseline": "first", "new": "second"}).json()
    assert "metrics" in json.dumps(comparison)
    html = docs.get("/v1/collections/docs/compare", params={"baseline": "first", "new": "second", "format": "html"})
    assert "<html" in html.text
    assert_problem(docs.get("/v1/collections/docs/runs/nope"), 404, "'nope'")
    assert_problem(docs.get("/v1/collections/docs/compare", params={"baseline": "nope"}), 404, "'nope'")


def test_upload_groups_reach_the_documents(docs: TestClient, make_key) -> None:
    files = [("files", ("secret.txt", b"Restricted salary text.", "text/plain"))]
    job = docs.post("/v1/collections/docs/documents", files=files, data={"acl": "hr, board"}).json()["job"]
    assert job["acl"] == ["board", "hr"] and wait_job(docs, job["id"])["state"] == "done"
    body = {"documents": [{"name": "memo", "text": "Restricted memo text."}], "acl": ["legal"]}
    assert wait_job(docs, docs.post("/v1/collections/docs/documents", json=body).json()["job"]["id"])["state"] == "done"
    metadata = {d["id"]: d["metadata"].get("acl") for d in docs.get("/v1/collections/docs/documents").json()["documents"]}
    assert metadata["secret.txt"] == ["board", "hr"] and metadata["memo.txt"] == ["legal"]
    assert metadata["refunds.md"] is None
    make_key("admin", role="admin")
    hr, public = make_key("hr", ["docs"], groups=["hr"]), make_key("public", ["docs"], groups=[])
    assert docs.get("/v1/collections/docs/documents/secret.txt", headers=bearer(hr)).status_code == 200
    assert_problem(docs.get("/v1/collections/docs/documents/secret.txt", headers=bearer(public)), 404)
    assert_problem(docs.get("/v1/collections/docs/documents/memo.txt", headers=bearer(hr)), 404)
    # a re-ingest keeps the groups each source was given
    writer = bearer(make_key("writer", ["docs"], role="write", groups=None))
    reingest = docs.post("/v1/collections/docs/reingest", headers=writer).json()["job"]
    assert wait_job(docs, reingest["id"], writer)["state"] == "done"
    assert_problem(docs.get("/v1/collections/docs/documents/secret.txt", headers=bearer(public)), 404)


def test_bad_upload_groups_are_422_naming_them(docs: TestClient) -> None:
    files = [("files", ("secret.txt", b"Restricted text.", "text/plain"))]
    assert_problem(docs.post("/v1/collections/docs/documents", files=files, data={"acl": "a,*"}), 422, "'*'")
    assert_problem(docs.post("/v1/collections/docs/documents", json={"documents": [{"name": "s", "text": "t"}],
                                                                     "acl": ["x" * 65]}), 422, "limit is 64")
    assert docs.get("/v1/collections/docs/documents/secret.txt").status_code == 404
    assert not any((docs.app.state.server.jobs.uploads / "docs" / "incoming").iterdir())


def test_a_restricted_writer_gives_only_its_own_groups_and_replaces_only_what_it_reads(docs: TestClient, make_key) -> None:
    make_key("admin", role="admin")
    hr = bearer(make_key("hr-writer", ["docs"], role="write", groups=["hr"]))
    ops = bearer(make_key("ops-writer", ["docs"], role="write", groups=["ops"]))
    public = bearer(make_key("public", ["docs"], groups=[]))

    def upload(headers: dict[str, str], name: str, text: bytes, acl: str | None = None):
        data = {"acl": acl} if acl is not None else {}
        return docs.post("/v1/collections/docs/documents", headers=headers, data=data,
                         files=[("files", (name, text, "text/plain"))])

    # by default a restricted writer's upload is readable by its own groups, not by everyone
    job = upload(hr, "bands.txt", b"Salary bands for engineers.").json()["job"]
    assert job["acl"] == ["hr"] and wait_job(docs, job["id"], hr)["state"] == "done"
    assert_problem(docs.get("/v1/collections/docs/documents/bands.txt", headers=public), 404)
    # groups it does not hold are refused, naming them
    assert_problem(upload(hr, "x.txt", b"x", acl="hr,board"), 403, "board")
    # it may not overwrite a file whose documents it cannot read
    assert_problem(upload(ops, "bands.txt", b"Replaced by ops."), 403, "bands.txt")
    assert "Salary bands" in docs.get("/v1/collections/docs/documents/bands.txt", headers=hr).json()["text"]
    # it may replace its own
    again = upload(hr, "bands.txt", b"Salary bands, revised.").json()["job"]
    assert wait_job(docs, again["id"], hr)["state"] == "done"
    assert "revised" in docs.get("/v1/collections/docs/documents/bands.txt", headers=hr).json()["text"]
