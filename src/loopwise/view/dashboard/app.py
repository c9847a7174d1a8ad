"""The dashboard's ASGI app (Starlette): the page, the shipped static files, the JSON API and
its OpenAPI schema, behind :class:`~loopwise.view.dashboard.guard.Guard`. Read-only."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from loopwise.view.dashboard.data import BadRequest, Encoded, NotFound, RunsRoot
from loopwise.view.dashboard.guard import LOCAL_HOSTS, ASGIApp, Guard
from loopwise.view.dashboard.openapi import openapi_schema
from loopwise.view.static_files import STATIC_FILES, static_text

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8"}


def _starlette() -> Any:
    try:
        import starlette.applications
        import starlette.responses
        import starlette.routing
    except ImportError as exc:
        raise ImportError("the dashboard needs starlette and uvicorn: "
                          "pip install 'loopwise[ui]'") from exc
    return starlette


def _one(query: Any, name: str) -> str | None:
    """The value of query parameter ``name``: None when absent; given twice is refused."""
    values = query.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} given {len(values)} times; give it once")
    return values[0] if values else None


def _axis(query: Any) -> str:
    raw = _one(query, "x")
    return "step" if raw is None else raw


def _number(query: Any, name: str) -> float | None:
    raw = _one(query, name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}") from None


def _integer(query: Any, name: str, default: int) -> int:
    raw = _one(query, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None


def create_app(root: str | os.PathLike[str], *, token: str | None = None,
               allow_hosts: Iterable[str] = (), warm: bool = False) -> ASGIApp:
    """The dashboard over the runs in ``root``. ``token``: required on every request but the
    static files; ``allow_hosts``: Host header names accepted besides localhost, 127.0.0.1 and
    ::1; ``warm``: read every run's row now, in a background thread, so that the first page
    does not wait for a thousand stores to be opened."""
    st = _starlette()
    import numpy  # noqa: F401  (loaded now, not during the first request)
    Response = st.responses.Response
    Route = st.routing.Route
    data = RunsRoot(root)
    if warm:
        threading.Thread(target=data.table_json, name="loopwise-ui-warm", daemon=True).start()
    extra = [allow_hosts] if isinstance(allow_hosts, str) else list(allow_hosts)
    for h in extra:
        if not isinstance(h, str) or not h.strip():
            raise ValueError(f"allow_hosts must be host names, got {h!r}")

    def as_json(body: Any, status: int = 200) -> Any:
        text = body if isinstance(body, Encoded) else json.dumps(
            body, allow_nan=False, separators=(",", ":"))
        return Response(text, status, media_type="application/json")

    def api(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def endpoint(request: Any) -> Any:
            try:
                return as_json(handler(request))
            except NotFound as exc:
                return as_json({"error": str(exc)}, 404)
            except (BadRequest, ValueError) as exc:
                return as_json({"error": str(exc)}, 400)
        return endpoint

    def page(request: Any) -> Any:
        return Response(static_text("dashboard.html"), media_type=_TYPES[".html"])

    def static(request: Any) -> Any:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return as_json({"error": f"no static file {name!r}"}, 404)
        suffix = os.path.splitext(STATIC_FILES[name])[1] or ".txt"
        return Response(static_text(name), media_type=_TYPES.get(suffix, _TYPES[".txt"]),
                        headers={"cache-control": "max-age=300"})

    def series(request: Any) -> Any:
        q = request.query_params
        return data.series(request.path_params["run"], request.path_params["key"],
                           start=_number(q, "start"), end=_number(q, "end"),
                           points=_integer(q, "points", 2000), x=_axis(q))

    def text(handler: Callable[[Any], tuple[str, str, dict[str, str]]]) -> Callable[[Any], Any]:
        def endpoint(request: Any) -> Any:
            try:
                body, media, headers = handler(request)
            except NotFound as exc:
                return as_json({"error": str(exc)}, 404)
            except (BadRequest, ValueError) as exc:
                return as_json({"error": str(exc)}, 400)
            return Response(body, media_type=media, headers=headers)
        return endpoint

    def download(request: Any) -> Any:
        run, key = request.path_params["run"], request.path_params["key"]
        fmt = _one(request.query_params, "format") or "csv"
        body = data.download(run, key, fmt=fmt)
        media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{run}-{key}")
        return body, media, {"content-disposition": f'attachment; filename="{name}.{fmt}"'}

    def report(request: Any) -> Any:
        from loopwise.record.reader import RunReader
        from loopwise.view.report import CSP, render_report

        reader = RunReader(data.run_dir(request.path_params["run"]))
        # the report inlines its scripts: its own policy (no request at all) replaces the app's
        return render_report(reader), _TYPES[".html"], {
            "content-security-policy": CSP + "; frame-ancestors 'none'"}

    def image(request: Any) -> Any:
        try:
            png = data.image(request.path_params["run"], request.path_params["file"])
        except NotFound as exc:
            return as_json({"error": str(exc)}, 404)
        except BadRequest as exc:
            return as_json({"error": str(exc)}, 400)
        return Response(png, media_type="image/png")

    routes = [
        Route("/", page),
        Route("/api/root", api(lambda request: data.where())),
        Route("/api/runs/{run}/payload", api(lambda request: data.payload(
            request.path_params["run"], points=_integer(request.query_params, "points", 2000)))),
        Route("/api/runs/{run}/download/{key:path}", text(download)),
        Route("/api/runs/{run}/report", text(report)),
        Route("/static/{name}", static),
        Route("/openapi.json", lambda request: as_json(openapi_schema())),
        Route("/api/runs", api(lambda request: data.runs_json())),
        Route("/api/table", api(lambda request: data.table_json(
            where=_one(request.query_params, "where")))),
        Route("/api/runs/{run}", api(lambda request: data.run(request.path_params["run"]))),
        Route("/api/runs/{run}/events",
              api(lambda request: data.events(request.path_params["run"]))),
        Route("/api/runs/{run}/system", api(lambda request: data.system(
            request.path_params["run"], points=_integer(request.query_params, "points", 2000)))),
        Route("/api/runs/{run}/series/{key:path}", api(series)),
        Route("/api/runs/{run}/media",
              api(lambda request: data.media(request.path_params["run"]))),
        Route("/api/runs/{run}/images/{file}", image),
    ]
    def missing(request: Any, exc: Exception) -> Any:
        return as_json({"error": "no such page or API path; see /openapi.json"}, 404)

    app = st.applications.Starlette(routes=routes, exception_handlers={404: missing})
    return Guard(app, token=token, allowed_hosts=[*LOCAL_HOSTS, *extra])
