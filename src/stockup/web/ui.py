"""What every page of the web UI shares: the store, this run's keys, the
unlocked passphrase, the uploads, and the helpers to render and redirect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from stockup.passphrase import PassphraseSource
from stockup.store import Store
from stockup.text import human_bytes, human_duration, storable
from stockup.web.guard import CSRF_FIELD, Handler, Keys, form_action
from stockup.web.uploads import Uploads

T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]


class Locked(Exception):
    """A page that needs the vault was asked for before the unlock."""


def _templates(keys: Keys) -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("stockup.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        # A file name with a byte that is not UTF-8 (a lone surrogate) cannot
        # be sent as UTF-8: shown as \xNN, it no longer fails the whole page.
        finalize=lambda value: storable(value) if isinstance(value, str) else value,
    )
    env.filters["bytes"] = human_bytes
    env.filters["duration"] = human_duration
    env.filters["basename"] = lambda path: Path(path).name
    env.globals["base"] = keys.base
    env.globals["csrf_field"] = Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, keys.csrf
    )
    return Jinja2Templates(env=env)


class Ui:
    def __init__(self, store: Store, keys: Keys) -> None:
        self.store = store
        self.keys = keys
        self.uploads = Uploads(store)
        self.templates = _templates(keys)
        self.passphrase: PassphraseSource | None = None
        """Set by the unlock page; lives in this process only."""

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.update(unlocked=self.passphrase is not None, notice=request.query_params.get("ok"))
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def redirect(self, path: str, notice: str | None = None) -> Response:
        """To one of this UI's own pages (under this run's secret path)."""
        query = f"?{encode({'ok': storable(notice)})}" if notice else ""
        return RedirectResponse(self.keys.base + path + query, 303)

    def unlocked(self) -> PassphraseSource:
        if self.passphrase is None:
            raise Locked
        return self.passphrase

    def post(self, handler: Handler) -> Endpoint:
        """A POST endpoint that needs this run's CSRF token."""
        return form_action(self.keys, handler)


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def checked(form: FormData, name: str) -> bool:
    return form.get(name) == "on"


def encode(params: Mapping[str, str | None]) -> str:
    return urlencode({k: v for k, v in params.items() if v})


def lookup(items: Mapping[str, T], request: Request, missing: str) -> T:
    """The item named by the address's ``{id}``, or a 404 page saying ``missing``."""
    item = items.get(request.path_params["id"])
    if item is None:
        raise HTTPException(404, missing)
    return item
