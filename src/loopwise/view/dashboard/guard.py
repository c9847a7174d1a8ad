"""The dashboard's front door, as plain ASGI middleware: only GET and HEAD, a Host header
allow-list (a DNS-rebinding page cannot talk to it), an optional token (``Authorization:
Bearer T`` or ``?token=T``; the shipped static files need none: they hold no data), and
security headers on every answer. No CORS header is ever sent, so no other origin may read it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"DENY"), (b"content-security-policy", CSP.encode()),
           (b"cache-control", b"no-store")]


def host_name(header: str) -> str:
    """The name part of a Host header: ``[::1]:8000`` -> ``::1``, ``Example:80`` -> ``example``."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """Wrap ``app``: refuse what the dashboard never needs, then add security headers."""

    def __init__(self, app: ASGIApp, *, token: str | None = None,
                 allowed_hosts: Iterable[str] = LOCAL_HOSTS) -> None:
        if token is not None and (not isinstance(token, str) or len(token) < 8
                                  or not token.isprintable()):
            raise ValueError("token must be a printable string of at least 8 characters")
        self.app = app
        self.token = token
        self.allowed_hosts = frozenset(host_name(h) for h in allowed_hosts)
        if not self.allowed_hosts:
            raise ValueError("allowed_hosts must name at least one host")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        refusal = self._refuse(scope)
        if refusal is not None:
            status, message, extra = refusal
            await _send_json(send, status, {"error": message}, extra)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refuse(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        if scope["method"] not in ("GET", "HEAD"):
            return 405, "the dashboard is read-only: only GET and HEAD", [(b"allow", b"GET, HEAD")]
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        host = headers.get(b"host", b"").decode("latin-1")
        if host_name(host) not in self.allowed_hosts:
            return 400, ("Host header not allowed; start loopwise ui with --allow-host NAME "
                         "to accept it"), []
        if self.token is None or scope["path"].startswith("/static/"):
            return None
        given = ""
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        else:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return 401, "a token is required: Authorization: Bearer TOKEN or ?token=TOKEN", [
                (b"www-authenticate", b"Bearer")]
        return None


async def _send_json(send: Send, status: int, body: dict[str, Any],
                     extra: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *extra, *HEADERS]})
    await send({"type": "http.response.body", "body": data})
