"""`/docs` and `/redoc` work without internet access: every asset they load is served by
aidmesh itself from the installed package."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_assets_served_here(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets, html
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset
    # The page's script is given the schema's local URL, and the schema answers.
    assert "/openapi.json" in html
    assert client.get("/openapi.json").json()["info"]["title"] == "aidmesh"


def test_swagger_ui_is_a_version_that_reads_openapi_3_1(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/docs-assets/swagger-ui-bundle.js").text
    # Swagger UI 4 renders nothing for an OpenAPI 3.1 schema; 5 reads it.
    assert re.search(r'"5\.\d+\.\d+"', bundle), "Swagger UI 5 expected"
