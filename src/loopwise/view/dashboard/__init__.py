"""The live dashboard: a read-only ASGI app (Starlette, extra ``loopwise[ui]``) over a runs
folder. :func:`loopwise.view.dashboard.app.create_app` builds it;
:func:`loopwise.view.dashboard.serve.serve` runs it on uvicorn. See ``docs/views.md``."""
