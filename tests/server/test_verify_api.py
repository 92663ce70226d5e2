"""``POST /v1/verify``: the server's checker for answers from any system, behind the same keys."""

from __future__ import annotations

from conftest import bearer
from fastapi.testclient import TestClient

SOURCE = "Customers may return goods within 30 days for a full refund."


def test_verify_returns_a_verdict_per_claim(docs: TestClient) -> None:
    body = {"answer": "Customers may return goods within 30 days for a full refund [1]. "
                      "Refunds are paid in cash within 90 days.", "sources": [SOURCE]}
    response = docs.post("/v1/verify", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [c["verdict"] for c in data["claims"]] == ["supported", "unsupported"]
    assert data["claims"][1]["reason"] in ("uncited", "number")
    assert data["grounded"] == 0.5 and data["verifier"].startswith("offline:")


def test_verify_as_a_collection_checks_needs_read_access(docs: TestClient, make_key) -> None:
    body = {"answer": "Customers may return goods within 30 days [1].", "sources": [{"text": SOURCE, "number": 1}],
            "collection": "docs", "template": "legal"}
    assert docs.post("/v1/verify", json=body).status_code == 200
    other = make_key("other", collections=["elsewhere"])
    reader = make_key("reader", collections=["docs"])
    assert docs.post("/v1/verify", json=body, headers=bearer(other)).status_code == 403
    ok = docs.post("/v1/verify", json=body, headers=bearer(reader))
    assert ok.status_code == 200 and ok.json()["verifier"].endswith("@0.6")  # the legal preset's threshold


def test_verify_bounds_and_validates_its_input(docs: TestClient) -> None:
    assert docs.post("/v1/verify", json={"answer": "x", "sources": []}).status_code == 422
    assert docs.post("/v1/verify", json={"answer": "x" * 20_001, "sources": ["y"]}).status_code == 422
    assert docs.post("/v1/verify", json={"answer": "x", "sources": ["y"] * 65}).status_code == 422
    assert docs.post("/v1/verify", json={"answer": "x", "sources": ["y"], "model": "openai:gpt-4o"}).status_code == 422
    assert docs.post("/v1/verify", json={"answer": "x", "sources": ["y"], "template": "/etc/passwd"}).status_code == 422
    duplicate = {"answer": "x", "sources": [{"text": "a", "number": 1}, {"text": "b", "number": 1}]}
    assert docs.post("/v1/verify", json=duplicate).status_code == 422


def test_verify_refuses_an_answer_that_needs_too_many_pairs(docs: TestClient) -> None:
    sources = [f"Passage {i}: the fee is {i} dollars a month for members." for i in range(1, 65)]
    answer = " ".join(f"The fee is {i} dollars a month [1-64]." for i in range(1, 80))
    response = docs.post("/v1/verify", json={"answer": answer, "sources": sources})
    assert response.status_code == 422
    assert "claim–evidence pairs" in response.json()["detail"]
