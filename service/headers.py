"""Security headers on every response: no MIME sniffing anywhere; HTML cannot be framed and
runs under a Content-Security-Policy.

heed's pages run no script and load only their own stylesheet, so their policy allows just that
(plus inline ``style`` attributes, which carry the highlight weights). FastAPI's /docs and /redoc
load Swagger UI and ReDoc from a CDN with inline scripts; they only get ``frame-ancestors``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_POLICY = "frame-ancestors 'none'"
# With HEED_CLICKS on, result links ping /clicks (an <a ping>), which CSP governs as a connection.
CLICKS_POLICY = PAGE_POLICY + "; connect-src 'self'"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_paths: frozenset[str], clicks: bool = False) -> None:
        self.app, self.docs_paths = app, docs_paths
        self.page_policy = CLICKS_POLICY if clicks else PAGE_POLICY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if scope["path"] in self.docs_paths else self.page_policy

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                added = [(b"x-content-type-options", b"nosniff")]
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    added += [
                        (b"x-frame-options", b"DENY"),
                        (b"content-security-policy", policy.encode()),
                    ]
                headers += [(name, value) for name, value in added if name not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
