"""An ASGI middleware for the service: form bodies get a 415 instead of BentoML's 500.

Every API of the service takes JSON (its OpenAPI document declares only ``application/json``). BentoML 1.4.39 routes a
``multipart/form-data`` or ``application/x-www-form-urlencoded`` body to its form parser, and a malformed form (no
boundary, a JSON body sent with a form header) raises there, outside its validation handling: the client gets a 500
and the server logs a traceback (found by schemathesis, ``test_service_schemathesis.py``). Forms are refused before
BentoML reads them; every other request passes through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FORM_MEDIA_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def _media_type(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


class RejectFormBodies:
    """Answers 415 with a JSON error naming the media type to use, for any HTTP request with a form body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        media_type = _media_type(scope) if scope["type"] == "http" else ""
        if media_type not in FORM_MEDIA_TYPES:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": f"Content-Type {media_type} is not accepted: send the body as application/json"})
        await send(
            {
                "type": "http.response.start",
                "status": 415,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
