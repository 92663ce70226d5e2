"""The OpenAPI document and the offline /docs page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

METHODS = {"get", "post", "put", "patch", "delete"}


def test_openapi_document_is_well_formed(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "domainrag"
    paths = spec["paths"]
    for route in ("/v1/collections", "/v1/collections/{collection}/ask", "/v1/collections/{collection}/search",
                  "/v1/collections/{collection}/documents", "/v1/jobs/{job_id}", "/healthz", "/metrics"):
        assert route in paths
    schemas = spec["components"]["schemas"]
    for path, item in paths.items():
        for method, operation in item.items():
            assert method in METHODS, (path, method)
            assert operation.get("summary"), (path, method)
            success = [s for s in operation["responses"] if s.startswith("2")]
            assert success, (path, method)
            for status in success:
                response = operation["responses"][status]
                assert status == "204" or response.get("content"), (path, method, status)
            for parameter in re.findall(r"{(\w+)", path):
                assert parameter in {p["name"] for p in operation.get("parameters", [])}, (path, parameter)
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', client.get("/openapi.json").text))
    assert refs <= set(schemas), refs - set(schemas)
    upload = paths["/v1/collections/{collection}/documents"]["post"]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data", "application/json"}
    assert paths["/v1/collections/{collection}/search"]["post"]["responses"]["422"]["content"]


def test_openapi_document_validates_against_the_openapi_schema(client: TestClient) -> None:
    """The served document is valid OpenAPI (checked by openapi-spec-validator, in [dev])."""
    from openapi_spec_validator import validate

    validate(client.get("/openapi.json").json())


def test_docs_page_works_offline(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)  # nothing fetched from elsewhere
    assert "cdn" not in page.text.lower()
