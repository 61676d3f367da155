"""What keeps other web pages and other local users out of `stockup ui`.

The server listens on 127.0.0.1 only, but any web page the user visits can
make the browser send requests there, a rebinding DNS name can point at it,
and cookies do not keep ports apart: a browser sends 127.0.0.1's cookies to
every program listening on 127.0.0.1, whatever its port. So:

- every page lives under a secret path of this run (``/<path>/...``), and
  the cookie that carries the key is scoped to that path, so the browser
  sends it to no other program, which could not guess the path anyway;
- every request must carry this run's random key (in the printed address
  once, then that cookie) and name our own host and port (DNS rebinding);
- every POST must carry the CSRF token of the page it came from, and come
  from our own origin when the browser says where it comes from.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_PARAMETER = "token"  # noqa: S105  # the query parameter's name
CSRF_FIELD = "csrf"
# Files per upload form; each part's name is checked, so keep the parser bounded.
MAX_FORM_FILES = 5000
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # Not no-referrer: under it, browsers send "Origin: null" with our own
    # forms, and the Origin check below could not tell them from others.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def forbidden() -> Response:
    return PlainTextResponse(
        "Forbidden: open the address that `stockup ui` printed; it carries this run's key.", 403
    )


def same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Keys:
    """This run's secrets: the access key in the printed URL, and the CSRF token."""

    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    path: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    """Every page's address starts with ``/<path>``."""

    @property
    def base(self) -> str:
        return f"/{self.path}"

    @property
    def cookie(self) -> str:
        return f"stockup-{self.port}"  # per port: two servers on one host keep apart

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        return (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        return tuple(f"http://{host}" for host in self.allowed_hosts)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base}/?{TOKEN_PARAMETER}={self.token}"


class Guard:
    """ASGI middleware: Host check, access key, security headers on every response."""

    def __init__(self, app: ASGIApp, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        path = scope["path"]
        if path == self.keys.base or path.startswith(self.keys.base + "/"):
            # Routing sees the path below the secret prefix (Starlette strips root_path).
            scope = {**scope, "root_path": scope.get("root_path", "") + self.keys.base}
        else:
            scope = {**scope, "outside": True}
        request = Request(scope)
        response = self._refusal(request)
        if response is None:
            await self.app(scope, receive, send_with_headers)
        else:
            await response(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        keys = self.keys
        if request.headers.get("host") not in keys.allowed_hosts:
            return PlainTextResponse("Refused: this server answers only to its own address.", 403)
        origin = request.headers.get("origin")
        # "null" (a privacy setting, a sandboxed page) says nothing either way:
        # the CSRF token still decides.
        foreign = origin not in (None, "null", *keys.allowed_origins)
        if request.method != "GET" and foreign:
            return PlainTextResponse("Refused: this form was not sent by this page.", 403)
        if request.scope.get("outside"):
            return forbidden()
        if same(request.cookies.get(keys.cookie), keys.token):
            return None
        if request.method == "GET" and same(request.query_params.get(TOKEN_PARAMETER), keys.token):
            # The key leaves the address bar at once; the cookie carries it from now on.
            query = urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAMETER]
            )
            redirect = RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
            redirect.set_cookie(
                keys.cookie, keys.token, httponly=True, samesite="strict", path=keys.base
            )
            return redirect
        return forbidden()


Handler = Callable[[Request, FormData], Awaitable[Response]]


def form_action(keys: Keys, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A POST endpoint that runs ``handler`` only for a form carrying the CSRF token."""

    async def endpoint(request: Request) -> Response:
        async with request.form(max_files=MAX_FORM_FILES) as form:
            token = form.get(CSRF_FIELD)
            if not same(token if isinstance(token, str) else None, keys.csrf):
                return PlainTextResponse("Refused: the form's CSRF token is missing or wrong.", 403)
            return await handler(request, form)

    return endpoint
