"""schemathesis against the dashboard's OpenAPI schema (``/openapi.json``), sent over HTTP to
the real server (``loopwise ui`` on uvicorn) over runs with hostile metric names. Every answer
conforms to the schema (status code, content type, body), no request is a server error, and
every refusal is a JSON ``{"error": ...}`` with a message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _fuzz_tools import fuzz_settings

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("uvicorn")

from loopwise.view.dashboard.openapi import openapi_schema  # noqa: E402

schema = schemathesis.openapi.from_dict(openapi_schema())


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from _view_kit import HOSTILE, Server, make_run  # tests/view, put on the path by _fuzz_tools

    root = tmp_path_factory.mktemp("api") / "runs"
    make_run(root, "alpha", steps=60, epochs=3, extra_key=HOSTILE)
    make_run(root, "b", steps=10, epochs=1, extra_key="\x1b]0;owned\x07 =1+1")
    server = Server(root)
    try:
        yield server
    finally:
        server.stop()


@schema.parametrize()
@fuzz_settings(100, 2000)
def test_every_request_the_schema_allows_gets_a_conforming_answer(case: Any,
                                                                  dashboard: Any) -> None:
    response = case.call(base_url=dashboard.url, timeout=30)
    excluded = []
    if case.path == "/api/table" and response.status_code == 400:
        # a `where` expression is any string to the schema; one that does not parse is refused
        # (400, naming its token), which is not a schema-valid request being rejected
        from schemathesis.specs.openapi.checks import positive_data_acceptance

        assert response.json()["error"].startswith("where: "), response.text
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded)
    method = response.request.method
    if method not in ("GET", "HEAD"):  # schemathesis also tries methods the schema lacks
        assert response.status_code == 405 and "read-only" in response.text, method
        return
    assert response.status_code in (200, 400, 404), response.text
    ctype = response.headers.get("content-type") or [""]
    if response.status_code == 200 and not str(ctype[0] if isinstance(ctype, list) else ctype
                                               ).startswith("application/json"):
        # a download (CSV, JSON lines) or the HTML report
        assert response.text, case.path
        return
    body = response.json()
    if response.status_code != 200:
        assert isinstance(body.get("error"), str) and body["error"], body
    assert "access-control-allow-origin" not in {k.lower() for k in response.headers}


@pytest.mark.parametrize("path", ["/api/runs/alpha", "/api/runs/alpha/events",
                                  "/api/runs/alpha/system?points=2",
                                  "/api/runs/alpha/series/loss?points=20&x=epoch&start=1&end=2",
                                  "/api/runs/alpha/payload?points=2", "/api/root"])
def test_known_runs_answer_with_their_data(path: str, dashboard: Any) -> None:
    """The generated cases above mostly name runs that do not exist (404); these reach data."""
    import json
    import urllib.request

    with urllib.request.urlopen(dashboard.url + path, timeout=30) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
        assert resp.headers["content-type"].startswith("application/json")
    assert body, path
