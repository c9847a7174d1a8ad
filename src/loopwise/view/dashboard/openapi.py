"""The OpenAPI 3.0 description of the dashboard's JSON API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from loopwise.view.dashboard.data import MAX_POINTS

_NUM = {"type": "number", "nullable": True}
_ERROR = {"description": "refused", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
# one path component: no slash, backslash or NUL, no leading dot (the server refuses others: 400)
RUN_NAME_PATTERN = "^[^/\\\\.\\u0000][^/\\\\\\u0000]*$"
_RUN = {"name": "run", "in": "path", "required": True, "description": "the run's folder name",
        "schema": {"type": "string", "pattern": RUN_NAME_PATTERN}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _get(summary: str, ok: dict[str, Any], params: list[dict[str, Any]] | None = None,
         errors: tuple[str, ...] = ("400", "401", "404")) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    responses.update({code: _ERROR for code in errors})
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    return {"get": op}


def openapi_schema() -> dict[str, Any]:
    """The schema (a fresh dict each call)."""
    ref = "#/components/schemas/"
    return {
        "openapi": "3.0.3",
        "info": {"title": "loopwise dashboard API", "version": "1",
                 "description": "Read-only access to the runs under one folder. When the "
                                "dashboard was started with --token, send "
                                "'Authorization: Bearer TOKEN' (or ?token=TOKEN)."},
        "security": [{}, {"bearer": []}],
        "paths": {
            "/api/runs": _get("the runs, newest first",
                              _ok("runs", {"type": "array",
                                           "items": {"$ref": ref + "RunSummary"}}),
                              errors=("400", "401")),
            "/api/table": _get(
                "the run table: every run's status, times, steps, flattened config and each "
                "metric's final and best value (best only for metrics whose name states a "
                "direction); with `where`, the names of the runs the expression keeps",
                _ok("run table", {"$ref": ref + "RunTable"}),
                [{"name": "where", "in": "query", "schema": {"type": "string"},
                  "description": "a filter such as `lr < 0.01 and status == finished` "
                                 "(loopwise.view.where); a bad one is refused naming its "
                                 "token"}],
                errors=("400", "401")),
            "/api/runs/{run}": _get("one run: status, config, series keys",
                                    _ok("run", {"$ref": ref + "Run"}), [_RUN]),
            "/api/runs/{run}/series/{key}": _get(
                "a window of one series, reduced to at most `points` points by a min/max "
                "envelope (spikes survive)",
                _ok("series window", {"$ref": ref + "SeriesWindow"}),
                [_RUN, {"name": "key", "in": "path", "required": True,
                        "schema": {"type": "string"}, "description": "the series name"},
                 {"name": "start", "in": "query", "schema": {"type": "number"},
                  "description": "window start on the x axis (inclusive)"},
                 {"name": "end", "in": "query", "schema": {"type": "number"},
                  "description": "window end on the x axis (inclusive)"},
                 {"name": "points", "in": "query",
                  "schema": {"type": "integer", "minimum": 2, "maximum": MAX_POINTS,
                             "default": 2000}},
                 {"name": "x", "in": "query",
                  "schema": {"type": "string", "enum": ["step", "epoch", "time"],
                             "default": "step"}}]),
            "/api/runs/{run}/events": _get(
                "the run's events in order",
                _ok("events", {"type": "array", "items": {"$ref": ref + "Event"}}), [_RUN]),
            "/api/root": _get("the runs folder: its path and whether it exists yet",
                              _ok("root", {"$ref": ref + "Root"}), errors=("400", "401")),
            "/api/runs/{run}/payload": _get(
                "everything the run's report shows (series downsampled to `points`, events, "
                "system samples, config, the epoch table), for the run's page",
                _ok("run payload", {"$ref": ref + "RunPayload"}),
                [_RUN, {"name": "points", "in": "query",
                        "schema": {"type": "integer", "minimum": 2, "maximum": MAX_POINTS,
                                   "default": 2000}}]),
            "/api/runs/{run}/download/{key}": _get(
                "a whole series as a file: CSV (step,wall_time,value) or JSON lines",
                {"description": "the series", "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {"schema": {"type": "string"}}}},
                [_RUN, {"name": "key", "in": "path", "required": True,
                        "schema": {"type": "string"}, "description": "the series name"},
                 {"name": "format", "in": "query",
                  "schema": {"type": "string", "enum": ["csv", "jsonl"], "default": "csv"}}]),
            "/api/runs/{run}/report": _get(
                "the run's self-contained HTML report",
                {"description": "the report", "content": {
                    "text/html": {"schema": {"type": "string"}}}}, [_RUN]),
            "/api/runs/{run}/media": _get(
                "the run's histograms (quantiles and heatmap per step), images (URLs by "
                "step) and texts, by name",
                _ok("media", {"$ref": ref + "Media"}), [_RUN]),
            "/api/runs/{run}/images/{file}": {"get": {
                "summary": "one image of the run, `<sha256>.png` (as listed by its media)",
                "parameters": [_RUN, {"name": "file", "in": "path", "required": True,
                                      "schema": {"type": "string",
                                                 "pattern": "^[0-9a-f]{64}\\.png$"}}],
                "responses": {"200": {"description": "the PNG", "content": {
                    "image/png": {"schema": {"type": "string", "format": "binary"}}}},
                    "400": _ERROR, "401": _ERROR, "404": _ERROR}}},
            "/api/runs/{run}/system": _get(
                "system samples by name (each downsampled)",
                _ok("system samples", {"type": "object", "additionalProperties": {
                    "$ref": ref + "Samples"}}),
                [_RUN, {"name": "points", "in": "query",
                        "schema": {"type": "integer", "minimum": 2, "maximum": MAX_POINTS,
                                   "default": 2000}}]),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"],
                          "properties": {"error": {"type": "string"}}},
                "RunSummary": {"type": "object",
                               "required": ["name", "status", "steps", "last"],
                               "properties": {
                                   "name": {"type": "string"}, "status": {"type": "string"},
                                   "start_time": _NUM, "end_time": _NUM, "duration": _NUM,
                                   "steps": {"type": "integer"},
                                   "last": {"type": "object", "additionalProperties": _NUM},
                                   "problem": {"type": "string", "nullable": True},
                                   "damaged": {"type": "array",
                                               "items": {"type": "string"}}}},
                "RunTable": {
                    "type": "object", "required": ["rows", "matched", "config_keys", "metrics"],
                    "properties": {
                        "rows": {"type": "array", "items": {"$ref": ref + "RunRow"}},
                        "matched": {"type": "array", "nullable": True,
                                    "items": {"type": "string"}},
                        "config_keys": {"type": "array", "items": {"type": "string"}},
                        "metrics": {"type": "array", "items": {
                            "type": "object", "required": ["key", "mode", "validation"],
                            "properties": {
                                "key": {"type": "string"},
                                "mode": {"type": "string", "enum": ["min", "max"],
                                         "nullable": True},
                                "validation": {"type": "boolean"}}}}}},
                "RunRow": {
                    "type": "object",
                    "required": ["name", "status", "steps", "config", "final", "best"],
                    "properties": {
                        "name": {"type": "string"}, "status": {"type": "string"},
                        "start": _NUM, "end": _NUM, "duration": _NUM,
                        "steps": {"type": "integer"}, "config": {"type": "object"},
                        "final": {"type": "object", "additionalProperties": _NUM},
                        "best": {"type": "object", "additionalProperties": _NUM},
                        "problem": {"type": "string", "nullable": True},
                        "damaged": {"type": "array", "items": {"type": "string"}}}},
                "Run": {"type": "object",
                        "required": ["name", "status", "info", "config", "keys", "epoch_ends"],
                        "properties": {
                            "name": {"type": "string"}, "status": {"type": "string"},
                            "info": {"type": "object"}, "config": {"type": "object"},
                            "keys": {"type": "array", "items": {"type": "string"}},
                            "epoch_ends": {"type": "array", "items": {"type": "integer"}},
                            "damaged": {"type": "array", "items": {"type": "string"}}}},
                "SeriesWindow": {
                    "type": "object",
                    "required": ["run", "key", "x", "total", "window", "points", "steps",
                                 "times", "epochs", "values"],
                    "properties": {
                        "run": {"type": "string"}, "key": {"type": "string"},
                        "x": {"type": "string", "enum": ["step", "epoch", "time"]},
                        "start": _NUM, "end": _NUM,
                        "total": {"type": "integer"}, "window": {"type": "integer"},
                        "points": {"type": "integer"},
                        "steps": {"type": "array", "items": {"type": "integer"}},
                        "times": {"type": "array", "items": {"type": "number"}},
                        "epochs": {"type": "array", "items": {"type": "number"}},
                        "values": {"type": "array", "items": _NUM}}},
                "Event": {"type": "object", "required": ["time", "level", "kind", "message"],
                          "properties": {
                              "time": {"type": "number"}, "level": {"type": "string"},
                              "kind": {"type": "string"}, "message": {"type": "string"},
                              "data": {"type": "object", "nullable": True}}},
                "Root": {"type": "object", "required": ["path", "exists"],
                         "properties": {"path": {"type": "string"},
                                        "exists": {"type": "boolean"}}},
                "RunPayload": {"type": "object",
                               "required": ["name", "status", "info", "config", "series",
                                            "epoch_ends", "system", "events", "epoch_table"],
                               "properties": {
                                   "name": {"type": "string"}, "status": {"type": "string"},
                                   "info": {"type": "object"}, "config": {"type": "object"},
                                   "series": {"type": "object"},
                                   "epoch_ends": {"type": "array",
                                                  "items": {"type": "integer"}},
                                   "system": {"type": "object"},
                                   "events": {"type": "array", "items": {"type": "object"}},
                                   "epoch_table": {"type": "object"},
                                   "best": {"type": "object", "nullable": True}}},
                "Media": {"type": "object", "required": ["histograms", "images", "texts"],
                          "properties": {
                              "histograms": {"type": "object", "additionalProperties": {
                                  "type": "object"}},
                              "images": {"type": "object", "additionalProperties": {
                                  "type": "object"}},
                              "texts": {"type": "object", "additionalProperties": {
                                  "type": "array", "items": {"type": "object"}}}}},
                "Samples": {"type": "object", "required": ["times", "values"],
                            "properties": {
                                "times": {"type": "array", "items": {"type": "number"}},
                                "values": {"type": "array", "items": _NUM}}},
            },
        },
    }
